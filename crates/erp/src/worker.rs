//! The worker: the handler of the `erp.line` jobs. Each integration's jobs share a key, so they run one at a time
//! and in order, on whichever instance claims them. A parked worker (OilMat's default) or an inactive integration
//! defers the job without spending an attempt, so start and stop take effect between tasks. One browser session
//! per integration is kept between tasks; it is rebuilt when the integration's ERP, address or script changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tillwire_platform::HttpError;
use tillwire_platform::jobs::{Attempt, JobFailure};

use crate::connector::{BrowserConfig, Connector, Failure};
use crate::integrations::{Integration, IntegrationId, Integrations};
use crate::model::{Credentials, Reason};
use crate::orders::{LineJob, Order, Orders};

/// How long a parked integration's next job waits before it looks again; starting the worker wakes it at once.
pub const PARKED_RECHECK: Duration = Duration::from_secs(30);

/// What a kept session was built for: when any of it changes, the session is rebuilt.
#[derive(PartialEq)]
struct Built {
    erp: crate::model::ErpType,
    base_url: String,
    script_version: i64,
}

struct Session {
    built: Built,
    connector: Connector,
}

/// One integration's session, held by the task using it.
type Slot = Arc<tokio::sync::Mutex<Option<Session>>>;

/// The worker's state in this process: one browser session per integration.
#[derive(Clone)]
pub struct Worker {
    integrations: Integrations,
    orders: Orders,
    browser: BrowserConfig,
    sessions: Arc<Mutex<HashMap<IntegrationId, Slot>>>,
}

impl Worker {
    pub fn new(integrations: Integrations, orders: Orders, browser: BrowserConfig) -> Self {
        Worker {
            integrations,
            orders,
            browser,
            sessions: Arc::default(),
        }
    }

    fn slot(&self, id: IntegrationId) -> Slot {
        self.sessions
            .lock()
            .expect("the sessions lock is never poisoned")
            .entry(id)
            .or_default()
            .clone()
    }

    /// Closes an integration's browser session (kill, restart, removal); the next task opens a new one.
    pub async fn close(&self, id: IntegrationId) {
        let slot = self.slot(id);
        let mut session = slot.lock().await;
        if let Some(mut open) = session.take() {
            open.connector.close().await;
        }
    }

    /// Closes every session (the process is stopping).
    pub async fn close_all(&self) {
        let ids: Vec<IntegrationId> = self
            .sessions
            .lock()
            .expect("the sessions lock is never poisoned")
            .keys()
            .copied()
            .collect();
        for id in ids {
            self.close(id).await;
        }
    }

