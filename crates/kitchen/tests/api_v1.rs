//! The JSON API under `/api/v1/`: device keys as bearer tokens, real status codes, the business day from
//! `sold_at`, unit scoping, and flow enforcement.

mod common;

use common::*;
use serde_json::{Value, json};
use tillwire_units::{ApiKeys, UnitId, UnitName, Units};

/// The app in a fixed time zone, so business days do not depend on the machine.
async fn start_utc(db: &tillwire_testkit::TestDatabase) -> TestApp {
    start_with(db, |settings| {
        settings.timezone = Some("UTC".parse().expect("UTC is a zone"));
    })
    .await
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn receipt_json(cash: i64, shift: i64, number: i64, sold_at: &str, lines: &[(&str, f64)]) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(code, quantity)| json!({"code": code, "quantity": quantity}))
        .collect();
    json!({"cash_register": cash, "shift": shift, "receipt": number, "sold_at": sold_at, "lines": lines})
}

impl TestApp {
    async fn api_post(&self, path: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(key) = key {
            request = request.header("authorization", bearer(key));
        }
        let response = request.send().await.expect("POST");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path} → {status} {text:?}: {e}"));
        (status, value)
    }

    async fn api_get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut request = self.client.get(self.url(path));
        if let Some(key) = key {
            request = request.header("authorization", bearer(key));
        }
        let response = request.send().await.expect("GET");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path} → {status} {text:?}: {e}"));
        (status, value)
    }

    async fn post_receipt(&self, key: &str, body: &Value) -> (u16, Value) {
        self.api_post("/api/v1/receipts", Some(key), body).await
    }

    /// A second unit with one station, register 1 and the pizza ware, and a device key for it.
    async fn second_unit(&self) -> (UnitId, String) {
        let store = &self.platform.store;
        let unit = Units(store)
            .create(&UnitName::parse("Второй магазин").expect("name"))
            .await
            .expect("create unit");
        let u = unit.0;
        self.exec(&format!(
            "INSERT INTO stations (unit_id, name, created_ms) VALUES ({u}, 'Пиццерия', 0)"
        ))
        .await;
        let station = self
            .scalar(&format!("SELECT id FROM stations WHERE unit_id = {u}"))
            .await;
        self.exec(&format!(
            "INSERT INTO cash_registers (unit_id, number, name, created_ms) VALUES ({u}, 1, 'Касса №1', 0)"
        ))
        .await;
        self.exec(&format!(
            "INSERT INTO wares (unit_id, code, full_name, short_name, station_id, catch_quantity, created_ms)
             VALUES ({u}, '{PIZZA}', 'Пицца', 'Пицца', {station}, 1, 0)"
        ))
        .await;
        let key = ApiKeys(store)
            .issue(unit, "till", "test")
            .await
            .expect("issue key");
        (unit, key.plain)
    }
}

const NOON: &str = "2026-03-10T12:00:00Z";
const DAY: &str = "2026-03-10";

tillwire_testkit::both_backends!(receipt_created_then_conflict, |db| async move {
    let app = start_utc(&db).await;
    let body = receipt_json(1, 1, 1, NOON, &[(PIZZA, 2.0), (WOK_SAUCE, 1.0)]);
    let (status, created) = app.post_receipt(API_KEY, &body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["registered"], true);
    assert_eq!(created["number"], 1);
    assert_eq!(created["stations"], 2);
    assert_eq!(created["business_day"], DAY);
    let order_id = created["order_id"].as_i64().expect("order id");
    let order = app.kitchen.order_view(order_id).await.expect("order");
    assert_eq!(
        (order.number, order.business_day.as_str(), order.status_id),
        (1, DAY, 1)
    );

    // The same receipt again.
    let (status, error) = app.post_receipt(API_KEY, &body).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["code"], "receipt_already_imported", "{error}");
    assert_eq!(app.count("orders").await, 1);

    // The next one continues the unit's numbering, shared with the legacy endpoint; fractions are kept.
    app.exec(&format!(
        "UPDATE wares SET catch_quantity = 0.25 WHERE code = '{SALAD}'"
    ))
    .await;
    let (status, next) = app
        .post_receipt(API_KEY, &receipt_json(1, 1, 2, NOON, &[(SALAD, 0.5)]))
        .await;
    assert_eq!((status, next["number"].as_i64()), (201, Some(2)), "{next}");
    let order = app
        .kitchen
        .order_view(next["order_id"].as_i64().expect("id"))
        .await
        .expect("order");
    assert_eq!(order.lines[0].quantity, 0.5);
    assert_eq!(
        app.legacy(receipt(2, 1, DAY, &[(PIZZA, 1.0)])).await,
        legacy_text(3, 1, "")
    );
});

