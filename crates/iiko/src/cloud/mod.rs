//! The iikoCloud client (spec B.1–B.10): every method a `POST` of JSON with a bearer token, the `Timeout` header,
//! both error shapes, 429 with `Retry-After`, and a client-side budget per method.
//!
//! The token is cached and shared: taken again before it runs out (v1 tokens live an hour and are renewed after
//! 50 minutes; a v2 JWT is renewed 5 minutes before its `exp`), and on a 401, once per request. Concurrent callers
//! that find it stale wait for one renewal rather than each asking for a token (a mutex held across the token
//! call).

mod auth;
mod budget;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Mutex;

pub use auth::{Auth, Token};
use budget::Budgets;

/// The real service, when a connection names no other.
pub const DEFAULT_API_URL: &str = "https://api-ru.iiko.services";

/// How long iiko may wait for the terminal (the `Timeout` header, seconds); the HTTP request gets a little more.
const SERVER_TIMEOUT_SECS: u64 = 15;

/// How many times a request waits out a 429 before it gives up.
const RATE_LIMIT_RETRIES: usize = 3;

/// The longest `Retry-After` honoured; a longer one fails the request (the caller's own backoff takes over).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// The api login or key was refused.
    #[error("iikoCloud refused the credentials: {0}")]
    Credentials(String),
    /// iiko answered with an error (4xx or 5xx): its code and text, and the correlation id to quote to support.
    #[error("iikoCloud answered {status}: {description}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Refused {
        status: u16,
        code: Option<String>,
        description: String,
        correlation_id: Option<String>,
    },
    /// Still 429 after waiting as asked, or asked to wait too long.
    #[error("iikoCloud is limiting requests (retry after {} s)", .0.as_secs())]
    RateLimited(Duration),
    /// 408: the terminal did not answer iiko in time.
    #[error("iikoCloud timed out waiting for the terminal")]
    Timeout,
    /// No answer: unreachable, reset, or too slow.
    #[error("iikoCloud unreachable: {0}")]
    Unreachable(String),
    /// An answer that does not read as the spec says.
    #[error("unexpected answer from iikoCloud: {0}")]
    Unexpected(String),
}

impl CloudError {
    /// Worth trying again later (a poll's next round, a job's next attempt).
    pub fn is_transient(&self) -> bool {
        match self {
            CloudError::RateLimited(_) | CloudError::Timeout | CloudError::Unreachable(_) => true,
            CloudError::Refused { status, .. } => *status >= 500,
            CloudError::Credentials(_) | CloudError::Unexpected(_) => false,
        }
    }
}

/// One iikoCloud account (an api login or key) at one address.
#[derive(Clone)]
pub struct CloudClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    token: Mutex<Option<Token>>,
    budgets: Budgets,
    /// When the current token was taken (for the state page).
    obtained: std::sync::Mutex<Option<Instant>>,
}

