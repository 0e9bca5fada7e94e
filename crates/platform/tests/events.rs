//! The event bus: local delivery on both backends, and on PostgreSQL delivery across instances through
//! `LISTEN/NOTIFY`, with oversized events turned into `resync` hints.

use std::time::Duration;

use serde_json::json;
use tillwire_platform::events::RESYNC;
use tillwire_platform::{Event, EventBus, Store};
use tillwire_testkit::{Backend, TestDatabase};
use tokio::sync::broadcast;

/// Bound on any wait: only a lost event reaches it.
const PATIENCE: Duration = Duration::from_secs(30);

fn event(topic: &str, unit_id: i64, payload: serde_json::Value) -> Event {
    Event {
        topic: topic.into(),
        unit_id,
        payload,
    }
}

async fn next(receiver: &mut broadcast::Receiver<Event>) -> Event {
    tokio::time::timeout(PATIENCE, receiver.recv())
        .await
        .expect("an event arrives")
        .expect("the bus is open")
}

/// The next event whose topic is not a readiness probe.
async fn next_real(receiver: &mut broadcast::Receiver<Event>) -> Event {
    loop {
        let event = next(receiver).await;
        if event.topic != "probe" {
            return event;
        }
    }
}

tillwire_testkit::both_backends!(
    local_subscribers_receive_published_events,
    |db| async move {
        let store = Store::connect(db.url()).await.expect("connect");
        let bus = EventBus::new(store);
        bus.spawn_relay().await.expect("relay");
        let mut first = bus.subscribe();
        let mut second = bus.subscribe();
        let changed = event("order.changed", 7, json!({"id": 1, "number": 12}));
        bus.publish(changed.clone()).await;
        assert_eq!(next(&mut first).await, changed);
        assert_eq!(next(&mut second).await, changed);

        // Locally, even an event too large for NOTIFY arrives whole, and exactly once.
        let large = event("order.changed", 7, json!({"blob": "x".repeat(20_000)}));
        bus.publish(large.clone()).await;
        let marker = event("marker", 7, json!(null));
        bus.publish(marker.clone()).await;
        assert!(
            next(&mut first).await == large,
            "the large event arrives whole"
        );
        assert_eq!(
            next(&mut first).await,
            marker,
            "no echo from the database in between"
        );

        // A subscriber only sees what was published after it subscribed.
        let mut late = bus.subscribe();
        let after = event("order.changed", 8, json!({"id": 2}));
        bus.publish(after.clone()).await;
        assert_eq!(next(&mut late).await, after);
    }
);