    /// Runs one attempt of one order.
    #[tracing::instrument(skip_all, fields(integration = %job.integration, order = %job.unique_id, attempt = attempt.number))]
    pub async fn handle(&self, job: LineJob, attempt: Attempt) -> Result<(), JobFailure> {
        let integration = match self.integrations.get(job.integration).await {
            Ok(integration) => integration,
            Err(error) if error.status() == axum::http::StatusCode::NOT_FOUND => {
                return Err(JobFailure::Fatal("the integration was removed".into()));
            }
            Err(error) => return Err(retry(error)),
        };
        if !integration.active || !integration.worker_running {
            return Err(JobFailure::Defer(PARKED_RECHECK));
        }
        let order = match self.orders.get(job.integration, &job.unique_id).await {
            Ok(Some(order)) => order,
            // Removed with its integration's history: nothing to do.
            Ok(None) => return Ok(()),
            Err(error) => return Err(retry(error)),
        };
        if order.status.is_final() {
            return Ok(());
        }
        let Some(line) = order.line() else {
            return self
                .end(
                    &integration,
                    &order,
                    Reason::ProductEntryFailed,
                    "the order holds no valid line",
                )
                .await;
        };
        let Some(credentials) = self
            .credentials(&integration, &order)
            .await
            .map_err(retry)?
        else {
            return self
                .end(
                    &integration,
                    &order,
                    Reason::NoCredentials,
                    "no ERP login is configured and none came with the order",
                )
                .await;
        };
        self.orders
            .start(order.id, attempt.number)
            .await
            .map_err(retry)?;
        let limit = Duration::from_secs(integration.task_timeout_secs.max(1) as u64);
        let slot = self.slot(integration.id);
        let mut session = slot.lock().await;
        let built = Built {
            erp: integration.erp_type,
            base_url: integration.base_url.as_str().to_owned(),
            script_version: integration.script_version,
        };
        if session.as_ref().is_some_and(|open| open.built != built)
            && let Some(mut stale) = session.take()
        {
            stale.connector.close().await;
        }
        let open = session.get_or_insert_with(|| Session {
            connector: Connector::new(
                integration.erp_type,
                integration.base_url.as_str().to_owned(),
                integration.script.clone(),
                self.browser.clone(),
            ),
            built,
        });
        let outcome =
            tokio::time::timeout(limit, open.connector.add_line(&credentials, &line)).await;
        let failure = match outcome {
            Ok(Ok(added)) => {
                let note = added.already_present.then_some(
                    "the line was already in the ERP (its marker was found); nothing was added",
                );
                self.orders.complete(order.id, note).await.map_err(retry)?;
                tracing::info!(already_present = added.already_present, "erp: line added");
                return Ok(());
            }
            Ok(Err(failure)) => failure,
            Err(_) => {
                // Whatever the browser was doing is abandoned with its session.
                open.connector.close().await;
                *session = None;
                Failure {
                    reason: Reason::Timeout,
                    message: format!("the line took longer than {} s", limit.as_secs()),
                    evidence: None,
                }
            }
        };
        drop(session);
        if let Some(evidence) = &failure.evidence
            && let Err(error) = self
                .orders
                .keep_evidence(
                    order.id,
                    attempt.number,
                    &evidence.step,
                    &evidence.screenshot_png,
                    &evidence.dom,
                )
                .await
        {
            tracing::warn!(%error, "erp: could not keep a failed attempt's screenshot");
        }
        if failure.reason.is_transient() && !attempt.is_last() {
            self.orders
                .retrying(order.id, failure.reason, &failure.message)
                .await
                .map_err(retry)?;
            return Err(JobFailure::Retry(format!(
                "{}: {}",
                failure.reason, failure.message
            )));
        }
        self.end(&integration, &order, failure.reason, &failure.message)
            .await
    }

    /// The order ends `failed`; its job goes to the error queue (dead).
    async fn end(
        &self,
        integration: &Integration,
        order: &Order,
        reason: Reason,
        message: &str,
    ) -> Result<(), JobFailure> {
        let mut integration = integration.clone();
        // The chats of the default unit hear of an integration that names no unit.
        if integration.unit_id.is_none() {
            integration.unit_id = tillwire_units::Units(&self.integrations.store)
                .default_unit()
                .await
                .ok()
                .flatten()
                .map(|unit| unit.id);
        }
        self.orders
            .fail(&integration, order, reason, message)
            .await
            .map_err(retry)?;
        Err(JobFailure::Fatal(format!("{reason}: {message}")))
    }

    /// The integration's own login, else the one sent with the order.
    async fn credentials(
        &self,
        integration: &Integration,
        order: &Order,
    ) -> Result<Option<Credentials>, HttpError> {
        if let Some(own) = self.integrations.credentials(integration.id).await? {
            return Ok(Some(own));
        }
        let Some(sealed) = self.orders.sealed_credentials(order.id).await? else {
            return Ok(None);
        };
        let opened = self.integrations.open(&sealed)?;
        Ok(Some(
            serde_json::from_str(&opened).map_err(HttpError::internal)?,
        ))
    }
}

/// The database failed under the handler: try the attempt again later.
fn retry(error: HttpError) -> JobFailure {
    JobFailure::Retry(format!(
        "storage: {}",
        error.reply().message.get(tillwire_platform::web::Lang::En)
    ))
}
