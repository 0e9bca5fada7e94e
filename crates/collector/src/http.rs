//! CLI mode: each receipt is posted to an ELQ-compatible import endpoint (tillwire's, local or remote) with
//! the `key` header, exactly as ELQ's collector posted it.

use std::time::Duration;

use serde::Deserialize;
use tillwire_platform::config::Secret;

use crate::reader::SaleReceipt;
use crate::run::{Ack, Sink};

/// The reply prefix of a receipt the endpoint already has.
const ALREADY: &str = "Already have receipt";

#[derive(Clone)]
pub struct HttpSink {
    client: reqwest::Client,
    api: reqwest::Url,
    key: Secret,
}

#[derive(Deserialize)]
struct Reply {
    doc_number: i64,
    #[serde(default)]
    error: String,
}

impl HttpSink {
    pub fn new(api: reqwest::Url, key: Secret) -> Result<Self, reqwest::Error> {
        // ELQ meant to ignore proxy settings (`trust_env=False`); the endpoint is on the shop's network.
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(HttpSink { client, api, key })
    }
}

/// ELQ's request body: `check_date` is the shift-open date; counts are JSON numbers.
pub fn legacy_body(receipt: &SaleReceipt) -> serde_json::Value {
    let wares: Vec<serde_json::Value> = receipt
        .wares
        .iter()
        .map(|(code, count)| serde_json::json!({"ware_code": code, "ware_count": count}))
        .collect();
    serde_json::json!({
        "cash_id": receipt.cash_id,
        "shift_id": receipt.shift_id,
        "check_id": receipt.check_id,
        "check_date": receipt.check_date.to_string(),
        "wares": wares,
    })
}

impl Sink for HttpSink {
    async fn deliver(&self, receipt: &SaleReceipt) -> Result<Ack, String> {
        let response = self
            .client
            .post(self.api.clone())
            .header("key", self.key.expose())
            .body(legacy_body(receipt).to_string())
            .send()
            .await
            .map_err(|e| format!("posting to {}: {e}", self.api))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{} answered HTTP {status}", self.api));
        }
        let reply: Reply = response
            .json()
            .await
            .map_err(|e| format!("{} sent an unexpected reply: {e}", self.api))?;
        match reply.doc_number {
            number if number > 0 => Ok(Ack::Registered { number }),
            0 => Ok(Ack::NothingToRegister),
            _ if reply.error.starts_with(ALREADY) => Ok(Ack::AlreadyImported),
            _ => Err(reply.error),
        }
    }
}
