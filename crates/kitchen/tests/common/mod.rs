//! The kitchen under test, in process, on a real loopback socket and a real database.
//!
//! Every test file starts its own app per test (`start` / `start_with`) against the `TestDatabase`
//! that `both_backends!` hands it, so each test sees the seeded state: the default unit, statuses 1–4
//! with ELQ's flows, registers 1–5 (all with the seeded printer) and the five demo wares.

#![allow(dead_code)]

use chrono::NaiveDate;
use serde_json::Value;
use tillwire_kitchen::import::{ImportOutcome, Receipt};
use tillwire_kitchen::model::{OrderView, Quantity};
use tillwire_kitchen::{Actor, Kitchen};
use tillwire_platform::area;
use tillwire_platform::auth::{NewPassword, Username, Users};
use tillwire_platform::config::Secret;
use tillwire_platform::{Platform, Role, Settings, Store};
use tillwire_testkit::TestDatabase;
use tillwire_units::{UnitId, Units};

/// ELQ's `.env` default, configured as the legacy `API_KEY` of every test app.
pub const API_KEY: &str = "secret_key_here";
pub const LEGACY_PATH: &str = "/devices/import_receipt/";

/// Demo wares and their stations.
pub const PIZZA: &str = "48566"; // Пиццерия, "Пицца 4 сыра"
pub const SHAWARMA: &str = "43221"; // Шаурма, "Шаурма св"
pub const WOK_SAUCE: &str = "51356"; // Вок, "Вок остр. пр. соус"
pub const WOK_BUCKWHEAT: &str = "51358"; // Вок, "Вок остр. греча"
pub const SALAD: &str = "12356"; // Салаты, "Салат оливье"

pub struct TestApp {
    pub base_url: String,
    pub platform: Platform,
    pub kitchen: Kitchen,
    /// A client without a session (devices, the public board).
    pub client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The app with default settings plus `API_KEY`.
pub async fn start(db: &TestDatabase) -> TestApp {
    start_with(db, |_| {}).await
}

/// The app with settings adjusted by `configure` (after `API_KEY` is set, so it can unset it).
pub async fn start_with(db: &TestDatabase, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let areas = [
        &tillwire_platform::AREA,
        &tillwire_units::AREA,
        &tillwire_kitchen::AREA,
    ];
    let store = Store::connect(db.url())
        .await
        .expect("connect to the test database");
    store
        .migrate(&area::migrations(&areas))
        .await
        .expect("migrate the test database");
    let mut settings = Settings::for_database(db.url());
    settings.api_key = Some(Secret::new(API_KEY));
    configure(&mut settings);
    let platform = Platform::new(store, settings);
    tillwire_kitchen::seed::init(&platform)
        .await
        .expect("seed statuses, unit, stations, registers");
    tillwire_kitchen::seed::load_demo(&platform)
        .await
        .expect("load the demo wares");
    let app = area::assemble(&areas, &platform).expect("assemble the areas");
    let kitchen: Kitchen = app
        .service()
        .expect("the kitchen area provides its Kitchen");
    let router = app.router;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local address");
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve the app");
    });
    TestApp {
        base_url: format!("http://{address}"),
        platform,
        kitchen,
        client: tillwire_testkit::http_client(),
        server,
    }
}

/// A receipt body for the legacy endpoint, shift 1.
pub fn receipt(cash: i64, check: i64, date: &str, wares: &[(&str, f64)]) -> String {
    receipt_in_shift(cash, 1, check, date, wares)
}

pub fn receipt_in_shift(
    cash: i64,
    shift: i64,
    check: i64,
    date: &str,
    wares: &[(&str, f64)],
) -> String {
    let wares: Vec<Value> = wares
        .iter()
        .map(|(code, count)| serde_json::json!({"ware_code": code, "ware_count": count}))
        .collect();
    serde_json::json!({
        "cash_id": cash,
        "shift_id": shift,
        "check_id": check,
        "check_date": date,
        "wares": wares,
    })
    .to_string()
}

