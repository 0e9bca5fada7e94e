//! The iiko pages in the real binary and a real headless Chromium: an iikoCloud connection (against the
//! simulator) and an unreachable iikoServer from tillwire.toml, a processed and a failed webhook; every page opened
//! at 1920×1080 and 1024×768, in Russian and in English, its visible text checked (no secret, no raw JSON outside
//! the event bodies, no text of the other language) and a screenshot left in `/tmp/iiko-shots/` to look at.

mod common;

use std::path::PathBuf;

use common::{PAGE_LOAD, eventually, query_rows, query_strings};
use serde_json::{Value, json};
use tillwire_iiko::sim::cloud::CloudSim;
use tillwire_testkit::thirtyfour::prelude::*;
use tillwire_testkit::{Backend, Browser, TestDatabase, http_client};

const ORG: &str = "7bc05553-4b68-44e8-b7bc-37be63c6d9e9";
const TERMINAL: &str = "4fab19a5-203c-4bf5-94eb-f572aa8b117b";
const TABLE: &str = "0e5d3a4c-1b2f-4c6d-8e9f-a0b1c2d3e4f5";
const PIZZA: &str = "11111111-1111-4111-8111-111111111111";
const LEMONADE: &str = "33333333-3333-4333-8333-333333333333";
const API_LOGIN: &str = "pages-api-login-secret";
const TOKEN: &str = "pages-webhook-token-1234567890";
const SERVER_PASSWORD: &str = "pages-server-password";

/// A table order's webhook event; `amount: None` leaves the lemonade's amount out, which iiko never does.
fn table_event(order: &str, number: i64, amount: Option<f64>) -> Value {
    let mut lemonade = json!({"type": "Product", "product": {"id": LEMONADE, "name": "Лимонад"}, "positionId": "l1"});
    if let Some(amount) = amount {
        lemonade["amount"] = json!(amount);
    }
    json!({
        "eventType": "TableOrderUpdate", "eventTime": "2024-05-01 12:00:00.000", "organizationId": ORG,
        "correlationId": format!("c-{number}"),
        "eventInfo": {
            "id": order, "posId": null, "organizationId": ORG, "timestamp": 1_714_560_000_000_i64 + number,
            "creationStatus": "Success",
            "order": {"status": "New", "whenCreated": "2024-05-01 12:00:00.000", "number": number,
                      "terminalGroupId": TERMINAL, "tableIds": [TABLE],
                      "items": [{"type": "Product", "product": {"id": PIZZA, "name": "Пицца 4 сыра"}, "amount": 1,
                                 "positionId": "p1"}, lemonade]}
        }
    })
}

/// The page's visible text once it is drawn.
async fn visible_text(driver: &WebDriver) -> String {
    eventually("the page to draw", PAGE_LOAD, || async {
        let text: String = driver
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?
            .convert()
            .map_err(|e| e.to_string())?;
        if text.contains("tillwire") {
            Ok(text)
        } else {
            Err("no layout yet".into())
        }
    })
    .await
}

/// The viewport as it is, then the whole page (the window made as tall as the document), into the shots' folder.
async fn screenshots(driver: &WebDriver, name: &str, (width, height): (u32, u32)) {
    let folder = PathBuf::from("/tmp/iiko-shots");
    std::fs::create_dir_all(&folder).expect("the shots' folder");
    driver
        .screenshot(&folder.join(format!("{name}-{width}x{height}.png")))
        .await
        .expect("a screenshot");
    let tall: i64 = driver
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .expect("the page's height")
        .convert()
        .expect("a number");
    driver
        .set_window_rect(0, 0, width, (tall as u32).clamp(height, 6000) + 140)
        .await
        .expect("a tall window");
    driver
        .screenshot(&folder.join(format!("{name}-{width}x{height}-full.png")))
        .await
        .expect("a full screenshot");
    driver
        .set_window_rect(0, 0, width, height)
        .await
        .expect("the size back");
}