impl CloudClient {
    pub fn new(base: &str, auth: Auth) -> CloudClient {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(SERVER_TIMEOUT_SECS + 10))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        CloudClient {
            inner: Arc::new(Inner {
                http,
                base: base.trim_end_matches('/').to_owned(),
                auth,
                token: Mutex::new(None),
                budgets: Budgets::default(),
                obtained: std::sync::Mutex::new(None),
            }),
        }
    }

    /// How long ago the token in use was taken, if there is one.
    pub fn token_age(&self) -> Option<Duration> {
        self.inner
            .obtained
            .lock()
            .ok()
            .and_then(|at| at.map(|at| at.elapsed()))
    }

    /// Calls `method` (a path such as `/api/1/order/by_table`) with `body` and reads the answer as `T`.
    #[tracing::instrument(skip_all, fields(method))]
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        body: &B,
    ) -> Result<T, CloudError> {
        let body = serde_json::to_value(body).map_err(|e| CloudError::Unexpected(e.to_string()))?;
        let value = self.call_value(method, &body).await?;
        serde_json::from_value(value).map_err(|e| CloudError::Unexpected(format!("{method}: {e}")))
    }

    async fn call_value(&self, method: &str, body: &Value) -> Result<Value, CloudError> {
        let mut renewed = false;
        let mut waits = 0;
        loop {
            let token = self.token().await?;
            self.inner.budgets.take(method).await;
            let answer = self
                .inner
                .http
                .post(format!("{}{method}", self.inner.base))
                .bearer_auth(token.secret())
                .header("Timeout", SERVER_TIMEOUT_SECS.to_string())
                .json(body)
                .send()
                .await
                .map_err(|e| CloudError::Unreachable(without_url(&e)))?;
            let status = answer.status().as_u16();
            let retry_after = retry_after(answer.headers());
            let text = answer
                .text()
                .await
                .map_err(|e| CloudError::Unreachable(without_url(&e)))?;
            match status {
                200..=299 => {
                    return serde_json::from_str(&text)
                        .map_err(|e| CloudError::Unexpected(format!("{method}: {e}")));
                }
                401 if !renewed => {
                    // Revoked or expired early: renew once (unless a concurrent caller already did) and retry.
                    renewed = true;
                    self.forget(&token).await;
                }
                429 => {
                    let wait = retry_after.unwrap_or(Duration::from_secs(1));
                    if waits >= RATE_LIMIT_RETRIES || wait > MAX_RETRY_AFTER {
                        return Err(CloudError::RateLimited(wait));
                    }
                    waits += 1;
                    tracing::info!(
                        method,
                        wait_ms = wait.as_millis() as u64,
                        "iikoCloud: 429, waiting as asked"
                    );
                    self.inner.budgets.hold(method, wait);
                }
                408 => return Err(CloudError::Timeout),
                _ => return Err(refusal(status, &text)),
            }
        }
    }

    /// The token to use: the cached one while fresh, else a new one (one caller asks; the others wait for it).
    async fn token(&self) -> Result<Token, CloudError> {
        let mut slot = self.inner.token.lock().await;
        if let Some(token) = slot.as_ref().filter(|t| t.fresh()) {
            return Ok(token.clone());
        }
        self.inner.budgets.take(self.inner.auth.method()).await;
        let answer = self
            .inner
            .http
            .post(format!("{}{}", self.inner.base, self.inner.auth.method()))
            .json(&self.inner.auth.body())
            .send()
            .await
            .map_err(|e| CloudError::Unreachable(without_url(&e)))?;
        let status = answer.status().as_u16();
        let text = answer
            .text()
            .await
            .map_err(|e| CloudError::Unreachable(without_url(&e)))?;
        if status == 401 || status == 403 {
            return Err(CloudError::Credentials(refusal(status, &text).to_string()));
        }
        if !(200..300).contains(&status) {
            return Err(refusal(status, &text));
        }
        let token = self.inner.auth.read_token(&text)?;
        *slot = Some(token.clone());
        if let Ok(mut obtained) = self.inner.obtained.lock() {
            *obtained = Some(Instant::now());
        }
        tracing::debug!("iikoCloud: token renewed");
        Ok(token)
    }

    /// Drops `token` if it is still the cached one (a concurrent caller may have renewed it already).
    async fn forget(&self, token: &Token) {
        let mut slot = self.inner.token.lock().await;
        if slot.as_ref().is_some_and(|t| t.same(token)) {
            *slot = None;
        }
    }
}

/// The entries of a list iikoCloud groups by organization (`[{"organizationId", <inner>: [...]}]` under `outer`),
/// all organizations' together.
pub fn grouped<'a>(
    answer: &'a Value,
    outer: &str,
    inner: &'a str,
) -> impl Iterator<Item = &'a Value> {
    answer
        .get(outer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(move |group| {
            group
                .get(inner)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
}

/// The error of a non-2xx answer, read in either of iiko's shapes.
fn refusal(status: u16, text: &str) -> CloudError {
    let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    let description = field("errorDescription")
        .or_else(|| field("message"))
        .unwrap_or_else(|| {
            let plain: String = text.chars().take(200).collect();
            if plain.trim().is_empty() {
                format!("HTTP {status}")
            } else {
                plain
            }
        });
    CloudError::Refused {
        status,
        code: field("error"),
        description,
        correlation_id: field("correlationId"),
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// reqwest's error text names the URL, which is harmless here, but keep messages short and free of queries.
fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    match std::error::Error::source(error) {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_owned(),
    }
}
