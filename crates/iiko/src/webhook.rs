//! `POST /iiko/webhook/{organization}`: iikoCloud's webhooks (spec B.9). The `Authorization` header carries the
//! connection's authToken, bare or as `Bearer`, compared in constant time. The JSON array of events is written to
//! the inbox and answered 200 at once (iiko blocks webhooks that answer slowly); the inbox's jobs apply them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tillwire_platform::config::Secret;
use tillwire_platform::{HttpError, Text};

use crate::Iiko;
use crate::intake::{Received, Source};
use crate::model::IikoId;

/// How long a connection's token is trusted from a read (another instance's change is seen within it).
const TOKEN_TTL: Duration = Duration::from_secs(5);

/// Webhook tokens by organization, kept from a read for a few seconds: a busy organization sends many webhooks.
#[derive(Clone, Default)]
pub struct Tokens(Arc<Mutex<HashMap<IikoId, KeptToken>>>);

/// A connection's token (none: it takes no webhooks) and when it was read.
type KeptToken = (Option<Secret>, Instant);

impl Tokens {
    fn get(&self, organization: &IikoId) -> Option<Option<Secret>> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(organization)
            .filter(|(_, at)| at.elapsed() < TOKEN_TTL)
            .map(|(token, _)| token.clone())
    }

    fn put(&self, organization: IikoId, token: Option<Secret>) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() > 10_000 {
            kept.clear();
        }
        kept.insert(organization, (token, Instant::now()));
    }

    /// Forgets every kept token (a connection changed here).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

pub fn router(iiko: Iiko) -> Router {
    Router::new()
        .route("/iiko/webhook/{organization}", post(receive))
        .with_state(iiko)
}

#[tracing::instrument(skip_all, fields(organization = %organization))]
async fn receive(
    State(iiko): State<Iiko>,
    Path(organization): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), HttpError> {
    let unknown = || {
        HttpError::not_found(Text::new(
            "Нет подключения iikoCloud для этой организации.",
            "No iikoCloud connection for this organization.",
        ))
    };
    let organization = IikoId::parse(&organization).ok_or_else(unknown)?;
    let token = match iiko.webhook_tokens.get(&organization) {
        Some(token) => token,
        None => {
            let connection = iiko.connections.by_organization(&organization).await?;
            let token = connection.as_ref().and_then(|c| c.webhook_token.clone());
            if connection.is_none() {
                return Err(unknown());
            }
            iiko.webhook_tokens.put(organization.clone(), token.clone());
            token
        }
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim())
        .map(|v| v.strip_prefix("Bearer ").map_or(v, str::trim))
        .unwrap_or("");
    // A connection without a token takes no webhooks: anyone could post orders into its queue.
    let allowed = token.is_some_and(|token| {
        !presented.is_empty() && bool::from(token.expose().as_bytes().ct_eq(presented.as_bytes()))
    });
    if !allowed {
        return Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            Text::new("Неверный authToken.", "Wrong authToken."),
        ));
    }
    let events: Value = serde_json::from_slice(&body).map_err(|_| not_events())?;
    let events: Vec<Received> = match &events {
        Value::Array(events) => events
            .iter()
            .map(|event| Received::from_webhook(&organization, event))
            .collect(),
        Value::Object(_) => vec![Received::from_webhook(&organization, &events)],
        _ => return Err(not_events()),
    };
    let queued = iiko.intake.receive(Source::Webhook, &events).await?;
    if queued > 0 {
        iiko.platform.jobs.notify();
    }
    iiko.connections.record_webhook(&organization).await?;
    Ok((StatusCode::OK, Json(json!({"received": events.len()}))))
}

fn not_events() -> HttpError {
    HttpError::new(
        StatusCode::BAD_REQUEST,
        "invalid",
        Text::new(
            "Ожидался JSON-массив событий iikoCloud.",
            "Expected a JSON array of iikoCloud events.",
        ),
    )
}

/// `tillwire iiko webhooks setup`: tells iikoCloud, for every connection with a webhook token, to send its
/// order events to `public_url` + `/iiko/webhook/{organization}` with that token, and reads the settings back.
/// Returns each organization with the address iiko now holds.
pub async fn register(iiko: &Iiko, public_url: &str) -> anyhow::Result<Vec<(IikoId, String)>> {
    let base = public_url.trim().trim_end_matches('/');
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        anyhow::bail!("{public_url:?} is not an http(s) address tillwire is reached at");
    }
    let mut registered = Vec::new();
    for connection in iiko
        .connections
        .list()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        let Some(token) = &connection.webhook_token else {
            tracing::warn!(organization = %connection.organization, "iiko: no webhook_token, so no webhooks");
            continue;
        };
        let client =
            crate::cloud::CloudClient::new(&connection.api_url, connection.credentials.auth());
        let uri = format!("{base}/iiko/webhook/{}", connection.organization);
        let _: Value = client
            .call(
                "/api/1/webhooks/update_settings",
                &json!({
                    "organizationId": connection.organization.as_str(),
                    "webHooksUri": uri,
                    "authToken": token.expose(),
                    "webHooksFilter": {
                        "deliveryOrderFilter": {
                            "orderStatuses": ["Unconfirmed", "WaitCooking", "ReadyForCooking", "CookingStarted",
                                              "CookingCompleted", "Waiting", "OnWay", "Delivered", "Closed", "Cancelled"],
                            "itemStatuses": ["Added", "PrintedNotCooking", "CookingStarted", "CookingCompleted", "Served"],
                            "errors": true
                        },
                        "tableOrderFilter": {
                            "orderStatuses": ["New", "Bill", "Closed", "Deleted"],
                            "itemStatuses": ["Added", "PrintedNotCooking", "CookingStarted", "CookingCompleted", "Served"],
                            "errors": true
                        }
                    }
                }),
            )
            .await?;
        let settings: Value = client
            .call(
                "/api/1/webhooks/settings",
                &json!({"organizationId": connection.organization.as_str()}),
            )
            .await?;
        let held = settings
            .get("webHooksUri")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if held != uri {
            anyhow::bail!(
                "iikoCloud kept {held:?} for {} instead of {uri:?}",
                connection.organization
            );
        }
        registered.push((connection.organization.clone(), held));
    }
    Ok(registered)
}
