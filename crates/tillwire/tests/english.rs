//! Every page in English, in a real headless Chromium against the real binary: with the shop's own data (units,
//! stations, wares, statuses…) renamed to Latin text first, no Cyrillic may remain anywhere a person reads —
//! the visible text, tooltips, placeholders, confirmation questions, titles, error pages and form errors.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{DEVICE_KEY, PAGE_LOAD, eventually};
use sqlx::{Connection, Row, SqliteConnection};
use tillwire_testkit::{Backend, Browser, TestDatabase};

/// Tables whose text is not shown as such (event payloads, jobs, sessions, audit rows of who did what).
const NOT_SHOWN: [&str; 8] = [
    "domain_events",
    "jobs",
    "sessions",
    "token_audit",
    "directory_audit",
    "migrations",
    "event_cursors",
    "leases",
];

fn cyrillic(text: &str) -> bool {
    text.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c))
}

/// Renames every stored text with Cyrillic in it (the shop's data) to Latin, so what is left is the UI's own.
async fn latinise(db: &TestDatabase) {
    let mut connection = SqliteConnection::connect(db.url()).await.expect("connect");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&mut connection)
    .await
    .expect("tables");
    for table in tables.iter().filter(|t| !NOT_SHOWN.contains(&t.as_str())) {
        let columns: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}') WHERE type = 'TEXT'"
        )))
        .fetch_all(&mut connection)
        .await
        .expect("columns");
        for column in columns {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT rowid, {column} FROM {table}"
            )))
            .fetch_all(&mut connection)
            .await
            .expect("rows");
            for row in rows {
                let rowid: i64 = row.get(0);
                let value: Option<String> = row.try_get(1).ok().flatten();
                if value.as_deref().is_some_and(cyrillic) {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE {table} SET {column} = $1 WHERE rowid = $2"
                    )))
                    .bind(format!("Data {table} {column} {rowid}"))
                    .bind(rowid)
                    .execute(&mut connection)
                    .await
                    .expect("rename");
                }
            }
        }
    }
    let _ = connection.close().await;
}

/// What a person reads on the page now: its text (the language switch, which names Russian in Russian, left
/// out), its title, and the words in tooltips, placeholders, labels and confirmation questions.
const READABLE: &str = r#"
const switcher = document.querySelector("a.lang");
if (switcher) switcher.remove();
const words = [document.title, document.body.innerText];
for (const node of document.querySelectorAll("[title], [placeholder], [aria-label], [alt], [data-confirm], input[type=submit], option")) {
  for (const name of ["title", "placeholder", "aria-label", "alt", "data-confirm", "value"]) {
    const value = node.getAttribute(name);
    if (value && !(node.tagName === "OPTION" && name === "value")) words.push(value);
  }
  if (node.tagName === "OPTION") words.push(node.textContent);
}
return words.join("\n");
"#;

