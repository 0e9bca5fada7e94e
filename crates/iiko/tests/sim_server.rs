//! The iikoServer simulator over real HTTP: auth and the licence slot, the key check, the overlap detector, the
//! SALES OLAP, the events journal and the script.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use quick_xml::Reader;
use quick_xml::events::Event;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use tillwire_iiko::sim::server::{Dish, SaleLine, ServerSim, demo_script};

const LOGIN: &str = "api";
const PASSWORD: &str = "secret";
const DEPT: &str = "0b7f5c7e-1111-4222-8333-944455556666";

fn sha1_hex(text: &str) -> String {
    hex::encode(Sha1::digest(text.as_bytes()))
}

async fn auth(client: &Client, base: &str) -> reqwest::Response {
    client
        .get(format!("{base}api/auth"))
        .query(&[("login", LOGIN), ("pass", &sha1_hex(PASSWORD))])
        .send()
        .await
        .unwrap()
}

async fn session(client: &Client, base: &str) -> String {
    let response = auth(client, base).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap().trim().to_owned()
}

async fn logout(client: &Client, base: &str, key: &str) -> StatusCode {
    client
        .get(format!("{base}api/logout"))
        .query(&[("key", key)])
        .send()
        .await
        .unwrap()
        .status()
}

async fn olap(client: &Client, base: &str, key: &str, body: Value) -> (StatusCode, String) {
    let response = client
        .post(format!("{base}api/v2/reports/olap"))
        .query(&[("key", key)])
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn olap_data(client: &Client, base: &str, key: &str, body: Value) -> Vec<Value> {
    let (status, text) = olap(client, base, key, body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["summary"], json!([]));
    answer["data"].as_array().unwrap().clone()
}

async fn get_text(client: &Client, url: &str, query: &[(&str, &str)]) -> (StatusCode, String) {
    let response = client.get(url).query(query).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

fn sale(
    date: (i32, u32, u32),
    order: &str,
    num: i64,
    dish: &str,
    amount: &str,
    sum: &str,
) -> SaleLine {
    let open_date = NaiveDate::from_ymd_opt(date.0, date.1, date.2).unwrap();
    SaleLine {
        open_date,
        department: DEPT.to_owned(),
        order_id: order.to_owned(),
        order_num: num,
        dish_id: format!("id-{dish}"),
        dish_code: format!("code-{dish}"),
        dish_name: dish.to_owned(),
        dish_category: "Пицца".to_owned(),
        amount: amount.to_owned(),
        sum: sum.to_owned(),
        discount_sum: sum.to_owned(),
        waiter: "Анна".to_owned(),
        close_time: open_date.and_hms_opt(13, 0, 0).unwrap(),
        ..SaleLine::default()
    }
}

/// An event of an `eventsList` answer.
#[derive(Debug)]
struct Listed {
    kind: String,
    department: String,
    date: String,
    attributes: HashMap<String, String>,
}

/// The events and the revision of an `eventsList` answer.
fn parse_events(xml: &str) -> (Vec<Listed>, i64) {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut events = Vec::new();
    let mut revision = -1;
    let mut name = String::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(start) => {
                path.push(String::from_utf8(start.name().as_ref().to_vec()).unwrap());
                text.clear();
                if path.join("/") == "eventsList/event" {
                    events.push(Listed {
                        kind: String::new(),
                        department: String::new(),
                        date: String::new(),
                        attributes: HashMap::new(),
                    });
                }
            }
            Event::Text(part) => text.push_str(&part.decode().unwrap()),
            Event::End(_) => {
                let event = events.last_mut();
                match (path.join("/").as_str(), event) {
                    ("eventsList/revision", _) => revision = text.parse().unwrap(),
                    ("eventsList/event/type", Some(event)) => event.kind = text.clone(),
                    ("eventsList/event/date", Some(event)) => event.date = text.clone(),
                    ("eventsList/event/departmentId", Some(event)) => {
                        event.department = text.clone()
                    }
                    ("eventsList/event/attribute/name", _) => name = text.clone(),
                    ("eventsList/event/attribute/value", Some(event)) => {
                        event.attributes.insert(name.clone(), text.clone());
                    }
                    _ => {}
                }
                path.pop();
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (events, revision)
}

async fn events(
    client: &Client,
    base: &str,
    key: &str,
    query: &[(&str, &str)],
) -> (Vec<Listed>, i64) {
    let mut query = query.to_vec();
    query.push(("key", key));
    let (status, xml) = get_text(client, &format!("{base}api/events"), &query).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    parse_events(&xml)
}

fn kinds(events: &[Listed]) -> Vec<&str> {
    events.iter().map(|event| event.kind.as_str()).collect()
}

#[tokio::test]
async fn auth_takes_the_sha1_of_the_password() {
    let (sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    let client = Client::new();
    let url = format!("{base}api/auth");
    for (login, pass) in [
        (LOGIN, PASSWORD.to_owned()),
        (LOGIN, sha1_hex("wrong")),
        ("someone", sha1_hex(PASSWORD)),
    ] {
        let (status, body) = get_text(&client, &url, &[("login", login), ("pass", &pass)]).await;
        assert_ne!(status, StatusCode::OK);
        assert!(!body.is_empty());
    }
    assert_eq!(sim.auth_count(), 0);
    assert_eq!(sim.slots_in_use(), 0);

    let upper = sha1_hex(PASSWORD).to_uppercase();
    let (status, key) = get_text(
        &client,
        &url,
        &[
            ("login", LOGIN),
            ("pass", &upper),
            ("client-type", "tillwire"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(key.trim().len(), 36, "a UUID-like key: {key}");
    assert_eq!(sim.auth_count(), 1);
    assert_eq!(sim.slots_in_use(), 1);

    let (status, info) = get_text(
        &client,
        &format!("{base}get_server_info.jsp"),
        &[("encoding", "UTF-8")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(info.contains("<version>"), "{info}");
}

#[tokio::test]
async fn the_licence_slot_is_held_until_logout() {
    let (sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    let client = Client::new();
    let first = session(&client, &base).await;

    let refused = auth(&client, &base).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("license is exhausted")
    );
    assert_eq!(sim.slots_in_use(), 1);

    assert_eq!(logout(&client, &base, &first).await, StatusCode::OK);
    assert_eq!(sim.slots_in_use(), 0);
    let second = session(&client, &base).await;
    assert_ne!(first, second);
    assert_eq!(logout(&client, &base, &second).await, StatusCode::OK);
    assert_eq!((sim.auth_count(), sim.logout_count()), (2, 2));

    sim.set_license_slots(2);
    let a = session(&client, &base).await;
    let b = session(&client, &base).await;
    assert_eq!(sim.slots_in_use(), 2);
    assert_eq!(logout(&client, &base, &a).await, StatusCode::OK);
    assert_eq!(logout(&client, &base, &b).await, StatusCode::OK);
    assert_eq!(sim.slots_in_use(), 0);
}

#[tokio::test]
async fn an_expired_key_frees_its_slot() {
    let (sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    sim.set_token_ttl(Duration::from_secs(60));
    let client = Client::new();
    let old = session(&client, &base).await;
    sim.advance(Duration::from_secs(59));
    assert_eq!(sim.slots_in_use(), 1);
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.slots_in_use(), 0);

    let (status, _) = get_text(
        &client,
        &format!("{base}api/events/metadata"),
        &[("key", &old)],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let new = session(&client, &base).await;
    assert_eq!(logout(&client, &base, &new).await, StatusCode::OK);
}

#[tokio::test]
async fn unknown_or_missing_keys_are_401() {
    let (sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    let client = Client::new();
    for query in [&[("key", "not-a-key")][..], &[]] {
        let (status, body) = get_text(&client, &format!("{base}api/events"), query).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(!body.is_empty());
    }
    assert_eq!(
        logout(&client, &base, "not-a-key").await,
        StatusCode::UNAUTHORIZED
    );

    // A key sent as a cookie, as one public client does, is accepted.
    let key = session(&client, &base).await;
    let response = client
        .get(format!("{base}api/v2/reports/olap/columns"))
        .query(&[("reportType", "SALES")])
        .header("Cookie", format!("key={key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let logged = sim.requests();
    assert!(logged.iter().all(|request| !request.query.contains(&key)));
    assert!(
        logged
            .iter()
            .any(|request| request.query.contains("pass=***"))
    );
    assert!(logged.iter().any(|request| request.status == 401));
}

#[tokio::test]
async fn overlapping_requests_are_counted() {
    let (sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    sim.set_request_delay(Duration::from_millis(500));
    let client = Client::new();
    let key = session(&client, &base).await;
    let url = format!("{base}api/events/metadata");

    for _ in 0..2 {
        let (status, _) = get_text(&client, &url, &[("key", &key)]).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(sim.overlaps(), 0);

    let query = [("key", key.as_str())];
    let (first, second) = tokio::join!(
        get_text(&client, &url, &query),
        get_text(&client, &url, &query),
    );
    assert_eq!((first.0, second.0), (StatusCode::OK, StatusCode::OK));
    assert!(sim.overlaps() > 0);
    assert_eq!(logout(&client, &base, &key).await, StatusCode::OK);
}

#[tokio::test]
async fn olap_date_range_is_half_open() {
    let (sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    sim.add_department(DEPT, "Кафе 1");
    sim.add_sale(sale((2024, 4, 30), "o-1", 1, "Борщ", "1", "280"));
    sim.add_sale(sale((2024, 5, 1), "o-2", 2, "Борщ", "2", "560"));
    sim.add_sale(sale((2024, 5, 2), "o-3", 3, "Борщ", "4", "1120"));
    let client = Client::new();
    let key = session(&client, &base).await;

    let request = |from: &str, to: &str, high: Value| {
        json!({
            "reportType": "SALES",
            "groupByRowFields": ["OpenDate.Typed", "Department", "UniqOrderId.Id", "OrderNum"],
            "aggregateFields": ["DishAmountInt"],
            "filters": {"OpenDate.Typed": {"filterType": "DateRange", "periodType": "CUSTOM",
                                           "from": from, "to": to, "includeHigh": high}}
        })
    };
    let rows = olap_data(
        &client,
        &base,
        &key,
        request("2024-05-01", "2024-05-02", Value::Null),
    )
    .await;
    assert_eq!(
        rows,
        vec![
            json!({"OpenDate.Typed": "2024-05-01", "Department": "Кафе 1", "UniqOrderId.Id": "o-2",
                     "OrderNum": 2, "DishAmountInt": 2})
        ]
    );

    let rows = olap_data(
        &client,
        &base,
        &key,
        request(
            "2024-05-01T00:00:00.000",
            "2024-05-02T00:00:00.000",
            json!(false),
        ),
    )
    .await;
    assert_eq!(rows.len(), 1);

    let rows = olap_data(
        &client,
        &base,
        &key,
        request("2024-05-01", "2024-05-02", json!("true")),
    )
    .await;
    let orders: Vec<&Value> = rows.iter().map(|row| &row["UniqOrderId.Id"]).collect();
    assert_eq!(orders, [&json!("o-2"), &json!("o-3")]);
    assert_eq!(logout(&client, &base, &key).await, StatusCode::OK);
}

#[tokio::test]
async fn olap_includes_excludes_groups_and_sums() {
    let (sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    sim.add_department(DEPT, "Кафе 1");
    sim.add_sale(SaleLine {
        discount_sum: "1062".into(),
        ..sale((2024, 5, 1), "o-1", 1, "Маргарита", "2", "1180")
    });
    sim.add_sale(sale((2024, 5, 1), "o-2", 2, "Маргарита", "1", "590"));
    sim.add_sale(sale((2024, 5, 1), "o-2", 2, "Кола", "1.5", "225.5"));
    sim.add_sale(SaleLine {
        order_deleted: true,
        ..sale((2024, 5, 1), "o-3", 3, "Маргарита", "1", "590")
    });
    sim.add_sale(SaleLine {
        deleted_with_writeoff: true,
        ..sale((2024, 5, 1), "o-4", 4, "Маргарита", "1", "590")
    });
    sim.add_sale(SaleLine {
        storned: true,
        ..sale((2024, 5, 1), "o-5", 5, "Маргарита", "1", "590")
    });
    sim.add_sale(SaleLine {
        service_type: Some("COURIER".into()),
        ..sale((2024, 5, 1), "o-6", 6, "Кола", "1", "150")
    });
    let client = Client::new();
    let key = session(&client, &base).await;

    let clean = json!({
        "OrderDeleted": {"filterType": "IncludeValues", "values": ["NOT_DELETED"]},
        "DeletedWithWriteoff": {"filterType": "ExcludeValues",
                                "values": ["DELETED_WITH_WRITEOFF", "DELETED_WITHOUT_WRITEOFF"]},
        "Storned": {"filterType": "IncludeValues", "values": ["FALSE"]}
    });
    let rows = olap_data(
        &client,
        &base,
        &key,
        json!({
            "reportType": "SALES",
            "groupByRowFields": ["DishName"],
            "aggregateFields": ["DishAmountInt", "DishSumInt", "DishDiscountSumInt", "UniqOrderId.OrdersCount"],
            "filters": clean
        }),
    )
    .await;
    assert_eq!(
        rows,
        vec![
            json!({"DishName": "Маргарита", "DishAmountInt": 3, "DishSumInt": 1770,
                   "DishDiscountSumInt": 1652, "UniqOrderId.OrdersCount": 2}),
            json!({"DishName": "Кола", "DishAmountInt": 2.5, "DishSumInt": 375.5,
                   "DishDiscountSumInt": 375.5, "UniqOrderId.OrdersCount": 2}),
        ]
    );

    let rows = olap_data(
        &client,
        &base,
        &key,
        json!({
            "reportType": "SALES",
            "groupByRowFields": ["Delivery.ServiceType", "OrderDeleted", "DeletedWithWriteoff", "Storned"],
            "aggregateFields": ["UniqOrderId.OrdersCount"],
            "filters": {"Delivery.ServiceType": {"filterType": "IncludeValues", "values": ["COURIER"]}}
        }),
    )
    .await;
    assert_eq!(
        rows,
        vec![
            json!({"Delivery.ServiceType": "COURIER", "OrderDeleted": "NOT_DELETED",
                     "DeletedWithWriteoff": "NOT_DELETED", "Storned": "FALSE", "UniqOrderId.OrdersCount": 1})
        ]
    );

    // No grouping: one row of totals.
    let rows = olap_data(
        &client,
        &base,
        &key,
        json!({"reportType": "SALES", "groupByRowFields": [], "aggregateFields": ["UniqOrderId.OrdersCount"]}),
    )
    .await;
    assert_eq!(rows, vec![json!({"UniqOrderId.OrdersCount": 6})]);
    assert_eq!(logout(&client, &base, &key).await, StatusCode::OK);
}

#[tokio::test]
async fn olap_refuses_unknown_fields_by_name() {
    let (_sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    let client = Client::new();
    let key = session(&client, &base).await;
    let bodies = [
        (
            json!({"reportType": "SALES", "groupByRowFields": ["DishNam"], "aggregateFields": []}),
            "DishNam",
        ),
        (
            json!({"reportType": "SALES", "groupByRowFields": [], "aggregateFields": ["DishSum"]}),
            "DishSum",
        ),
        (
            json!({"reportType": "SALES", "filters": {"OpenDate": {"filterType": "DateRange",
                    "from": "2024-05-01", "to": "2024-05-02"}}}),
            "OpenDate",
        ),
        (
            json!({"reportType": "SALES", "aggregateFields": ["DishName"]}),
            "DishName",
        ),
        (
            json!({"reportType": "SALES", "filters": {"Storned": {"filterType": "IncludeValues", "values": ["NO"]}}}),
            "NO",
        ),
        (json!({"reportType": "TRANSACTIONS"}), "TRANSACTIONS"),
    ];
    for (body, named) in bodies {
        let (status, text) = olap(&client, &base, &key, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.contains(named), "{text}");
    }
    let response = client
        .post(format!("{base}api/v2/reports/olap"))
        .query(&[("key", &key)])
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(logout(&client, &base, &key).await, StatusCode::OK);
}

#[tokio::test]
async fn olap_columns_describe_the_fields() {
    let (_sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    let client = Client::new();
    let key = session(&client, &base).await;
    let url = format!("{base}api/v2/reports/olap/columns");
    let (status, text) = get_text(&client, &url, &[("key", &key), ("reportType", "SALES")]).await;
    assert_eq!(status, StatusCode::OK);
    let columns: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(columns["DishName"]["name"], "Блюдо");
    assert_eq!(columns["DishName"]["type"], "STRING");
    assert_eq!(columns["DishName"]["groupingAllowed"], true);
    assert_eq!(columns["DishSumInt"]["aggregationAllowed"], true);
    assert_eq!(columns["DishSumInt"]["groupingAllowed"], false);
    assert_eq!(columns["OpenDate.Typed"]["type"], "DATE");
    assert!(columns["OrderDeleted"]["tags"].is_array());
    for field in [
        "UniqOrderId.OrdersCount",
        "Delivery.ServiceType",
        "WaiterName",
        "CloseTime",
        "DishCategory",
    ] {
        assert!(columns.get(field).is_some(), "{field}");
    }
    let (status, _) = get_text(&client, &url, &[("key", &key)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(logout(&client, &base, &key).await, StatusCode::OK);
}

#[tokio::test]
async fn open_add_delete_pay_makes_events_and_a_sale_only_when_paid() {
    let (sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    sim.add_department(DEPT, "Демо-пиццерия");
    sim.set_now(Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap());
    let client = Client::new();
    let key = session(&client, &base).await;
    let sales_of_the_day = json!({
        "reportType": "SALES",
        "groupByRowFields": ["UniqOrderId.Id", "DishName"],
        "aggregateFields": ["DishAmountInt", "DishSumInt"],
        "filters": {"OpenDate.Typed": {"filterType": "DateRange", "periodType": "CUSTOM",
                                       "from": "2024-05-01", "to": "2024-05-02"}}
    });

    sim.open_order(DEPT, "ord-175", 175, 4, "Анна");
    sim.add_items(
        "ord-175",
        &[
            Dish::new(
                "pos-1",
                "prod-marg",
                "PIZZA-MARG",
                "Маргарита",
                "2",
                "590.00",
            ),
            Dish::new("pos-2", "prod-cola", "DRINK-COLA", "Кола", "1", "150"),
        ],
    );
    sim.advance(Duration::from_secs(60));
    sim.delete_new_items("ord-175", &["pos-2"]);
    assert!(
        olap_data(&client, &base, &key, sales_of_the_day.clone())
            .await
            .is_empty()
    );

    sim.advance(Duration::from_secs(1800));
    sim.pay_order("ord-175");
    let rows = olap_data(&client, &base, &key, sales_of_the_day.clone()).await;
    assert_eq!(
        rows,
        vec![
            json!({"UniqOrderId.Id": "ord-175", "DishName": "Маргарита", "DishAmountInt": 2, "DishSumInt": 1180})
        ]
    );

    let (listed, revision) = events(&client, &base, &key, &[("from_rev", "0")]).await;
    assert_eq!(
        kinds(&listed),
        [
            "orderOpened",
            "addItemToOrder",
            "addItemToOrder",
            "deletedNewItems",
            "orderPaid"
        ]
    );
    assert_eq!(revision, 5);
    assert_eq!(sim.events().last().unwrap().revision, 5);
    for event in &listed {
        assert_eq!(event.attributes["orderId"], "ord-175");
        assert_eq!(event.department, DEPT);
        assert_eq!(event.attributes["orderNum"].parse::<f64>().unwrap(), 175.0);
        assert_eq!(event.attributes["tableNum"].parse::<f64>().unwrap(), 4.0);
        assert_eq!(event.attributes["waiter"], "Анна");
        assert_eq!(event.attributes["openTime"], "2024-05-01T12:00:00.000");
    }
    assert_eq!(listed[0].date, "2024-05-01T12:00:00.000+03:00");
    let added = &listed[1].attributes;
    assert_eq!(added["dishes"], "Маргарита");
    assert_eq!(added["rowCount"].parse::<f64>().unwrap(), 2.0);
    assert_eq!(added["productId"], "prod-marg");
    assert_eq!(added["productCode"], "PIZZA-MARG");
    assert_eq!(added["positionId"], "pos-1");
    assert_eq!(listed[2].attributes["sum"].parse::<f64>().unwrap(), 1330.0);
    assert_eq!(listed[3].attributes["positionId"], "pos-2");
    assert_eq!(listed[3].attributes["sum"].parse::<f64>().unwrap(), 1180.0);
    assert_eq!(listed[4].attributes["sum"].parse::<f64>().unwrap(), 1180.0);

    // Continuing from a revision gives only what came after it.
    let (later, revision) = events(&client, &base, &key, &[("from_rev", "3")]).await;
    assert_eq!(kinds(&later), ["deletedNewItems", "orderPaid"]);
    assert_eq!(revision, 5);

    // A deleted order never reaches the OLAP.
    sim.open_order(DEPT, "ord-176", 176, 5, "Олег");
    sim.add_items(
        "ord-176",
        &[Dish::new(
            "pos-1",
            "prod-marg",
            "PIZZA-MARG",
            "Маргарита",
            "1",
            "590",
        )],
    );
    sim.delete_order("ord-176");
    let (later, revision) = events(&client, &base, &key, &[("from_rev", "5")]).await;
    assert_eq!(
        kinds(&later),
        ["orderOpened", "addItemToOrder", "orderDeleted"]
    );
    assert_eq!(revision, 8);
    assert_eq!(
        olap_data(&client, &base, &key, sales_of_the_day)
            .await
            .len(),
        1
    );
    assert_eq!(logout(&client, &base, &key).await, StatusCode::OK);
}

#[tokio::test]
async fn events_by_time_and_by_filter() {
    let (sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    sim.set_now(Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap()); // 12:00 in Moscow
    sim.open_order(DEPT, "ord-1", 1, 1, "Анна");
    sim.advance(Duration::from_secs(3600));
    sim.add_items("ord-1", &[Dish::new("p1", "prod", "C", "Борщ", "1", "280")]);
    sim.open_order(DEPT, "ord-2", 2, 2, "Олег");
    sim.advance(Duration::from_secs(3600));
    sim.pay_order("ord-1");
    sim.pay_order("ord-2");
    let client = Client::new();
    let key = session(&client, &base).await;

    let (listed, revision) = events(
        &client,
        &base,
        &key,
        &[
            ("from_time", "2024-05-01T13:00:00.000"),
            ("to_time", "2024-05-01T14:00:00.000"),
        ],
    )
    .await;
    assert_eq!(kinds(&listed), ["addItemToOrder", "orderOpened"]);
    assert_eq!(revision, 5);

    // Without a window: today's events.
    let (listed, _) = events(&client, &base, &key, &[]).await;
    assert_eq!(listed.len(), 5);
    sim.advance(Duration::from_secs(24 * 3600)); // the key expires too
    let key = session(&client, &base).await;
    let (listed, revision) = events(&client, &base, &key, &[]).await;
    assert!(listed.is_empty());
    assert_eq!(revision, 5);

    let (status, body) = get_text(
        &client,
        &format!("{base}api/events"),
        &[("key", &key), ("from_rev", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("from_rev"));

    let post = |body: &'static str| {
        client
            .post(format!("{base}api/events"))
            .query(&[("key", key.as_str()), ("from_rev", "0")])
            .header("Content-Type", "application/xml")
            .body(body)
            .send()
    };
    let response = post(
        "<eventsRequestData><events><event>orderPaid</event></events>\
         <orderNums><orderNum>2</orderNum></orderNums></eventsRequestData>",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (listed, _) = parse_events(&response.text().await.unwrap());
    assert_eq!(kinds(&listed), ["orderPaid"]);
    assert_eq!(listed[0].attributes["orderId"], "ord-2");

    let response = post("<eventsRequestData><events><event>orderOpened</event><event>orderPaid</event></events></eventsRequestData>")
        .await
        .unwrap();
    let (listed, _) = parse_events(&response.text().await.unwrap());
    assert_eq!(
        kinds(&listed),
        ["orderOpened", "orderOpened", "orderPaid", "orderPaid"]
    );

    let response = post("<eventsRequestData><events>").await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let (status, metadata) = get_text(
        &client,
        &format!("{base}api/events/metadata"),
        &[("key", &key)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        "<groupsList>",
        "<id>orders</id>",
        "<id>dishes</id>",
        "<id>orderOpened</id>",
        "<id>addItemToOrder</id>",
        "<id>deletedNewItems</id>",
        "<id>orderPaid</id>",
    ] {
        assert!(metadata.contains(needle), "{needle}");
    }
    assert_eq!(logout(&client, &base, &key).await, StatusCode::OK);
}

#[tokio::test]
async fn an_armed_failure_answers_once() {
    let (sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    sim.fail_next("/resto/api/v2/reports/olap", 500, 1);
    let client = Client::new();
    let key = session(&client, &base).await;
    let body = json!({"reportType": "SALES", "groupByRowFields": ["DishName"], "aggregateFields": ["DishSumInt"]});
    let (status, _) = olap(&client, &base, &key, body.clone()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, _) = olap(&client, &base, &key, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(logout(&client, &base, &key).await, StatusCode::OK);
}

#[tokio::test]
async fn scripts_run_whole_or_name_their_bad_line() {
    let (sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    sim.set_now(Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap());
    let refused = sim
        .run_script("department D \"Кафе\"\nopen O dept=D num=1\nadd O P1 PR name=\"Борщ\" amount=two price=280\n")
        .unwrap_err();
    assert_eq!(refused.line, 3);
    assert!(refused.message.contains("two"), "{refused}");
    assert!(sim.events().is_empty());

    let refused = sim.run_script("# comment\n\nfly O\n").unwrap_err();
    assert_eq!(refused.line, 3);
    let refused = sim.run_script("open O dept=D num=1\npay X\n").unwrap_err();
    assert_eq!(refused.line, 2);
    assert!(sim.events().is_empty());

    let client = Client::new();
    let script = "department D \"Демо-пиццерия\"\n\
                  open O dept=D num=175 table=4 waiter=\"Анна Петрова\"   # a comment\n\
                  add O P1 PROD code=PIZZA-MARG name=\"Маргарита \\\"Классика\\\"\" amount=2 price=590.00\n\
                  wait 500ms\n\
                  delete O P1\n\
                  remove O\n\
                  sale date=2024-05-01 dept=D order=S num=42 dish=DISH code=101 name=\"Борщ\" category=\"Супы\" amount=2 sum=560 discount_sum=504\n";
    let response = client
        .post(format!("{base}sim/script"))
        .body(script)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let events = sim.events();
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| event.event_type.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "orderOpened",
            "addItemToOrder",
            "deletedNewItems",
            "orderDeleted"
        ]
    );
    assert_eq!(
        events[1].attribute("dishes"),
        Some("Маргарита \"Классика\"")
    );
    assert_eq!(events[0].attribute("waiter"), Some("Анна Петрова"));
    assert_eq!((events[2].date - events[1].date).num_milliseconds(), 500);
    assert_eq!(sim.sales().len(), 1);
    assert_eq!(sim.sales()[0].discount_sum, "504");

    let response = client
        .post(format!("{base}sim/script"))
        .body("department D \"X\"\nsale date=2024-13-01 dept=D\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().starts_with("line 2:"));

    // The door does not count towards overlaps, and shows what the simulator holds.
    let (status, page) = get_text(&client, &format!("{base}sim/"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("iikoServer simulator") && page.contains("Борщ"));
    let (status, state) = get_text(&client, &format!("{base}sim/state"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["slots_in_use"], 0);
    assert_eq!(state["events"].as_array().unwrap().len(), 4);
    assert!(sim.requests().is_empty());
    assert_eq!(sim.overlaps(), 0);
}

#[tokio::test]
async fn the_demo_script_sells_over_the_last_three_days() {
    let (sim, base) = ServerSim::start(LOGIN, PASSWORD).await;
    sim.run_script(&demo_script()).unwrap();
    assert!(sim.events().is_empty());
    let today = Utc::now()
        .with_timezone(&chrono_tz::Europe::Moscow)
        .date_naive();
    let client = Client::new();
    let key = session(&client, &base).await;
    let rows = olap_data(
        &client,
        &base,
        &key,
        json!({
            "reportType": "SALES",
            "groupByRowFields": ["OpenDate.Typed", "Department"],
            "aggregateFields": ["DishDiscountSumInt"],
            "filters": {"OpenDate.Typed": {"filterType": "DateRange", "periodType": "CUSTOM",
                "from": (today - chrono::Days::new(3)).to_string(), "to": today.to_string()}}
        }),
    )
    .await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|row| row["Department"] == "Демо-пиццерия"));
    assert_eq!(logout(&client, &base, &key).await, StatusCode::OK);
}
