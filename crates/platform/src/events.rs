//! The event bus: in-process broadcast, plus PostgreSQL `LISTEN/NOTIFY` so every instance on one database sees
//! every event (two instances, one board). Events are hints for live screens; screens resync from the database
//! on (re)connect, so a missed event costs at most one stale tile until the next change.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::store::Store;

const CHANNEL: &str = "tillwire_events";
/// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
const MAX_NOTIFY_BYTES: usize = 7900;

/// Sent instead of an event too large to cross instances: "reload your snapshot of this unit".
pub const RESYNC: &str = "resync";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// What happened, e.g. `order.changed`.
    pub topic: String,
    pub unit_id: i64,
    pub payload: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    origin: String,
    event: Event,
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    store: Store,
    /// Identifies this process, so it can ignore its own notifications coming back from PostgreSQL.
    origin: String,
}

impl EventBus {
    pub fn new(store: Store) -> Self {
        let (sender, _) = broadcast::channel(4096);
        EventBus {
            sender,
            store,
            origin: crate::random_token(12),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// Delivers locally at once and, on PostgreSQL, to the other instances.
    pub async fn publish(&self, event: Event) {
        if let Store::Postgres(pool) = &self.store {
            let envelope = Envelope {
                origin: self.origin.clone(),
                event: event.clone(),
            };
            let mut text = serde_json::to_string(&envelope).unwrap_or_default();
            if text.len() > MAX_NOTIFY_BYTES {
                let resync = Event {
                    topic: RESYNC.into(),
                    unit_id: event.unit_id,
                    payload: serde_json::Value::Null,
                };
                text = serde_json::to_string(&Envelope {
                    origin: self.origin.clone(),
                    event: resync,
                })
                .unwrap_or_default();
            }
            if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(text)
                .execute(pool)
                .await
            {
                tracing::warn!(%error, "could not notify other instances");
            }
        }
        let _ = self.sender.send(event);
    }

    /// On PostgreSQL, relays other instances' events into this process until the process ends.
    pub fn spawn_relay(&self) {
        let Store::Postgres(pool) = &self.store else {
            return;
        };
        let pool = pool.clone();
        let sender = self.sender.clone();
        let origin = self.origin.clone();
        tokio::spawn(async move {
            loop {
                match relay(&pool, &sender, &origin).await {
                    Ok(()) => return,
                    Err(_) if pool.is_closed() => return,
                    Err(error) => {
                        tracing::warn!(%error, "event relay lost its connection; reconnecting");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }
}

async fn relay(
    pool: &sqlx::PgPool,
    sender: &broadcast::Sender<Event>,
    origin: &str,
) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    loop {
        let notification = listener.recv().await?;
        match serde_json::from_str::<Envelope>(notification.payload()) {
            Ok(envelope) if envelope.origin != origin => {
                let _ = sender.send(envelope.event);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "ignoring a malformed event notification"),
        }
    }
}
