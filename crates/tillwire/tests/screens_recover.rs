//! Screens that last a shift, in a real headless Chromium against the real binary: a board and a kitchen screen
//! ride out a server restart without a reload (an offline banner while it is down), and a staff screen whose
//! sign-in ended goes to the sign-in form instead of failing in a script.

mod common;

use common::{DEVICE_KEY, LIVE_UPDATE, PAGE_LOAD, eventually};
use serde_json::Value;
use tillwire_testkit::thirtyfour::prelude::*;
use tillwire_testkit::{Browser, http_client, login};

/// A restart takes a few seconds, and the screens retry after a growing pause of at most 10 s.
const RECOVERY: std::time::Duration = std::time::Duration::from_secs(30);
const ENVS: &[(&str, &str)] = &[
    ("API_KEY", DEVICE_KEY),
    ("TILLWIRE_SHUTDOWN_GRACE_SECS", "2"),
];

/// Whether the element `css` exists and shows text containing `words`.
async fn shows(driver: &WebDriver, css: &str, words: String) -> Result<(), String> {
    let element = match driver.find(By::Css(css)).await {
        Ok(element) => element,
        Err(_) => {
            let url = driver.current_url().await.map_err(|e| e.to_string())?;
            let page = driver.source().await.unwrap_or_default();
            return Err(format!("no {css} at {url}: {page}"));
        }
    };
    let text = element.text().await.map_err(|error| error.to_string())?;
    if element.is_displayed().await.unwrap_or(false) && text.contains(&words) {
        Ok(())
    } else {
        Err(format!("{css} shows {text:?}"))
    }
}

/// Whether the offline banner is hidden.
async fn online(driver: &WebDriver) -> Result<(), String> {
    let banner = driver
        .find(By::Css("#link-state"))
        .await
        .map_err(|error| error.to_string())?;
    match banner.is_displayed().await {
        Ok(false) => Ok(()),
        other => Err(format!("the offline banner shows: {other:?}")),
    }
}

/// Marks the page, so a reload (which would forget the mark) can be told from a live recovery.
async fn mark(driver: &WebDriver) {
    driver
        .execute("window.stillTheSamePage = true;", Vec::new())
        .await
        .expect("mark the page");
}

async fn assert_not_reloaded(driver: &WebDriver, what: &str) {
    let kept = driver
        .execute("return window.stillTheSamePage === true;", Vec::new())
        .await
        .expect("read the mark")
        .json()
        .clone();
    assert_eq!(kept, Value::Bool(true), "the {what} was reloaded");
}

