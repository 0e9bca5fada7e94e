//! The customer board on a 1080p TV, in a real headless Chromium against the real binary: with 150 active orders
//! every number is shown (a column that does not fit turns its pages), none below the minimum size, every number
//! readable against its colour (contrast ≥ 4.5:1), the newest ready numbers first, under the configured title.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{DEVICE_KEY, PAGE_LOAD, eventually};
use serde::Deserialize;
use tillwire_testkit::Browser;
use tillwire_testkit::thirtyfour::prelude::*;

const READY: i64 = 2;
const MIN_NUMBER_PX: f64 = 90.0;
const ORDERS: i64 = 150;
const MADE_READY: usize = 50;

/// A number tile as the browser lays it out.
#[derive(Debug, Deserialize)]
struct Tile {
    number: i64,
    ready: bool,
    font_px: f64,
    inside: bool,
    contrast: f64,
}

/// Every tile shown now, with its size, whether it lies wholly inside the window and its column, and the contrast
/// of its digits against its background (WCAG 2).
const VISIBLE_TILES: &str = r#"
const luminance = (css) => {
  const [r, g, b] = css.match(/[\d.]+/g).slice(0, 3).map((v) => {
    const c = Number(v) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const contrast = (a, b) => {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
};
return [...document.querySelectorAll(".tile")].filter((tile) => !tile.hidden).map((tile) => {
  const rect = tile.getBoundingClientRect();
  const column = tile.closest(".tiles").getBoundingClientRect();
  const style = getComputedStyle(tile);
  return {
    number: Number(tile.dataset.number),
    ready: tile.closest(".board-column").classList.contains("ready"),
    font_px: parseFloat(style.fontSize),
    inside: rect.top >= column.top - 1 && rect.bottom <= Math.min(column.bottom, innerHeight) + 1
      && rect.left >= column.left - 1 && rect.right <= Math.min(column.right, innerWidth) + 1,
    contrast: contrast(style.color, style.backgroundColor),
  };
});
"#;

/// The page's size in CSS pixels.
async fn viewport(driver: &WebDriver) -> (i64, i64) {
    serde_json::from_value(
        driver
            .execute("return [innerWidth, innerHeight];", vec![])
            .await
            .expect("viewport")
            .json()
            .clone(),
    )
    .expect("two numbers")
}

tillwire_testkit::both_backends!(
    a_tv_board_with_150_orders_shows_every_number_at_a_readable_size,
    |db| async move {
        let data = common::data_dir();
        let shop = common::open_shop(
            &db,
            data.path(),
            &[
                ("API_KEY", DEVICE_KEY),
                ("TILLWIRE_BOARD_PAGE_SECONDS", "2"),
                ("TILLWIRE_BOARD_TITLE", "Пиццерия на Ленина"),
            ],
            ORDERS,
        )
        .await;
        // Every third order is ready, made ready in this order: the board lists the last one first.
        let mut made_ready = Vec::new();
        for number in shop.numbers.iter().copied().filter(|n| n % 3 == 0) {
            let id = common::order_id_by_number(&shop.client, &shop.base, number).await;
            common::api_set_status(&shop.client, &shop.base, DEVICE_KEY, id, READY).await;
            made_ready.push(number);
            // Distinct ready times, so their order is the order they became ready in.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        assert_eq!(made_ready.len(), MADE_READY);

        let browser = Browser::start().await;
        let driver = browser.driver();
        driver
            .goto(format!("{}/dashboard/", shop.base))
            .await
            .expect("open the board");
        // A page of 1920×1080 CSS pixels, as on a 1080p TV in kiosk mode: the window plus its frame.
        driver
            .set_window_rect(0, 0, 1920, 1080)
            .await
            .expect("a 1080p window");
        let page = viewport(driver).await;
        let frame = ((1920 - page.0).max(0), (1080 - page.1).max(0));
        driver
            .set_window_rect(0, 0, 1920 + frame.0 as u32, 1080 + frame.1 as u32)
            .await
            .expect("a 1080p page");
        driver.refresh().await.expect("reload at the new size");
        assert_eq!(viewport(driver).await, (1920, 1080), "a TV-sized page");
        let heading = driver
            .find(By::Css(".board-title h1"))
            .await
            .expect("the title");
        assert_eq!(heading.text().await.expect("text"), "Пиццерия на Ленина");

        let tiles = || async {
            let shown: Vec<Tile> = serde_json::from_value(
                driver
                    .execute(VISIBLE_TILES, vec![])
                    .await
                    .map_err(|e| e.to_string())?
                    .json()
                    .clone(),
            )
            .map_err(|e| e.to_string())?;
            if shown.is_empty() {
                Err("no tiles yet".to_owned())
            } else {
                Ok(shown)
            }
        };
        let first = eventually("the board's numbers", PAGE_LOAD, tiles).await;
        let ready_first_page: Vec<i64> =
            first.iter().filter(|t| t.ready).map(|t| t.number).collect();
        let newest_first: Vec<i64> = made_ready.iter().rev().copied().collect();
        assert!(
            !ready_first_page.is_empty() && newest_first.starts_with(&ready_first_page),
            "the ready column starts with the newest ready numbers: {ready_first_page:?}"
        );

        // Watch the pages turn until every number has been on screen.
        let mut seen = BTreeSet::new();
        let mut looks = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while seen.len() < ORDERS as usize {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {ORDERS} numbers were ever on screen",
                seen.len()
            );
            looks += 1;
            for tile in eventually("the board's numbers", PAGE_LOAD, tiles).await {
                assert!(
                    tile.font_px >= MIN_NUMBER_PX,
                    "number {} drawn at {} px",
                    tile.number,
                    tile.font_px
                );
                assert!(tile.inside, "number {} is cut off", tile.number);
                assert!(
                    tile.contrast >= 4.5,
                    "number {} contrast {:.2}:1",
                    tile.number,
                    tile.contrast
                );
                assert_eq!(
                    tile.ready,
                    made_ready.contains(&tile.number),
                    "number {} in the wrong column",
                    tile.number
                );
                seen.insert(tile.number);
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        assert!(looks > 1, "150 numbers at 90 px need more than one page");
        let expected: BTreeSet<i64> = shop.numbers.iter().copied().collect();
        assert_eq!(seen, expected);
        let pager = driver
            .find(By::Css(".board-column:not(.ready) .pager"))
            .await
            .expect("the preparing column's pager")
            .text()
            .await
            .expect("text");
        assert!(pager.contains('/'), "a page count such as 1/3: {pager:?}");
        browser.quit().await;
    }
);

/// A configured logo is shown beside the title and served as the image it is; without one, there is none.
#[tokio::test]
async fn the_board_shows_the_configured_logo() {
    let db = tillwire_testkit::TestDatabase::new(tillwire_testkit::Backend::Sqlite).await;
    let data = common::data_dir();
    let logo = data.path().join("logo.svg");
    let image = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 10 10'><circle r='5' cx='5' cy='5'/></svg>";
    std::fs::write(&logo, image).expect("write the logo");
    let server = common::serve(
        &db,
        data.path(),
        &[("TILLWIRE_BOARD_LOGO", logo.to_str().expect("UTF-8 path"))],
    )
    .await;
    let client = tillwire_testkit::http_client();
    let page = client
        .get(format!("{}/dashboard/", server.base_url()))
        .send()
        .await
        .expect("GET /dashboard/")
        .text()
        .await
        .expect("page");
    assert!(page.contains(r#"<img src="/dashboard/logo""#), "{page}");
    assert!(page.contains("<h1>Электронная очередь</h1>"), "{page}");
    let response = client
        .get(format!("{}/dashboard/logo", server.base_url()))
        .send()
        .await
        .expect("GET the logo");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().expect("type"),
        "image/svg+xml"
    );
    assert_eq!(response.text().await.expect("body"), image);

    let plain_data = common::data_dir();
    let plain = common::serve(&db, plain_data.path(), &[]).await;
    let response = client
        .get(format!("{}/dashboard/logo", plain.base_url()))
        .send()
        .await
        .expect("GET no logo");
    assert_eq!(response.status(), 404);
}
