//! CLI mode: each receipt is posted to an ELQ-compatible import endpoint (tillwire's, local or remote) with
//! the `key` header, exactly as ELQ's collector posted it.

use std::time::Duration;

use serde::Deserialize;
use tillwire_platform::config::Secret;

use crate::reader::SaleReceipt;
use crate::run::{Ack, Refusal, Sink};

/// The reply prefix of a receipt the endpoint already has.
const ALREADY: &str = "Already have receipt";
/// ELQ's replies that say "not now" rather than "never": a wrong key is fixed in main.json or on the endpoint,
/// and an internal error passes; neither is the receipt's fault, so neither parks it.
const TRANSIENT_REPLIES: [&str; 2] = ["Invalid api key.", "Internal error, try again"];

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
    async fn deliver(&self, receipt: &SaleReceipt) -> Result<Ack, Refusal> {
        let response = self
            .client
            .post(self.api.clone())
            .header("key", self.key.expose())
            .body(legacy_body(receipt).to_string())
            .send()
            .await
            .map_err(|e| Refusal::Transient(format!("posting to {}: {e}", self.api)))?;
        let status = response.status();
        if !status.is_success() {
            let reason = format!("{} answered HTTP {status}", self.api);
            // A 4xx other than "slow down" or "timed out" refuses this body; anything else may pass.
            let for_good =
                status.is_client_error() && !matches!(status.as_u16(), 401 | 403 | 404 | 408 | 429);
            return Err(match for_good {
                true => Refusal::Permanent(reason),
                false => Refusal::Transient(reason),
            });
        }
        let reply: Reply = response.json().await.map_err(|e| {
            Refusal::Transient(format!("{} sent an unexpected reply: {e}", self.api))
        })?;
        match reply.doc_number {
            number if number > 0 => Ok(Ack::Registered { number }),
            0 => Ok(Ack::NothingToRegister),
            _ if reply.error.starts_with(ALREADY) => Ok(Ack::AlreadyImported),
            _ if TRANSIENT_REPLIES.contains(&reply.error.as_str()) => {
                Err(Refusal::Transient(reply.error))
            }
            _ => Err(Refusal::Permanent(reply.error)),
        }
    }
}
