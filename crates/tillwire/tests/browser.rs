//! The screens in a real headless Chromium against the real binary: the public customer board
//! follows imports and the operator's clicks live, and never cuts a number off.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{DEVICE_KEY, LIVE_UPDATE, PAGE_LOAD, eventually};
use futures::StreamExt;
use serde_json::Value;
use tillwire_testkit::thirtyfour::prelude::*;
use tillwire_testkit::{Browser, http_client};

const PREPARING: i64 = 1;
const READY: i64 = 2;

/// The words of a board column's text as the browser renders it: its header, then its numbers.
async fn column_words(driver: &WebDriver, status: i64) -> Result<Vec<String>, String> {
    let column = driver
        .find(By::Css(format!(
            r#"section.board-column[data-status="{status}"]"#
        )))
        .await
        .map_err(|error| format!("no column for status {status}: {error}"))?;
    // Every render replaces the columns, so the element can go stale between `find` and `text`;
    // that is just "look again".
    let text = column
        .text()
        .await
        .map_err(|error| format!("reading column {status}: {error}"))?;
    Ok(text.split_whitespace().map(str::to_owned).collect())
}

/// Waits until the board shows `number` in the column of `status` and in no other column.
async fn wait_for_number(driver: &WebDriver, number: i64, status: i64, header: &str) {
    let wanted = number.to_string();
    eventually(
        &format!("number {number} in the board's {header:?} column"),
        LIVE_UPDATE,
        || async {
            let here = column_words(driver, status).await?;
            let other = column_words(
                driver,
                if status == PREPARING {
                    READY
                } else {
                    PREPARING
                },
            )
            .await?;
            if here.first().map(String::as_str) != Some(header) {
                return Err(format!("column {status} is headed {here:?}"));
            }
            if here[1..].contains(&wanted) && !other[1..].contains(&wanted) {
                Ok(())
            } else {
                Err(format!(
                    "column {status}: {here:?}; the other column: {other:?}"
                ))
            }
        },
    )
    .await;
}

/// Fails when a browser reported that the content security policy blocked something on a page it showed.
fn assert_no_policy_violations(server: &tillwire_testkit::ServerProcess) {
    let output = server.output();
    assert!(
        !output.contains("content security policy violation"),
        "a page broke the content security policy:\n{output}"
    );
}

async fn body_text(driver: &WebDriver) -> Result<String, String> {
    driver
        .find(By::Tag("body"))
        .await
        .map_err(|error| error.to_string())?
        .text()
        .await
        .map_err(|error| error.to_string())
}