/// The lines of `text` with Cyrillic in them.
fn cyrillic_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| cyrillic(line))
        .map(|line| line.trim().chars().take(160).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_in_english_has_no_russian_left() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let data = common::data_dir();
    let envs = [("API_KEY", DEVICE_KEY)];
    // The demo shop with a few orders, then its data renamed while the server is down.
    let mut first = common::serve(&db, data.path(), &envs).await;
    let client = tillwire_testkit::http_client();
    let day = common::today();
    for check in 1..=3 {
        common::import(&client, &first.base_url(), DEVICE_KEY, check, &day).await;
    }
    let username = common::admin_username(&first.output());
    let password = common::admin_password(&first);
    first.terminate();
    latinise(&db).await;
    // Without --demo this time: the demo seed would add its (Russian) stations again next to the renamed ones.
    let server = tillwire_testkit::ServerProcess::start(
        common::BIN,
        &[
            "--database-url",
            db.url(),
            "--data-dir",
            data.path().to_str().expect("UTF-8 path"),
        ],
        &envs,
    )
    .await;
    let base = server.base_url();

    let browser = Browser::start().await;
    let driver = browser.driver();
    driver.set_window_rect(0, 0, 1366, 900).await.expect("size");
    common::sign_in_browser(driver, &base, &username, &password).await;
    driver
        .goto(format!("{base}/lang/en"))
        .await
        .expect("English");

    // The screens, the admin home, and every admin page linked from an admin page (one level down).
    let mut queue: Vec<String> = [
        "/",
        "/kitchen/",
        "/kitchen/1",
        "/dashboard/",
        "/admin/",
        "/admin/orders/1",
        "/admin/no-such-page/",
        "/admin/orders/999999",
        "/monitor/",
        "/monitor/registers/1",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut visited = BTreeSet::new();
    let mut shapes = BTreeSet::new();
    let mut found = Vec::new();
    while let Some(path) = queue.pop() {
        // One page of each kind: /admin/wares/3 stands for every ware's page.
        let shape: String = path
            .chars()
            .map(|c| if c.is_ascii_digit() { 'N' } else { c })
            .collect();
        if !shapes.insert(shape) {
            continue;
        }
        visited.insert(path.clone());
        driver
            .goto(format!("{base}{path}"))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
        // Screens draw themselves from a snapshot: give them a moment.
        if !path.starts_with("/admin/") {
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        let readable = eventually(&format!("the text of {path}"), PAGE_LOAD, || async {
            driver
                .execute(READABLE, vec![])
                .await
                .map_err(|e| e.to_string())?
                .json()
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| "no text".to_owned())
        })
        .await;
        for line in cyrillic_lines(&readable) {
            found.push(format!("{path}: {line}"));
        }
        if path.starts_with("/admin/") {
            let links: Vec<String> = serde_json::from_value(
                driver
                    .execute(
                        "return [...document.querySelectorAll('a[href^=\"/admin/\"]')].map((a) => a.getAttribute('href'));",
                        vec![],
                    )
                    .await
                    .expect("links")
                    .json()
                    .clone(),
            )
            .expect("hrefs");
            for link in links {
                let link = link.split('#').next().unwrap_or_default().to_owned();
                if !link.contains("logout") && !link.contains(".csv") {
                    queue.push(link);
                }
            }
        }
    }
    println!("walked {} pages in English: {visited:?}", visited.len());
    assert!(
        visited.len() > 15,
        "walked only {} pages: {visited:?}",
        visited.len()
    );

    // Refusals: a form sent without its required fields, and the JSON errors of a screen's action.
    let refusals: Vec<String> = serde_json::from_value(
        driver
            .execute(
                r#"
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const send = (url, body) => fetch(url, { method: "POST", body,
  headers: { accept: "application/json", "x-csrf-token": csrf, "content-type": "application/x-www-form-urlencoded" } })
  .then((r) => r.text());
return Promise.all([
  send("/admin/stations/", "name="),
  send("/admin/wares/", "code=&short_name="),
  send("/orders/999999/status", "next_status=2&from_status=1"),
  send("/orders/1/recall", "seen=3"),
  send("/admin/collector/parked/999/retry", ""),
  send("/admin/monitor/", "unit=&name=&url=x&timezone=Nowhere"),
  send("/monitor/registers/1/maintenance", "minutes=0"),
  send("/monitor/incidents/999999/acknowledge", ""),
]);
"#,
                vec![],
            )
            .await
            .expect("refusals")
            .json()
            .clone(),
    )
    .expect("texts");
    for (refusal, text) in refusals.iter().enumerate() {
        assert!(!text.is_empty(), "refusal {refusal} said nothing");
        for line in cyrillic_lines(text) {
            found.push(format!("refusal {refusal}: {line}"));
        }
    }
    browser.quit().await;
    assert!(
        found.is_empty(),
        "Russian left in the English UI ({} places):\n{}",
        found.len(),
        found.join("\n")
    );
}
