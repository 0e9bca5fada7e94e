//! Numbering under load: many tills posting at once get unique, contiguous numbers, and a receipt sent many
//! times at once still makes one order.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use tokio::sync::Barrier;

const CLIENTS: i64 = 64;
const RECEIPTS_PER_CLIENT: i64 = 8;
const DAY: &str = "2022-11-21";

/// These tests open up to a full connection pool each; one at a time keeps a shared PostgreSQL server (default
/// `max_connections` 100) clear of "too many clients" while other suites run too.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

tillwire_testkit::both_backends!(
    concurrent_receipts_get_contiguous_numbers,
    |db| async move {
        let _turn = ONE_AT_A_TIME.lock().await;
        let app = Arc::new(start(&db).await);
        let barrier = Arc::new(Barrier::new(CLIENTS as usize));
        let mut tasks = Vec::new();
        for client_index in 0..CLIENTS {
            let app = app.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                // Every client is its own connection pool, like a separate till.
                let client = tillwire_testkit::http_client();
                barrier.wait().await;
                let mut numbers = Vec::new();
                for check in 1..=RECEIPTS_PER_CLIENT {
                    // A distinct receipt per (client, check): the client is the shift of one of the five registers.
                    let wares: &[(&str, f64)] = if check % 2 == 0 {
                        &[(PIZZA, 1.0), (SHAWARMA, 2.0)]
                    } else {
                        &[(SALAD, 1.0)]
                    };
                    let body =
                        receipt_in_shift(client_index % 5 + 1, client_index + 1, check, DAY, wares);
                    let response = client
                        .post(app.url(LEGACY_PATH))
                        .header("key", API_KEY)
                        .body(body)
                        .send()
                        .await
                        .expect("POST a receipt");
                    assert_eq!(response.status(), 200);
                    let reply: serde_json::Value = response.json().await.expect("JSON reply");
                    assert_eq!(reply["error"], "", "{reply}");
                    numbers.push(reply["doc_number"].as_i64().expect("a number"));
                }
                numbers
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("client task"));
        }
        let total = CLIENTS * RECEIPTS_PER_CLIENT;
        assert_eq!(all.len() as i64, total);
        let unique: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(unique.len() as i64, total, "numbers are unique");
        all.sort_unstable();
        assert_eq!(
            all,
            (1..=total).collect::<Vec<_>>(),
            "numbers are exactly 1..={total}"
        );

        // The database agrees.
        assert_eq!(app.count("orders").await, total);
        assert_eq!(
            app.scalar("SELECT COUNT(DISTINCT number) FROM orders")
                .await,
            total
        );
        assert_eq!(app.scalar("SELECT MIN(number) FROM orders").await, 1);
        assert_eq!(app.scalar("SELECT MAX(number) FROM orders").await, total);
        assert_eq!(app.count("imported_receipts").await, total);
        assert_eq!(app.count("order_lines").await, total / 2 * 3);
        assert_eq!(app.count("order_status_log").await, total);
        // The next receipt continues the sequence.
        assert_eq!(
            app.legacy(receipt_in_shift(1, 1000, 1, DAY, &[(PIZZA, 1.0)]))
                .await,
            legacy_text(total + 1, 1, "")
        );
    }
);

tillwire_testkit::both_backends!(concurrent_duplicates_make_one_order, |db| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = Arc::new(start(&db).await);
    let body = receipt(3, 42, DAY, &[(PIZZA, 2.0), (WOK_SAUCE, 1.0)]);
    let barrier = Arc::new(Barrier::new(CLIENTS as usize));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let app = app.clone();
        let barrier = barrier.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let client = tillwire_testkit::http_client();
            barrier.wait().await;
            let response = client
                .post(app.url(LEGACY_PATH))
                .header("key", API_KEY)
                .body(body)
                .send()
                .await
                .expect("POST a receipt");
            assert_eq!(response.status(), 200);
            response.text().await.expect("reply")
        }));
    }
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.expect("client task"));
    }
    let created = legacy_text(1, 2, "");
    let duplicate = legacy_text(
        -1,
        0,
        "Already have receipt with number 42 for cash 3 in 2022-11-21",
    );
    assert_eq!(
        replies.iter().filter(|r| **r == created).count(),
        1,
        "exactly one request creates the order: {replies:?}"
    );
    assert_eq!(
        replies.iter().filter(|r| **r == duplicate).count(),
        CLIENTS as usize - 1,
        "all others are told it is a duplicate: {replies:?}"
    );
    assert_eq!(app.count("orders").await, 1);
    assert_eq!(app.count("order_lines").await, 2);
    assert_eq!(app.count("imported_receipts").await, 1);
    // No number was used up by the losers.
    assert_eq!(
        app.legacy(receipt(3, 43, DAY, &[(PIZZA, 1.0)])).await,
        legacy_text(2, 1, "")
    );
});
