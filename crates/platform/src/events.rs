//! The event bus: in-process broadcast, plus PostgreSQL `LISTEN/NOTIFY` so every instance on one database sees
//! every event (two instances, one board). Events are hints for live screens; screens resync from the database
//! on (re)connect, so a missed event costs at most one stale tile until the next change.

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::store::Store;

const CHANNEL: &str = "tillwire_events";
/// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
const MAX_NOTIFY_BYTES: usize = 7900;

/// Sent instead of an event too large to cross instances: "reload your snapshot of this unit".
pub const RESYNC: &str = "resync";

/// The unit of a resync that concerns every unit: after the relay lost its connection, any other instance's
/// event of that time may be missing here.
pub const EVERY_UNIT: i64 = 0;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// What happened, e.g. `order.changed`.
    pub topic: String,
    pub unit_id: i64,
    pub payload: serde_json::Value,
}

impl Event {
    /// "Reload your snapshot of `unit_id`" (of every unit with [`EVERY_UNIT`]).
    pub fn resync(unit_id: i64) -> Event {
        Event {
            topic: RESYNC.into(),
            unit_id,
            payload: serde_json::Value::Null,
        }
    }

    /// Whether a screen of `unit_id` should reload its snapshot because of this event.
    pub fn resyncs(&self, unit_id: i64) -> bool {
        self.topic == RESYNC && (self.unit_id == unit_id || self.unit_id == EVERY_UNIT)
    }
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
    /// Notifications for other instances, sent by one background task in batches (PostgreSQL only), so
    /// publishing never waits for the database and a burst costs one round trip per batch.
    outbox: Option<mpsc::UnboundedSender<String>>,
    /// Identifies this process, so it can ignore its own notifications coming back from PostgreSQL.
    origin: String,
}

impl EventBus {
    /// Must be called inside a tokio runtime when `store` is PostgreSQL (it starts the notifier task).
    pub fn new(store: Store) -> Self {
        let (sender, _) = broadcast::channel(4096);
        let outbox = match &store {
            Store::Postgres(pool) => {
                let (outbox, pending) = mpsc::unbounded_channel();
                tokio::spawn(notify_others(pool.clone(), pending));
                Some(outbox)
            }
            Store::Sqlite { .. } => None,
        };
        EventBus {
            sender,
            store,
            outbox,
            origin: crate::random_token(12),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// Delivers locally at once and, on PostgreSQL, to the other instances.
    pub async fn publish(&self, event: Event) {
        if let Some(outbox) = &self.outbox {
            let envelope = Envelope {
                origin: self.origin.clone(),
                event: event.clone(),
            };
            let mut text = serde_json::to_string(&envelope).unwrap_or_default();
            if text.len() > MAX_NOTIFY_BYTES {
                text = serde_json::to_string(&Envelope {
                    origin: self.origin.clone(),
                    event: Event::resync(event.unit_id),
                })
                .unwrap_or_default();
            }
            let _ = outbox.send(text);
        }
        let _ = self.sender.send(event);
    }

    /// On PostgreSQL, relays other instances' events into this process until the process ends.
    /// Returns once this instance is listening, so nothing published after start-up is missed.
    pub async fn spawn_relay(&self) -> Result<(), sqlx::Error> {
        let Store::Postgres(pool) = &self.store else {
            return Ok(());
        };
        let mut listener = listen(pool).await?;
        let pool = pool.clone();
        let sender = self.sender.clone();
        let origin = self.origin.clone();
        tokio::spawn(async move {
            loop {
                let Err(error) = relay(&mut listener, &sender, &origin).await;
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(%error, "event relay lost its connection; reconnecting");
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    match listen(&pool).await {
                        Ok(fresh) => break listener = fresh,
                        Err(_) if pool.is_closed() => return,
                        Err(_) => continue,
                    }
                }
                // Other instances' events of the gap are lost: this instance's screens reload what they show.
                tracing::info!("event relay reconnected; screens resync");
                let _ = sender.send(Event::resync(EVERY_UNIT));
            }
        });
        Ok(())
    }
}

async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Sends queued notifications, everything waiting at once in one statement, in publication order.
async fn notify_others(pool: sqlx::PgPool, mut pending: mpsc::UnboundedReceiver<String>) {
    let mut batch = Vec::new();
    while pending.recv_many(&mut batch, 256).await > 0 {
        let sent = sqlx::query("SELECT pg_notify($1, payload) FROM UNNEST($2::text[]) WITH ORDINALITY AS t(payload, n) ORDER BY n")
            .bind(CHANNEL)
            .bind(&batch)
            .execute(&pool)
            .await;
        if let Err(error) = sent {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(%error, lost = batch.len(), "could not notify other instances; their screens resync on reconnect");
        }
        batch.clear();
    }
}

async fn relay(
    listener: &mut sqlx::postgres::PgListener,
    sender: &broadcast::Sender<Event>,
    origin: &str,
) -> Result<std::convert::Infallible, sqlx::Error> {
    loop {
        // `try_recv` says when the connection was lost (`recv` would reconnect silently): the events of the gap
        // are lost, so this instance's screens reload what they show; the next call reconnects.
        let Some(notification) = listener.try_recv().await? else {
            tracing::warn!("event relay lost its connection; reconnecting, screens resync");
            let _ = sender.send(Event::resync(EVERY_UNIT));
            continue;
        };
        match serde_json::from_str::<Envelope>(notification.payload()) {
            Ok(envelope) if envelope.origin != origin => {
                let _ = sender.send(envelope.event);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "ignoring a malformed event notification"),
        }
    }
}
