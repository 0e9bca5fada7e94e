//! The iikoServer (iikoRMS) client (spec B.12). Each piece of work is a session: `auth` with the SHA-1 of the
//! password, the calls with `key`, and `logout` whatever happened, since every live key holds one of the server's
//! few licence slots (often one). Requests to one server go strictly one at a time: a session holds the server's
//! lock in this process and its lease across instances, and its calls are made one after another. A key is
//! written down (sealed) before it is used and crossed out after its logout, so a key left by a process that was
//! killed is logged out by the next one before it signs in.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use tillwire_platform::config::Secret;
use tillwire_platform::secretbox::SecretBox;
use tillwire_platform::{Platform, now_ms, read, write};
use tokio::sync::Mutex;

/// The server's lease across instances: renewed every few seconds while a session is open and released at its
/// end, so an instance killed mid-session hands the server over within the lease.
const LEASE_TTL: Duration = Duration::from_secs(20);
const LEASE_RENEWAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    #[error("iikoServer refused the login: {0}")]
    Login(String),
    #[error("iikoServer answered {status}: {text}")]
    Refused { status: u16, text: String },
    #[error("iikoServer unreachable: {0}")]
    Unreachable(String),
    #[error("another tillwire instance is talking to this iikoServer")]
    Busy,
    #[error("the OLAP report has no column {0}")]
    NoColumn(String),
    #[error("unexpected answer from iikoServer: {0}")]
    Unexpected(String),
}

/// One iikoServer: its address, login and password.
#[derive(Clone)]
pub struct ServerClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Ends with `/resto/`.
    base: String,
    login: String,
    password_sha1: Secret,
    platform: Platform,
    secrets: SecretBox,
    /// One session at a time in this process, shared by every client of this server.
    lock: Arc<Mutex<()>>,
}

/// The servers' locks: two clients of one server in one instance (the poll and a page) still take turns; other
/// instances are kept out by the lease.
fn server_lock(instance: &str, base: &str) -> Arc<Mutex<()>> {
    static LOCKS: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<String, Arc<Mutex<()>>>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    locks
        .entry(format!("{instance} {base}"))
        .or_default()
        .clone()
}

/// A signed-in session: its calls go one after another (the session is used by one task).
struct Session<'a> {
    inner: &'a Inner,
    key: Secret,
}

/// A session with the server's lock held.
struct Open<'a> {
    session: Session<'a>,
    _lock: tokio::sync::OwnedMutexGuard<()>,
    _renewal: Renewal,
}

