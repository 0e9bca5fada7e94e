//! Crash safety: a receipt the server acknowledged with a number survives `kill -9`, numbers stay
//! unique, and numbering goes on after a restart without repeating.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{DEVICE_KEY, eventually};
use tillwire_testkit::http_client;

const CLIENTS: i64 = 32;
/// Kill the server once this many receipts were acknowledged (and the burst goes on).
const ACKNOWLEDGED_BEFORE_KILL: usize = 200;
/// Bounds a server that stops making progress under the burst; not a throughput requirement.
const BURST_LIMIT: Duration = Duration::from_secs(120);

/// What the clients saw before the crash: receipt (check_id) → queue number, for every reply with
/// `doc_number > 0`. A reply that arrived was sent by the server before it died, so each of these
/// is a promise the database must keep.
#[derive(Default)]
struct Seen {
    acknowledged: BTreeMap<i64, i64>,
    refused: Vec<String>,
}

/// A receipt whose one line carries its own check id as the quantity, so the order it became can be
/// told apart from every other after the crash, through the API, whatever the schema looks like.
fn traceable_receipt(check_id: i64, day: &str) -> serde_json::Value {
    serde_json::json!({
        "cash_id": 1,
        "shift_id": 1,
        "check_id": check_id,
        "check_date": day,
        "wares": [{"ware_code": "48566", "ware_count": check_id}],
    })
}

/// Today's orders as (queue number → the check id its line quantity carries).
async fn orders_by_number(base: &str, day: &str) -> BTreeMap<i64, i64> {
    let orders = common::api_orders(&http_client(), base, DEVICE_KEY, day).await;
    let mut by_number = BTreeMap::new();
    for order in &orders {
        let number = order["number"].as_i64().expect("an order number");
        let lines = order["lines"].as_array().expect("order lines");
        assert_eq!(lines.len(), 1, "order {number}: {order}");
        let quantity = lines[0]["quantity"].as_f64().expect("a quantity");
        assert_eq!(quantity.fract(), 0.0, "order {number}: {order}");
        let earlier = by_number.insert(number, quantity as i64);
        assert!(
            earlier.is_none(),
            "number {number} was handed out twice: {orders:?}"
        );
    }
    by_number
}