/// Publishes probes tagged `tag` on `from` until `to` has seen one, so the receiving relay is known to listen.
async fn wait_until_relayed(from: &EventBus, tag: &str, to: &mut broadcast::Receiver<Event>) {
    let connected = tokio::time::timeout(PATIENCE, async {
        loop {
            from.publish(event("probe", 0, json!(tag))).await;
            // Keep reading until the receiver is drained for now; any probe of ours proves the path works.
            while let Ok(received) =
                tokio::time::timeout(Duration::from_millis(200), to.recv()).await
            {
                let received = received.expect("the bus is open");
                assert_eq!(
                    received.topic, "probe",
                    "unexpected event while connecting: {received:?}"
                );
                if received.payload == json!(tag) {
                    return;
                }
            }
        }
    })
    .await;
    assert!(connected.is_ok(), "the relay never delivered a probe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_only_events_cross_instances() {
    let db = TestDatabase::new(Backend::Postgres).await;
    // Two instances: two stores, two buses on one database.
    let bus_a = EventBus::new(Store::connect(db.url()).await.expect("connect a"));
    let bus_b = EventBus::new(Store::connect(db.url()).await.expect("connect b"));
    bus_a.spawn_relay().await.expect("relay");
    bus_b.spawn_relay().await.expect("relay");
    let mut on_a = bus_a.subscribe();
    let mut on_b = bus_b.subscribe();
    wait_until_relayed(&bus_a, "from a", &mut on_b).await;
    wait_until_relayed(&bus_b, "from b", &mut on_a).await;

    // A → B.
    let changed = event(
        "order.changed",
        3,
        json!({"id": 41, "number": 5, "status_id": 2}),
    );
    bus_a.publish(changed.clone()).await;
    assert_eq!(next_real(&mut on_b).await, changed);
    assert_eq!(next_real(&mut on_a).await, changed, "and locally on A");

    // B → A, and B does not get its own event twice (its relay ignores its own notifications).
    let back = event("order.changed", 3, json!({"id": 42}));
    bus_b.publish(back.clone()).await;
    assert_eq!(next_real(&mut on_a).await, back);
    assert_eq!(next_real(&mut on_b).await, back);
    let marker = event("marker", 3, json!(null));
    bus_a.publish(marker.clone()).await;
    assert_eq!(
        next_real(&mut on_b).await,
        marker,
        "no second copy of B's own event"
    );
    assert_eq!(next_real(&mut on_a).await, marker);

    // An event larger than NOTIFY allows reaches the other instance as a resync hint for its unit.
    let large = event("order.changed", 9, json!({"blob": "x".repeat(9000)}));
    bus_a.publish(large.clone()).await;
    let hint = next_real(&mut on_b).await;
    assert!(
        hint.topic != "order.changed" || hint.payload.to_string().len() < 1000,
        "the large event crossed whole"
    );
    assert_eq!(hint.topic, RESYNC);
    assert_eq!(hint.unit_id, 9);
    assert_eq!(hint.payload, serde_json::Value::Null);
    assert!(
        next_real(&mut on_a).await == large,
        "the publishing instance gets the whole event"
    );

    // Just under the limit still crosses whole.
    let mut size = 7000;
    let fitting = loop {
        let candidate = event("order.changed", 9, json!({"blob": "y".repeat(size)}));
        if serde_json::to_string(&candidate).expect("json").len() > 7800 {
            break candidate;
        }
        size += 10;
    };
    bus_a.publish(fitting.clone()).await;
    assert!(
        next_real(&mut on_b).await == fitting,
        "an event just under the limit crosses whole"
    );
    assert!(next_real(&mut on_a).await == fitting);

    // Junk on the channel (another program, an old version) is skipped without killing the relay.
    let Store::Postgres(pool) = Store::connect(db.url()).await.expect("connect") else {
        unreachable!("a PostgreSQL URL")
    };
    for junk in ["not json", r#"{"origin":"x"}"#, ""] {
        sqlx::query("SELECT pg_notify('tillwire_events', $1)")
            .bind(junk)
            .execute(&pool)
            .await
            .expect("notify");
    }
    let after_junk = event("order.changed", 2, json!({"id": 43}));
    bus_a.publish(after_junk.clone()).await;
    assert_eq!(next_real(&mut on_b).await, after_junk);
    assert_eq!(next_real(&mut on_a).await, after_junk);

    // Non-ASCII payloads survive the trip.
    let russian = event(
        "order.changed",
        1,
        json!({"name": "Пицца 4 сыра", "quote": "\"'\\"}),
    );
    bus_b.publish(russian.clone()).await;
    assert_eq!(next_real(&mut on_a).await, russian);
}

/// When the relay's connection is cut (a PostgreSQL restart, a network blip), it reconnects and tells this
/// instance's screens to reload, since other instances' events of the gap are lost; then events cross again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_only_a_reconnected_relay_asks_screens_to_resync() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let store_b = Store::connect(db.url()).await.expect("connect b");
    let bus_a = EventBus::new(Store::connect(db.url()).await.expect("connect a"));
    let bus_b = EventBus::new(store_b.clone());
    bus_b.spawn_relay().await.expect("relay");
    let mut on_b = bus_b.subscribe();
    wait_until_relayed(&bus_a, "before", &mut on_b).await;

    let Store::Postgres(pool) = &store_b else {
        unreachable!("a PostgreSQL store")
    };
    let cut: u64 = sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .execute(pool)
    .await
    .expect("cut the listeners' connections")
    .rows_affected();
    assert!(cut >= 1, "no listening connection found");

    let hint = next_real(&mut on_b).await;
    assert_eq!(hint, Event::resync(tillwire_platform::events::EVERY_UNIT));
    assert!(hint.resyncs(1) && hint.resyncs(42));
    assert!(!Event::resync(7).resyncs(8));
    wait_until_relayed(&bus_a, "after", &mut on_b).await;
}