/// Keeps the server's lease while a session is open; stops with it, however it ends.
struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ServerClient {
    /// `url` is the server's address, with or without `/resto/`.
    pub fn new(
        platform: Platform,
        secrets: SecretBox,
        url: &str,
        login: &str,
        password: &Secret,
    ) -> Self {
        let trimmed = url.trim().trim_end_matches('/');
        let base = if trimmed.ends_with("/resto") {
            format!("{trimmed}/")
        } else {
            format!("{trimmed}/resto/")
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let lock = server_lock(platform.leases.holder(), &base);
        ServerClient {
            inner: Arc::new(Inner {
                http,
                base,
                login: login.to_owned(),
                password_sha1: Secret::new(hex::encode(Sha1::digest(password.expose().as_bytes()))),
                platform,
                secrets,
                lock,
            }),
        }
    }

    fn lease(&self) -> String {
        format!("iiko:server:{}", self.inner.base)
    }

    /// Signs in for a piece of work: this process's lock on the server, the lease across instances, any key a
    /// killed process left logged out, then `auth`. [`ServerClient::end`] must follow, whatever the work did.
    async fn begin(&self) -> Result<Open<'_>, ServerError> {
        let lock = self.inner.lock.clone().lock_owned().await;
        let lease = self.lease();
        let held = self
            .inner
            .platform
            .leases
            .hold(&lease, LEASE_TTL)
            .await
            .map_err(|e| ServerError::Unexpected(e.to_string()))?;
        if !held {
            return Err(ServerError::Busy);
        }
        let renewal = {
            let leases = self.inner.platform.leases.clone();
            let lease = lease.clone();
            Renewal(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LEASE_RENEWAL).await;
                    if let Err(error) = leases.hold(&lease, LEASE_TTL).await {
                        tracing::warn!(%error, "iikoServer: could not renew the server's lease");
                    }
                }
            }))
        };
        self.log_out_leftover().await;
        match self.auth().await {
            Ok(key) => Ok(Open {
                session: Session {
                    inner: &self.inner,
                    key,
                },
                _lock: lock,
                _renewal: renewal,
            }),
            Err(error) => {
                let _ = self.inner.platform.leases.release(&lease).await;
                Err(error)
            }
        }
    }

    /// Logs the session out and lets the server go.
    async fn end(&self, open: Open<'_>) {
        self.logout(&open.session.key).await;
        drop(open);
        let _ = self.inner.platform.leases.release(&self.lease()).await;
    }

    /// The events journal after `from_revision` (today's events without one), as the server wrote it: reading
    /// it is `journal`'s business.
    pub async fn journal(&self, from_revision: Option<i64>) -> Result<String, ServerError> {
        let open = self.begin().await?;
        let revision = from_revision.map(|r| r.to_string());
        let query: Vec<(&str, &str)> = revision.iter().map(|r| ("from_rev", r.as_str())).collect();
        let outcome = open.session.get("api/events", &query).await;
        self.end(open).await;
        outcome
    }

    /// A day's figures in one session: revenue and amounts by dish, and the number of orders.
    pub async fn day_figures(
        &self,
        day: chrono::NaiveDate,
    ) -> Result<(Vec<serde_json::Map<String, Value>>, i64), ServerError> {
        let open = self.begin().await?;
        let next = day + chrono::TimeDelta::days(1);
        let outcome = async {
            let dishes = open
                .session
                .sales(
                    day,
                    next,
                    &["DishName"],
                    &["DishAmountInt", "DishDiscountSumInt"],
                )
                .await?;
            let orders = open
                .session
                .sales(day, next, &[], &["UniqOrderId.OrdersCount"])
                .await?;
            let orders = orders
                .first()
                .and_then(|row| row.get("UniqOrderId.OrdersCount"))
                .and_then(Value::as_f64)
                .unwrap_or(0.0) as i64;
            Ok((dishes, orders))
        }
        .await;
        self.end(open).await;
        outcome
    }

    /// Closed sales (see [`Session::sales`]) in a session of their own.
    pub async fn sales(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        rows: &[&str],
        sums: &[&str],
    ) -> Result<Vec<serde_json::Map<String, Value>>, ServerError> {
        let open = self.begin().await?;
        let outcome = open.session.sales(from, to, rows, sums).await;
        self.end(open).await;
        outcome
    }

    async fn auth(&self) -> Result<Secret, ServerError> {
        let answer = self
            .inner
            .http
            .get(format!("{}api/auth", self.inner.base))
            .query(&[
                ("login", self.inner.login.as_str()),
                ("pass", self.inner.password_sha1.expose()),
                ("client-type", "tillwire"),
            ])
            .send()
            .await
            .map_err(unreachable)?;
        let status = answer.status().as_u16();
        let text = answer.text().await.map_err(unreachable)?;
        if status != 200 {
            return Err(ServerError::Login(format!("{status}: {}", short(&text))));
        }
        let key = text.trim().to_owned();
        if key.is_empty() {
            return Err(ServerError::Login("an empty key".into()));
        }
        // Written down before use: if this process dies holding it, the next one logs it out.
        let sealed = self.inner.secrets.seal(&key);
        let _ = write!(&self.inner.platform.store, db => sqlx::query(
            "INSERT INTO iiko_server_keys (server, key_sealed, taken_ms) VALUES ($1, $2, $3)
             ON CONFLICT (server) DO UPDATE SET key_sealed = excluded.key_sealed, taken_ms = excluded.taken_ms",
        )
        .bind(&self.inner.base)
        .bind(&sealed)
        .bind(now_ms())
        .execute(db)
        .await
        .map(|_| ()));
        Ok(Secret::new(key))
    }

    /// Logs a key out and crosses it off. A failed logout is logged; the key's slot frees when it expires.
    async fn logout(&self, key: &Secret) {
        let answer = self
            .inner
            .http
            .get(format!("{}api/logout", self.inner.base))
            .query(&[("key", key.expose())])
            .send()
            .await;
        match answer {
            Ok(answer) if answer.status().is_success() || answer.status().as_u16() == 401 => {}
            Ok(answer) => tracing::warn!(
                status = answer.status().as_u16(),
                "iikoServer: logout refused"
            ),
            Err(error) => tracing::warn!(error = %unreachable(error), "iikoServer: logout failed"),
        }
        let _ = write!(&self.inner.platform.store, db => sqlx::query(
            "DELETE FROM iiko_server_keys WHERE server = $1",
        )
        .bind(&self.inner.base)
        .execute(db)
        .await
        .map(|_| ()));
    }

    /// A key a killed process left behind still holds a licence slot: give it back first.
    async fn log_out_leftover(&self) {
        let left: Option<(String,)> = read!(&self.inner.platform.store, db => sqlx::query_as(
            "SELECT key_sealed FROM iiko_server_keys WHERE server = $1",
        )
        .bind(&self.inner.base)
        .fetch_optional(db)
        .await)
        .ok()
        .flatten();
        if let Some(key) = left.and_then(|(sealed,)| self.inner.secrets.open(&sealed).ok()) {
            tracing::info!("iikoServer: logging out a key left by an earlier process");
            self.logout(&key).await;
        }
    }
}