tillwire_testkit::both_backends!(nothing_to_register_is_200, |db| async move {
    let app = start_utc(&db).await;
    for lines in [vec![("99999", 1.0)], vec![], vec![(PIZZA, 0.5)]] {
        let (status, reply) = app
            .post_receipt(API_KEY, &receipt_json(1, 1, 1, NOON, &lines))
            .await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["registered"], false);
        assert_eq!(reply["number"], Value::Null);
        assert_eq!(reply["order_id"], Value::Null);
        assert_eq!(reply["stations"], 0);
    }
    assert_eq!(app.count("orders").await, 0);
    assert_eq!(app.count("imported_receipts").await, 0);
    // No claim was made, so the same receipt may register later.
    let (status, reply) = app
        .post_receipt(API_KEY, &receipt_json(1, 1, 1, NOON, &[(PIZZA, 1.0)]))
        .await;
    assert_eq!(
        (status, reply["number"].as_i64()),
        (201, Some(1)),
        "{reply}"
    );
});

tillwire_testkit::both_backends!(device_key_is_required, |db| async move {
    let app = start_utc(&db).await;
    let body = receipt_json(1, 1, 1, NOON, &[(PIZZA, 1.0)]);
    for key in [None, Some("wrong"), Some("")] {
        let (status, reply) = app.api_post("/api/v1/receipts", key, &body).await;
        assert_eq!(status, 401, "{key:?}: {reply}");
        let (status, _) = app.api_get(&format!("/api/v1/orders?day={DAY}"), key).await;
        assert_eq!(status, 401, "{key:?}");
        let (status, _) = app.api_get("/api/v1/workflow", key).await;
        assert_eq!(status, 401, "{key:?}");
    }
    // The key in ELQ's header, or another scheme, is not a bearer token.
    let response = app
        .client
        .post(app.url("/api/v1/receipts"))
        .header("key", API_KEY)
        .json(&body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 401);
    let response = app
        .client
        .post(app.url("/api/v1/receipts"))
        .header("authorization", format!("Basic {API_KEY}"))
        .json(&body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 401);
    assert_eq!(app.count("orders").await, 0);

    // An issued key works; revoked, it does not.
    let issued = ApiKeys(&app.platform.store)
        .issue(app.unit().await, "till", "test")
        .await
        .expect("issue");
    let (status, reply) = app.post_receipt(&issued.plain, &body).await;
    assert_eq!(status, 201, "{reply}");
    ApiKeys(&app.platform.store)
        .revoke(issued.id, "test")
        .await
        .expect("revoke");
    let (status, _) = app
        .post_receipt(&issued.plain, &receipt_json(1, 1, 2, NOON, &[(PIZZA, 1.0)]))
        .await;
    assert_eq!(status, 401);
    let (status, _) = app.api_get("/api/v1/workflow", Some(&issued.plain)).await;
    assert_eq!(status, 401);
    let (status, workflow) = app.api_get("/api/v1/workflow", Some(API_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(workflow["statuses"].as_array().map(Vec::len), Some(4));
    assert_eq!(app.count("orders").await, 1);
});

tillwire_testkit::both_backends!(unknown_register_and_bad_lines_are_422, |db| async move {
    let app = start_utc(&db).await;
    let (status, reply) = app
        .post_receipt(API_KEY, &receipt_json(9, 1, 1, NOON, &[(PIZZA, 1.0)]))
        .await;
    assert_eq!(status, 422, "{reply}");
    assert_eq!(
        reply["fields"]["cash_register"], "неизвестная касса 9",
        "the field, in the reader's language (Russian without a choice): {reply}"
    );
    for quantity in [0.0, -1.0, 1e7, 1e308] {
        let (status, reply) = app
            .post_receipt(
                API_KEY,
                &receipt_json(1, 1, 1, NOON, &[(PIZZA, 1.0), (SALAD, quantity)]),
            )
            .await;
        assert_eq!(status, 422, "{quantity}: {reply}");
        assert!(
            reply["fields"]["lines[1].quantity"].is_string(),
            "the bad line's field is named: {reply}"
        );
    }
    // The cap holds for one ware's lines together, since they become one order line.
    let (status, reply) = app
        .post_receipt(
            API_KEY,
            &receipt_json(1, 1, 1, NOON, &[(PIZZA, 600_000.0), (PIZZA, 400_001.0)]),
        )
        .await;
    assert_eq!(status, 422, "{reply}");
    assert_eq!(
        reply["fields"]["lines"],
        format!("товар {PIZZA}: всего в чеке не больше 1000000"),
        "{reply}"
    );
    let long_code = "7".repeat(65);
    for code in ["", "   ", long_code.as_str(), "48\n566"] {
        let (status, reply) = app
            .post_receipt(API_KEY, &receipt_json(1, 1, 1, NOON, &[(code, 1.0)]))
            .await;
        assert_eq!(status, 422, "{code:?}: {reply}");
    }
    let mut bad_day = receipt_json(1, 1, 1, NOON, &[(PIZZA, 1.0)]);
    bad_day["shift_opened_on"] = json!("10.03.2026");
    assert_eq!(app.post_receipt(API_KEY, &bad_day).await.0, 422);
    let mut bad_time = receipt_json(1, 1, 1, "yesterday", &[(PIZZA, 1.0)]);
    assert_eq!(app.post_receipt(API_KEY, &bad_time).await.0, 422);
    bad_time["sold_at"] = json!("2026-03-10 12:00:00");
    assert_eq!(app.post_receipt(API_KEY, &bad_time).await.0, 422);
    assert_eq!(app.count("orders").await, 0);
    assert_eq!(app.count("imported_receipts").await, 0);
    assert_eq!(app.count("day_counters").await, 0);
});

tillwire_testkit::both_backends!(malformed_json_is_a_client_error, |db| async move {
    let app = start_utc(&db).await;
    let raw_bodies = [
        "",
        "{",
        "not json",
        "[]",
        "null",
        "42",
        r#"{"cash_register": 1}"#,
        r#"{"cash_register": "1", "shift": 1, "receipt": 1, "lines": []}"#,
        r#"{"cash_register": 1, "shift": 1, "receipt": 1, "lines": [], "extra": true}"#,
        r#"{"cash_register": 1, "shift": 1, "receipt": 1, "lines": [{"code": "48566"}]}"#,
        r#"{"cash_register": 1, "shift": 1, "receipt": 1, "lines": [{"code": "48566", "quantity": 1, "price": 5}]}"#,
        r#"{"cash_register": 1, "shift": 1, "receipt": 1, "lines": [{"code": "48566", "quantity": null}]}"#,
        r#"{"cash_register": 1, "shift": 1, "receipt": 1, "lines": [{"code": "48566", "quantity": 1e400}]}"#,
        r#"{"cash_register": 99999999999999999999, "shift": 1, "receipt": 1, "lines": []}"#,
        r#"{"cash_register": 1, "shift": 1.5, "receipt": 1, "lines": []}"#,
        r#"{"cash_register": 1, "shift": 1, "receipt": 1, "lines": {}}"#,
    ];
    for body in raw_bodies {
        for content_type in [Some("application/json"), None] {
            let mut request = app
                .client
                .post(app.url("/api/v1/receipts"))
                .header("authorization", bearer(API_KEY))
                .body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.expect("POST");
            let status = response.status().as_u16();
            let text = response.text().await.expect("body");
            assert!(
                matches!(status, 400 | 415 | 422),
                "{body:?} ({content_type:?}) → {status} {text}"
            );
            if content_type.is_some() {
                assert!(matches!(status, 400 | 422), "{body:?} → {status}");
            }
            let error: Value = serde_json::from_str(&text).expect("a JSON error body");
            assert!(error["error"].is_string(), "{text}");
        }
    }
    // Other endpoints too.
    let (status, _) = app
        .api_post(
            "/api/v1/orders/1/status",
            Some(API_KEY),
            &json!({"status": 2}),
        )
        .await;
    assert!(matches!(status, 400 | 404 | 422), "{status}");
    assert_eq!(app.count("orders").await, 0);
});

tillwire_testkit::both_backends!(sold_at_decides_the_business_day, |db| async move {
    let app = start_utc(&db).await;
    // Rollover at 04:00 (the default): a sale at 03:59 belongs to the day before.
    let cases = [
        (1, "2026-03-10T03:59:59Z", "2026-03-09", 1),
        (2, "2026-03-10T04:00:00Z", "2026-03-10", 1),
        (3, "2026-03-10T06:30:00+03:00", "2026-03-09", 2),
        (4, "2026-03-10T23:59:00Z", "2026-03-10", 2),
        (5, "2026-03-11T01:00:00Z", "2026-03-10", 3),
    ];
    for (number, sold_at, business_day, expected) in cases {
        let (status, reply) = app
            .post_receipt(
                API_KEY,
                &receipt_json(1, 1, number, sold_at, &[(PIZZA, 1.0)]),
            )
            .await;
        assert_eq!(status, 201, "{sold_at}: {reply}");
        assert_eq!(reply["business_day"], business_day, "{sold_at}");
        assert_eq!(reply["number"], expected, "{sold_at}");
        let order = app
            .kitchen
            .order_view(reply["order_id"].as_i64().expect("id"))
            .await
            .expect("order");
        assert_eq!(order.business_day, business_day);
    }
    let (status, orders) = app
        .api_get("/api/v1/orders?day=2026-03-09", Some(API_KEY))
        .await;
    assert_eq!(status, 200);
    let numbers: Vec<i64> = orders
        .as_array()
        .expect("list")
        .iter()
        .map(|o| o["number"].as_i64().expect("n"))
        .collect();
    assert_eq!(numbers, [1, 2]);
    // The receipt's identity defaults to its business day, so receipt 1 of the shift opened on 03-10 is new.
    let mut body = receipt_json(1, 1, 1, "2026-03-10T12:00:00Z", &[(PIZZA, 1.0)]);
    body["shift_opened_on"] = json!("2026-03-10");
    let (status, reply) = app.post_receipt(API_KEY, &body).await;
    assert_eq!(
        (status, reply["number"].as_i64()),
        (201, Some(4)),
        "{reply}"
    );
    // The same receipt of the shift opened on 03-09 is the first one again.
    body["shift_opened_on"] = json!("2026-03-09");
    let (status, _) = app.post_receipt(API_KEY, &body).await;
    assert_eq!(status, 409);
});

tillwire_testkit::both_backends!(rollover_follows_the_configured_zone, |db| async move {
    let app = start_with(&db, |settings| {
        settings.timezone = Some("Europe/Moscow".parse().expect("a zone"));
    })
    .await;
    for (number, sold_at, business_day) in [
        (1, "2026-03-10T00:59:00Z", "2026-03-09"), // 03:59 in Moscow
        (2, "2026-03-10T01:00:00Z", "2026-03-10"), // 04:00 in Moscow
        (3, "2026-03-09T22:00:00Z", "2026-03-09"), // 01:00 on 03-10 in Moscow
    ] {
        let (status, reply) = app
            .post_receipt(
                API_KEY,
                &receipt_json(1, 1, number, sold_at, &[(PIZZA, 1.0)]),
            )
            .await;
        assert_eq!(status, 201, "{reply}");
        assert_eq!(reply["business_day"], business_day, "{sold_at}");
    }
});

tillwire_testkit::both_backends!(
    rollover_follows_the_wall_clock_across_dst,
    |db| async move {
        let app = start_with(&db, |settings| {
            settings.timezone = Some("Europe/Berlin".parse().expect("a zone"));
        })
        .await;
        for (number, sold_at, business_day) in [
            // 2026-03-29: clocks jump from 02:00 to 03:00 CET → CEST.
            (1, "2026-03-29T01:59:00Z", "2026-03-28"), // 03:59 CEST
            (2, "2026-03-29T02:00:00Z", "2026-03-29"), // 04:00 CEST
            (3, "2026-03-29T02:30:00Z", "2026-03-29"), // 04:30 CEST
            // 2026-10-25: clocks fall back from 03:00 CEST to 02:00 CET.
            (4, "2026-10-25T02:30:00Z", "2026-10-24"), // 03:30 CET
            (5, "2026-10-25T02:59:00Z", "2026-10-24"), // 03:59 CET
            (6, "2026-10-25T03:00:00Z", "2026-10-25"), // 04:00 CET
        ] {
            let (status, reply) = app
                .post_receipt(
                    API_KEY,
                    &receipt_json(1, 1, number, sold_at, &[(PIZZA, 1.0)]),
                )
                .await;
            assert_eq!(status, 201, "{reply}");
            assert_eq!(reply["business_day"], business_day, "{sold_at}");
        }
    }
);

tillwire_testkit::both_backends!(orders_are_scoped_to_the_key_unit, |db| async move {
    let app = start_utc(&db).await;
    let (_, created) = app
        .post_receipt(
            API_KEY,
            &receipt_json(1, 1, 1, NOON, &[(PIZZA, 2.0), (SHAWARMA, 1.0)]),
        )
        .await;
    let order_id = created["order_id"].as_i64().expect("id");
    let (status, order) = app
        .api_get(&format!("/api/v1/orders/{order_id}"), Some(API_KEY))
        .await;
    assert_eq!(status, 200);
    assert_eq!(order["number"], 1);
    assert_eq!(order["lines"].as_array().map(Vec::len), Some(2));
    assert_eq!(order["stations"].as_array().map(Vec::len), Some(2));
    let (status, _) = app
        .api_get(&format!("/api/v1/orders/{}", order_id + 100), Some(API_KEY))
        .await;
    assert_eq!(status, 404);

    // Another unit's key cannot see, move or read the history of this order.
    let pizzeria = app.station_id("Пиццерия").await;
    let (other_unit, other_key) = app.second_unit().await;
    let (status, _) = app
        .api_get(&format!("/api/v1/orders/{order_id}"), Some(&other_key))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .api_post(
            &format!("/api/v1/orders/{order_id}/status"),
            Some(&other_key),
            &json!({"status_id": 2}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .api_get(
            &format!("/api/v1/orders/{order_id}/history"),
            Some(&other_key),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .api_post(
            &format!("/api/v1/orders/{order_id}/stations/{pizzeria}/ready"),
            Some(&other_key),
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        app.kitchen
            .order_view(order_id)
            .await
            .expect("order")
            .status_id,
        1
    );

    // The other unit numbers its own orders, and the same till receipt identity is its own.
    let (status, theirs) = app
        .post_receipt(&other_key, &receipt_json(1, 1, 1, NOON, &[(PIZZA, 1.0)]))
        .await;
    assert_eq!(status, 201, "{theirs}");
    assert_eq!(theirs["number"], 1);
    let (_, ours) = app
        .api_get(&format!("/api/v1/orders?day={DAY}"), Some(API_KEY))
        .await;
    let (_, listed) = app
        .api_get(&format!("/api/v1/orders?day={DAY}"), Some(&other_key))
        .await;
    let ids = |list: &Value| -> Vec<i64> {
        list.as_array()
            .expect("list")
            .iter()
            .map(|o| o["id"].as_i64().expect("id"))
            .collect()
    };
    assert_eq!(ids(&ours), [order_id]);
    assert_eq!(ids(&listed), [theirs["order_id"].as_i64().expect("id")]);
    assert!(listed[0]["unit_id"] == other_unit.0);
    // A bad day is a client error.
    let (status, _) = app
        .api_get("/api/v1/orders?day=10.03.2026", Some(API_KEY))
        .await;
    assert_eq!(status, 422);
});

tillwire_testkit::both_backends!(status_changes_follow_the_flow, |db| async move {
    let app = start_utc(&db).await;
    let (_, created) = app
        .post_receipt(
            API_KEY,
            &receipt_json(1, 1, 1, NOON, &[(PIZZA, 1.0), (SALAD, 1.0)]),
        )
        .await;
    let order_id = created["order_id"].as_i64().expect("id");
    let status_path = format!("/api/v1/orders/{order_id}/status");

    let (status, reply) = app
        .api_post(&status_path, Some(API_KEY), &json!({"status_id": 3}))
        .await;
    assert_eq!(status, 409, "{reply}");
    let (status, reply) = app
        .api_post(&status_path, Some(API_KEY), &json!({"status_id": 2}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["status_id"], 2);
    let (status, _) = app
        .api_post(&status_path, Some(API_KEY), &json!({"status_id": 2}))
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .api_post(&status_path, Some(API_KEY), &json!({"status_id": "3"}))
        .await;
    assert_eq!(status, 422);
    let (status, _) = app
        .api_post(&status_path, None, &json!({"status_id": 3}))
        .await;
    assert_eq!(status, 401);
    // A client that says which status it saw the order in is refused once the order has moved on (here it is in
    // 2, not 1): a repeated tap cannot skip a status.
    let (status, reply) = app
        .api_post(
            &status_path,
            Some(API_KEY),
            &json!({"status_id": 3, "from_status_id": 1}),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
    assert_eq!(reply["error"], "Заказ уже перешёл в другой статус.");
    let (status, reply) = app
        .api_post(&status_path, Some(API_KEY), &json!({"status_id": 3}))
        .await;
    assert_eq!(status, 200, "{reply}");
    let (status, _) = app
        .api_post(
            "/api/v1/orders/999999/status",
            Some(API_KEY),
            &json!({"status_id": 2}),
        )
        .await;
    assert_eq!(status, 404);

    let (status, history) = app
        .api_get(&format!("/api/v1/orders/{order_id}/history"), Some(API_KEY))
        .await;
    assert_eq!(status, 200);
    let changes: Vec<(Value, Value, Value)> = history
        .as_array()
        .expect("list")
        .iter()
        .map(|c| {
            (
                c["from_status_id"].clone(),
                c["to_status_id"].clone(),
                c["actor"].clone(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (Value::Null, json!(1), json!("import")),
            (json!(1), json!(2), json!("api")),
            (json!(2), json!(3), json!("api")),
        ]
    );

    // Station readiness through the API moves a two-station order once both are ready.
    let (_, created) = app
        .post_receipt(
            API_KEY,
            &receipt_json(1, 1, 2, NOON, &[(PIZZA, 1.0), (SALAD, 1.0)]),
        )
        .await;
    let second = created["order_id"].as_i64().expect("id");
    let pizzeria = app.station_id("Пиццерия").await;
    let salads = app.station_id("Салаты").await;
    let ready = |station: i64| format!("/api/v1/orders/{second}/stations/{station}/ready");
    let (status, reply) = app
        .api_post(&ready(pizzeria), Some(API_KEY), &json!({}))
        .await;
    assert_eq!(
        (status, reply["status_id"].as_i64()),
        (200, Some(1)),
        "{reply}"
    );
    let (status, reply) = app
        .api_post(&ready(salads), Some(API_KEY), &json!({}))
        .await;
    assert_eq!(
        (status, reply["status_id"].as_i64()),
        (200, Some(2)),
        "{reply}"
    );
    let wok = app.station_id("Вок").await;
    let (status, _) = app.api_post(&ready(wok), Some(API_KEY), &json!({})).await;
    assert_eq!(status, 404);
});

/// One business day of the default unit, in UTC with the rollover at 04:00, with every instant known:
///
/// | order | placed (UTC)   | wares              | stations ready (min)   | reaches (min)            | to ready |
/// |-------|----------------|--------------------|------------------------|--------------------------|----------|
/// | A     | 10:00          | pizza, wok sauce   | Пиццерия 4, Вок 6      | ready 6, handed out 10   | 360 s    |
/// | B     | 10:30          | pizza              | Пиццерия 10            | ready 10 (and 20 again)  | 600 s    |
/// | C     | 11:15          | salad              | —                      | ready 2                  | 120 s    |
/// | D     | 11:40          | shawarma           | —                      | cancelled 1              | —        |
/// | E     | 11:50          | wok buckwheat      | Вок 5                  | ready 15                 | 900 s    |
/// | F     | 01:30 next day | pizza              | —                      | —                        | —        |
///
/// plus an order at 03:00 (the day before's business day) and one of another unit, neither counted.
async fn a_timed_day(app: &TestApp) {
    let today = day(DAY);
    let at = |time: &str| ms(&format!("{DAY}T{time}:00Z"));
    let k = &app.kitchen;
    place_timed_order(
        k,
        today,
        1,
        at("10:00"),
        &[PIZZA, WOK_SAUCE],
        &[("Пиццерия", 4), ("Вок", 6)],
        &[(2, 6), (3, 10)],
    )
    .await;
    let b = place_timed_order(
        k,
        today,
        2,
        at("10:30"),
        &[PIZZA],
        &[("Пиццерия", 10)],
        &[(2, 10)],
    )
    .await;
    // Only the first arrival at ready counts.
    app.exec(&format!(
        "INSERT INTO order_status_log (order_id, from_status_id, to_status_id, actor, at_ms)
         VALUES ({b}, 1, 2, 'test', {})",
        at("10:50")
    ))
    .await;
    place_timed_order(k, today, 3, at("11:15"), &[SALAD], &[], &[(2, 2)]).await;
    place_timed_order(k, today, 4, at("11:40"), &[SHAWARMA], &[], &[(4, 1)]).await;
    place_timed_order(
        k,
        today,
        5,
        at("11:50"),
        &[WOK_BUCKWHEAT],
        &[("Вок", 5)],
        &[(2, 15)],
    )
    .await;
    let next_night = ms("2026-03-11T01:30:00Z");
    place_timed_order(k, today, 6, next_night, &[PIZZA], &[], &[]).await;
    let early = ms("2026-03-10T03:00:00Z");
    place_timed_order(k, day("2026-03-09"), 7, early, &[PIZZA], &[], &[(2, 1)]).await;
}

tillwire_testkit::both_backends!(prep_time_statistics, |db| async move {
    let app = start_utc(&db).await;
    let (other_unit, other_key) = app.second_unit().await;
    let (status, _) = app
        .post_receipt(&other_key, &receipt_json(1, 1, 1, NOON, &[(PIZZA, 1.0)]))
        .await;
    assert_eq!(status, 201);
    a_timed_day(&app).await;
    let unit = app.unit().await.0;

    let (status, stats) = app
        .api_get(
            &format!("/api/v1/stats/prep-times?day={DAY}"),
            Some(API_KEY),
        )
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["unit_id"], unit);
    assert_eq!(stats["day"], DAY);
    assert_eq!(
        (&stats["orders"], &stats["ready"], &stats["cancelled"]),
        (&json!(6), &json!(4), &json!(1)),
        "{stats}"
    );
    // To ready: 120, 360, 600, 900 s: average 495, p90 the ⌈3.6⌉ = 4th.
    assert_eq!(stats["average_seconds"], json!(495.0), "{stats}");
    assert_eq!(stats["p90_seconds"], json!(900.0), "{stats}");

    let stations: Vec<(String, i64, Value, Value)> = stats["stations"]
        .as_array()
        .expect("stations")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_owned(),
                s["orders"].as_i64().expect("orders"),
                s["average_seconds"].clone(),
                s["p90_seconds"].clone(),
            )
        })
        .collect();
    let station = |name: &str| {
        stations
            .iter()
            .find(|s| s.0 == name)
            .map(|s| (s.1, s.2.clone(), s.3.clone()))
            .unwrap_or_else(|| panic!("no {name} in {stations:?}"))
    };
    assert_eq!(stations.len(), 4, "every station of the unit: {stations:?}");
    assert_eq!(station("Пиццерия"), (3, json!(420.0), json!(600.0)));
    assert_eq!(station("Вок"), (2, json!(330.0), json!(360.0)));
    assert_eq!(station("Салаты"), (1, Value::Null, Value::Null));
    assert_eq!(station("Шаурма"), (1, Value::Null, Value::Null));
    let pizzeria = app.station_id("Пиццерия").await;
    assert!(
        stats["stations"]
            .as_array()
            .expect("stations")
            .iter()
            .any(|s| s["station_id"] == pizzeria && s["name"] == "Пиццерия"),
        "{stats}"
    );

    // 10:00 to 01:00 the next night, in the business day's order; hours without orders in between are zeros.
    let hours = stats["hours"].as_array().expect("hours");
    let hour_numbers: Vec<i64> = hours
        .iter()
        .map(|h| h["hour"].as_i64().expect("hour"))
        .collect();
    let mut expected: Vec<i64> = (10..24).collect();
    expected.extend([0, 1]);
    assert_eq!(hour_numbers, expected);
    assert_eq!(
        hours[0],
        json!({"hour": 10, "orders": 2, "average_seconds": 480.0, "p90_seconds": 600.0})
    );
    assert_eq!(
        hours[1],
        json!({"hour": 11, "orders": 3, "average_seconds": 510.0, "p90_seconds": 900.0})
    );
    assert_eq!(
        hours[2],
        json!({"hour": 12, "orders": 0, "average_seconds": null, "p90_seconds": null})
    );
    assert_eq!(
        hours[15],
        json!({"hour": 1, "orders": 1, "average_seconds": null, "p90_seconds": null})
    );

    // The day before holds the 03:00 order only; a day without orders is all zeros and nulls.
    let (_, before) = app
        .api_get("/api/v1/stats/prep-times?day=2026-03-09", Some(API_KEY))
        .await;
    assert_eq!(
        (&before["orders"], &before["average_seconds"]),
        (&json!(1), &json!(60.0))
    );
    let (status, empty) = app
        .api_get("/api/v1/stats/prep-times?day=2026-03-01", Some(API_KEY))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            &empty["orders"],
            &empty["ready"],
            &empty["cancelled"],
            &empty["average_seconds"],
            &empty["p90_seconds"],
            &empty["hours"]
        ),
        (
            &json!(0),
            &json!(0),
            &json!(0),
            &Value::Null,
            &Value::Null,
            &json!([])
        ),
        "{empty}"
    );
    // Without a day: today's business day.
    let (status, today) = app.api_get("/api/v1/stats/prep-times", Some(API_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(today["day"], app.kitchen.today().to_string());

    // A device key reads its own unit, by default or by name, and no other.
    let path = format!("/api/v1/stats/prep-times?day={DAY}");
    let (status, theirs) = app.api_get(&path, Some(&other_key)).await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(
        (&theirs["unit_id"], &theirs["orders"], &theirs["ready"]),
        (&json!(other_unit.0), &json!(1), &json!(0))
    );
    let (status, _) = app
        .api_get(&format!("{path}&unit={}", other_unit.0), Some(&other_key))
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .api_get(&format!("{path}&unit={unit}"), Some(API_KEY))
        .await;
    assert_eq!(status, 200);
    for (key, asked) in [
        (API_KEY, other_unit.0),
        (other_key.as_str(), unit),
        (API_KEY, 999_999),
    ] {
        let (status, refused) = app
            .api_get(&format!("{path}&unit={asked}"), Some(key))
            .await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(refused["code"], "invalid");
        assert!(
            refused["fields"]["unit"]
                .as_str()
                .is_some_and(|m| m.contains("только своего подразделения")),
            "{refused}"
        );
    }
    let (status, _) = app.api_get(&path, None).await;
    assert_eq!(status, 401);

    // Bad input names its field, in the reader's language.
    for query in ["day=10.03.2026", "day=2026-02-30", "day="] {
        let (status, refused) = app
            .api_get(&format!("/api/v1/stats/prep-times?{query}"), Some(API_KEY))
            .await;
        assert_eq!(status, 422, "{query}: {refused}");
        assert_eq!(
            refused["fields"]["day"], "day: нужна дата ГГГГ-ММ-ДД",
            "{refused}"
        );
    }
    let response = app
        .client
        .get(app.url("/api/v1/stats/prep-times?unit=first"))
        .header("authorization", bearer(API_KEY))
        .header("cookie", "lang=en")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 422);
    let refused: Value = response.json().await.expect("JSON");
    assert_eq!(
        refused["fields"]["unit"], "unit: expected a unit id (a whole number)",
        "{refused}"
    );
});