tillwire_testkit::both_backends!(
    board_and_kitchen_ride_out_a_restart_without_a_reload,
    |db| async move {
        let data = common::data_dir();
        let common::Shop {
            mut server,
            base,
            username,
            password,
            client,
            day,
            numbers,
        } = common::open_shop(&db, data.path(), ENVS, 1).await;
        let port = server.port();
        let first = numbers[0];

        // The station the first order is made at.
        let admin = http_client();
        login(&admin, &base, &username, &password).await;
        let snapshot: Value = admin
            .get(format!("{base}/screens/snapshot?unit=1"))
            .header("accept", "application/json")
            .send()
            .await
            .expect("staff snapshot")
            .json()
            .await
            .expect("JSON");
        let station = snapshot["orders"]
            .as_array()
            .and_then(|orders| orders.iter().find(|order| order["number"] == first))
            .and_then(|order| order["stations"][0]["station_id"].as_i64())
            .unwrap_or_else(|| panic!("order {first} has no station: {snapshot}"));

        let browser = Browser::start().await;
        let driver = browser.driver();
        driver
            .goto(format!("{base}/dashboard/"))
            .await
            .expect("open the board");
        let tile = format!(r#".tile[data-number="{first}"]"#);
        eventually("the board shows the first order", PAGE_LOAD, || {
            shows(driver, &tile, first.to_string())
        })
        .await;
        mark(driver).await;
        let board = driver.window().await.expect("the board's window");

        let kitchen = driver.new_tab().await.expect("a second tab");
        driver
            .switch_to_window(kitchen.clone())
            .await
            .expect("switch");
        common::sign_in_browser(driver, &base, &username, &password).await;
        driver
            .goto(format!("{base}/kitchen/{station}"))
            .await
            .expect("open the kitchen screen");
        let ticket = format!("#order-{}", snapshot_order_id(&snapshot, first));
        eventually("the kitchen shows the first order", PAGE_LOAD, || {
            shows(driver, &ticket, format!("№ {first}"))
        })
        .await;
        mark(driver).await;

        // The server stops: both screens say they are offline.
        assert!(server.terminate().success(), "{}", server.output());
        let gateway = tokio::spawn(bad_gateway(port, std::time::Duration::from_secs(4)));
        for window in [&kitchen, &board] {
            driver
                .switch_to_window(window.clone())
                .await
                .expect("switch");
            eventually("the offline banner", LIVE_UPDATE, || {
                shows(driver, "#link-state", "Нет связи".to_owned())
            })
            .await;
        }

        // Meanwhile a proxy in front answers 502 (a browser's own EventSource gives up on that for good).
        let answered = gateway.await.expect("the gateway");
        assert!(answered > 0, "no screen retried while the server was away");

        // It is back: both screens reconnect by themselves and follow new orders again.
        let server = common::serve_on_port(&db, data.path(), port, ENVS).await;
        let second = common::import(&client, &base, DEVICE_KEY, 2, &day).await;
        driver
            .switch_to_window(board.clone())
            .await
            .expect("switch");
        let tile = format!(r#".tile[data-number="{second}"]"#);
        eventually("the board shows the new order", RECOVERY, || {
            shows(driver, &tile, second.to_string())
        })
        .await;
        eventually("the board is online", LIVE_UPDATE, || online(driver)).await;
        assert_not_reloaded(driver, "board").await;

        driver.switch_to_window(kitchen).await.expect("switch");
        let snapshot: Value = admin
            .get(format!("{base}/screens/snapshot?unit=1"))
            .header("accept", "application/json")
            .send()
            .await
            .expect("staff snapshot")
            .json()
            .await
            .expect("JSON");
        let ticket = format!("#order-{}", snapshot_order_id(&snapshot, second));
        eventually("the kitchen shows the new order", RECOVERY, || {
            shows(driver, &ticket, format!("№ {second}"))
        })
        .await;
        eventually("the kitchen is online", LIVE_UPDATE, || online(driver)).await;
        assert_not_reloaded(driver, "kitchen screen").await;

        browser.quit().await;
        drop(server);
    }
);

/// Answers every request on `port` with 502, as a reverse proxy does while the server behind it restarts, for
/// `period`; returns how many it answered.
async fn bad_gateway(port: u16, period: std::time::Duration) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("take over the server's port");
    let until = tokio::time::Instant::now() + period;
    let mut answered = 0;
    while let Ok(Ok((mut stream, _))) = tokio::time::timeout_at(until, listener.accept()).await {
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request).await;
        let _ = stream
            .write_all(
                b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await;
        answered += 1;
    }
    answered
}

fn snapshot_order_id(snapshot: &Value, number: i64) -> i64 {
    snapshot["orders"]
        .as_array()
        .and_then(|orders| orders.iter().find(|order| order["number"] == number))
        .and_then(|order| order["id"].as_i64())
        .unwrap_or_else(|| panic!("no order {number} in {snapshot}"))
}

/// Ends every staff session, as twelve idle hours would.
async fn end_sessions(db: &tillwire_testkit::TestDatabase) {
    common::query_pairs(
        db,
        "UPDATE sessions SET expires_ms = 0 RETURNING user_id, expires_ms",
    )
    .await;
}

async fn on_sign_in_page(driver: &WebDriver) -> Result<(), String> {
    let url = driver.current_url().await.map_err(|e| e.to_string())?;
    if url.path() == "/users/login/" && url.query().is_some_and(|q| q.contains("next=%2F")) {
        driver
            .find(By::Css("form[action='/users/login/'] [name=password]"))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else {
        Err(format!("at {url}"))
    }
}

tillwire_testkit::both_backends!(
    an_ended_session_takes_the_operator_screen_to_sign_in,
    |db| async move {
        let data = common::data_dir();
        let common::Shop {
            mut server,
            base,
            username,
            password,
            numbers,
            ..
        } = common::open_shop(&db, data.path(), ENVS, 1).await;
        let port = server.port();
        let number = numbers[0];

        let browser = Browser::start().await;
        let driver = browser.driver();
        common::sign_in_browser(driver, &base, &username, &password).await;
        let button = "#orders .status-button[data-status]";
        eventually("the operator screen lists the order", PAGE_LOAD, || {
            shows(driver, "#orders", number.to_string())
        })
        .await;

        // A button pressed after the session ended leads to the sign-in form, and back after it.
        end_sessions(&db).await;
        common::press(driver, button).await;
        eventually("the sign-in form", LIVE_UPDATE, || on_sign_in_page(driver)).await;
        common::sign_in_browser(driver, &base, &username, &password).await;
        eventually("the operator screen again", PAGE_LOAD, || {
            shows(driver, "#orders", number.to_string())
        })
        .await;

        // A screen nobody touches finds out when its stream reconnects (here after a restart).
        end_sessions(&db).await;
        assert!(server.terminate().success(), "{}", server.output());
        let server = common::serve_on_port(&db, data.path(), port, ENVS).await;
        eventually("the sign-in form by itself", RECOVERY, || {
            on_sign_in_page(driver)
        })
        .await;
        browser.quit().await;
        drop(server);
    }
);

/// The text of `id="…">TEXT<` in a page.
fn element_text<'a>(html: &'a str, id: &str) -> &'a str {
    let marker = format!(r#"id="{id}">"#);
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {html}"))
        + marker.len();
    &html[start..start + html[start..].find('<').expect("the element ends")]
}

/// Makes a screen on the admin page as `admin` (signed in, with `csrf`) and returns its pairing code.
async fn make_screen(
    admin: &tillwire_testkit::reqwest::Client,
    base: &str,
    csrf: &str,
    fields: [(&str, &str); 4],
) -> String {
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", csrf));
    let reply = admin
        .post(format!("{base}/admin/screens/"))
        .form(&form)
        .send()
        .await
        .expect("POST /admin/screens/");
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "a page showing a pairing code is not kept"
    );
    let page = reply.text().await.expect("the page");
    element_text(&page, "pairing-code").to_owned()
}

