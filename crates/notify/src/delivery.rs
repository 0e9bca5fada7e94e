//! Delivery: every message is a row of `notify_messages` and a durable job keyed by its chat (so one chat's
//! messages go one at a time, in order, whichever instance runs them), paced within Telegram's limits. What
//! Telegram answers decides what happens next:
//!
//! - sent: the row says so, with Telegram's message id;
//! - 429: nothing more goes to that chat before `retry_after`, and the job runs again after it;
//! - 5xx, a network error: the job runs again after the usual backoff (a reply lost on the way is the one way a
//!   message can arrive twice);
//! - 403 (blocked, kicked): the chat leaves the directory's fan-out, shown on its chats page; the message fails;
//! - 400 with `migrate_to_chat_id`: the chat moves to its new id in the directory, with its routes, and the
//!   message goes there at once;
//! - any other refusal: the message fails with Telegram's words, to be seen and retried on the outbox page.

use serde::{Deserialize, Serialize};
use tillwire_directory::routing::Routing;
use tillwire_platform::jobs::{Attempt, BackgroundJob, JobFailure};
use tillwire_platform::{Store, now_ms, write};

use crate::messages::{Messages, Said};
use crate::pace::Pace;
use crate::telegram::{Outgoing, SendError};
use crate::token::BotToken;

/// Sends one message row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendMessage {
    pub message: i64,
    pub chat_id: i64,
}

impl BackgroundJob for SendMessage {
    const QUEUE: &'static str = "notify.send";
    /// Generous: 429s and Telegram's outages are waited out, not given up on.
    const MAX_ATTEMPTS: i64 = 25;

    fn key(&self) -> String {
        format!("chat:{}", self.chat_id)
    }
}

/// What the sender needs.
#[derive(Clone)]
pub struct Sender {
    pub store: Store,
    pub token: BotToken,
    pub pace: Pace,
}

/// How long a message waits for a bot token (one set on the admin page) before its job looks again.
const NO_TOKEN_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl Sender {
    /// Records an attempt's outcome: the new state, Telegram's words when it failed.
    async fn record(
        &self,
        id: i64,
        state: &str,
        error: Option<&str>,
        telegram_message_id: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        write!(&self.store, db => sqlx::query(
            "UPDATE notify_messages SET state = $2, last_error = COALESCE($3, last_error), attempts = attempts + 1,
                 telegram_message_id = COALESCE($4, telegram_message_id),
                 sent_ms = CASE WHEN $2 = 'sent' THEN $5 ELSE sent_ms END
             WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(error)
        .bind(telegram_message_id)
        .bind(now_ms())
        .execute(db)
        .await
        .map(|_| ()))
    }

    /// One attempt at one message.
    pub async fn send(&self, job: SendMessage, attempt: Attempt) -> Result<(), JobFailure> {
        let retry = |error: sqlx::Error| JobFailure::Retry(format!("database: {error}"));
        let Some(mut row) = Messages(self.store.clone())
            .get(job.message)
            .await
            .map_err(retry)?
        else {
            return Ok(());
        };
        if row.state != "pending" {
            return Ok(());
        }
        let Some(api) = self
            .token
            .api()
            .await
            .map_err(|error| JobFailure::Retry(format!("the bot token: {error:#}")))?
        else {
            return Err(JobFailure::RetryIn("no bot token".into(), NO_TOKEN_WAIT));
        };
        // A group that became a supergroup is sent to again at once, once.
        for _ in 0..2 {
            self.pace.wait_turn(row.chat_id).await.map_err(retry)?;
            let outgoing = Outgoing {
                chat_id: row.chat_id,
                thread_id: (row.thread_id != 0).then_some(row.thread_id),
                text: row.text.clone(),
                reply_markup: None,
            };
            let outcome = api.send_message(&outgoing).await;
            let label = match &outcome {
                Ok(_) => "sent",
                Err(SendError::RetryAfter(_)) => "rate_limited",
                Err(SendError::Blocked(_)) => "blocked",
                Err(SendError::Migrated(_)) => "migrated",
                Err(SendError::Refused(_)) => "refused",
                Err(SendError::Unavailable(_)) => "unavailable",
            };
            metrics::counter!("tillwire_notify_messages_total", "outcome" => label).increment(1);
            match outcome {
                Ok(message_id) => {
                    self.record(row.id, "sent", None, Some(message_id))
                        .await
                        .map_err(retry)?;
                    return Ok(());
                }
                Err(SendError::RetryAfter(wait)) => {
                    let until = now_ms() + wait.as_millis() as i64;
                    self.pace.hold(row.chat_id, until).await.map_err(retry)?;
                    let said = Said::RetryAfter(wait.as_secs()).stored();
                    self.record(row.id, "pending", Some(&said), None)
                        .await
                        .map_err(retry)?;
                    return Err(JobFailure::RetryIn(said, wait));
                }
                Err(SendError::Blocked(said)) => {
                    Routing(self.store.clone())
                        .deactivate(row.chat_id, &said)
                        .await
                        .map_err(|e| JobFailure::Retry(e.to_string()))?;
                    tracing::warn!(chat = row.chat_id, %said, "the chat refuses the bot; it leaves the fan-out");
                    self.record(row.id, "failed", Some(&Said::Blocked(&said).stored()), None)
                        .await
                        .map_err(retry)?;
                    return Ok(());
                }
                Err(SendError::Migrated(to)) => {
                    Routing(self.store.clone())
                        .migrate(row.chat_id, to)
                        .await
                        .map_err(|e| JobFailure::Retry(e.to_string()))?;
                    tracing::info!(
                        from = row.chat_id,
                        to,
                        "the group became a supergroup; sending there"
                    );
                    write!(&self.store, db => sqlx::query(
                        "UPDATE notify_messages SET chat_id = $2 WHERE chat_id = $1 AND state = 'pending'",
                    )
                    .bind(row.chat_id)
                    .bind(to)
                    .execute(db)
                    .await
                    .map(|_| ()))
                    .map_err(retry)?;
                    row.chat_id = to;
                }
                Err(SendError::Refused(said)) => {
                    self.record(row.id, "failed", Some(&Said::Refused(&said).stored()), None)
                        .await
                        .map_err(retry)?;
                    return Ok(());
                }
                Err(SendError::Unavailable(said)) => {
                    let state = if attempt.is_last() {
                        "failed"
                    } else {
                        "pending"
                    };
                    self.record(
                        row.id,
                        state,
                        Some(&Said::Unavailable(&said).stored()),
                        None,
                    )
                    .await
                    .map_err(retry)?;
                    return Err(JobFailure::Retry(said));
                }
            }
        }
        Err(JobFailure::Retry(
            "the chat moved twice in one attempt".into(),
        ))
    }
}