fn cyrillic(text: &str) -> bool {
    text.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_iiko_pages_read_well_in_both_languages_and_sizes() {
    let (sim, sim_url) = CloudSim::start().await;
    sim.add_api_login(API_LOGIN);
    sim.add_organization(ORG, "Кафе 1");
    sim.add_terminal_group(ORG, TERMINAL, "Основная группа", "Russian Standard Time");
    sim.add_table(ORG, TABLE, 5);

    let db = TestDatabase::new(Backend::Sqlite).await;
    let data = common::data_dir();
    let settings = data.path().join("tillwire.toml");
    std::fs::write(
        &settings,
        format!(
            r#"[[iiko.cloud]]
name = "Кафе на Ленина"
api_url = "{sim_url}"
api_login = "{API_LOGIN}"
organization_id = "{ORG}"
webhook_token = "{TOKEN}"
tables = ["{TABLE}"]
products = {{ "{PIZZA}" = "48566" }}

[[iiko.server]]
url = "http://127.0.0.1:1/resto/"
login = "iiko-admin"
password = "{SERVER_PASSWORD}"
time_zone = "Russian Standard Time"
"#
        ),
    )
    .expect("tillwire.toml");
    let server =
        common::serve_with_config(db.url(), &data.path().join("data"), &settings, true, &[]).await;
    let base = server.base_url();

    // A table order (its pizza made, its lemonade not mapped) and one iiko would never send (no amount), once
    // the settings file's connection is written (at start, beside serving).
    let client = http_client();
    for (order, number, amount) in [
        ("497f6eca-6276-4993-bfeb-53cbbbba6f08", 42, Some(1.0)),
        ("5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", 43, None),
    ] {
        let event = json!([table_event(order, number, amount)]);
        eventually("the webhook taken", PAGE_LOAD, || async {
            let answer = client
                .post(format!("{base}/iiko/webhook/{ORG}"))
                .header("authorization", TOKEN)
                .json(&event)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            match answer.status().as_u16() {
                200 => Ok(()),
                status => Err(format!("{status}")),
            }
        })
        .await;
    }
    eventually("the events settled", PAGE_LOAD, || async {
        let states = query_strings(&db, "SELECT state FROM iiko_inbox ORDER BY id").await;
        if states == ["processed", "failed"] {
            Ok(())
        } else {
            Err(format!("{states:?}"))
        }
    })
    .await;
    eventually("the server's journal tried", PAGE_LOAD, || async {
        let errors = query_strings(
            &db,
            "SELECT last_error FROM iiko_servers WHERE url = 'http://127.0.0.1:1/resto/' AND last_error IS NOT NULL",
        )
        .await;
        if errors.is_empty() {
            Err("no error yet".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    // The settings file's connection and server (the demo has its own too).
    let (connection,): (i64,) = query_rows(
        &db,
        // ORG's.
        "SELECT id FROM iiko_connections WHERE organization_id = '7bc05553-4b68-44e8-b7bc-37be63c6d9e9'",
    )
    .await[0];
    let (iiko_server,): (i64,) = query_rows(
        &db,
        "SELECT id FROM iiko_servers WHERE url = 'http://127.0.0.1:1/resto/'",
    )
    .await[0];

    let browser = Browser::start().await;
    let driver = browser.driver();
    common::sign_in_browser(
        driver,
        &base,
        &common::admin_username(&server.output()),
        &common::admin_password(&server),
    )
    .await;

    // Each page with what it must say in Russian and in English.
    let pages: [(&str, String, [&str; 3], [&str; 3]); 5] = [
        (
            "overview",
            "/admin/iiko/".to_owned(),
            ["Подключения iikoCloud", "Кафе на Ленина", "токен задан"],
            ["iikoCloud connections", "Кафе на Ленина", "token set"],
        ),
        (
            "cloud",
            format!("/admin/iiko/cloud/{connection}/"),
            ["Группы терминалов", "Основная группа", "Последние заказы"],
            ["Terminal groups", "Основная группа", "Latest orders"],
        ),
        (
            "server",
            format!("/admin/iiko/servers/{iiko_server}/"),
            ["Удалить сервер", "Подробности (журнал)", "Europe/Moscow"],
            ["Delete the server", "Details (log)", "Europe/Moscow"],
        ),
        (
            "mapping",
            format!("/admin/iiko/mapping/?organization={ORG}"),
            ["Лимонад", "не сопоставлен", "по коду или файлу настроек"],
            ["Лимонад", "not mapped", "by its code or the settings file"],
        ),
        (
            "inbox",
            "/admin/iiko/inbox/".to_owned(),
            ["обработано", "Повторить", "номер в очереди"],
            ["processed", "Retry", "queue number"],
        ),
    ];
    for (lang, russian) in [("ru", true), ("en", false)] {
        driver
            .goto(format!("{base}/lang/{lang}"))
            .await
            .expect("the language");
        for size in [(1920, 1080), (1024, 768)] {
            driver
                .set_window_rect(0, 0, size.0, size.1)
                .await
                .expect("the window's size");
            for (name, path, ru, en) in &pages {
                driver
                    .goto(format!("{base}{path}"))
                    .await
                    .expect("the page");
                let text = visible_text(driver).await;
                for expected in if russian { ru } else { en } {
                    assert!(
                        text.contains(expected),
                        "{path} ({lang}, {size:?}) does not say {expected:?}:\n{text}"
                    );
                }
                for secret in [API_LOGIN, TOKEN, SERVER_PASSWORD] {
                    assert!(!text.contains(secret), "{path} shows a secret");
                }
                // The event bodies stay folded: no JSON on the page until one is opened.
                assert!(
                    !text.contains("\"eventInfo\""),
                    "{path}: raw JSON shown:\n{text}"
                );
                if !russian {
                    // The shop's own words (its names, iiko's products) are Russian, and so is the switch back to
                    // Russian; the page's words are not.
                    let ui: Vec<&str> = text
                        .lines()
                        .filter(|line| cyrillic(line))
                        .filter(|line| {
                            ![
                                "Кафе на Ленина",
                                "Основная группа",
                                "Лимонад",
                                "Пицца",
                                "Основное подразделение",
                                "Демо-пиццерия",
                                "Русский",
                            ]
                            .iter()
                            .any(|name| line.contains(name))
                        })
                        .collect();
                    assert!(ui.is_empty(), "{path}: Russian left in English: {ui:?}");
                }
                screenshots(driver, &format!("{name}-{lang}"), size).await;
            }
        }
    }

    // An event's body opens as indented JSON.
    driver
        .goto(format!("{base}/admin/iiko/inbox/"))
        .await
        .expect("the inbox");
    let summary = driver
        .find(By::Css("details.iiko-body summary"))
        .await
        .expect("an event's body");
    summary.click().await.expect("open it");
    let body = driver
        .find(By::Css("details.iiko-body pre"))
        .await
        .expect("the body")
        .text()
        .await
        .expect("its text");
    assert!(body.contains("\"eventInfo\": {"), "{body}");
    screenshots(driver, "inbox-body-en", (1024, 768)).await;
    browser.quit().await;
}
