//! Helpers shared by the end-to-end tests, which all run the real `tillwire` binary.
//!
//! Each test file compiles this module separately and uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;
use tillwire_testkit::reqwest::{self, StatusCode};
use tillwire_testkit::thirtyfour::error::WebDriverErrorInner;
use tillwire_testkit::thirtyfour::prelude::*;
use tillwire_testkit::{Backend, ServerProcess, TestDatabase};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tillwire");

/// ELQ's single device key (`API_KEY`), for tests that need a key they know in advance.
pub const DEVICE_KEY: &str = "elq-e2e-device-key-0123456789";

/// How long a live screen may take to show a change before the test fails. Not a performance
/// assertion: a working server shows it in milliseconds; this only bounds a broken one.
pub const LIVE_UPDATE: Duration = Duration::from_secs(5);

/// How long a freshly opened page may take to draw itself (Chromium starts cold on a busy machine).
pub const PAGE_LOAD: Duration = Duration::from_secs(30);

/// Environment every server in these tests gets: business days are UTC dates that start at
/// midnight, so [`today`] is the day the screens show; and no `API_KEY` leaks in from the shell.
const BASE_ENV: &[(&str, &str)] = &[
    ("TILLWIRE_DAY_ROLLOVER_HOUR", "0"),
    ("TILLWIRE_TIMEZONE", "UTC"),
    ("API_KEY", ""),
];

/// Today's business day under [`BASE_ENV`], as `YYYY-MM-DD`.
pub fn today() -> String {
    chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

/// A fresh directory for `--data-dir`, removed on drop.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tillwire-e2e-data-")
        .tempdir()
        .expect("create a temporary data directory")
}

/// `tillwire serve --database-url … --data-dir … --demo` with [`BASE_ENV`] plus `envs` (which
/// win), waiting until it is healthy.
pub async fn serve(db: &TestDatabase, data_dir: &Path, envs: &[(&str, &str)]) -> ServerProcess {
    serve_on_port(db, data_dir, tillwire_testkit::free_port(), envs).await
}

/// Like [`serve`] on a given port.
pub async fn serve_on_port(
    db: &TestDatabase,
    data_dir: &Path,
    port: u16,
    envs: &[(&str, &str)],
) -> ServerProcess {
    let data_dir = data_dir.to_str().expect("a UTF-8 data directory path");
    let mut all: Vec<(&str, &str)> = BASE_ENV.to_vec();
    all.extend_from_slice(envs);
    ServerProcess::start_on_port(
        BIN,
        port,
        &["--database-url", db.url(), "--data-dir", data_dir, "--demo"],
        &all,
    )
    .await
}

/// `tillwire serve` on `database_url` with `settings` as its tillwire.toml (and `--demo` when asked), in UTC, with
/// `envs` too.
pub async fn serve_with_config(
    database_url: &str,
    data_dir: &Path,
    settings: &Path,
    demo: bool,
    envs: &[(&str, &str)],
) -> ServerProcess {
    std::fs::create_dir_all(data_dir).expect("data dir");
    let mut args = vec![
        "--database-url",
        database_url,
        "--data-dir",
        data_dir.to_str().expect("UTF-8 path"),
        "--config",
        settings.to_str().expect("UTF-8 path"),
    ];
    if demo {
        args.push("--demo");
    }
    let mut all = vec![("TILLWIRE_TIMEZONE", "UTC")];
    all.extend_from_slice(envs);
    ServerProcess::start(BIN, &args, &all).await
}

/// The first admin's username from the start-up banner.
pub fn admin_username(output: &str) -> String {
    after_marker(output, "Username: ").unwrap_or_else(|| {
        panic!("the server printed no `Username: ` banner; its output:\n{output}")
    })
}

/// The first admin's password from the start-up banner.
pub fn admin_password(server: &ServerProcess) -> String {
    server.admin_password().unwrap_or_else(|| {
        panic!(
            "the server printed no `Password: ` banner; its output:\n{}",
            server.output()
        )
    })
}

/// The device key from `Demo device key for "…": tw_…  (shown once; …)`.
pub fn demo_key(output: &str) -> String {
    let line = output
        .lines()
        .find(|line| line.contains("Demo device key for "))
        .unwrap_or_else(|| panic!("the server printed no demo device key; its output:\n{output}"));
    let key = after_marker(line, "\": ")
        .unwrap_or_else(|| panic!("cannot find the key in the demo key banner {line:?}"));
    assert!(
        key.starts_with("tw_"),
        "unexpected demo key {key:?} in {line:?}"
    );
    key
}

