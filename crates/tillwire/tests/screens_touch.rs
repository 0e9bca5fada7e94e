//! Touch screens used in a hurry, in a real headless Chromium against the real binary: a double tap moves an order
//! one status only (the row stays, inert, under the finger), and cancelling asks first, in the page.

mod common;

use std::time::Duration;

use common::{DEVICE_KEY, LIVE_UPDATE, PAGE_LOAD, eventually};
use tillwire_testkit::thirtyfour::prelude::*;
use tillwire_testkit::{Browser, http_client};

const PREPARING: i64 = 1;
const READY: i64 = 2;
const CANCELLED: i64 = 4;

/// The stored status of order `number`, from the public board's snapshot (which lists shown statuses only, so
/// an order that left the board reads as `None`).
async fn status_of(base: &str, number: i64) -> Option<i64> {
    common::board_snapshot(&http_client(), base).await["orders"]
        .as_array()
        .and_then(|orders| orders.iter().find(|o| o["number"] == number).cloned())
        .and_then(|order| order["status_id"].as_i64())
}

/// Taps at `point` as a finger would: whatever is on top there gets the click.
async fn tap_at(driver: &WebDriver, point: (f64, f64)) {
    driver
        .execute(
            "const target = document.elementFromPoint(arguments[0], arguments[1]); if (target) target.click();",
            vec![serde_json::json!(point.0), serde_json::json!(point.1)],
        )
        .await
        .expect("tap");
}

/// The middle of the element `css`, in viewport coordinates.
async fn middle_of(driver: &WebDriver, css: &str) -> (f64, f64) {
    let point = driver
        .execute(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2];",
            vec![serde_json::json!(css)],
        )
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .json()
        .clone();
    (point[0].as_f64().expect("x"), point[1].as_f64().expect("y"))
}