tillwire_testkit::both_backends!(acknowledged_receipts_survive_kill_9, |db| async move {
    let data = common::data_dir();
    let envs = [("API_KEY", DEVICE_KEY)];
    let mut server = common::serve(&db, data.path(), &envs).await;
    let base = server.base_url();
    let day = common::today();

    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client_no in 0..CLIENTS {
        let (seen, stop, base, day) = (seen.clone(), stop.clone(), base.clone(), day.clone());
        clients.push(tokio::spawn(async move {
            let client = http_client();
            // Distinct receipts: client k posts check ids k*10_000 + 1, + 2, …
            for n in 1..10_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let check_id = client_no * 10_000 + n;
                let sent = client
                    .post(format!("{base}/devices/import_receipt/"))
                    .header("key", DEVICE_KEY)
                    .json(&traceable_receipt(check_id, &day))
                    .send()
                    .await;
                let reply: serde_json::Value = match sent {
                    Ok(response) => match response.json().await {
                        Ok(reply) => reply,
                        // Cut off mid-reply by the kill: unknown outcome, no promise made.
                        Err(_) => break,
                    },
                    // The server is gone.
                    Err(_) => break,
                };
                let mut seen = seen.lock().unwrap();
                match reply["doc_number"].as_i64() {
                    Some(number) if number > 0 => {
                        let earlier = seen.acknowledged.insert(check_id, number);
                        assert!(earlier.is_none(), "receipt {check_id} acknowledged twice");
                    }
                    _ => seen.refused.push(format!("receipt {check_id}: {reply}")),
                }
            }
        }));
    }

    eventually(
        &format!("{ACKNOWLEDGED_BEFORE_KILL} acknowledged receipts under a {CLIENTS}-client burst"),
        BURST_LIMIT,
        || async {
            let seen = seen.lock().unwrap();
            if seen.acknowledged.len() >= ACKNOWLEDGED_BEFORE_KILL {
                Ok(())
            } else {
                Err(format!(
                    "{} acknowledged, {} refused (first: {:?})",
                    seen.acknowledged.len(),
                    seen.refused.len(),
                    seen.refused.first()
                ))
            }
        },
    )
    .await;
    server.kill9();
    let crashed_output = server.output();
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("a burst client panicked");
    }
    let Seen {
        acknowledged,
        refused,
    } = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        refused.is_empty(),
        "the server refused receipts under load instead of registering them:\n{}",
        refused.join("\n")
    );
    assert!(
        acknowledged.len() >= ACKNOWLEDGED_BEFORE_KILL,
        "{}",
        acknowledged.len()
    );
    let acknowledged_numbers: BTreeSet<i64> = acknowledged.values().copied().collect();
    assert_eq!(
        acknowledged_numbers.len(),
        acknowledged.len(),
        "two receipts were given the same number before the crash"
    );
    drop(server);

    // Restart on the same database and data directory.
    let server = common::serve(&db, data.path(), &envs).await;
    let base = server.base_url();
    let client = http_client();

    // Every acknowledged receipt is an order with the number it was given, each number once.
    let stored = orders_by_number(&base, &day).await;
    let missing: Vec<String> = acknowledged
        .iter()
        .filter(|(check_id, number)| stored.get(number) != Some(check_id))
        .map(|(check_id, number)| {
            format!(
                "receipt {check_id} was acknowledged as number {number}; that number now holds {:?}",
                stored.get(number)
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged receipts were lost or renumbered by the crash:\n{}\nserver output before the kill:\n{crashed_output}",
        missing.len(),
        acknowledged.len(),
        missing.join("\n")
    );
    eprintln!(
        "[crash test] {} receipts acknowledged before the kill; {} orders stored",
        acknowledged.len(),
        stored.len()
    );
    let receipts: BTreeSet<i64> = stored.values().copied().collect();
    assert_eq!(
        receipts.len(),
        stored.len(),
        "one receipt became two orders: {stored:?}"
    );
    // A receipt's claim and its order commit together: no receipt was claimed without an order.
    let counts = common::query_pairs(
        &db,
        "SELECT (SELECT COUNT(*) FROM imported_receipts), (SELECT COUNT(*) FROM orders)",
    )
    .await;
    assert_eq!(
        counts,
        [(stored.len() as i64, stored.len() as i64)],
        "(claimed receipts, orders) in the database"
    );

    // Posting an acknowledged receipt again is recognised as a duplicate: de-duplication
    // survived the crash too.
    for check_id in acknowledged.keys().step_by(7) {
        let reply = common::import_with(
            &client,
            &base,
            Some(DEVICE_KEY),
            &traceable_receipt(*check_id, &day),
        )
        .await;
        assert_eq!(
            reply["error"],
            format!("Already have receipt with number {check_id} for cash 1 in {day}"),
            "re-posting receipt {check_id}: {reply}"
        );
        assert_eq!(reply["doc_number"], -1, "{reply}");
    }

    // Numbering goes on after the restart: new numbers are above every number handed out before
    // the crash (acknowledged or not) and never repeat.
    let highest_before = *stored.keys().last().expect("orders exist");
    let mut after = BTreeMap::new();
    for n in 1..=20 {
        let check_id = 900_000 + n;
        let reply = common::import_with(
            &client,
            &base,
            Some(DEVICE_KEY),
            &traceable_receipt(check_id, &day),
        )
        .await;
        let number = reply["doc_number"].as_i64().unwrap_or(-1);
        assert!(
            number > highest_before,
            "after the restart, receipt {check_id} got {reply}, not a number above {highest_before}"
        );
        assert!(
            after.insert(number, check_id).is_none(),
            "number {number} handed out twice after the restart"
        );
    }
    let all = orders_by_number(&base, &day).await;
    let mut expected = stored.clone();
    expected.extend(after);
    assert_eq!(all, expected, "today's orders after the restart");
});