/// The first whitespace-delimited token after `marker`, on the same line.
fn after_marker(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    text[start..]
        .lines()
        .next()?
        .split_whitespace()
        .next()
        .map(str::to_owned)
}

/// The body of an ELQ import posting one `ware_code` 48566 (the demo pizza) from register 1, shift 1.
pub fn receipt(check_id: i64, day: &str) -> Value {
    json!({
        "cash_id": 1,
        "shift_id": 1,
        "check_id": check_id,
        "check_date": day,
        "wares": [{"ware_code": "48566", "ware_count": 1}],
    })
}

/// `POST /devices/import_receipt/` with header `key`; returns ELQ's reply, which always comes with
/// HTTP 200.
pub async fn import_with(
    client: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    body: &Value,
) -> Value {
    let mut request = client
        .post(format!("{base}/devices/import_receipt/"))
        .json(body);
    if let Some(key) = key {
        request = request.header("key", key);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST {base}/devices/import_receipt/ failed: {error}"));
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the ELQ import always answers 200"
    );
    response
        .json()
        .await
        .expect("the ELQ import answers with JSON")
}

/// Imports receipt `check_id` for `day` and returns its queue number; panics unless it registered.
pub async fn import(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    check_id: i64,
    day: &str,
) -> i64 {
    let reply = import_with(client, base, Some(key), &receipt(check_id, day)).await;
    let number = reply["doc_number"].as_i64().unwrap_or(-1);
    assert!(
        number > 0 && reply["error"] == "",
        "receipt {check_id} was not registered: {reply}"
    );
    number
}

/// The public board snapshot (`GET /dashboard/snapshot`).
pub async fn board_snapshot(client: &reqwest::Client, base: &str) -> Value {
    let response = client
        .get(format!("{base}/dashboard/snapshot"))
        .send()
        .await
        .expect("GET /dashboard/snapshot");
    assert_eq!(response.status(), StatusCode::OK, "GET /dashboard/snapshot");
    response.json().await.expect("the snapshot is JSON")
}

/// The id of today's order with queue number `number`, from the public board snapshot.
pub async fn order_id_by_number(client: &reqwest::Client, base: &str, number: i64) -> i64 {
    let snapshot = board_snapshot(client, base).await;
    snapshot["orders"]
        .as_array()
        .expect("snapshot.orders is an array")
        .iter()
        .find(|order| order["number"].as_i64() == Some(number))
        .and_then(|order| order["id"].as_i64())
        .unwrap_or_else(|| panic!("order number {number} is not on the board: {snapshot}"))
}

/// `GET /api/v1/orders?day=…` with a bearer key.
pub async fn api_orders(client: &reqwest::Client, base: &str, key: &str, day: &str) -> Vec<Value> {
    let response = client
        .get(format!("{base}/api/v1/orders?day={day}"))
        .bearer_auth(key)
        .send()
        .await
        .expect("GET /api/v1/orders");
    assert_eq!(response.status(), StatusCode::OK, "GET /api/v1/orders");
    response.json().await.expect("a JSON list of orders")
}

/// Moves an order through the JSON API (`POST /api/v1/orders/{id}/status`).
pub async fn api_set_status(client: &reqwest::Client, base: &str, key: &str, id: i64, status: i64) {
    let response = client
        .post(format!("{base}/api/v1/orders/{id}/status"))
        .bearer_auth(key)
        .json(&json!({ "status_id": status }))
        .send()
        .await
        .expect("POST /api/v1/orders/{id}/status");
    let code = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(
        code,
        StatusCode::OK,
        "moving order {id} to {status}: {body}"
    );
}

/// Rows straight from the database the server uses, e.g. to check what it stored after a crash without trusting
/// the server's own answer.
pub async fn query_rows<T>(db: &TestDatabase, sql: &'static str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    match db.backend() {
        Backend::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(db.url())
                .expect("the test SQLite URL parses");
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .expect("connect to the test SQLite database");
            let rows = sqlx::query_as(sql)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
            let _ = conn.close().await;
            rows
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(db.url())
                .await
                .expect("connect to the test PostgreSQL database");
            let rows = sqlx::query_as(sql)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
            let _ = conn.close().await;
            rows
        }
    }
}

/// Rows of two integers, as [`query_rows`] reads them.
pub async fn query_pairs(db: &TestDatabase, sql: &'static str) -> Vec<(i64, i64)> {
    query_rows(db, sql).await
}