tillwire_testkit::both_backends!(board_follows_import_and_operator_click, |db| async move {
    let data = common::data_dir();
    let server = common::serve(&db, data.path(), &[("API_KEY", DEVICE_KEY)]).await;
    let base = server.base_url();
    let username = common::admin_username(&server.output());
    let password = common::admin_password(&server);
    let day = common::today();
    let client = http_client();

    let browser = Browser::start().await;
    let driver = browser.driver();

    // The customer board is public: no login in this fresh browser profile.
    driver
        .goto(format!("{base}/dashboard/"))
        .await
        .expect("open the board");
    let board_window = driver.window().await.expect("the board's window handle");
    eventually("the board draws its two columns", PAGE_LOAD, || async {
        let preparing = column_words(driver, PREPARING).await?;
        let ready = column_words(driver, READY).await?;
        if preparing == ["Готовится"] && ready == ["Готов"] {
            Ok(())
        } else {
            Err(format!("columns {preparing:?} and {ready:?}"))
        }
    })
    .await;

    // An import shows up on the open board without a reload.
    let number = common::import(&client, &base, DEVICE_KEY, 501, &day).await;
    wait_for_number(driver, number, PREPARING, "Готовится").await;
    let order_id = common::order_id_by_number(&client, &base, number).await;

    // The operator signs in in a second window and marks the order ready.
    let operator_window = driver.new_window().await.expect("open a second window");
    driver
        .switch_to_window(operator_window.clone())
        .await
        .expect("switch to the operator window");
    common::sign_in_browser(driver, &base, &username, &password).await;
    let button_selector = format!(r#"#order-{order_id} .status-button[data-status="{READY}"]"#);
    let ready_button = eventually(
        "the operator screen lists the order with a \"Готов\" button",
        PAGE_LOAD,
        || async {
            let url = driver.current_url().await.map_err(|e| e.to_string())?;
            let button = driver
                .find(By::Css(button_selector.as_str()))
                .await
                .map_err(|e| format!("at {url}: {e}"))?;
            let caption = button.text().await.map_err(|e| e.to_string())?;
            if caption.trim() == "Готов" {
                Ok(button)
            } else {
                Err(format!("the button reads {caption:?}"))
            }
        },
    )
    .await;
    let operator_text = body_text(driver).await.expect("the operator page's text");
    for header in ["Заказ", "Операции", "Статус заказа", "Создан"] {
        assert!(
            operator_text.contains(header),
            "the operator screen lacks the column header {header:?}; its text:\n{operator_text}"
        );
    }
    let row_text = driver
        .find(By::Css(format!("#order-{order_id}")))
        .await
        .expect("the order's row")
        .text()
        .await
        .expect("the order's row text");
    assert!(
        row_text
            .split_whitespace()
            .any(|word| word == number.to_string())
            && row_text.contains("Готовится")
            && row_text.contains("Отменен"),
        "row of order {number}: {row_text:?}"
    );
    ready_button.click().await.expect("click \"Готов\"");

    // The operator's own screen now offers the next steps of a ready order.
    eventually(
        "the operator row offers \"Выдан\" after the click",
        LIVE_UPDATE,
        || async {
            driver
                .find(By::Css(format!(
                    r#"#order-{order_id} .status-button[data-status="3"]"#
                )))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
    )
    .await;

    // And the board in the first window moved the number to "Готов".
    driver
        .switch_to_window(board_window)
        .await
        .expect("switch back to the board");
    wait_for_number(driver, number, READY, "Готов").await;

    let snapshot = common::board_snapshot(&client, &base).await;
    let order = snapshot["orders"]
        .as_array()
        .and_then(|orders| orders.iter().find(|o| o["id"] == order_id))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(order["status_id"], READY, "the stored status: {snapshot}");

    browser.quit().await;
    assert_no_policy_violations(&server);
});

/// Checks, in the page, that every tile is drawn whole: inside the viewport, inside its column's
/// clipping box, not overflowing its own box, and showing its whole number.
const TILE_CHECK: &str = r#"
const width = document.documentElement.clientWidth;
const height = document.documentElement.clientHeight;
const problems = [];
const tiles = [];
for (const tile of document.querySelectorAll(".tile")) {
  const r = tile.getBoundingClientRect();
  const column = tile.closest("section.board-column");
  const clip = tile.closest(".tiles").getBoundingClientRect();
  const number = tile.dataset.number;
  tiles.push({ number: Number(number), status: Number(column.dataset.status), text: tile.textContent.trim() });
  // A full column shows its numbers page by page: a tile of another page is hidden, and checked when its page is up.
  if (tile.hidden) continue;
  const where = `tile ${number}: ${JSON.stringify({ left: r.left, top: r.top, right: r.right, bottom: r.bottom })}`;
  if (r.width < 1 || r.height < 1) problems.push(`${where} has no size`);
  if (r.left < 0 || r.top < 0 || r.right > width || r.bottom > height) problems.push(`${where} is outside the ${width}x${height} viewport`);
  if (r.left < clip.left - 0.5 || r.top < clip.top - 0.5 || r.right > clip.right + 0.5 || r.bottom > clip.bottom + 0.5)
    problems.push(`${where} is clipped by its column ${JSON.stringify({ left: clip.left, top: clip.top, right: clip.right, bottom: clip.bottom })}`);
  if (tile.scrollWidth > tile.clientWidth + 1 || tile.scrollHeight > tile.clientHeight + 1) problems.push(`${where} overflows its own box`);
  if (tile.innerText.trim() !== number) problems.push(`${where} reads ${JSON.stringify(tile.innerText)}`);
}
return { width, height, problems, tiles };
"#;

#[derive(Debug, serde::Deserialize)]
struct TileReport {
    width: u32,
    height: u32,
    problems: Vec<String>,
    tiles: Vec<Tile>,
}

#[derive(Debug, serde::Deserialize)]
struct Tile {
    number: i64,
    status: i64,
    text: String,
}

/// Waits until the board holds exactly the `expected` numbers (number → status column) with
/// every tile of the page shown whole. The limit is [`LIVE_UPDATE`], shorter than the board's 10 s redraw, so a
/// wrong fit after a change cannot hide behind a later redraw.
async fn assert_every_tile_whole(driver: &WebDriver, expected: &BTreeMap<i64, i64>, when: &str) {
    let report = eventually(
        &format!(
            "every one of {} numbers whole on the board ({when})",
            expected.len()
        ),
        LIVE_UPDATE,
        || async {
            let report: TileReport = driver
                .execute(TILE_CHECK, Vec::new())
                .await
                .map_err(|e| e.to_string())?
                .convert()
                .map_err(|e| e.to_string())?;
            let shown: BTreeMap<i64, i64> =
                report.tiles.iter().map(|t| (t.number, t.status)).collect();
            if shown.len() != report.tiles.len() {
                return Err(format!("a number is shown twice: {:?}", report.tiles));
            }
            if &shown != expected {
                return Err(format!(
                    "{} tiles, not the expected {}",
                    shown.len(),
                    expected.len()
                ));
            }
            if !report.problems.is_empty() {
                return Err(format!(
                    "{} of {} tiles are cut off in a {}x{} viewport:\n{}",
                    report.problems.len(),
                    report.tiles.len(),
                    report.width,
                    report.height,
                    report.problems.join("\n")
                ));
            }
            Ok(report)
        },
    )
    .await;
    assert!(
        report.tiles.iter().all(|t| t.text == t.number.to_string()),
        "{report:?}"
    );
}

tillwire_testkit::both_backends!(
    board_shows_120_orders_without_cutting_numbers,
    |db| async move {
        let data = common::data_dir();
        let server = common::serve(&db, data.path(), &[("API_KEY", DEVICE_KEY)]).await;
        let base = server.base_url();
        let day = common::today();
        let client = http_client();

        // 120 orders, imported 8 at a time; every fourth one is then marked ready.
        let numbers: Vec<(i64, i64)> = futures::stream::iter(1..=120)
            .map(|check_id| {
                let (client, base, day) = (client.clone(), base.clone(), day.clone());
                async move {
                    let number = common::import(&client, &base, DEVICE_KEY, check_id, &day).await;
                    (check_id, number)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let orders = common::api_orders(&client, &base, DEVICE_KEY, &day).await;
        assert_eq!(orders.len(), 120, "orders of {day}: {orders:?}");
        let mut expected = BTreeMap::new();
        for order in &orders {
            let (id, number) = (
                order["id"].as_i64().unwrap(),
                order["number"].as_i64().unwrap(),
            );
            let status = if number % 4 == 0 {
                common::api_set_status(&client, &base, DEVICE_KEY, id, READY).await;
                READY
            } else {
                PREPARING
            };
            expected.insert(number, status);
        }
        assert_eq!(
            expected.keys().copied().collect::<Vec<_>>(),
            (1..=120).collect::<Vec<_>>(),
            "numbers handed out: {numbers:?}"
        );

        let browser = Browser::start().await;
        let driver = browser.driver();
        driver
            .goto(format!("{base}/dashboard/"))
            .await
            .expect("open the board");
        eventually("the board draws its first snapshot", PAGE_LOAD, || async {
            let count = driver
                .execute(
                    "return document.querySelectorAll('.tile').length;",
                    Vec::new(),
                )
                .await
                .map_err(|e| e.to_string())?
                .convert::<usize>()
                .map_err(|e| e.to_string())?;
            if count == expected.len() {
                Ok(())
            } else {
                Err(format!("{count} tiles"))
            }
        })
        .await;
        assert_every_tile_whole(driver, &expected, "1280x900 window").await;

        // A smaller screen: the board re-fits on resize.
        driver
            .set_window_rect(0, 0, 800, 600)
            .await
            .expect("resize the window");
        assert_every_tile_whole(driver, &expected, "800x600 window").await;

        // A number arriving live is fitted in too.
        let number = common::import(&client, &base, DEVICE_KEY, 121, &day).await;
        expected.insert(number, PREPARING);
        assert_every_tile_whole(driver, &expected, "after one more import").await;

        browser.quit().await;
        assert_no_policy_violations(&server);
    }
);

/// The text of the first element matching `css`, or why there is none yet.
async fn text_of(driver: &WebDriver, css: &str) -> Result<String, String> {
    driver
        .find(By::Css(css))
        .await
        .map_err(|error| format!("no {css}: {error}"))?
        .text()
        .await
        .map_err(|error| error.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_form_shows_its_errors_next_to_the_fields() {
    let db = tillwire_testkit::TestDatabase::new(tillwire_testkit::Backend::Sqlite).await;
    let data = common::data_dir();
    let server = common::serve(&db, data.path(), &[]).await;
    let base = server.base_url();
    let username = common::admin_username(&server.output());
    let password = common::admin_password(&server);
    let browser = Browser::start().await;
    let driver = browser.driver();
    common::sign_in_browser(driver, &base, &username, &password).await;
    eventually("signed in", PAGE_LOAD, || async {
        let url = driver.current_url().await.map_err(|e| e.to_string())?;
        (url.path() == "/").then_some(()).ok_or(format!("at {url}"))
    })
    .await;

    // A name of spaces passes the browser's `required` but not the server: the error stands under the field, in
    // Russian, and the page stays where it was with what was typed.
    driver
        .goto(format!("{base}/admin/units/"))
        .await
        .expect("open the units page");
    let form = "form[action='/admin/units/']";
    let name = common::type_into(driver, &format!("{form} input[name=name]"), "   ").await;
    common::press(driver, &format!("{form} button")).await;
    let under_field = eventually("the field's error", LIVE_UPDATE, || async {
        text_of(driver, &format!("{form} input[name=name] + .field-error")).await
    })
    .await;
    assert_eq!(under_field, "название: от 1 до 128 символов");
    assert_eq!(
        text_of(driver, &format!("{form} .form-error"))
            .await
            .as_deref(),
        Ok("Проверьте отмеченные поля.")
    );
    assert_eq!(
        name.attr("aria-invalid")
            .await
            .expect("attribute")
            .as_deref(),
        Some("true")
    );
    let url = driver.current_url().await.expect("url");
    assert_eq!(url.path(), "/admin/units/");

    // Corrected, the same form goes through and the page shows the new unit; the old error is gone.
    name.clear().await.expect("clear");
    name.send_keys("Второй магазин").await.expect("type a name");
    common::press(driver, &format!("{form} button")).await;
    eventually("the new unit is listed", LIVE_UPDATE, || async {
        let page = body_text(driver).await?;
        let listed = driver
            .find_all(By::Css("input[name=name]"))
            .await
            .map_err(|e| e.to_string())?;
        let mut names = Vec::new();
        for input in listed {
            names.push(
                input
                    .value()
                    .await
                    .map_err(|e| e.to_string())?
                    .unwrap_or_default(),
            );
        }
        (names.iter().any(|n| n == "Второй магазин") && !page.contains("Проверьте отмеченные поля"))
            .then_some(())
            .ok_or(format!("names {names:?}"))
    })
    .await;

    // A refusal without a field (a duplicate) is shown above the form, in English once the reader switches.
    driver
        .goto(format!("{base}/lang/en"))
        .await
        .expect("English");
    driver
        .goto(format!("{base}/admin/units/"))
        .await
        .expect("open the units page");
    common::type_into(
        driver,
        &format!("{form} input[name=name]"),
        "Второй магазин",
    )
    .await;
    common::press(driver, &format!("{form} button")).await;
    let banner = eventually("the form's error", LIVE_UPDATE, || async {
        text_of(driver, &format!("{form} .form-error")).await
    })
    .await;
    assert_eq!(banner, "A unit with this name already exists.");

    // An API token issued through the form is shown once on the page the server answered.
    driver
        .goto(format!("{base}/admin/tokens/"))
        .await
        .expect("open the tokens page");
    common::type_into(
        driver,
        "form[action='/admin/tokens/'] input[name=name]",
        "notifications",
    )
    .await;
    common::press(driver, "form[action='/admin/tokens/'] button").await;
    let token = eventually("the new token", LIVE_UPDATE, || async {
        text_of(driver, "#issued-token").await
    })
    .await;
    assert!(token.starts_with("tw_") && token.len() == 43, "{token}");
    browser.quit().await;
    assert_no_policy_violations(&server);
}

/// The message templates page as an admin uses it: a preview appears next to the text without keeping it, a text
/// Telegram would refuse is refused under the field, a kept one is marked changed, and "back to built-in" asks
/// first (a dismissed question changes nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_template_is_previewed_refused_kept_and_reset_only_when_confirmed() {
    let db = tillwire_testkit::TestDatabase::new(tillwire_testkit::Backend::Sqlite).await;
    let data = common::data_dir();
    let server = common::serve(&db, data.path(), &[]).await;
    let base = server.base_url();
    let username = common::admin_username(&server.output());
    let password = common::admin_password(&server);
    let browser = Browser::start().await;
    let driver = browser.driver();
    common::sign_in_browser(driver, &base, &username, &password).await;
    driver
        .goto(format!("{base}/admin/notify/templates/"))
        .await
        .expect("open the templates page");
    let form = "#printer_failing form[action='/admin/notify/templates/printer_failing/ru']";
    let body = format!("{form} textarea[name=body]");
    let field = driver.find(By::Css(&body)).await.expect("the Russian text");
    field.clear().await.expect("clear");
    field
        .send_keys("Печать встала: <b>{printer}</b>")
        .await
        .expect("type");
    common::press(driver, &format!("{form} button[value=preview]")).await;
    let preview = eventually("the preview", LIVE_UPDATE, || async {
        text_of(driver, &format!("{form} .message-preview pre")).await
    })
    .await;
    assert_eq!(preview, "Печать встала: Кухня");

    // Refused under the field, in Russian.
    let field = driver.find(By::Css(&body)).await.expect("the text again");
    field.clear().await.expect("clear");
    field.send_keys("<b>{printer}").await.expect("type");
    common::press(driver, &format!("{form} button[value=save]")).await;
    let refused = eventually("the refusal", LIVE_UPDATE, || async {
        text_of(driver, &format!("{form} .field-error")).await
    })
    .await;
    assert_eq!(refused, "Тег <b> не закрыт.");

    field.clear().await.expect("clear");
    field
        .send_keys("Печать встала: <b>{printer}</b>")
        .await
        .expect("type");
    common::press(driver, &format!("{form} button[value=save]")).await;
    eventually("kept and marked changed", LIVE_UPDATE, || async {
        let marked = text_of(driver, &format!("{form} .pill.done")).await?;
        (marked == "изменён").then_some(()).ok_or(marked)
    })
    .await;

    // The reset button asks; dismissed, the text stays; accepted, the built-in one is back.
    common::press(driver, &format!("{form} button[value=reset]")).await;
    let question = eventually("the question", LIVE_UPDATE, || async {
        driver.get_alert_text().await.map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(question, "Вернуть встроенный текст? Ваш текст пропадёт.");
    driver.dismiss_alert().await.expect("dismiss");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kept = driver
        .find(By::Css(&body))
        .await
        .expect("the text")
        .value()
        .await
        .expect("value");
    assert_eq!(kept.as_deref(), Some("Печать встала: <b>{printer}</b>"));
    common::press(driver, &format!("{form} button[value=reset]")).await;
    eventually("the question again", LIVE_UPDATE, || async {
        driver.get_alert_text().await.map_err(|e| e.to_string())
    })
    .await;
    driver.accept_alert().await.expect("accept");
    eventually("the built-in text back", LIVE_UPDATE, || async {
        let value = driver
            .find(By::Css(&body))
            .await
            .map_err(|e| e.to_string())?
            .value()
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        value
            .starts_with("🖨 <b>{printer}</b>")
            .then_some(())
            .ok_or(value)
    })
    .await;
    browser.quit().await;
}
