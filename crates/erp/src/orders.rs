//! OilMat's orders: received once per `unique_id` (a resubmission is told what became of the first), queued as a
//! platform job keyed by the integration (so one line at a time, in order), and taken through `processing` to
//! `completed` or `failed` with a reason, the attempts and their times. A failure that ends an order records the
//! domain event `erp.line_failed`, which notify turns into an alert. The error queue is the integration's dead
//! jobs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tillwire_platform::jobs::{BackgroundJob, EnqueueJob, JobQueue, JobState};
use tillwire_platform::outbox::{NewEvent, RecordEvent};
use tillwire_platform::{HttpError, Store, Text, now_ms, read, write, write_tx};

use crate::integrations::{Integration, IntegrationId, job_key};
use crate::model::{LineOrder, OrderRef, OrderStatus, Reason};

/// The domain event of an order that ended `failed`: `workshop`, `order`, `line` and `error`.
pub const LINE_FAILED: &str = "erp.line_failed";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub i64);

/// The job that puts one order's line into its integration's ERP. It names the order by its `unique_id`, so the
/// job can be written before the order's row, in one round trip each.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineJob {
    pub integration: IntegrationId,
    pub unique_id: String,
}

impl BackgroundJob for LineJob {
    const QUEUE: &'static str = "erp.line";
    /// The integration's own setting replaces it when the job is enqueued.
    const MAX_ATTEMPTS: i64 = crate::integrations::DEFAULT_MAX_ATTEMPTS;

    fn key(&self) -> String {
        job_key(self.integration)
    }
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    pub id: OrderId,
    pub integration_id: IntegrationId,
    pub unique_id: String,
    pub dealer: String,
    pub case_nr: String,
    pub product_nr: String,
    pub amount: Option<i64>,
    #[serde(serialize_with = "status_text")]
    pub status: OrderStatus,
    pub reason: Option<Reason>,
    pub message: Option<String>,
    pub attempts: i64,
    pub job_id: Option<i64>,
    pub imported: bool,
    pub received_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub updated_ms: i64,
}

fn status_text<S: serde::Serializer>(status: &OrderStatus, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_str())
}

impl Order {
    /// The line to add, when the order holds a valid one (a `bad request` does not).
    pub fn line(&self) -> Option<LineOrder> {
        Some(LineOrder {
            unique_id: OrderRef::parse(&self.unique_id).ok()?,
            case_nr: OrderRef::parse(&self.case_nr).ok()?,
            product_nr: OrderRef::parse(&self.product_nr).ok()?,
            amount: crate::model::Amount::new(u32::try_from(self.amount?).ok()?).ok()?,
        })
    }

    /// How the line reads in an alert: `case 560: item 10 × 5`.
    pub fn describe_line(&self) -> String {
        format!(
            "{} · {} × {}",
            self.case_nr,
            self.product_nr,
            self.amount.map(|a| a.to_string()).unwrap_or_default()
        )
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    integration_id: i64,
    unique_id: String,
    dealer: String,
    case_nr: String,
    product_nr: String,
    amount: Option<i64>,
    status: String,
    reason: Option<String>,
    message: Option<String>,
    attempts: i64,
    job_id: Option<i64>,
    imported: bool,
    received_ms: i64,
    started_ms: Option<i64>,
    finished_ms: Option<i64>,
    updated_ms: i64,
}

const COLUMNS: &str = "id, integration_id, unique_id, dealer, case_nr, product_nr, amount, status, reason, message, \
                       attempts, job_id, imported, received_ms, started_ms, finished_ms, updated_ms";

fn from_row(row: Row) -> Order {
    Order {
        id: OrderId(row.id),
        integration_id: IntegrationId(row.integration_id),
        // Statuses are written by this module only; an unknown one reads as the least promising.
        status: OrderStatus::parse(&row.status).unwrap_or(OrderStatus::Failed),
        reason: row.reason.as_deref().and_then(Reason::parse),
        unique_id: row.unique_id,
        dealer: row.dealer,
        case_nr: row.case_nr,
        product_nr: row.product_nr,
        amount: row.amount,
        message: row.message,
        attempts: row.attempts,
        job_id: row.job_id,
        imported: row.imported,
        received_ms: row.received_ms,
        started_ms: row.started_ms,
        finished_ms: row.finished_ms,
        updated_ms: row.updated_ms,
    }
}

/// A valid `/create`: the line, who sent it, and the login that came with it when the integration has none
/// (sealed by the caller).
#[derive(Debug, Clone)]
pub struct Intake {
    pub dealer: String,
    pub line: LineOrder,
    pub sealed_credentials: Option<String>,
}

/// What became of a `/create`.
#[derive(Debug)]
pub enum Received {
    /// A new order, queued.
    Queued(OrderId),
    /// This `unique_id` was received before: nothing was queued.
    Seen(Box<Order>),
}

/// What a failed attempt left behind for a person to look at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceRow {
    pub attempt: i64,
    pub step: String,
    #[serde(skip)]
    pub screenshot: Vec<u8>,
    #[serde(skip)]
    pub dom: String,
    pub created_ms: i64,
}

