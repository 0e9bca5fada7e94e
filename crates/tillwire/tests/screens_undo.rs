//! Taking moves back and finishing work line by line, in a real headless Chromium against the real binary: the
//! operator undoes a move from the screen (recorded in the history), filters by status and puts the newest
//! first; a cook crosses lines off until the station is ready and can bring the order back; an admin moves an
//! order to any status.

mod common;

use common::{DEVICE_KEY, LIVE_UPDATE, PAGE_LOAD, eventually};
use serde_json::json;
use tillwire_testkit::thirtyfour::prelude::*;
use tillwire_testkit::{Browser, TestDatabase, http_client};

const PREPARING: i64 = 1;
const READY: i64 = 2;
const SERVED: i64 = 3;
const WOK_SPICY: &str = "51356";
const WOK_BUCKWHEAT: &str = "51358";

/// The stored status of order `id` and its moves `(from, to)`, straight from the database.
async fn history(db: &TestDatabase, id: i64) -> (i64, Vec<(i64, i64)>) {
    let status = common::query_pairs(db, "SELECT id, status_id FROM orders")
        .await
        .into_iter()
        .find(|(order, _)| *order == id)
        .map(|(_, status)| status)
        .expect("the order");
    let moves = common::query_pairs(
        db,
        "SELECT COALESCE(from_status_id, 0), to_status_id FROM order_status_log ORDER BY id",
    )
    .await;
    (status, moves)
}

/// The texts of the operator's rows, top to bottom.
async fn rows(driver: &WebDriver) -> Result<Vec<String>, String> {
    let mut said = Vec::new();
    for row in driver
        .find_all(By::Css(".order-row"))
        .await
        .map_err(|e| e.to_string())?
    {
        said.push(
            row.attr("data-number")
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default(),
        );
    }
    Ok(said)
}

/// Waits until the operator's rows are the orders `expected`, top to bottom.
async fn rows_become(
    driver: &WebDriver,
    expected: &[String],
    what: &str,
    limit: std::time::Duration,
) {
    eventually(what, limit, || async {
        let shown = rows(driver).await?;
        if shown == expected {
            Ok(())
        } else {
            Err(format!("{shown:?}"))
        }
    })
    .await
}