tillwire_testkit::both_backends!(
    a_double_tap_moves_one_step_and_cancelling_asks_first,
    |db| async move {
        let data = common::data_dir();
        let shop = common::open_shop(&db, data.path(), &[("API_KEY", DEVICE_KEY)], 2).await;
        let common::Shop {
            base,
            username,
            password,
            ..
        } = &shop;
        let [first, second] = shop.numbers[..] else {
            unreachable!("two receipts")
        };

        let browser = Browser::start().await;
        let driver = browser.driver();
        driver.set_window_rect(0, 0, 1366, 768).await.expect("size");
        common::sign_in_browser(driver, base, username, password).await;
        let ready_button =
            format!(r#".order-row[data-number="{first}"] .status-button[data-status="{READY}"]"#);
        eventually(
            "the operator screen lists the orders",
            PAGE_LOAD,
            || async {
                driver
                    .find(By::Css(&ready_button))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        )
        .await;

        // Two taps 300 ms apart on "Готов": the second lands where "Выдан" would now be, and must do nothing.
        let spot = middle_of(driver, &ready_button).await;
        tap_at(driver, spot).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        tap_at(driver, spot).await;
        eventually("the first tap arrived", LIVE_UPDATE, || async {
            match status_of(base, first).await {
                Some(READY) => Ok(()),
                other => Err(format!("order {first} is in {other:?}")),
            }
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            status_of(base, first).await,
            Some(READY),
            "a double tap skipped a status"
        );

        // Cancelling asks in the page; "keep it" changes nothing, confirming cancels.
        let cancel_button = format!(
            r#".order-row[data-number="{second}"] .status-button[data-status="{CANCELLED}"]"#
        );
        for confirm in [false, true] {
            common::press(driver, &cancel_button).await;
            let question = eventually("the confirmation", LIVE_UPDATE, || async {
                let dialog = driver
                    .find(By::Css("dialog.confirm-cancel[open]"))
                    .await
                    .map_err(|e| e.to_string())?;
                dialog.text().await.map_err(|e| e.to_string())
            })
            .await;
            assert!(
                question.contains(&format!("Отменить заказ № {second}?")),
                "{question}"
            );
            let answer = if confirm { ".cancel-order" } else { ".keep" };
            common::press(driver, &format!("dialog.confirm-cancel {answer}")).await;
            if confirm {
                eventually("the order is cancelled", LIVE_UPDATE, || async {
                    match status_of(base, second).await {
                        None => Ok(()),
                        other => Err(format!("order {second} is in {other:?}")),
                    }
                })
                .await;
            } else {
                tokio::time::sleep(Duration::from_millis(500)).await;
                assert_eq!(status_of(base, second).await, Some(PREPARING));
                assert!(driver.find(By::Css("dialog.confirm-cancel")).await.is_err());
            }
        }
        let cancelled: Vec<(i64, i64)> =
            common::query_pairs(&db, "SELECT number, status_id FROM orders ORDER BY number").await;
        assert_eq!(cancelled, [(first, READY), (second, CANCELLED)]);
        browser.quit().await;
    }
);

tillwire_testkit::both_backends!(
    an_order_too_long_in_its_status_turns_amber_then_red,
    |db| async move {
        let data = common::data_dir();
        let shop = common::open_shop(&db, data.path(), &[("API_KEY", DEVICE_KEY)], 3).await;
        let common::Shop {
            base,
            username,
            password,
            ..
        } = &shop;
        let [fresh, waiting, late] = shop.numbers[..] else {
            unreachable!("three receipts")
        };
        // "Готовится" alerts after 2 minutes; two orders have been in it 3 and 5 minutes.
        let admin = http_client();
        let csrf = tillwire_testkit::login(&admin, base, username, password).await;
        let saved = admin
            .post(format!("{base}/admin/statuses/{PREPARING}"))
            .form(&[
                ("name", "Готовится"),
                ("shown", "on"),
                ("color", "gray"),
                ("icon", "bi bi-bag"),
                ("alert_minutes", "2"),
                ("csrf", csrf.as_str()),
            ])
            .send()
            .await
            .expect("save the status");
        assert_eq!(saved.status(), 303);
        assert_eq!((fresh, waiting, late), (1, 2, 3));
        for sql in [
            "UPDATE orders SET created_ms = created_ms - 180000, status_changed_ms = status_changed_ms - 180000 \
             WHERE number = 2 RETURNING number, status_id",
            "UPDATE orders SET created_ms = created_ms - 300000, status_changed_ms = status_changed_ms - 300000 \
             WHERE number = 3 RETURNING number, status_id",
        ] {
            assert_eq!(common::query_pairs(&db, sql).await.len(), 1, "{sql}");
        }

        let browser = Browser::start().await;
        let driver = browser.driver();
        common::sign_in_browser(driver, base, username, password).await;
        for (number, class, age) in [
            (fresh, "created", "0 мин"),
            (waiting, "created waiting", "3 мин"),
            (late, "created late", "5 мин"),
        ] {
            let css = format!(r#".order-row[data-number="{number}"] .created"#);
            eventually(&format!("order {number}'s age"), PAGE_LOAD, || async {
                let cell = driver
                    .find(By::Css(&css))
                    .await
                    .map_err(|e| e.to_string())?;
                let classes = cell.class_name().await.map_err(|e| e.to_string())?;
                let text = cell.text().await.map_err(|e| e.to_string())?;
                if classes.as_deref() == Some(class) && text.contains(age) {
                    Ok(())
                } else {
                    Err(format!("{classes:?}: {text:?}"))
                }
            })
            .await;
        }
        browser.quit().await;
    }
);

tillwire_testkit::both_backends!(
    the_kitchen_lets_go_of_ready_orders_and_shows_cancelled_ones,
    |db| async move {
        let data = common::data_dir();
        let shop = common::open_shop(&db, data.path(), &[("API_KEY", DEVICE_KEY)], 3).await;
        let common::Shop {
            base,
            username,
            password,
            client,
            ..
        } = &shop;
        let [served, cancelled, waiting] = shop.numbers[..] else {
            unreachable!("three receipts")
        };
        let served_id = common::order_id_by_number(client, base, served).await;
        let cancelled_id = common::order_id_by_number(client, base, cancelled).await;
        let station: i64 = common::query_pairs(
            &db,
            "SELECT station_id, station_id FROM order_stations ORDER BY order_id LIMIT 1",
        )
        .await[0]
            .0;

        let browser = Browser::start().await;
        let driver = browser.driver();
        driver.set_window_rect(0, 0, 1024, 768).await.expect("size");
        common::sign_in_browser(driver, base, username, password).await;
        driver
            .goto(format!("{base}/kitchen/{station}"))
            .await
            .expect("open the kitchen screen");
        let numbers = || async {
            let cards = driver
                .find_all(By::Css("article.ticket .number"))
                .await
                .map_err(|e| e.to_string())?;
            let mut texts = Vec::new();
            for card in cards {
                texts.push(card.text().await.map_err(|e| e.to_string())?);
            }
            Ok::<Vec<String>, String>(texts)
        };
        let all: Vec<String> = [served, cancelled, waiting]
            .iter()
            .map(|n| format!("№ {n}"))
            .collect();
        eventually("the kitchen shows three orders", PAGE_LOAD, || async {
            let shown = numbers().await?;
            if shown == all {
                Ok(())
            } else {
                Err(format!("{shown:?}"))
            }
        })
        .await;

        // The operator hands one order out (Ready) and cancels another.
        common::api_set_status(client, base, DEVICE_KEY, served_id, READY).await;
        common::api_set_status(client, base, DEVICE_KEY, cancelled_id, CANCELLED).await;
        eventually(
            "the kitchen lets go of the ready order",
            LIVE_UPDATE,
            || async {
                let shown = numbers().await?;
                let expected = vec![format!("№ {cancelled}"), format!("№ {waiting}")];
                if shown == expected {
                    Ok(())
                } else {
                    Err(format!("{shown:?}"))
                }
            },
        )
        .await;
        let card = driver
            .find(By::Css(format!("#order-{cancelled_id}.cancelled")))
            .await
            .expect("the cancelled order's card");
        let said = card.text().await.expect("text");
        assert!(said.contains("ОТМЕНЁН"), "{said}");
        assert!(
            card.find(By::Css(".ready-button")).await.is_err(),
            "a cancelled order offers no Ready"
        );
        browser.quit().await;
    }
);

/// The sound switch on the board: one tap turns the chime on (browsers need a gesture), and the screen remembers it.
#[tokio::test]
async fn the_board_turns_its_sound_on_with_one_tap_and_remembers() {
    let db = tillwire_testkit::TestDatabase::new(tillwire_testkit::Backend::Sqlite).await;
    let data = common::data_dir();
    let server = common::serve(&db, data.path(), &[]).await;
    let base = server.base_url();
    let browser = Browser::start().await;
    let driver = browser.driver();
    driver
        .goto(format!("{base}/dashboard/"))
        .await
        .expect("open the board");
    let switch_state = || async {
        let button = driver
            .find(By::Css(".sound-toggle"))
            .await
            .map_err(|e| e.to_string())?;
        let pressed = button
            .attr("aria-pressed")
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let said = button.text().await.map_err(|e| e.to_string())?;
        Ok::<(String, String), String>((pressed, said))
    };
    let off = eventually("the sound switch", PAGE_LOAD, switch_state).await;
    assert_eq!(off, ("false".to_owned(), "♪ Включить звук".to_owned()));
    common::press(driver, ".sound-toggle").await;
    eventually("the sound is on", LIVE_UPDATE, || async {
        match switch_state().await? {
            (pressed, said) if pressed == "true" && said.contains("Звук включён") => {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    driver.refresh().await.expect("reload");
    let remembered = eventually("the switch after a reload", PAGE_LOAD, switch_state).await;
    assert_eq!(remembered.0, "true", "{remembered:?}");
    browser.quit().await;
}

tillwire_testkit::both_backends!(
    the_operator_sees_each_orders_items_and_finds_one_by_number,
    |db| async move {
        let data = common::data_dir();
        let shop = common::open_shop(&db, data.path(), &[("API_KEY", DEVICE_KEY)], 12).await;
        let common::Shop {
            base,
            username,
            password,
            ..
        } = &shop;
        let browser = Browser::start().await;
        let driver = browser.driver();
        common::sign_in_browser(driver, base, username, password).await;
        let rows = || async {
            let rows = driver
                .find_all(By::Css(".order-row"))
                .await
                .map_err(|e| e.to_string())?;
            let mut said = Vec::new();
            for row in rows {
                said.push(row.text().await.map_err(|e| e.to_string())?);
            }
            Ok::<Vec<String>, String>(said)
        };
        let all = eventually("every order", PAGE_LOAD, || async {
            let said = rows().await?;
            if said.len() == 12 {
                Ok(said)
            } else {
                Err(format!("{said:?}"))
            }
        })
        .await;
        assert!(all[0].contains("Пицца 4 сыра × 1"), "{}", all[0]);
        common::type_into(driver, "#order-search", "1").await;
        let found = eventually("orders numbered 1…", LIVE_UPDATE, || async {
            let said = rows().await?;
            if said.len() == 4 {
                Ok(said)
            } else {
                Err(format!("{said:?}"))
            }
        })
        .await;
        // 1, 10, 11, 12.
        assert!(found.iter().all(|row| row.starts_with('1')), "{found:?}");
        common::type_into(driver, "#order-search", "2").await;
        eventually("order 12 alone", LIVE_UPDATE, || async {
            let said = rows().await?;
            if said.len() == 1 && said[0].starts_with("12") {
                Ok(())
            } else {
                Err(format!("{said:?}"))
            }
        })
        .await;
        browser.quit().await;
    }
);