/// Order counts of an integration, for `/alive` and the pages.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Health {
    /// Received or processing.
    pub waiting: i64,
    /// Orders in the error queue (the integration's dead jobs).
    pub errors: i64,
    /// The order being processed now.
    pub current: Option<String>,
    pub last_success_ms: Option<i64>,
    pub last_error_ms: Option<i64>,
    /// `code: message`, as the API and `/alive` give it.
    pub last_error: Option<String>,
    /// The last error's reason, for the pages to say in their language.
    pub last_reason: Option<Reason>,
}

#[derive(Clone)]
pub struct Orders {
    pub store: Store,
    pub jobs: JobQueue,
    /// Counts this process's writes, so what is kept from a read ([`crate::cache`]) is dropped at once.
    generation: Arc<AtomicU64>,
}

fn not_found() -> HttpError {
    HttpError::not_found(Text::new("Нет такого заказа.", "No such order."))
}

impl Orders {
    pub fn new(store: Store, jobs: JobQueue) -> Self {
        Orders {
            store,
            jobs,
            generation: Arc::default(),
        }
    }

    /// Changes with every write of this process.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    fn touched(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Receives valid orders, in one transaction: each is queued when its `unique_id` is new to its integration
    /// (or was only ever a bad request), otherwise left as it is and returned. The order's insert returns no row
    /// when the id is a real order's, and only a new order gets its job.
    #[tracing::instrument(skip_all, fields(orders = intakes.len()))]
    pub async fn receive_all(
        &self,
        intakes: &[(Integration, Intake)],
    ) -> Result<Vec<Received>, HttpError> {
        let now = now_ms();
        let written: Result<Vec<Option<i64>>, sqlx::Error> = write_tx!(&self.store, tx => async {
            let mut ids = Vec::with_capacity(intakes.len());
            for (integration, intake) in intakes {
                let line = &intake.line;
                // A bad request left a row without a job; the corrected order takes its place.
                let id: Option<(i64,)> = sqlx::query_as(
                    "INSERT INTO erp_orders (integration_id, unique_id, dealer, case_nr, product_nr, amount, status,
                         credentials_sealed, received_ms, updated_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, 'received', $7, $8, $8)
                     ON CONFLICT (integration_id, unique_id) DO UPDATE SET dealer = excluded.dealer,
                         case_nr = excluded.case_nr, product_nr = excluded.product_nr, amount = excluded.amount,
                         status = 'received', reason = NULL, message = NULL,
                         credentials_sealed = excluded.credentials_sealed, received_ms = excluded.received_ms,
                         finished_ms = NULL, updated_ms = excluded.updated_ms
                     WHERE erp_orders.status = 'bad request'
                     RETURNING id",
                )
                .bind(integration.id.0)
                .bind(line.unique_id.as_str())
                .bind(&intake.dealer)
                .bind(line.case_nr.as_str())
                .bind(line.product_nr.as_str())
                .bind(i64::from(line.amount.get()))
                .bind(intake.sealed_credentials.as_deref())
                .bind(now)
                .fetch_optional(&mut **tx)
                .await?;
                if let Some((id,)) = id {
                    let job = LineJob {
                        integration: integration.id,
                        unique_id: line.unique_id.to_string(),
                    }
                    .to_job()
                    .with_max_attempts(integration.max_attempts);
                    let job_id = (**tx).enqueue_job(&job).await?;
                    sqlx::query("UPDATE erp_orders SET job_id = $2 WHERE id = $1")
                        .bind(id)
                        .bind(job_id)
                        .execute(&mut **tx)
                        .await?;
                }
                ids.push(id.map(|(id,)| id));
            }
            Ok::<_, sqlx::Error>(ids)
        }
        .await);
        let written = written?;
        self.touched();
        self.jobs.notify();
        let mut received = Vec::with_capacity(written.len());
        for ((integration, intake), id) in intakes.iter().zip(written) {
            received.push(match id {
                Some(id) => Received::Queued(OrderId(id)),
                // The id is a real order's: nothing was written for it.
                None => Received::Seen(Box::new(
                    self.get(integration.id, intake.line.unique_id.as_str())
                        .await?
                        .ok_or_else(not_found)?,
                )),
            });
        }
        Ok(received)
    }

    /// Records a refused `/create` whose `unique_id` could be read, when that id is new: its status then says
    /// `bad request` (the original only did so for ids it had seen). An order already received is left alone, so
    /// a malformed resend cannot spoil it.
    pub async fn bad_request(
        &self,
        integration: IntegrationId,
        unique_id: &OrderRef,
        message: &str,
    ) -> Result<(), HttpError> {
        let now = now_ms();
        write!(&self.store, db => sqlx::query(
            "INSERT INTO erp_orders (integration_id, unique_id, status, reason, message, received_ms, updated_ms,
                 finished_ms)
             VALUES ($1, $2, 'bad request', NULL, $3, $4, $4, $4)
             ON CONFLICT (integration_id, unique_id) DO NOTHING",
        )
        .bind(integration.0)
        .bind(unique_id.as_str())
        .bind(message)
        .bind(now)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        self.touched();
        Ok(())
    }

    pub async fn get(
        &self,
        integration: IntegrationId,
        unique_id: &str,
    ) -> Result<Option<Order>, HttpError> {
        let row: Option<Row> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM erp_orders WHERE integration_id = $1 AND unique_id = $2"
        )))
        .bind(integration.0)
        .bind(unique_id)
        .fetch_optional(db)
        .await)?;
        Ok(row.map(from_row))
    }

    pub async fn find(&self, id: OrderId) -> Result<Order, HttpError> {
        let row: Option<Row> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM erp_orders WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(db)
        .await)?;
        row.map(from_row).ok_or_else(not_found)
    }

    /// The newest orders of an integration (all when `status` is `None`).
    pub async fn list(
        &self,
        integration: IntegrationId,
        status: Option<OrderStatus>,
        limit: i64,
    ) -> Result<Vec<Order>, HttpError> {
        let rows: Vec<Row> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM erp_orders WHERE integration_id = $1 AND ($2 IS NULL OR status = $2)
             ORDER BY id DESC LIMIT $3"
        )))
        .bind(integration.0)
        .bind(status.map(OrderStatus::as_str))
        .bind(limit)
        .fetch_all(db)
        .await)?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// The orders behind the integration's jobs in `state`, in queue order: its task queue (pending and running)
    /// or its error queue (dead).
    pub async fn queued(
        &self,
        integration: IntegrationId,
        states: &[JobState],
    ) -> Result<Vec<(i64, Order)>, HttpError> {
        let mut jobs = Vec::new();
        for state in states {
            jobs.extend(self.jobs.of_key(&job_key(integration), *state).await?);
        }
        jobs.sort_by_key(|job| job.id);
        let rows: Vec<Row> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM erp_orders WHERE integration_id = $1 AND job_id IS NOT NULL"
        )))
        .bind(integration.0)
        .fetch_all(db)
        .await)?;
        let mut by_job: std::collections::HashMap<i64, Order> = rows
            .into_iter()
            .filter_map(|row| row.job_id.map(|job| (job, from_row(row))))
            .collect();
        let orders: Vec<(i64, Order)> = jobs
            .into_iter()
            .filter_map(|job| by_job.remove(&job.id).map(|order| (job.id, order)))
            .collect();
        Ok(orders)
    }

    /// The login sealed with the order, if any.
    pub async fn sealed_credentials(&self, id: OrderId) -> Result<Option<String>, HttpError> {
        let row: Option<(Option<String>,)> = read!(&self.store, db => sqlx::query_as(
            "SELECT credentials_sealed FROM erp_orders WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(db)
        .await)?;
        Ok(row.and_then(|(sealed,)| sealed))
    }

    /// An attempt begins.
    pub async fn start(&self, id: OrderId, attempt: i64) -> Result<(), HttpError> {
        let now = now_ms();
        write!(&self.store, db => sqlx::query(
            "UPDATE erp_orders SET status = 'processing', attempts = $2, started_ms = $3, updated_ms = $3
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(attempt)
        .bind(now)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        self.touched();
        Ok(())
    }

    /// The line is in the ERP, checked. The login that came with the order is dropped.
    pub async fn complete(&self, id: OrderId, message: Option<&str>) -> Result<(), HttpError> {
        let now = now_ms();
        write!(&self.store, db => sqlx::query(
            "UPDATE erp_orders SET status = 'completed', reason = NULL, message = $2, finished_ms = $3,
                 updated_ms = $3, credentials_sealed = NULL
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(message)
        .bind(now)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        self.touched();
        Ok(())
    }

    /// An attempt failed and another follows: back to `received`, the last error kept for the pages.
    pub async fn retrying(
        &self,
        id: OrderId,
        reason: Reason,
        message: &str,
    ) -> Result<(), HttpError> {
        let now = now_ms();
        write!(&self.store, db => sqlx::query(
            "UPDATE erp_orders SET status = 'received', reason = $2, message = $3, updated_ms = $4 WHERE id = $1",
        )
        .bind(id.0)
        .bind(reason.code())
        .bind(message)
        .bind(now)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        self.touched();
        Ok(())
    }

    /// The order ends `failed`, with the event that alerts the workshop's chats, in one transaction.
    pub async fn fail(
        &self,
        integration: &Integration,
        order: &Order,
        reason: Reason,
        message: &str,
    ) -> Result<(), HttpError> {
        let now = now_ms();
        let event = NewEvent {
            kind: LINE_FAILED,
            unit_id: integration.unit_id,
            payload: serde_json::json!({
                "workshop": integration.workshop.as_str(),
                "order": order.unique_id,
                "line": order.describe_line(),
                "error": format!("{reason}: {message}"),
            }),
        };
        let failed: Result<(), sqlx::Error> = write_tx!(&self.store, tx => async {
            sqlx::query(
                "UPDATE erp_orders SET status = 'failed', reason = $2, message = $3, finished_ms = $4,
                     updated_ms = $4, credentials_sealed = NULL
                 WHERE id = $1",
            )
            .bind(order.id.0)
            .bind(reason.code())
            .bind(message)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            (**tx).record_event(&event).await?;
            Ok::<_, sqlx::Error>(())
        }
        .await);
        failed?;
        tracing::warn!(integration = %integration.id, order = %order.unique_id, %reason, message, "erp: order failed");
        self.touched();
        Ok(())
    }

    /// Keeps what the browser showed when attempt `attempt` failed.
    pub async fn keep_evidence(
        &self,
        id: OrderId,
        attempt: i64,
        step: &str,
        screenshot: &[u8],
        dom: &str,
    ) -> Result<(), HttpError> {
        write!(&self.store, db => sqlx::query(
            "INSERT INTO erp_evidence (order_id, attempt, step, screenshot, dom, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (order_id, attempt) DO UPDATE SET step = excluded.step, screenshot = excluded.screenshot,
                 dom = excluded.dom, created_ms = excluded.created_ms",
        )
        .bind(id.0)
        .bind(attempt)
        .bind(step)
        .bind(screenshot)
        .bind(dom)
        .bind(now_ms())
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn evidence(&self, id: OrderId) -> Result<Vec<EvidenceRow>, HttpError> {
        let rows: Vec<(i64, String, Vec<u8>, String, i64)> = read!(&self.store, db => sqlx::query_as(
            "SELECT attempt, step, screenshot, dom, created_ms FROM erp_evidence WHERE order_id = $1
             ORDER BY attempt DESC",
        )
        .bind(id.0)
        .fetch_all(db)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(attempt, step, screenshot, dom, created_ms)| EvidenceRow {
                attempt,
                step,
                screenshot,
                dom,
                created_ms,
            })
            .collect())
    }

    /// Puts a failed order back in line with fresh attempts: its dead job again, or a new job when the error
    /// queue was cleared.
    pub async fn requeue(
        &self,
        integration: &Integration,
        id: OrderId,
    ) -> Result<Order, HttpError> {
        let order = self.find(id).await?;
        if order.integration_id != integration.id {
            return Err(not_found());
        }
        if order.status != OrderStatus::Failed || order.line().is_none() {
            return Err(HttpError::conflict(Text::new(
                "Снова в очередь можно поставить только заказ со статусом failed.",
                "Only a failed order can be put back in the queue.",
            )));
        }
        let now = now_ms();
        let revived = match order.job_id {
            Some(job) => self.jobs.retry(job).await?,
            None => false,
        };
        let job = LineJob {
            integration: integration.id,
            unique_id: order.unique_id.clone(),
        }
        .to_job()
        .with_max_attempts(integration.max_attempts);
        let requeued: Result<(), sqlx::Error> = write_tx!(&self.store, tx => async {
            let job_id = if revived { order.job_id } else { Some((**tx).enqueue_job(&job).await?) };
            sqlx::query(
                "UPDATE erp_orders SET status = 'received', reason = NULL, message = NULL, attempts = 0,
                     finished_ms = NULL, job_id = $2, updated_ms = $3
                 WHERE id = $1",
            )
            .bind(id.0)
            .bind(job_id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            Ok::<_, sqlx::Error>(())
        }
        .await);
        requeued?;
        self.jobs.notify();
        self.touched();
        self.find(id).await
    }

    /// Takes the waiting orders out of the task queue (`/clear_queue?type=task`): their jobs are deleted and the
    /// orders end `failed`, reason `cleared`, so none is left `received` for ever. What is running stays.
    pub async fn clear_tasks(&self, integration: IntegrationId) -> Result<Vec<Order>, HttpError> {
        let mut cleared = Vec::new();
        for (job, order) in self.queued(integration, &[JobState::Pending]).await? {
            if self
                .jobs
                .delete(job, &job_key(integration), JobState::Pending)
                .await?
            {
                let now = now_ms();
                write!(&self.store, db => sqlx::query(
                    "UPDATE erp_orders SET status = 'failed', reason = $2, message = NULL, finished_ms = $3,
                         updated_ms = $3, credentials_sealed = NULL, job_id = NULL
                     WHERE id = $1",
                )
                .bind(order.id.0)
                .bind(Reason::Cleared.code())
                .bind(now)
                .execute(db)
                .await
                .map(|r| r.rows_affected()))?;
                cleared.push(order);
            }
        }
        self.touched();
        Ok(cleared)
    }

    /// Empties the error queue (`/clear_queue?type=error`): the dead jobs go, the orders stay `failed`.
    pub async fn clear_errors(&self, integration: IntegrationId) -> Result<Vec<Order>, HttpError> {
        let mut cleared = Vec::new();
        for (job, order) in self.queued(integration, &[JobState::Dead]).await? {
            if self.forget_job(integration, job, order.id).await? {
                cleared.push(order);
            }
        }
        Ok(cleared)
    }

    /// Deletes one dead letter; the order stays `failed`.
    pub async fn delete_error(
        &self,
        integration: IntegrationId,
        id: OrderId,
    ) -> Result<Order, HttpError> {
        let order = self.find(id).await?;
        match order.job_id {
            Some(job) if order.integration_id == integration => {
                if self.forget_job(integration, job, id).await? {
                    return self.find(id).await;
                }
                Err(not_found())
            }
            _ => Err(not_found()),
        }
    }

    async fn forget_job(
        &self,
        integration: IntegrationId,
        job: i64,
        order: OrderId,
    ) -> Result<bool, HttpError> {
        if !self
            .jobs
            .delete(job, &job_key(integration), JobState::Dead)
            .await?
        {
            return Ok(false);
        }
        write!(&self.store, db => sqlx::query("UPDATE erp_orders SET job_id = NULL WHERE id = $1")
            .bind(order.0)
            .execute(db)
            .await
            .map(|r| r.rows_affected()))?;
        self.touched();
        Ok(true)
    }

    /// What `/alive` and the pages tell about an integration's orders.
    pub async fn health(&self, integration: IntegrationId) -> Result<Health, HttpError> {
        let counts: Vec<(String, i64)> = read!(&self.store, db => sqlx::query_as(
            "SELECT status, COUNT(*) FROM erp_orders WHERE integration_id = $1 GROUP BY status",
        )
        .bind(integration.0)
        .fetch_all(db)
        .await)?;
        let count = |wanted: &[OrderStatus]| {
            counts
                .iter()
                .filter(|(status, _)| {
                    OrderStatus::parse(status).is_some_and(|s| wanted.contains(&s))
                })
                .map(|(_, n)| n)
                .sum()
        };
        let current: Option<(String,)> = read!(&self.store, db => sqlx::query_as(
            "SELECT unique_id FROM erp_orders WHERE integration_id = $1 AND status = 'processing'
             ORDER BY started_ms DESC LIMIT 1",
        )
        .bind(integration.0)
        .fetch_optional(db)
        .await)?;
        let success: Option<(Option<i64>,)> = read!(&self.store, db => sqlx::query_as(
            "SELECT MAX(finished_ms) FROM erp_orders WHERE integration_id = $1 AND status = 'completed'",
        )
        .bind(integration.0)
        .fetch_optional(db)
        .await)?;
        let error: Option<(i64, Option<String>, Option<String>)> = read!(&self.store, db => sqlx::query_as(
            "SELECT updated_ms, reason, message FROM erp_orders
             WHERE integration_id = $1 AND reason IS NOT NULL AND NOT imported
             ORDER BY updated_ms DESC LIMIT 1",
        )
        .bind(integration.0)
        .fetch_optional(db)
        .await)?;
        let errors = self
            .jobs
            .of_key(&job_key(integration), JobState::Dead)
            .await?
            .len();
        Ok(Health {
            waiting: count(&[OrderStatus::Received, OrderStatus::Processing]),
            errors: i64::try_from(errors).unwrap_or(i64::MAX),
            current: current.map(|(id,)| id),
            last_success_ms: success.and_then(|(ms,)| ms),
            last_error_ms: error.as_ref().map(|(ms, _, _)| *ms),
            last_reason: error
                .as_ref()
                .and_then(|(_, reason, _)| reason.as_deref().and_then(Reason::parse)),
            last_error: error.map(|(_, reason, message)| {
                [reason, message]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ")
            }),
        })
    }

    /// Adds an order carried over from OilMat's database, unless the integration has it already.
    pub async fn import(
        &self,
        integration: IntegrationId,
        order: &Imported,
    ) -> Result<bool, HttpError> {
        let now = now_ms();
        let inserted: u64 = write!(&self.store, db => sqlx::query(
            "INSERT INTO erp_orders (integration_id, unique_id, dealer, case_nr, product_nr, amount, status, reason,
                 message, imported, received_ms, finished_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, TRUE, $10, $10, $10)
             ON CONFLICT (integration_id, unique_id) DO NOTHING",
        )
        .bind(integration.0)
        .bind(&order.unique_id)
        .bind(&order.dealer)
        .bind(&order.case_nr)
        .bind(&order.product_nr)
        .bind(order.amount)
        .bind(order.status.as_str())
        .bind(order.reason.map(Reason::code))
        .bind(order.message.as_deref())
        .bind(now)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        self.touched();
        Ok(inserted == 1)
    }
}

/// An order as OilMat's `order_status.db` knew it, the login taken out.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub unique_id: String,
    pub dealer: String,
    pub case_nr: String,
    pub product_nr: String,
    pub amount: Option<i64>,
    pub status: OrderStatus,
    pub reason: Option<Reason>,
    pub message: Option<String>,
}
