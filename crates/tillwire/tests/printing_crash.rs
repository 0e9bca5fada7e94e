//! Tickets survive a crash: orders imported while their printer is down keep their print jobs through
//! `kill -9`, and once the printer answers after the restart every ticket prints, once, in order. Reprints from
//! the operator screen (session + CSRF) and from the API (device key) print again.

mod common;

use std::time::Duration;

use common::{DEVICE_KEY, eventually};
use tillwire_printing::sim::{EscPosSink, decode};
use tillwire_testkit::{http_client, login};

const RECEIPTS: i64 = 5;
/// Bounds a broken server; a working one prints within the backoff (seconds), or a lease after a crash.
const LIMIT: Duration = Duration::from_secs(120);

tillwire_testkit::both_backends!(pending_tickets_print_after_kill_9, |db| async move {
    let data = common::data_dir();
    let envs = [("API_KEY", DEVICE_KEY)];
    let mut server = common::serve(&db, data.path(), &envs).await;
    let base = server.base_url();
    let day = common::today();
    let port = tillwire_testkit::free_port();

    // Through the admin page, as a person would: the seeded printer (registers 1–5) gets an address nobody
    // answers on yet.
    let admin = http_client();
    let user = common::admin_username(&server.output());
    let csrf = login(&admin, &base, &user, &common::admin_password(&server)).await;
    let address = format!("tcp://127.0.0.1:{port}");
    let saved = common::save_printer(&admin, &base, &csrf, "Принтер этикеток", &address).await;
    assert_eq!(saved, 303);
    let refused = common::save_printer(&admin, &base, &csrf, "x", "10.0.0.5:9100").await;
    assert_eq!(refused, 422, "an address without a scheme is refused");

    let client = http_client();
    let mut numbers = Vec::new();
    for check in 1..=RECEIPTS {
        numbers.push(common::import(&client, &base, DEVICE_KEY, check, &day).await);
    }
    // Every ticket is queued and the first has failed at least once.
    eventually("the first attempt fails", LIMIT, || async {
        let rows = common::query_pairs(
            &db,
            "SELECT COUNT(*), COALESCE(MAX(attempts), 0) FROM jobs WHERE queue = 'print.ticket' AND state IN ('pending', 'running')",
        )
        .await;
        match rows[..] {
            [(count, attempts)] if count == RECEIPTS && attempts >= 1 => Ok(()),
            _ => Err(format!("{rows:?}")),
        }
    })
    .await;
    // The attempt is counted when it starts; its failure reaches the order once the connection is refused.
    eventually(
        "the operator screen shows the failed ticket",
        LIMIT,
        || async {
            let snapshot: serde_json::Value = admin
                .get(format!("{base}/screens/snapshot"))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let first = &snapshot["orders"][0];
            if first["print_failed"] == true {
                Ok(())
            } else {
                Err(first.to_string())
            }
        },
    )
    .await;

    server.kill9();
    let sink = EscPosSink::start(port)
        .await
        .expect("the printer comes back on its port");
    let server = common::serve_on_port(&db, data.path(), server.port(), &envs).await;
    // "Print now" on the printers page ends the backoff (the session survived the restart).
    let woken = admin
        .post(format!("{base}/admin/printers/1/wake"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("POST /admin/printers/1/wake");
    assert_eq!(woken.status(), 303);

    let printed = eventually("every ticket prints after the restart", LIMIT, || async {
        let received = sink.received();
        if received.len() >= RECEIPTS as usize {
            Ok(received)
        } else {
            Err(format!("{} printed", received.len()))
        }
    })
    .await;
    let printed_numbers: Vec<String> = printed
        .iter()
        .flat_map(|job| decode(&job.bytes).expect("ESC/POS").numbers())
        .collect();
    let expected: Vec<String> = numbers.iter().map(|n| format!("№ {n}")).collect();
    assert_eq!(printed_numbers, expected, "each ticket once, in order");

    // Reprints: the operator's button and the device API.
    let order = common::order_id_by_number(&client, &base, numbers[2]).await;
    let reprinted = admin
        .post(format!("{base}/orders/{order}/reprint"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("POST /orders/{id}/reprint");
    assert_eq!(reprinted.status(), 200);
    let without_csrf = admin
        .post(format!("{base}/orders/{order}/reprint"))
        .send()
        .await
        .expect("POST /orders/{id}/reprint");
    assert_eq!(without_csrf.status(), 403, "a session needs its CSRF token");
    let by_device = client
        .post(format!("{base}/api/v1/orders/{order}/reprint"))
        .bearer_auth(DEVICE_KEY)
        .send()
        .await
        .expect("POST /api/v1/orders/{id}/reprint");
    assert_eq!(by_device.status(), 202);
    let again = eventually("both reprints print", LIMIT, || async {
        let received = sink.received();
        if received.len() >= RECEIPTS as usize + 2 {
            Ok(received)
        } else {
            Err(format!("{} printed", received.len()))
        }
    })
    .await;
    for job in &again[RECEIPTS as usize..] {
        assert_eq!(
            decode(&job.bytes).unwrap().numbers(),
            vec![format!("№ {}", numbers[2])]
        );
    }
    let status_page = admin
        .get(format!("{base}/admin/printers/status"))
        .send()
        .await
        .expect("GET /admin/printers/status")
        .text()
        .await
        .unwrap_or_default();
    assert!(status_page.contains(&address), "{status_page}");
    assert!(
        status_page.contains(r#"<td class="pending">0</td>"#),
        "{status_page}"
    );
    drop(server);
});
