//! Durable domain events (an outbox). An area records an event (unit, kind, payload) in the transaction of the
//! change that caused it ([`RecordEvent`]), so the event exists exactly when the change does. Consumers read the
//! events in order, each with its own cursor, at least once: [`Outbox::next`] hands a batch to the one process that
//! holds the consumer's lease (others get `None`; a dead holder's lease runs out and another takes over), and
//! [`Outbox::ack`] moves the cursor past it. The in-process event bus stays what it is: hints for live screens.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::store::Store;
use crate::{now_ms, read, write};

/// How long a consumer's holder keeps it without acknowledging; after that another process may take it.
pub const CONSUMER_LEASE: Duration = Duration::from_secs(30);

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// What happened, `area.what` (`printing.printer_failed`).
    pub kind: &'static str,
    /// The unit it happened in, when it belongs to one.
    pub unit_id: Option<i64>,
    pub payload: serde_json::Value,
}

/// A recorded event as a consumer reads it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct DomainEvent {
    pub id: i64,
    pub unit_id: Option<i64>,
    pub kind: String,
    /// JSON text.
    pub payload: String,
    pub created_ms: i64,
}

impl DomainEvent {
    pub fn payload(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload).unwrap_or_default()
    }
}

/// Recording inside an open transaction, on either backend.
pub trait RecordEvent {
    fn record_event(
        &mut self,
        event: &NewEvent,
    ) -> impl Future<Output = Result<i64, sqlx::Error>> + Send;
}

/// The insert, the same on both backends.
macro_rules! insert_event {
    ($conn:expr, $event:expr) => {
        sqlx::query_as::<_, (i64,)>(
            "INSERT INTO domain_events (unit_id, kind, payload, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind($event.unit_id)
        .bind($event.kind)
        .bind($event.payload.to_string())
        .bind(now_ms())
        .fetch_one($conn)
        .await
        .map(|(id,)| id)
    };
}

impl RecordEvent for sqlx::SqliteConnection {
    async fn record_event(&mut self, event: &NewEvent) -> Result<i64, sqlx::Error> {
        // The single writer already takes ids in commit order.
        insert_event!(&mut *self, event)
    }
}

impl RecordEvent for sqlx::PgConnection {
    async fn record_event(&mut self, event: &NewEvent) -> Result<i64, sqlx::Error> {
        // Until this transaction ends, other event writers wait here: ids are taken in commit order, so a
        // consumer reading past id N never misses a lower id committed later. Events are rare (alerts), so the
        // wait is short and only event writers pay it.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tillwire.domain_events'))")
            .execute(&mut *self)
            .await?;
        insert_event!(&mut *self, event)
    }
}

/// A batch handed to a consumer: acknowledge it with [`Outbox::ack`] once handled.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<DomainEvent>,
}

/// Reads and acknowledges events for consumers; one per process (its identity holds leases).
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    owner: String,
    lease_ms: i64,
}

impl Outbox {
    pub fn new(store: Store) -> Self {
        Outbox {
            store,
            owner: crate::random_token(16),
            lease_ms: CONSUMER_LEASE.as_millis() as i64,
        }
    }

    /// The same outbox with another consumer lease (tests of takeover use a short one).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease_ms = i64::try_from(lease.as_millis())
            .unwrap_or(i64::MAX / 2)
            .max(1);
        self
    }

    /// Records an event in a transaction of its own (for changes that are not transactions themselves).
    pub async fn record(&self, event: &NewEvent) -> Result<i64, sqlx::Error> {
        crate::write_tx!(&self.store, tx => (**tx).record_event(event).await)
    }

    /// How many events of `kinds` `unit_id` had from `from_ms` up to (not including) `to_ms`.
    pub async fn count(
        &self,
        unit_id: i64,
        kinds: &[&str],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<i64, sqlx::Error> {
        let mut total = 0;
        for kind in kinds {
            let count: i64 = read!(&self.store, db => sqlx::query_scalar(
                "SELECT COUNT(*) FROM domain_events WHERE unit_id = $1 AND created_ms >= $2 AND created_ms < $3
                 AND kind = $4",
            )
            .bind(unit_id)
            .bind(from_ms)
            .bind(to_ms)
            .bind(kind)
            .fetch_one(db)
            .await)?;
            total += count;
        }
        Ok(total)
    }

    /// Starts a consumer that does not exist yet at the newest event (SQLite needs the `WHERE` to read the
    /// `ON CONFLICT` as the upsert's), so it handles only what happens from now on
    /// (a notifier switched on after months of events must not send them all); an existing one keeps its place.
    pub async fn start_at_end(&self, consumer: &str) -> Result<(), sqlx::Error> {
        write!(&self.store, db => sqlx::query(
            "INSERT INTO event_cursors (consumer, last_id) SELECT $1, COALESCE(MAX(id), 0) FROM domain_events
             WHERE TRUE ON CONFLICT (consumer) DO NOTHING",
        )
        .bind(consumer)
        .execute(db)
        .await
        .map(|_| ()))
    }

    /// The consumer's next events after its cursor, in order, if this process holds the consumer (it takes it
    /// when nobody does or the holder's lease ran out); `None` while another process holds it.
    pub async fn next(&self, consumer: &str, limit: i64) -> Result<Option<Batch>, sqlx::Error> {
        let now = now_ms();
        write!(&self.store, db => sqlx::query(
            "INSERT INTO event_cursors (consumer) VALUES ($1) ON CONFLICT (consumer) DO NOTHING",
        )
        .bind(consumer)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        let held: Option<(i64,)> = write!(&self.store, db => sqlx::query_as(
            "UPDATE event_cursors SET owner = $2, locked_until_ms = $3 + $4
             WHERE consumer = $1 AND (owner = $2 OR locked_until_ms < $3)
             RETURNING last_id",
        )
        .bind(consumer)
        .bind(&self.owner)
        .bind(now)
        .bind(self.lease_ms)
        .fetch_optional(db)
        .await)?;
        let Some((last_id,)) = held else {
            return Ok(None);
        };
        let events = read!(&self.store, db => sqlx::query_as(
            "SELECT id, unit_id, kind, payload, created_ms FROM domain_events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(last_id)
        .bind(limit)
        .fetch_all(db)
        .await)?;
        Ok(Some(Batch { events }))
    }

    /// Moves the consumer's cursor past `batch` and renews the lease. `false` when this process no longer holds the
    /// consumer (its lease ran out and another took over): the batch may be handled there again.
    pub async fn ack(&self, consumer: &str, batch: &Batch) -> Result<bool, sqlx::Error> {
        let Some(last) = batch.events.last() else {
            return Ok(true);
        };
        let now = now_ms();
        let moved = write!(&self.store, db => sqlx::query(
            "UPDATE event_cursors SET last_id = $3, locked_until_ms = $4 + $5, updated_ms = $4
             WHERE consumer = $1 AND owner = $2",
        )
        .bind(consumer)
        .bind(&self.owner)
        .bind(last.id)
        .bind(now)
        .bind(self.lease_ms)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(moved == 1)
    }

    /// Gives the consumer up at once (on shutdown), so another process need not wait out the lease.
    pub async fn release(&self, consumer: &str) -> Result<(), sqlx::Error> {
        write!(&self.store, db => sqlx::query(
            "UPDATE event_cursors SET locked_until_ms = 0 WHERE consumer = $1 AND owner = $2",
        )
        .bind(consumer)
        .bind(&self.owner)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
