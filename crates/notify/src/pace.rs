//! Telegram's limits, kept by every instance together: at most one message a second per chat, twenty a minute per
//! group and thirty a second in all. Each send reserves the next free moment of its chat, its group and the
//! whole bot in the database (a slot is taken by moving the key's next moment on by its spacing), then waits for
//! the latest of them. Reserving is conservative (a slot not used is not given back), never too fast.

use std::time::Duration;

use tillwire_platform::{Backend, Store, now_ms, write};

/// The spacing between two messages of one key, with a margin: a slot is reserved before the request goes, and
/// the network's jitter must not bring two messages to Telegram closer than it allows (exactly 1 s drew 429s).
pub const PER_CHAT: Duration = Duration::from_millis(1_100);
pub const PER_GROUP: Duration = Duration::from_millis(3_100);
/// Thirty a second, with a margin.
pub const IN_ALL: Duration = Duration::from_millis(34);

#[derive(Clone)]
pub struct Pace {
    store: Store,
    /// The spacing of the whole bot (raised by a benchmark to find tillwire's own ceiling).
    in_all: Duration,
}

impl Pace {
    pub fn new(store: Store) -> Self {
        Pace {
            store,
            in_all: IN_ALL,
        }
    }

    pub fn with_global_spacing(mut self, spacing: Duration) -> Self {
        self.in_all = spacing;
        self
    }

    /// The later of a key's stored moment and `$2`, in the backend's words.
    fn later(&self) -> &'static str {
        match self.store.backend() {
            Backend::Postgres => "GREATEST(notify_pace.next_ms, $2)",
            Backend::Sqlite => "MAX(notify_pace.next_ms, $2)",
        }
    }

    /// Reserves the next moment `key` allows, `spacing` after the one before; the reserved moment (Unix ms).
    async fn reserve(&self, key: &str, spacing: Duration) -> Result<i64, sqlx::Error> {
        let now = now_ms();
        let spacing = spacing.as_millis() as i64;
        let later = self.later();
        let sql = format!(
            "INSERT INTO notify_pace (pace_key, next_ms) VALUES ($1, $2 + $3)
             ON CONFLICT (pace_key) DO UPDATE SET next_ms = {later} + $3
             RETURNING next_ms - $3"
        );
        let (slot,): (i64,) = write!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(now)
            .bind(spacing)
            .fetch_one(db)
            .await)?;
        Ok(slot)
    }

    /// Waits until a message to `chat_id` may go.
    pub async fn wait_turn(&self, chat_id: i64) -> Result<(), sqlx::Error> {
        let mut at = self.reserve("all", self.in_all).await?;
        at = at.max(self.reserve(&format!("chat:{chat_id}"), PER_CHAT).await?);
        if chat_id < 0 {
            at = at.max(self.reserve(&format!("group:{chat_id}"), PER_GROUP).await?);
        }
        let wait = at - now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        Ok(())
    }

    /// Telegram said to wait: nothing more goes to `chat_id` before `until` (Unix ms).
    pub async fn hold(&self, chat_id: i64, until: i64) -> Result<(), sqlx::Error> {
        let later = self.later();
        let sql = format!(
            "INSERT INTO notify_pace (pace_key, next_ms) VALUES ($1, $2)
             ON CONFLICT (pace_key) DO UPDATE SET next_ms = {later}"
        );
        write!(&self.store, db => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(format!("chat:{chat_id}"))
            .bind(until)
            .execute(db)
            .await
            .map(|_| ()))
    }
}