/// The exact text of a legacy reply.
pub fn legacy_text(doc_number: i64, count: i64, error: &str) -> String {
    let error = serde_json::to_string(error).expect("a JSON string");
    format!(r#"{{"doc_number":{doc_number},"count":{count},"error":{error}}}"#)
}

pub fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a YYYY-MM-DD day")
}

/// Milliseconds since the epoch of an RFC 3339 instant.
pub fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("an RFC 3339 instant")
        .timestamp_millis()
}

/// Pins when an order (`$1`) reached a status (`$2`) to `$3`.
const STATUS_REACHED: &str =
    "UPDATE order_status_log SET at_ms = $3 WHERE order_id = $1 AND to_status_id = $2";

/// Places an order of `wares` for `business_day` through the kitchen's own import (register 1, shift 1 of the
/// default unit, receipt `receipt`), then lives it with the kitchen's own calls and pins each instant with SQL:
/// created at `created_ms`, each station of `stations` (by name) ready so many minutes later, each status of
/// `moves` reached so many minutes later (a move the stations' readiness already made is only pinned).
pub async fn place_timed_order(
    kitchen: &Kitchen,
    business_day: NaiveDate,
    receipt: i64,
    created_ms: i64,
    wares: &[&str],
    stations: &[(&str, i64)],
    moves: &[(i64, i64)],
) -> i64 {
    let unit = Units(kitchen.store())
        .default_unit()
        .await
        .expect("read units")
        .expect("a default unit")
        .unit_id();
    let key = tillwire_kitchen::ReceiptKey {
        unit,
        cash_number: 1,
        shift_id: 1,
        check_date: business_day,
        check_id: receipt,
    };
    let context = kitchen
        .receipt_context(unit, 1, Some(&key))
        .await
        .expect("read the register")
        .expect("register 1");
    let lines = wares
        .iter()
        .map(|code| ((*code).to_owned(), Quantity::parse(1.0).expect("one")))
        .collect();
    let receipt = Receipt {
        key,
        business_day,
        lines,
    };
    let ImportOutcome::Registered(registered) = kitchen
        .import_receipt(&receipt, &context)
        .await
        .expect("import the receipt")
    else {
        panic!("receipt {} was not registered", receipt.key.check_id);
    };
    let id = registered.order_id;
    let after = |minutes: i64| created_ms + minutes * 60_000;
    let pin = |sql: &'static str, a: i64, b: i64| async move {
        tillwire_platform::write!(kitchen.store(), db => sqlx::query(sql)
            .bind(id)
            .bind(a)
            .bind(b)
            .execute(db)
            .await
            .map(|r| r.rows_affected()))
        .expect("pin an instant");
    };
    pin(
        "UPDATE orders SET created_ms = $2, status_changed_ms = $3 WHERE id = $1",
        created_ms,
        created_ms,
    )
    .await;
    let initial = context.initial_status_id.expect("an initial status");
    pin(STATUS_REACHED, initial, created_ms).await;
    let actor = Actor {
        user_id: None,
        name: "test".into(),
    };
    let all_stations = kitchen.stations(unit).await.expect("stations");
    for (name, minutes) in stations {
        let station = all_stations
            .iter()
            .find(|s| s.name == *name)
            .unwrap_or_else(|| panic!("no station {name}"))
            .id;
        kitchen
            .mark_station_ready(id, station, &actor)
            .await
            .expect("mark the station ready");
        pin(
            "UPDATE order_stations SET ready_ms = $3 WHERE order_id = $1 AND station_id = $2",
            station,
            after(*minutes),
        )
        .await;
    }
    for (status, minutes) in moves {
        let current = kitchen.order_view(id).await.expect("the order").status_id;
        if current != *status {
            kitchen
                .change_status(id, *status, &actor)
                .await
                .expect("move the order");
        }
        pin(STATUS_REACHED, *status, after(*minutes)).await;
    }
    id
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Posts a raw body to the legacy endpoint with the `key` header (if any); asserts HTTP 200 with JSON and
    /// returns the body text exactly as sent.
    pub async fn post_legacy_raw(
        &self,
        body: impl Into<reqwest::Body>,
        key: Option<&str>,
    ) -> String {
        let mut request = self.client.post(self.url(LEGACY_PATH)).body(body);
        if let Some(key) = key {
            request = request.header("key", key);
        }
        let response = request.send().await.expect("POST the legacy endpoint");
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = response.text().await.expect("read the legacy reply");
        assert_eq!(
            status,
            reqwest::StatusCode::OK,
            "every legacy POST answers 200; body: {text}"
        );
        assert!(
            content_type.starts_with("application/json"),
            "legacy reply is JSON, got {content_type:?}: {text}"
        );
        text
    }

    /// Like [`Self::post_legacy_raw`], parsed (keys kept in their order).
    pub async fn post_legacy(&self, body: impl Into<reqwest::Body>, key: Option<&str>) -> Value {
        let text = self.post_legacy_raw(body, key).await;
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("legacy reply {text:?} is not JSON: {e}"))
    }

    /// Posts with the configured `API_KEY` and returns the exact reply text.
    pub async fn legacy(&self, body: impl Into<reqwest::Body>) -> String {
        self.post_legacy_raw(body, Some(API_KEY)).await
    }

    /// Posts a receipt expected to register and returns its number.
    pub async fn import(&self, body: &str) -> i64 {
        let reply = self.post_legacy(body.to_owned(), Some(API_KEY)).await;
        let number = reply["doc_number"]
            .as_i64()
            .expect("doc_number is an integer");
        assert!(number > 0, "expected an order, got {reply}");
        assert_eq!(reply["error"], "", "{reply}");
        number
    }

    pub async fn exec(&self, sql: &str) -> u64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        tillwire_platform::write!(&self.platform.store, db => sqlx::query(sql)
            .execute(db)
            .await
            .map(|r| r.rows_affected()))
        .expect("run test SQL")
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        let (value,): (i64,) =
            tillwire_platform::read!(&self.platform.store, db => sqlx::query_as(sql)
            .fetch_one(db)
            .await)
            .expect("run test query");
        value
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// Asserts that nothing of an order was written: no order, line, station part, audit entry or receipt claim.
    pub async fn assert_no_writes(&self, orders: i64) {
        assert_eq!(self.count("orders").await, orders, "orders");
        let lines = self.count("order_lines").await;
        let claims = self.scalar("SELECT COUNT(*) FROM imported_receipts").await;
        assert_eq!(
            claims,
            self.count("orders").await,
            "one receipt claim per order, no stray claims"
        );
        if orders == 0 {
            assert_eq!(lines, 0, "order lines");
            assert_eq!(self.count("order_stations").await, 0, "order stations");
            assert_eq!(self.count("order_status_log").await, 0, "status log");
            assert_eq!(self.count("day_counters").await, 0, "no number was taken");
        }
    }

    pub async fn unit(&self) -> UnitId {
        Units(&self.platform.store)
            .default_unit()
            .await
            .expect("read units")
            .expect("a default unit")
            .unit_id()
    }

    pub async fn order_id(&self, business_day: &str, number: i64) -> i64 {
        self.scalar(&format!(
            "SELECT id FROM orders WHERE business_day = '{business_day}' AND number = {number}"
        ))
        .await
    }

    pub async fn order(&self, business_day: &str, number: i64) -> OrderView {
        let id = self.order_id(business_day, number).await;
        self.kitchen.order_view(id).await.expect("order view")
    }

    pub async fn station_id(&self, name: &str) -> i64 {
        self.scalar(&format!("SELECT id FROM stations WHERE name = '{name}'"))
            .await
    }

    /// Creates a user with a role and returns a client signed in through the real login form, plus the
    /// session's CSRF token and the user's id.
    pub async fn user_client(&self, username: &str, role: Role) -> (reqwest::Client, String, i64) {
        let password = format!("{username}-password-123");
        let id = Users(&self.platform.store)
            .create(
                &Username::parse(username).expect("valid username"),
                &NewPassword::parse(&password).expect("valid password"),
                role,
            )
            .await
            .expect("create user");
        let client = tillwire_testkit::http_client();
        let csrf = tillwire_testkit::login(&client, &self.base_url, username, &password).await;
        (client, csrf, id)
    }
}
