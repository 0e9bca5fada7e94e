//! The order lifecycle through the staff routes: the flow table is enforced, every change is audited,
//! per-station readiness, roles, the public board, and retention.

mod common;

use common::*;
use tillwire_kitchen::Actor;
use tillwire_platform::Role;

/// Today's business day, so orders show on the screens.
fn today(app: &TestApp) -> String {
    app.kitchen.today().to_string()
}

async fn post_status(
    app: &TestApp,
    client: &reqwest::Client,
    csrf: &str,
    order_id: i64,
    next: i64,
) -> reqwest::Response {
    client
        .post(app.url(&format!("/orders/{order_id}/status")))
        .header("x-csrf-token", csrf)
        .form(&[("next_status", next.to_string())])
        .send()
        .await
        .expect("POST /orders/{id}/status")
}

async fn post_ready(
    app: &TestApp,
    client: &reqwest::Client,
    csrf: &str,
    order_id: i64,
    station_id: i64,
) -> reqwest::Response {
    client
        .post(app.url(&format!("/orders/{order_id}/stations/{station_id}/ready")))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .expect("POST /orders/{id}/stations/{sid}/ready")
}

fn system() -> Actor {
    Actor {
        user_id: None,
        name: "test".into(),
    }
}

tillwire_testkit::both_backends!(flow_table_is_enforced_and_audited, |db| async move {
    let app = start(&db).await;
    let day = today(&app);
    let number = app.import(&receipt(1, 1, &day, &[(PIZZA, 1.0)])).await;
    let order_id = app.order_id(&day, number).await;
    let (client, csrf, user_id) = app.user_client("operator", Role::Operator).await;

    // 1 → 3 is not in the flow table.
    let response = post_status(&app, &client, &csrf, order_id, 3).await;
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.expect("JSON error");
    assert_eq!(body["code"], "transition_not_allowed", "{body}");
    assert_eq!(
        app.kitchen
            .order_view(order_id)
            .await
            .expect("order")
            .status_id,
        1
    );
    // Neither is an unknown status.
    assert_eq!(
        post_status(&app, &client, &csrf, order_id, 99)
            .await
            .status(),
        409
    );

    // 1 → 2 is.
    let response = post_status(&app, &client, &csrf, order_id, 2).await;
    assert_eq!(response.status(), 200);
    let order: serde_json::Value = response.json().await.expect("order JSON");
    assert_eq!(order["status_id"], 2);
    assert_eq!(order["number"], number);
    // No way back, and no skipping a status twice.
    assert_eq!(
        post_status(&app, &client, &csrf, order_id, 1)
            .await
            .status(),
        409
    );
    assert_eq!(
        post_status(&app, &client, &csrf, order_id, 2)
            .await
            .status(),
        409
    );
    // 2 → 3, then nothing leads out of a finished status.
    assert_eq!(
        post_status(&app, &client, &csrf, order_id, 3)
            .await
            .status(),
        200
    );
    assert_eq!(
        post_status(&app, &client, &csrf, order_id, 4)
            .await
            .status(),
        409
    );
    assert_eq!(
        app.kitchen
            .order_view(order_id)
            .await
            .expect("order")
            .status_id,
        3
    );
    // An unknown order.
    assert_eq!(
        post_status(&app, &client, &csrf, order_id + 1000, 2)
            .await
            .status(),
        404
    );

    // Every change is in the audit log, with who and from/to; refused attempts are not.
    let log = app.kitchen.status_log(order_id).await.expect("status log");
    let entries: Vec<(Option<i64>, i64, Option<i64>, &str)> = log
        .iter()
        .map(|c| {
            (
                c.from_status_id,
                c.to_status_id,
                c.user_id,
                c.actor.as_str(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (None, 1, None, "import"),
            (Some(1), 2, Some(user_id), "operator"),
            (Some(2), 3, Some(user_id), "operator"),
        ]
    );
    assert!(log.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
});

tillwire_testkit::both_backends!(cancellation_paths, |db| async move {
    let app = start(&db).await;
    let day = today(&app);
    let first = app
        .order_id(
            &day,
            app.import(&receipt(1, 1, &day, &[(PIZZA, 1.0)])).await,
        )
        .await;
    let second = app
        .order_id(
            &day,
            app.import(&receipt(1, 2, &day, &[(PIZZA, 1.0)])).await,
        )
        .await;
    let (client, csrf, _) = app.user_client("operator", Role::Operator).await;
    // 1 → 4 and 2 → 4 are allowed.
    assert_eq!(
        post_status(&app, &client, &csrf, first, 4).await.status(),
        200
    );
    assert_eq!(
        post_status(&app, &client, &csrf, second, 2).await.status(),
        200
    );
    assert_eq!(
        post_status(&app, &client, &csrf, second, 4).await.status(),
        200
    );
    // A cancelled order stays cancelled.
    assert_eq!(
        post_status(&app, &client, &csrf, first, 2).await.status(),
        409
    );
    assert_eq!(
        post_status(&app, &client, &csrf, first, 1).await.status(),
        409
    );
});

tillwire_testkit::both_backends!(csrf_and_login_are_required, |db| async move {
    let app = start(&db).await;
    let day = today(&app);
    let order_id = app
        .order_id(
            &day,
            app.import(&receipt(1, 1, &day, &[(PIZZA, 1.0)])).await,
        )
        .await;
    let (client, csrf, _) = app.user_client("operator", Role::Operator).await;
    // Without the token, or with another one, the session cannot change anything.
    let response = client
        .post(app.url(&format!("/orders/{order_id}/status")))
        .form(&[("next_status", "2")])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 403);
    let response = client
        .post(app.url(&format!("/orders/{order_id}/status")))
        .header("x-csrf-token", format!("{csrf}x"))
        .form(&[("next_status", "2")])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 403);
    // The form field works as well as the header.
    let response = client
        .post(app.url(&format!("/orders/{order_id}/status")))
        .form(&[("next_status", "2"), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    // Without a session: no change either.
    let response = app
        .client
        .post(app.url(&format!("/orders/{order_id}/status")))
        .form(&[("next_status", "3")])
        .send()
        .await
        .expect("POST");
    assert!(
        response.status().is_redirection() || response.status() == 401,
        "anonymous status change got {}",
        response.status()
    );
    assert_eq!(
        app.kitchen
            .order_view(order_id)
            .await
            .expect("order")
            .status_id,
        2
    );
    assert_eq!(
        app.kitchen.status_log(order_id).await.expect("log").len(),
        2
    );
});

tillwire_testkit::both_backends!(order_is_ready_when_every_station_is, |db| async move {
    let app = start(&db).await;
    let day = today(&app);
    let number = app
        .import(&receipt(1, 1, &day, &[(PIZZA, 1.0), (SHAWARMA, 1.0)]))
        .await;
    let order_id = app.order_id(&day, number).await;
    let pizzeria = app.station_id("Пиццерия").await;
    let shawarma = app.station_id("Шаурма").await;
    let salads = app.station_id("Салаты").await;
    let order = app.kitchen.order_view(order_id).await.expect("order");
    let mut stations: Vec<i64> = order.stations.iter().map(|s| s.station_id).collect();
    stations.sort_unstable();
    let mut expected = vec![pizzeria, shawarma];
    expected.sort_unstable();
    assert_eq!(stations, expected);
    let (client, csrf, user_id) = app.user_client("cook", Role::Operator).await;

    let response = post_ready(&app, &client, &csrf, order_id, pizzeria).await;
    assert_eq!(response.status(), 200);
    let view: serde_json::Value = response.json().await.expect("order JSON");
    assert_eq!(view["status_id"], 1, "one station of two is not enough");
    // Marking the same station again changes nothing.
    assert_eq!(
        post_ready(&app, &client, &csrf, order_id, pizzeria)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.kitchen
            .order_view(order_id)
            .await
            .expect("order")
            .status_id,
        1
    );
    // A station the order does not involve.
    assert_eq!(
        post_ready(&app, &client, &csrf, order_id, salads)
            .await
            .status(),
        404
    );

    let response = post_ready(&app, &client, &csrf, order_id, shawarma).await;
    assert_eq!(response.status(), 200);
    let view: serde_json::Value = response.json().await.expect("order JSON");
    assert_eq!(view["status_id"], 2, "both stations ready → Готов");
    let order = app.kitchen.order_view(order_id).await.expect("order");
    assert_eq!(order.status_id, 2);
    assert!(order.stations.iter().all(|s| s.ready_ms.is_some()));
    let log = app.kitchen.status_log(order_id).await.expect("log");
    assert_eq!(log.len(), 2);
    assert_eq!((log[1].from_status_id, log[1].to_status_id), (Some(1), 2));
    assert_eq!(log[1].user_id, Some(user_id));
    assert_eq!(log[1].actor, "cook");

    // Single-station orders become ready with their only station.
    let number = app
        .import(&receipt(
            1,
            2,
            &day,
            &[(WOK_SAUCE, 1.0), (WOK_BUCKWHEAT, 1.0)],
        ))
        .await;
    let single = app.order_id(&day, number).await;
    let wok = app.station_id("Вок").await;
    assert_eq!(
        post_ready(&app, &client, &csrf, single, wok).await.status(),
        200
    );
    assert_eq!(
        app.kitchen
            .order_view(single)
            .await
            .expect("order")
            .status_id,
        2
    );

    // An order an operator already moved on is not pulled back by a late station.
    let number = app
        .import(&receipt(1, 3, &day, &[(PIZZA, 1.0), (SALAD, 1.0)]))
        .await;
    let moved = app.order_id(&day, number).await;
    assert_eq!(
        post_status(&app, &client, &csrf, moved, 4).await.status(),
        200
    );
    assert_eq!(
        post_ready(&app, &client, &csrf, moved, pizzeria)
            .await
            .status(),
        200
    );
    assert_eq!(
        post_ready(&app, &client, &csrf, moved, salads)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.kitchen
            .order_view(moved)
            .await
            .expect("order")
            .status_id,
        4
    );
});

tillwire_testkit::both_backends!(station_readiness_can_be_turned_off, |db| async move {
    let app = start_with(&db, |settings| {
        settings.set("kitchen.station_readiness", false)
    })
    .await;
    let day = today(&app);
    let number = app
        .import(&receipt(1, 1, &day, &[(PIZZA, 1.0), (SHAWARMA, 1.0)]))
        .await;
    let order_id = app.order_id(&day, number).await;
    let (client, csrf, _) = app.user_client("cook", Role::Operator).await;
    for station in ["Пиццерия", "Шаурма"] {
        let station_id = app.station_id(station).await;
        assert_eq!(
            post_ready(&app, &client, &csrf, order_id, station_id)
                .await
                .status(),
            200
        );
    }
    let order = app.kitchen.order_view(order_id).await.expect("order");
    assert!(
        order.stations.iter().all(|s| s.ready_ms.is_some()),
        "the parts are marked"
    );
    assert_eq!(order.status_id, 1, "but the order stays Готовится");
    assert_eq!(
        app.kitchen.status_log(order_id).await.expect("log").len(),
        1
    );
    // The operator moves it by hand.
    assert_eq!(
        post_status(&app, &client, &csrf, order_id, 2)
            .await
            .status(),
        200
    );
});

tillwire_testkit::both_backends!(viewer_cannot_change_orders, |db| async move {
    let app = start(&db).await;
    let day = today(&app);
    let number = app.import(&receipt(1, 1, &day, &[(PIZZA, 1.0)])).await;
    let order_id = app.order_id(&day, number).await;
    let (client, csrf, _) = app.user_client("viewer", Role::Viewer).await;
    // A viewer may look.
    let snapshot = client
        .get(app.url("/screens/snapshot"))
        .send()
        .await
        .expect("GET");
    assert_eq!(snapshot.status(), 200);
    // But not touch.
    assert_eq!(
        post_status(&app, &client, &csrf, order_id, 2)
            .await
            .status(),
        403
    );
    let pizzeria = app.station_id("Пиццерия").await;
    assert_eq!(
        post_ready(&app, &client, &csrf, order_id, pizzeria)
            .await
            .status(),
        403
    );
    let order = app.kitchen.order_view(order_id).await.expect("order");
    assert_eq!(order.status_id, 1);
    assert!(order.stations.iter().all(|s| s.ready_ms.is_none()));
    assert_eq!(
        app.kitchen.status_log(order_id).await.expect("log").len(),
        1
    );
    // An admin may.
    let (admin, admin_csrf, _) = app.user_client("boss", Role::Admin).await;
    assert_eq!(
        post_status(&app, &admin, &admin_csrf, order_id, 2)
            .await
            .status(),
        200
    );
});

tillwire_testkit::both_backends!(board_snapshot_is_public_without_wares, |db| async move {
    let app = start(&db).await;
    let day = today(&app);
    let cooking = app
        .import(&receipt(1, 1, &day, &[(PIZZA, 1.0), (SHAWARMA, 1.0)]))
        .await;
    let ready = app.import(&receipt(1, 2, &day, &[(SALAD, 1.0)])).await;
    let issued = app.import(&receipt(1, 3, &day, &[(WOK_SAUCE, 1.0)])).await;
    let ready_id = app.order_id(&day, ready).await;
    app.kitchen
        .change_status(ready_id, 2, &system())
        .await
        .expect("1 → 2");
    let issued_id = app.order_id(&day, issued).await;
    app.kitchen
        .change_status(issued_id, 2, &system())
        .await
        .expect("1 → 2");
    app.kitchen
        .change_status(issued_id, 3, &system())
        .await
        .expect("2 → 3");

    // No session at all.
    let response = app
        .client
        .get(app.url("/dashboard/snapshot"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    let snapshot: serde_json::Value = serde_json::from_str(&text).expect("snapshot JSON");
    let orders: Vec<(i64, i64)> = snapshot["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| {
            (
                o["number"].as_i64().expect("number"),
                o["status_id"].as_i64().expect("status"),
            )
        })
        .collect();
    assert_eq!(
        orders,
        [(cooking, 1), (ready, 2)],
        "finished orders leave the board"
    );
    assert_eq!(snapshot["day"], day);
    for secret in [
        "Пицца 4 сыра",
        "Шаурма св",
        "Салат оливье",
        "Вок остр",
        PIZZA,
        SHAWARMA,
        SALAD,
        "short_name",
        "Пиццерия",
    ] {
        assert!(
            !text.contains(secret),
            "the public board shows {secret:?}: {text}"
        );
    }
    // The staff snapshot, by contrast, needs a session.
    let response = app
        .client
        .get(app.url("/screens/snapshot"))
        .send()
        .await
        .expect("GET");
    assert_ne!(response.status(), 200);
    // The board page itself is public too.
    let response = app
        .client
        .get(app.url("/dashboard/"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
});

tillwire_testkit::both_backends!(purge_keeps_unfinished_and_numbering, |db| async move {
    let app = start(&db).await;
    let old = "2022-11-17";
    let newer = "2022-11-18";
    let issued = app.import(&receipt(1, 1, old, &[(PIZZA, 1.0)])).await;
    let cancelled = app
        .import(&receipt(1, 2, old, &[(PIZZA, 1.0), (SALAD, 1.0)]))
        .await;
    let cooking = app.import(&receipt(1, 3, old, &[(PIZZA, 1.0)])).await;
    let ready = app.import(&receipt(1, 4, old, &[(PIZZA, 1.0)])).await;
    let newer_issued = app.import(&receipt(1, 1, newer, &[(PIZZA, 1.0)])).await;
    assert_eq!(
        (issued, cancelled, cooking, ready, newer_issued),
        (1, 2, 3, 4, 1)
    );
    let issued_id = app.order_id(old, issued).await;
    app.kitchen
        .change_status(issued_id, 2, &system())
        .await
        .expect("1 → 2");
    app.kitchen
        .change_status(issued_id, 3, &system())
        .await
        .expect("2 → 3");
    app.kitchen
        .change_status(app.order_id(old, cancelled).await, 4, &system())
        .await
        .expect("1 → 4");
    app.kitchen
        .change_status(app.order_id(old, ready).await, 2, &system())
        .await
        .expect("1 → 2");
    let newer_id = app.order_id(newer, newer_issued).await;
    app.kitchen
        .change_status(newer_id, 2, &system())
        .await
        .expect("1 → 2");
    app.kitchen
        .change_status(newer_id, 3, &system())
        .await
        .expect("2 → 3");

    let report = app.kitchen.purge_finished(day(newer)).await.expect("purge");
    assert_eq!(
        report.orders, 2,
        "the issued and the cancelled order of the old day"
    );
    let remaining: Vec<(String, i64)> = {
        let mut all = Vec::new();
        for d in [old, newer] {
            for order in app
                .kitchen
                .order_views(app.unit().await, day(d), false)
                .await
                .expect("orders")
            {
                all.push((order.business_day, order.number));
            }
        }
        all
    };
    assert_eq!(
        remaining,
        [
            (old.to_owned(), cooking),
            (old.to_owned(), ready),
            (newer.to_owned(), newer_issued)
        ]
    );
    // Their lines, stations and audit entries went with them.
    assert_eq!(app.count("order_lines").await, 3);
    assert_eq!(app.count("order_stations").await, 3);
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM order_status_log WHERE order_id = {issued_id}"
        ))
        .await,
        0
    );

    // The old day's numbering continues where it was: no number repeats.
    assert_eq!(app.import(&receipt(1, 5, old, &[(PIZZA, 1.0)])).await, 5);
    assert_eq!(app.import(&receipt(1, 2, newer, &[(PIZZA, 1.0)])).await, 2);
    let numbers: Vec<i64> = app
        .kitchen
        .order_views(app.unit().await, day(old), false)
        .await
        .expect("orders")
        .iter()
        .map(|o| o.number)
        .collect();
    assert_eq!(numbers, [cooking, ready, 5]);

    // Purging again with the same cut-off finds nothing more.
    assert_eq!(
        app.kitchen
            .purge_finished(day(newer))
            .await
            .expect("purge")
            .orders,
        0
    );
});

/// Reads a server-sent-event stream until it holds an event named `name`; returns that event's data.
async fn next_sse(response: &mut reqwest::Response, buffer: &mut String, name: &str) -> String {
    let wanted = format!("event: {name}\n");
    let found = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                if let Some(at) = event.find(&wanted) {
                    let data: Vec<&str> = event[at..]
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:")))
                        .collect();
                    return data.join("\n");
                }
            }
            let chunk = response
                .chunk()
                .await
                .expect("read the stream")
                .expect("the stream stays open");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {name} event arrived; buffered: {buffer}"))
}

tillwire_testkit::both_backends!(live_streams_follow_changes, |db| async move {
    let app = start(&db).await;
    let day = today(&app);
    let mut board = app
        .client
        .get(app.url("/dashboard/events"))
        .send()
        .await
        .expect("GET /dashboard/events");
    assert_eq!(board.status(), 200);
    let mut board_buffer = String::new();
    let snapshot = next_sse(&mut board, &mut board_buffer, "snapshot").await;
    assert!(snapshot.contains(r#""orders":[]"#), "{snapshot}");

    let (staff_client, _, _) = app.user_client("operator", Role::Operator).await;
    let mut staff = staff_client
        .get(app.url("/screens/events"))
        .send()
        .await
        .expect("GET /screens/events");
    assert_eq!(staff.status(), 200);
    let mut staff_buffer = String::new();
    next_sse(&mut staff, &mut staff_buffer, "snapshot").await;

    let number = app
        .import(&receipt(1, 1, &day, &[(PIZZA, 1.0), (SHAWARMA, 1.0)]))
        .await;
    let public: serde_json::Value =
        serde_json::from_str(&next_sse(&mut board, &mut board_buffer, "order").await)
            .expect("order JSON");
    assert_eq!(public["number"], number);
    assert_eq!(public["status_id"], 1);
    let text = public.to_string();
    for secret in ["Пицца 4 сыра", "Шаурма св", PIZZA, SHAWARMA] {
        assert!(
            !text.contains(secret),
            "the board stream shows {secret:?}: {text}"
        );
    }
    let staff_view: serde_json::Value =
        serde_json::from_str(&next_sse(&mut staff, &mut staff_buffer, "order").await)
            .expect("order JSON");
    assert_eq!(staff_view["number"], number);
    assert_eq!(
        staff_view["lines"].as_array().map(Vec::len),
        Some(2),
        "{staff_view}"
    );
    assert_eq!(
        staff_view["stations"].as_array().map(Vec::len),
        Some(2),
        "{staff_view}"
    );

    // A status change reaches both.
    let order_id = app.order_id(&day, number).await;
    app.kitchen
        .change_status(order_id, 2, &system())
        .await
        .expect("1 → 2");
    let public: serde_json::Value =
        serde_json::from_str(&next_sse(&mut board, &mut board_buffer, "order").await)
            .expect("order JSON");
    assert_eq!(
        (public["id"].as_i64(), public["status_id"].as_i64()),
        (Some(order_id), Some(2))
    );
    let staff_view: serde_json::Value =
        serde_json::from_str(&next_sse(&mut staff, &mut staff_buffer, "order").await)
            .expect("order JSON");
    assert_eq!(staff_view["status_id"], 2);
});