impl Session<'_> {
    /// A request of this session to `path`, with its key.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.inner
            .http
            .request(method, format!("{}{path}", self.inner.base))
            .query(&[("key", self.key.expose())])
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<String, ServerError> {
        send(self.request(reqwest::Method::GET, path).query(query)).await
    }

    async fn post_json(&self, path: &str, body: &Value) -> Result<String, ServerError> {
        send(self.request(reqwest::Method::POST, path).json(body)).await
    }

    /// The SALES report's column names (checked before a report names them).
    async fn sales_columns(&self) -> Result<Vec<String>, ServerError> {
        let text = self
            .get("api/v2/reports/olap/columns", &[("reportType", "SALES")])
            .await?;
        let columns: serde_json::Map<String, Value> = serde_json::from_str(&text)
            .map_err(|e| ServerError::Unexpected(format!("columns: {e}")))?;
        Ok(columns.keys().cloned().collect())
    }

    /// Closed orders' dish lines from `from` up to (not including) `to`, grouped by `rows` with `sums` added up,
    /// deleted and storned lines left out. Every column is checked against the report's list first.
    async fn sales(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        rows: &[&str],
        sums: &[&str],
    ) -> Result<Vec<serde_json::Map<String, Value>>, ServerError> {
        let known = self.sales_columns().await?;
        let filters = [
            "OpenDate.Typed",
            "OrderDeleted",
            "DeletedWithWriteoff",
            "Storned",
        ];
        if let Some(missing) = rows
            .iter()
            .chain(sums)
            .chain(&filters)
            .find(|column| !known.iter().any(|k| k == *column))
        {
            return Err(ServerError::NoColumn((*missing).to_owned()));
        }
        let body = json!({
            "reportType": "SALES",
            "buildSummary": false,
            "groupByRowFields": rows,
            "groupByColFields": [],
            "aggregateFields": sums,
            "filters": {
                "OpenDate.Typed": {"filterType": "DateRange", "periodType": "CUSTOM",
                                   "from": from.to_string(), "to": to.to_string(),
                                   "includeLow": true, "includeHigh": false},
                "OrderDeleted": {"filterType": "IncludeValues", "values": ["NOT_DELETED"]},
                "DeletedWithWriteoff": {"filterType": "IncludeValues", "values": ["NOT_DELETED"]},
                "Storned": {"filterType": "IncludeValues", "values": ["FALSE"]},
            }
        });
        let text = self.post_json("api/v2/reports/olap", &body).await?;
        #[derive(Deserialize)]
        struct Report {
            data: Vec<serde_json::Map<String, Value>>,
        }
        let report: Report = serde_json::from_str(&text)
            .map_err(|e| ServerError::Unexpected(format!("OLAP: {e}")))?;
        Ok(report.data)
    }
}

/// Sends a request and reads its answer: the text of a 2xx, the refusal otherwise.
async fn send(request: reqwest::RequestBuilder) -> Result<String, ServerError> {
    let answer = request.send().await.map_err(unreachable)?;
    let status = answer.status().as_u16();
    let text = answer.text().await.map_err(unreachable)?;
    if (200..300).contains(&status) {
        Ok(text)
    } else {
        Err(ServerError::Refused {
            status,
            text: short(&text),
        })
    }
}

fn short(text: &str) -> String {
    text.trim().chars().take(300).collect()
}

/// reqwest's errors name the URL, whose query holds the key: keep only what went wrong.
fn unreachable(error: reqwest::Error) -> ServerError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    ServerError::Unreachable(kind.to_owned())
}