tillwire_testkit::both_backends!(
    the_operator_undoes_a_move_and_filters_the_list,
    |db| async move {
        let data = common::data_dir();
        let shop = common::open_shop(&db, data.path(), &[("API_KEY", DEVICE_KEY)], 3).await;
        let common::Shop {
            base,
            username,
            password,
            client,
            numbers,
            ..
        } = &shop;
        let first = numbers[0];
        let id = common::order_id_by_number(client, base, first).await;
        let browser = Browser::start().await;
        let driver = browser.driver();
        driver.set_window_rect(0, 0, 1366, 768).await.expect("size");
        common::sign_in_browser(driver, base, username, password).await;
        let ready_button =
            format!(r#".order-row[data-number="{first}"] .status-button[data-status="{READY}"]"#);
        common::appears(driver, &ready_button, "the operator's list", PAGE_LOAD).await;
        common::press(driver, &ready_button).await;
        let undo = format!(r#"#recall .recall[data-order="{id}"]"#);
        let offered = common::appears(driver, &undo, "the undo button", LIVE_UPDATE)
            .await
            .text()
            .await
            .expect("text");
        assert!(
            offered.contains(&format!("Вернуть № {first} в «Готовится»")),
            "{offered}"
        );
        assert_eq!(history(&db, id).await.0, READY);
        common::press(driver, &undo).await;
        eventually("the order back in Готовится", LIVE_UPDATE, || async {
            match history(&db, id).await {
                (PREPARING, moves)
                    if moves.ends_with(&[(PREPARING, READY), (READY, PREPARING)]) =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        assert!(
            driver.find(By::Css(&undo)).await.is_err(),
            "an undone move is not offered again"
        );

        // Filter: only the ready orders; then all of them, newest first.
        let second = numbers[1];
        common::press(
            driver,
            &format!(r#".order-row[data-number="{second}"] .status-button[data-status="{READY}"]"#),
        )
        .await;
        eventually("the second order ready", LIVE_UPDATE, || async {
            match common::board_snapshot(client, base).await["orders"]
                .as_array()
                .and_then(|orders| orders.iter().find(|o| o["number"] == second).cloned())
            {
                Some(order) if order["status_id"] == READY => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        common::press(
            driver,
            &format!(r#".status-filter .filter[data-status="{READY}"]"#),
        )
        .await;
        rows_become(
            driver,
            &[second.to_string()],
            "only the ready order",
            LIVE_UPDATE,
        )
        .await;
        common::press(driver, r#".status-filter .filter[data-status="0"]"#).await;
        common::press(driver, ".status-filter .filter.newest").await;
        let expected: Vec<String> = numbers.iter().rev().map(i64::to_string).collect();
        rows_become(driver, &expected, "the newest first", LIVE_UPDATE).await;
        // Remembered by the screen.
        driver.refresh().await.expect("reload");
        rows_become(driver, &expected, "still the newest first", PAGE_LOAD).await;
        browser.quit().await;
    }
);

tillwire_testkit::both_backends!(
    a_cook_crosses_lines_off_and_can_bring_the_order_back,
    |db| async move {
        let data = common::data_dir();
        let shop = common::open_shop(&db, data.path(), &[("API_KEY", DEVICE_KEY)], 0).await;
        let common::Shop {
            base,
            username,
            password,
            client,
            day,
            ..
        } = &shop;
        let body = json!({"cash_id": 1, "shift_id": 1, "check_id": 1, "check_date": day,
            "wares": [{"ware_code": WOK_SPICY, "ware_count": 1}, {"ware_code": WOK_BUCKWHEAT, "ware_count": 2}]});
        let reply = common::import_with(client, base, Some(DEVICE_KEY), &body).await;
        let number = reply["doc_number"].as_i64().expect("registered");
        let id = common::order_id_by_number(client, base, number).await;

        let browser = Browser::start().await;
        let driver = browser.driver();
        driver
            .set_window_rect(0, 0, 1024, 768)
            .await
            .expect("a tablet");
        common::sign_in_browser(driver, base, username, password).await;
        driver
            .goto(format!("{base}/kitchen/"))
            .await
            .expect("kitchen index");
        let wok = eventually("the Вок station's link", PAGE_LOAD, || async {
            driver
                .find(By::LinkText("Вок"))
                .await
                .map_err(|e| e.to_string())?
                .attr("href")
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "no href".to_owned())
        })
        .await;
        driver
            .goto(format!("{base}{wok}"))
            .await
            .expect("the Вок screen");
        let line = |code: &str| format!(r#"#order-{id} li.line[data-code="{code}"]"#);
        common::appears(
            driver,
            &line(WOK_BUCKWHEAT),
            "the order's two lines",
            PAGE_LOAD,
        )
        .await;

        // One line crossed off: struck through, for every screen (it is stored), the station still working.
        common::press(driver, &line(WOK_SPICY)).await;
        eventually("the line struck through", LIVE_UPDATE, || async {
            let class = driver
                .find(By::Css(line(WOK_SPICY)))
                .await
                .map_err(|e| e.to_string())?
                .attr("class")
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            if class.contains("crossed") {
                Ok(())
            } else {
                Err(class)
            }
        })
        .await;
        driver.refresh().await.expect("reload");
        common::appears(
            driver,
            &format!("{}.crossed", line(WOK_SPICY)),
            "still crossed off after a reload",
            PAGE_LOAD,
        )
        .await;
        assert_eq!(history(&db, id).await.0, PREPARING);

        // The last line crossed off: the station is ready, the order ready (its only station), the card gone.
        common::press(driver, &line(WOK_BUCKWHEAT)).await;
        eventually("the card leaves", LIVE_UPDATE, || async {
            match driver.find(By::Css(format!("#order-{id}"))).await {
                Err(_) => Ok(()),
                Ok(_) => Err("still shown".to_owned()),
            }
        })
        .await;
        assert_eq!(history(&db, id).await.0, READY);

        // The cook takes it back: the station works on it again and the order is back in Готовится.
        let undo = format!(r#"#recall .recall[data-order="{id}"]"#);
        common::press(driver, &undo).await;
        common::appears(
            driver,
            &format!("#order-{id}"),
            "the card back",
            LIVE_UPDATE,
        )
        .await;
        let (status, moves) = history(&db, id).await;
        assert_eq!(status, PREPARING);
        assert!(
            moves.ends_with(&[(PREPARING, READY), (READY, PREPARING)]),
            "{moves:?}"
        );
        browser.quit().await;
    }
);

tillwire_testkit::both_backends!(
    an_admin_moves_an_order_to_any_status_on_its_page,
    |db| async move {
        let data = common::data_dir();
        let shop = common::open_shop(&db, data.path(), &[("API_KEY", DEVICE_KEY)], 1).await;
        let common::Shop {
            base,
            username,
            password,
            numbers,
            ..
        } = &shop;
        let client = http_client();
        let csrf = tillwire_testkit::login(&client, base, username, password).await;
        let id = common::order_id_by_number(&client, base, numbers[0]).await;
        let page = client
            .get(format!("{base}/admin/orders/{id}"))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("page");
        assert!(
            page.contains(r#"action="/admin/orders/"#) && page.contains("data-confirm"),
            "{page}"
        );
        // Готовится → Выдан: no flow allows it, an admin may.
        let moved = |status: i64, csrf: &str| {
            client
                .post(format!("{base}/admin/orders/{id}/status"))
                .form(&[("status_id", status.to_string()), ("csrf", csrf.to_owned())])
                .send()
        };
        assert_eq!(moved(SERVED, "wrong").await.expect("POST").status(), 403);
        let response = moved(SERVED, &csrf).await.expect("POST");
        assert!(response.status().is_success() || response.status().is_redirection());
        assert_eq!(moved(99, &csrf).await.expect("POST").status(), 404);
        let (status, moves) = history(&db, id).await;
        assert_eq!(status, SERVED);
        assert_eq!(moves.last(), Some(&(PREPARING, SERVED)));
        let page = client
            .get(format!("{base}/admin/orders/{id}"))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("page");
        let log = &page[page.find(r#"id="status-log""#).expect("the log")..];
        assert!(
            log.contains(&format!("<td>{username}</td>")),
            "audited: {log}"
        );
    }
);
