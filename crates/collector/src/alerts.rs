//! Telling people when a register stops being collected: once its reads have failed for `alert_after_minutes`
//! (15 by default), a durable `collector.register_behind` event for its unit; at the first good pass after that,
//! `collector.register_recovered` with how long it lasted. The alert is a row, inserted or deleted in the
//! transaction of its event, so an instance taking the register over (or a restart) neither repeats an alert
//! nor forgets to say it is over.

use std::time::Duration;

use serde_json::json;
use tillwire_platform::outbox::{NewEvent, RecordEvent};
use tillwire_platform::{Store, now_ms, read, write_tx};

pub const REGISTER_BEHIND: &str = "collector.register_behind";
pub const REGISTER_RECOVERED: &str = "collector.register_recovered";

/// Alerts, unless the settings say otherwise, after a quarter of an hour.
pub const DEFAULT_ALERT_AFTER: Duration = Duration::from_secs(15 * 60);

/// Where a register's alerts go: its unit, after how long.
#[derive(Clone)]
pub struct Alerts {
    pub store: Store,
    pub unit_id: i64,
    pub after: Duration,
}

impl Alerts {
    /// Whether an alert about `key` is out (it was raised and not yet ended).
    pub(crate) async fn raised(&self, key: &str) -> Result<bool, sqlx::Error> {
        let found: Option<(i64,)> = read!(&self.store, db => sqlx::query_as(
            "SELECT since_ms FROM collector_alerts WHERE task_key = $1",
        )
        .bind(key)
        .fetch_optional(db)
        .await)?;
        Ok(found.is_some())
    }

    /// Raises the alert about `key` (failing since `since_ms` with `error`) unless it is out already.
    pub(crate) async fn raise(
        &self,
        key: &str,
        register: &str,
        since_ms: i64,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        write_tx!(&self.store, tx => {
            let inserted = sqlx::query(
                "INSERT INTO collector_alerts (task_key, unit_id, since_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (task_key) DO NOTHING",
            )
            .bind(key)
            .bind(self.unit_id)
            .bind(since_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                (**tx).record_event(&NewEvent {
                    kind: REGISTER_BEHIND,
                    unit_id: Some(self.unit_id),
                    payload: json!({"register": register, "since_ms": since_ms, "error": error}),
                }).await?;
            }
            Ok::<(), sqlx::Error>(())
        })
    }

    /// Ends the alert about `key`, if one is out.
    pub(crate) async fn end(&self, key: &str, register: &str) -> Result<(), sqlx::Error> {
        write_tx!(&self.store, tx => {
            let ended: Option<(i64,)> = sqlx::query_as(
                "DELETE FROM collector_alerts WHERE task_key = $1 RETURNING since_ms",
            )
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some((since_ms,)) = ended {
                (**tx).record_event(&NewEvent {
                    kind: REGISTER_RECOVERED,
                    unit_id: Some(self.unit_id),
                    payload: json!({"register": register, "since_ms": since_ms, "duration_ms": now_ms() - since_ms}),
                }).await?;
            }
            Ok::<(), sqlx::Error>(())
        })
    }
}