async fn pair_with(driver: &WebDriver, base: &str, code: &str) {
    driver
        .goto(format!("{base}/pair/"))
        .await
        .expect("open the pairing page");
    common::type_into(driver, "form[action='/pair/'] [name=code]", code).await;
    common::press(driver, "form[action='/pair/'] button").await;
}

tillwire_testkit::both_backends!(
    a_paired_screen_opens_its_unit_without_a_sign_in_until_revoked,
    |db| async move {
        let data = common::data_dir();
        let common::Shop {
            // Kept to the end: dropping it stops the server.
            server: _server,
            base,
            username,
            password,
            client,
            numbers,
            ..
        } = common::open_shop(&db, data.path(), ENVS, 1).await;
        let number = numbers[0];
        let admin = http_client();
        let csrf = login(&admin, &base, &username, &password).await;
        let second_unit = admin
            .post(format!("{base}/admin/units/"))
            .form(&[("name", "Второй магазин"), ("csrf", csrf.as_str())])
            .send()
            .await
            .expect("create a unit");
        assert_eq!(second_unit.status(), 303);
        let second: i64 = common::query_pairs(
            &db,
            "SELECT id, id FROM units WHERE name = 'Второй магазин'",
        )
        .await[0]
            .0;

        // A board TV of the second unit: paired by its code, it opens that unit's board, signed in as nobody.
        let board_code = make_screen(
            &admin,
            &base,
            &csrf,
            [
                ("name", "Табло в зале"),
                ("unit_id", &second.to_string()),
                ("role", "viewer"),
                ("opens", "/dashboard/"),
            ],
        )
        .await;
        let screen = Browser::start().await;
        let driver = screen.driver();
        pair_with(driver, &base, &board_code).await;
        eventually("the paired board", PAGE_LOAD, || async {
            let board = driver
                .find(By::Css("#screen[data-mode=board]"))
                .await
                .map_err(|e| e.to_string())?;
            match board.attr("data-unit").await {
                Ok(Some(unit)) if unit == second.to_string() => Ok(()),
                other => Err(format!("board of unit {other:?}")),
            }
        })
        .await;

        // An operator terminal of the first unit: its page with no navigation, and its buttons work.
        let operator_code = make_screen(
            &admin,
            &base,
            &csrf,
            [
                ("name", "Терминал"),
                ("unit_id", "1"),
                ("role", "operator"),
                ("opens", "/"),
            ],
        )
        .await;
        pair_with(driver, &base, &operator_code).await;
        eventually("the paired operator screen", PAGE_LOAD, || {
            shows(driver, "#orders", number.to_string())
        })
        .await;
        assert!(
            driver.find(By::Css("nav.topbar")).await.is_err(),
            "a paired screen shows navigation"
        );
        common::press(driver, "#orders .status-button[data-status]").await;
        eventually("the status changed", LIVE_UPDATE, || async {
            let order = common::board_snapshot(&client, &base).await["orders"]
                .as_array()
                .and_then(|orders| orders.iter().find(|o| o["number"] == number).cloned())
                .unwrap_or(Value::Null);
            if order["status_id"] != 1 {
                Ok(())
            } else {
                Err(format!("still {order}"))
            }
        })
        .await;

        // The admin page lists both, paired and seen.
        let listed = admin
            .get(format!("{base}/admin/screens/"))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("page");
        assert_eq!(common::occurrences(&listed, "подключён"), 2, "{listed}");
        assert!(!listed.contains(&board_code) && !listed.contains(&operator_code));

        // Revoked: the terminal's next action leads to the pairing form.
        let terminal =
            common::query_pairs(&db, "SELECT id, id FROM screens WHERE name = 'Терминал'").await[0]
                .0;
        let revoked = admin
            .post(format!("{base}/admin/screens/{terminal}/revoke"))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .expect("revoke");
        assert_eq!(revoked.status(), 303);
        // The row tapped a moment ago stays inert for a moment (double-tap protection): wait it out.
        eventually("the tapped row is live again", LIVE_UPDATE, || async {
            match driver.find(By::Css("#orders .held")).await {
                Ok(_) => Err("still held".to_owned()),
                Err(_) => Ok(()),
            }
        })
        .await;
        common::press(driver, "#orders .status-button[data-status]").await;
        eventually("the pairing form", LIVE_UPDATE, || async {
            let url = driver.current_url().await.map_err(|e| e.to_string())?;
            if url.path() == "/pair/" {
                Ok(())
            } else {
                Err(format!("at {url}"))
            }
        })
        .await;
        screen.quit().await;
    }
);