/// One text column, as [`query_rows`] reads it.
pub async fn query_strings(db: &TestDatabase, sql: &'static str) -> Vec<String> {
    query_rows::<(String,)>(db, sql)
        .await
        .into_iter()
        .map(|(text,)| text)
        .collect()
}

/// Calls `probe` until it returns `Ok`, and returns that value. Fails the test with `what` and the
/// probe's last `Err` once `limit` has passed: the limit is a bound for a broken server, not a
/// speed requirement.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => {
                if Instant::now() >= deadline {
                    panic!("{what}: not within {limit:?}; last seen: {last}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How often `needle` occurs in `haystack` (non-overlapping).
pub fn occurrences(haystack: &str, needle: &str) -> usize {
    assert!(!needle.is_empty(), "counting an empty string");
    haystack.matches(needle).count()
}

/// The seeded printer (registers 1–5) renamed to `name` and pointed at `address` through the admin page, as a
/// person would do it; the page's status.
pub async fn save_printer(
    admin: &reqwest::Client,
    base: &str,
    csrf: &str,
    name: &str,
    address: &str,
) -> StatusCode {
    admin
        .post(format!("{base}/admin/printers/1"))
        .form(&[("name", name), ("address", address), ("csrf", csrf)])
        .send()
        .await
        .expect("POST /admin/printers/1")
        .status()
}

/// Signs in through the real login form in the current window.
pub async fn sign_in_browser(driver: &WebDriver, base: &str, username: &str, password: &str) {
    driver
        .goto(format!("{base}/users/login/?next=/"))
        .await
        .expect("open the login page");
    type_into(
        driver,
        "form[action='/users/login/'] [name=username]",
        username,
    )
    .await;
    type_into(
        driver,
        "form[action='/users/login/'] [name=password]",
        password,
    )
    .await;
    press(driver, "form[action='/users/login/'] button").await;
    eventually("signed in", PAGE_LOAD, || async {
        let url = driver.current_url().await.map_err(|e| e.to_string())?;
        if url.path() == "/users/login/" {
            Err(format!("still at {url}"))
        } else {
            Ok(())
        }
    })
    .await;
}

/// Types `text` into the element matching `css`, and returns it.
pub async fn type_into(driver: &WebDriver, css: &str, text: &str) -> WebElement {
    let field = driver
        .find(By::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
    field
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    field
}

/// Clicks the element matching `css`. A live screen may draw the element again between finding and clicking it
/// (a stale element): then it is found again, for a moment.
pub async fn press(driver: &WebDriver, css: &str) {
    let started = std::time::Instant::now();
    loop {
        let element = driver
            .find(By::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        match element.click().await {
            Ok(()) => return,
            Err(error)
                if matches!(
                    error.as_inner(),
                    WebDriverErrorInner::StaleElementReference(_)
                ) && started.elapsed() < PAGE_LOAD =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("clicking {css}: {error}"),
        }
    }
}

/// Waits until the page shows an element matching `css` (screens draw themselves after their snapshot).
pub async fn appears(driver: &WebDriver, css: &str, what: &str, limit: Duration) -> WebElement {
    eventually(what, limit, || async {
        driver.find(By::Css(css)).await.map_err(|e| e.to_string())
    })
    .await
}

/// A served demo shop, its first admin, and receipts imported today through the ELQ device key.
pub struct Shop {
    pub server: ServerProcess,
    pub base: String,
    pub username: String,
    pub password: String,
    /// The client that imported the receipts.
    pub client: reqwest::Client,
    pub day: String,
    /// The queue numbers of the imported receipts, in order.
    pub numbers: Vec<i64>,
}

/// [`serve`] with `envs` (which must set `API_KEY` to [`DEVICE_KEY`] when `receipts` > 0), then `receipts`
/// receipts 1, 2, … imported today.
pub async fn open_shop(
    db: &TestDatabase,
    data_dir: &Path,
    envs: &[(&str, &str)],
    receipts: i64,
) -> Shop {
    let server = serve(db, data_dir, envs).await;
    let base = server.base_url();
    let username = admin_username(&server.output());
    let password = admin_password(&server);
    let client = tillwire_testkit::http_client();
    let day = today();
    let mut numbers = Vec::new();
    for check in 1..=receipts {
        numbers.push(import(&client, &base, DEVICE_KEY, check, &day).await);
    }
    Shop {
        server,
        base,
        username,
        password,
        client,
        day,
        numbers,
    }
}
