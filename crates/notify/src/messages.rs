//! The outbox's messages as the page and the API see them: listed by state, counted, sent again, discarded.

use tillwire_platform::jobs::{BackgroundJob, EnqueueJob};
use tillwire_platform::web::Lang;
use tillwire_platform::{Store, read, write, write_tx};

use crate::delivery::SendMessage;

/// A message row: one part of a text for one chat.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub event_id: Option<i64>,
    pub chat_id: i64,
    pub thread_id: i64,
    pub part: i64,
    pub report_type: String,
    /// HTML, as sent.
    pub text: String,
    /// `pending`, `sent`, `failed` or `discarded`.
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub sent_ms: Option<i64>,
}

/// Why a message has not gone (yet), as `last_error` keeps it (`kind|detail`, so a page can say it in its
/// language) and as people read it. Telegram's own words stay as Telegram wrote them, quoted.
#[derive(Debug, Clone, PartialEq)]
pub enum Said<'a> {
    /// 429: Telegram asked to wait this many seconds.
    RetryAfter(u64),
    /// 403: the chat blocked or removed the bot.
    Blocked(&'a str),
    /// Any other refusal.
    Refused(&'a str),
    /// 5xx, or no answer at all.
    Unavailable(&'a str),
}

impl<'a> Said<'a> {
    pub fn stored(&self) -> String {
        match self {
            Said::RetryAfter(seconds) => format!("retry_after|{seconds}"),
            Said::Blocked(detail) => format!("blocked|{detail}"),
            Said::Refused(detail) => format!("refused|{detail}"),
            Said::Unavailable(detail) => format!("unavailable|{detail}"),
        }
    }

    pub fn parse(stored: &'a str) -> Option<Said<'a>> {
        let (kind, detail) = stored.split_once('|')?;
        Some(match kind {
            "retry_after" => Said::RetryAfter(detail.parse().ok()?),
            "blocked" => Said::Blocked(detail),
            "refused" => Said::Refused(detail),
            "unavailable" => Said::Unavailable(detail),
            _ => return None,
        })
    }

    /// `stored` for a person reading in `lang`.
    pub fn describe(stored: &str, lang: Lang) -> String {
        match Said::parse(stored) {
            Some(Said::RetryAfter(seconds)) => format!(
                "{} {seconds} {}",
                lang.pick("Telegram просит подождать", "Telegram asks to wait"),
                lang.pick("с", "s")
            ),
            Some(Said::Blocked(detail)) => format!(
                "{}: «{detail}»",
                lang.pick(
                    "Чат не принимает сообщения бота",
                    "The chat does not take the bot's messages"
                )
            ),
            Some(Said::Refused(detail)) => format!(
                "{}: «{detail}»",
                lang.pick("Telegram отказал", "Telegram refused")
            ),
            Some(Said::Unavailable(detail)) => format!(
                "{}: {detail}",
                lang.pick(
                    "Telegram не ответил, попытка будет снова",
                    "Telegram did not answer; trying again"
                )
            ),
            None => stored.to_owned(),
        }
    }
}

const COLUMNS: &str = "id, event_id, chat_id, thread_id, part, report_type, text, state, attempts, last_error, \
                       created_ms, sent_ms";

/// The states a message can be in.
pub const STATES: [&str; 4] = ["pending", "sent", "failed", "discarded"];

/// Which messages to list.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// One of [`STATES`]; `None`: all.
    pub state: Option<&'static str>,
    pub chat_id: Option<i64>,
    /// Older than this id (the next page).
    pub before: Option<i64>,
    pub limit: i64,
}

/// What came of asking to send a message again or to discard it.
#[derive(Debug)]
pub enum Changed {
    Done(Box<MessageRow>),
    /// Not in a state this applies to (it is sent, say): the message as it is.
    NotApplicable(Box<MessageRow>),
    Missing,
}

#[derive(Clone)]
pub struct Messages(pub Store);

impl Messages {
    pub async fn get(&self, id: i64) -> Result<Option<MessageRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM notify_messages WHERE id = $1");
        read!(&self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(db).await)
    }

    /// Newest first.
    pub async fn list(&self, filter: &MessageFilter) -> Result<Vec<MessageRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM notify_messages
             WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR chat_id = $2) AND ($3 IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4"
        );
        read!(&self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(filter.state)
            .bind(filter.chat_id)
            .bind(filter.before)
            .bind(filter.limit.clamp(1, 1000))
            .fetch_all(db)
            .await)
    }

    /// How many messages are in each state that has any.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        read!(&self.0, db => sqlx::query_as(
            "SELECT state, COUNT(*) FROM notify_messages GROUP BY state ORDER BY state",
        )
        .fetch_all(db)
        .await)
    }

    /// Sends a failed (or discarded) message again: back to waiting, with a new job, in one transaction.
    pub async fn retry(&self, id: i64) -> Result<Changed, sqlx::Error> {
        let requeued: Option<(i64,)> = write_tx!(&self.0, tx => {
            let row: Option<(i64,)> = sqlx::query_as(
                "UPDATE notify_messages SET state = 'pending', last_error = NULL
                 WHERE id = $1 AND state IN ('failed', 'discarded') RETURNING chat_id",
            )
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some((chat_id,)) = row {
                (**tx).enqueue_job(&SendMessage { message: id, chat_id }.to_job()).await?;
            }
            Ok::<_, sqlx::Error>(row)
        })?;
        self.outcome(id, requeued.is_some()).await
    }

    /// Gives up a message that has not gone yet (or failed): it will not be sent.
    pub async fn discard(&self, id: i64) -> Result<Changed, sqlx::Error> {
        let changed = write!(&self.0, db => sqlx::query(
            "UPDATE notify_messages SET state = 'discarded' WHERE id = $1 AND state IN ('pending', 'failed')",
        )
        .bind(id)
        .execute(db)
        .await
        .map(|done| done.rows_affected()))?;
        self.outcome(id, changed == 1).await
    }

    async fn outcome(&self, id: i64, changed: bool) -> Result<Changed, sqlx::Error> {
        Ok(match self.get(id).await? {
            None => Changed::Missing,
            Some(row) if changed => Changed::Done(Box::new(row)),
            Some(row) => Changed::NotApplicable(Box::new(row)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_telegram_said_is_kept_by_kind_and_told_in_either_language() {
        for said in [
            Said::RetryAfter(7),
            Said::Blocked("Forbidden: bot was blocked by the user"),
            Said::Refused("Bad Request: chat not found"),
            Said::Unavailable("HTTP 502"),
        ] {
            assert_eq!(Said::parse(&said.stored()), Some(said.clone()));
        }
        assert_eq!(
            Said::describe(&Said::RetryAfter(7).stored(), Lang::Ru),
            "Telegram просит подождать 7 с"
        );
        assert_eq!(
            Said::describe(
                &Said::Refused("Bad Request: chat not found").stored(),
                Lang::En
            ),
            "Telegram refused: «Bad Request: chat not found»"
        );
        assert_eq!(
            Said::describe("an old free text", Lang::Ru),
            "an old free text"
        );
    }
}
