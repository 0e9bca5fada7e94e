//! One owner at a time for outside work that must not run twice (a register's collector, a device's poller),
//! across every instance sharing the database: a named lease, held for a while and renewed well before it runs
//! out. When its holder dies the lease runs out and another instance takes it over.

use std::sync::Arc;
use std::time::Duration;

use crate::{Store, now_ms, write};

/// The leases of one instance: each `Leases` value is its own holder (every process makes one, with its
/// platform), so two instances in one test process compete as two processes would.
#[derive(Clone)]
pub struct Leases {
    store: Store,
    holder: Arc<str>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("holder", &self.holder)
            .finish()
    }
}

impl Leases {
    pub fn new(store: Store) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "tillwire".into());
        let holder = format!("{host}/{}/{}", std::process::id(), crate::random_token(6));
        Leases {
            store,
            holder: holder.into(),
        }
    }

    /// Who this instance is, as the lease table and the pages name it.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Takes `name` for `ttl`, or renews it when this instance holds it already. False when another instance
    /// holds it and its lease has not run out.
    pub async fn hold(&self, name: &str, ttl: Duration) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let taken = write!(&self.store, db => sqlx::query(
            "INSERT INTO leases (name, holder, expires_ms) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
             WHERE leases.holder = excluded.holder OR leases.expires_ms < $4",
        )
        .bind(name)
        .bind(&*self.holder)
        .bind(until)
        .bind(now)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(taken == 1)
    }

    /// Gives `name` up at once (on a clean stop), so another instance need not wait for it to run out.
    pub async fn release(&self, name: &str) -> Result<(), sqlx::Error> {
        write!(&self.store, db => sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(&*self.holder)
            .execute(db)
            .await
            .map(|_| ()))
    }

    /// The instance holding `name` now, if its lease has not run out.
    pub async fn holder_of(&self, name: &str) -> Result<Option<String>, sqlx::Error> {
        crate::read!(&self.store, db => sqlx::query_scalar(
            "SELECT holder FROM leases WHERE name = $1 AND expires_ms >= $2",
        )
        .bind(name)
        .bind(now_ms())
        .fetch_optional(db)
        .await)
    }
}
