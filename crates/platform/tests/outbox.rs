//! Durable domain events: recorded with the change that caused them (or not at all), read in order by each
//! consumer with its own cursor, at least once, by one holder at a time, taken over when the holder is gone.

mod common;

use common::open;
use std::time::Duration;

use serde_json::json;
use tillwire_platform::outbox::{NewEvent, Outbox, RecordEvent};
use tillwire_platform::{Store, write_tx};
use tillwire_testkit::{Backend, TestDatabase};

fn event(n: i64) -> NewEvent {
    NewEvent {
        kind: "test.happened",
        unit_id: Some(n % 2),
        payload: json!({ "n": n }),
    }
}

/// Records `events` in one transaction that commits or, with `commit` false, fails and rolls back.
async fn in_transaction(
    store: &Store,
    events: &[NewEvent],
    commit: bool,
) -> Result<(), sqlx::Error> {
    write_tx!(store, tx => {
        for event in events {
            (**tx).record_event(event).await?;
        }
        if commit { Ok(()) } else { Err(sqlx::Error::RowNotFound) }
    })
}

fn numbers(batch: &tillwire_platform::outbox::Batch) -> Vec<i64> {
    batch
        .events
        .iter()
        .map(|e| e.payload()["n"].as_i64().expect("n"))
        .collect()
}

tillwire_testkit::both_backends!(
    each_consumer_reads_in_order_at_least_once,
    |db| async move {
        let store = open(&db).await;
        let outbox = Outbox::new(store.clone());
        for n in 1..=3 {
            outbox.record(&event(n)).await.expect("record");
        }
        // An event recorded in a transaction that rolls back never existed.
        assert!(in_transaction(&store, &[event(99)], false).await.is_err());
        // Several events of one transaction.
        in_transaction(&store, &[event(4), event(5)], true)
            .await
            .expect("commit");

        let first = outbox.next("alerts", 2).await.expect("next").expect("held");
        assert_eq!(numbers(&first), [1, 2]);
        let recorded = &first.events[0];
        assert_eq!(
            (recorded.kind.as_str(), recorded.unit_id),
            ("test.happened", Some(1))
        );
        // Not acknowledged: handed out again.
        let again = outbox.next("alerts", 2).await.expect("next").expect("held");
        assert_eq!(numbers(&again), [1, 2]);
        assert!(outbox.ack("alerts", &again).await.expect("ack"));
        let rest = outbox
            .next("alerts", 10)
            .await
            .expect("next")
            .expect("held");
        assert_eq!(numbers(&rest), [3, 4, 5]);
        assert!(outbox.ack("alerts", &rest).await.expect("ack"));
        let none = outbox
            .next("alerts", 10)
            .await
            .expect("next")
            .expect("held");
        assert!(none.events.is_empty());
        assert!(outbox.ack("alerts", &none).await.expect("an empty ack"));

        // Another consumer has its own cursor, from the start.
        let other = outbox
            .next("reports", 10)
            .await
            .expect("next")
            .expect("held");
        assert_eq!(numbers(&other), [1, 2, 3, 4, 5]);

        // New events reach both.
        outbox.record(&event(6)).await.expect("record");
        let later = outbox
            .next("alerts", 10)
            .await
            .expect("next")
            .expect("held");
        assert_eq!(numbers(&later), [6]);
    }
);

tillwire_testkit::both_backends!(
    one_holder_at_a_time_taken_over_when_it_is_gone,
    |db| async move {
        let store = open(&db).await;
        let lease = Duration::from_millis(300);
        let first = Outbox::new(store.clone()).with_lease(lease);
        let second = Outbox::new(store.clone()).with_lease(lease);
        first.record(&event(1)).await.expect("record");

        let held = first.next("alerts", 10).await.expect("next").expect("free");
        assert_eq!(numbers(&held), [1]);
        assert!(
            second.next("alerts", 10).await.expect("next").is_none(),
            "the other instance waits while the holder's lease lasts"
        );
        // The holder dies without acknowledging: after its lease the other takes over, from the same place.
        tokio::time::sleep(lease * 2).await;
        let taken = second
            .next("alerts", 10)
            .await
            .expect("next")
            .expect("taken over");
        assert_eq!(numbers(&taken), [1], "nothing is lost");
        assert!(
            !first.ack("alerts", &held).await.expect("ack"),
            "the old holder learns it lost the consumer"
        );
        assert!(second.ack("alerts", &taken).await.expect("ack"));
        // Releasing on shutdown hands it over at once.
        second.release("alerts").await.expect("release");
        first.record(&event(2)).await.expect("record");
        let back = first
            .next("alerts", 10)
            .await
            .expect("next")
            .expect("released");
        assert_eq!(numbers(&back), [2]);
    }
);

/// On PostgreSQL a sequence value is taken before its transaction commits; if two event writers overlapped, a
/// lower id could become visible after a consumer had read past it. Event writers take ids in commit order, so a
/// consumer never skips one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_event_writer_is_not_skipped() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let store = open(&db).await;
    let Store::Postgres(pool) = &store else {
        unreachable!("a PostgreSQL database")
    };
    let outbox = Outbox::new(store.clone());
    outbox.record(&event(1)).await.expect("record");

    let mut slow = pool.begin().await.expect("begin");
    let slow_id = (*slow).record_event(&event(2)).await.expect("record");
    let fast = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.record(&event(3)).await }
    });
    // While the slow transaction is open, only what committed before it is read.
    let before = outbox
        .next("alerts", 10)
        .await
        .expect("next")
        .expect("held");
    assert_eq!(numbers(&before), [1]);
    assert!(outbox.ack("alerts", &before).await.expect("ack"));

    slow.commit().await.expect("commit");
    let fast_id = fast.await.expect("task").expect("record");
    assert!(slow_id < fast_id, "ids follow commit order");
    let after = outbox
        .next("alerts", 10)
        .await
        .expect("next")
        .expect("held");
    assert_eq!(numbers(&after), [2, 3], "nothing skipped, in order");
}
