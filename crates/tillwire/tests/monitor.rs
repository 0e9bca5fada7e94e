//! The register monitor in the real binary, against simulated UKM 5 registers served by this test: two instances on
//! one PostgreSQL, the polling one killed with SIGKILL and the other taking its registers over with no incident
//! lost or duplicated and no register asked twice within a second; and the live page in a real Chromium showing a
//! register go offline and come back without a reload.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{PAGE_LOAD, eventually, sign_in_browser};
use tillwire_monitor::sim::{Fault, Simulator};
use tillwire_platform::{Store, read};
use tillwire_testkit::thirtyfour::prelude::*;
use tillwire_testkit::{Backend, Browser, TestDatabase};

const LIMIT: Duration = Duration::from_secs(60);

/// A simulator of `count` registers on a loopback port, and its base address.
async fn simulator(count: u32) -> (Simulator, String) {
    let sim = Simulator::new(count, chrono_tz::UTC);
    let base = sim.serve_on_loopback().await.expect("serve the simulator");
    (sim, base)
}

/// A `tillwire.toml` polling registers `1..=count` of the simulator at `base` as fast as the limit allows.
fn write_settings(path: &Path, base: &str, count: u32) {
    let mut text = "[monitor]\nstatus_every_secs = 1\ndetails_every_secs = 2\n".to_owned();
    for n in 1..=count {
        text.push_str(&format!(
            "[[monitor.register]]\nname = \"Касса {n}\"\nurl = \"{base}/r/{n}/\"\n"
        ));
    }
    std::fs::write(path, text).expect("write tillwire.toml");
}

/// Every incident as (register name, kind, open).
async fn incidents(store: &Store) -> Vec<(String, String, bool)> {
    read!(store, db => sqlx::query_as(
        "SELECT r.name, i.kind, i.closed_ms IS NULL FROM monitor_incidents i
         JOIN monitor_registers r ON r.id = i.register_id ORDER BY i.id",
    )
    .fetch_all(db)
    .await)
    .expect("incidents")
}

async fn event_kinds(store: &Store) -> Vec<(String, String)> {
    let rows: Vec<(String, String)> = read!(store, db => sqlx::query_as(
        "SELECT kind, payload FROM domain_events WHERE kind LIKE 'monitor.%' ORDER BY id",
    )
    .fetch_all(db)
    .await)
    .expect("events");
    rows.into_iter()
        .map(|(kind, payload)| {
            let payload: serde_json::Value = serde_json::from_str(&payload).expect("payload");
            (
                kind,
                format!(
                    "{} {}",
                    payload["register_name"].as_str().unwrap_or(""),
                    payload["kind"].as_str().unwrap_or("")
                ),
            )
        })
        .collect()
}

async fn wait_incidents(store: &Store, want: &[(&str, &str, bool)]) {
    let want: Vec<(String, String, bool)> = want
        .iter()
        .map(|(name, kind, open)| (name.to_string(), kind.to_string(), *open))
        .collect();
    eventually("the incidents", LIMIT, || async {
        let seen = incidents(store).await;
        if seen == want {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await;
}

fn assert_within_limit(sim: &Simulator) {
    let violations = sim.rate_violations();
    assert!(
        violations.is_empty(),
        "registers asked twice within a second: {violations:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_dies_and_another_instance_takes_over_without_losing_an_incident() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let (sim, base) = simulator(3).await;
    let dir = common::data_dir();
    let settings = dir.path().join("tillwire.toml");
    write_settings(&settings, &base, 3);
    sim.set_fault(1, Fault::Drop);
    let mut first =
        common::serve_with_config(db.url(), &dir.path().join("first"), &settings, false, &[]).await;
    let store = Store::connect(db.url()).await.expect("connect");
    wait_incidents(&store, &[("Касса 1", "offline", true)]).await;
    let second =
        common::serve_with_config(db.url(), &dir.path().join("second"), &settings, false, &[])
            .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_within_limit(&sim);

    first.kill9();
    let killed = Instant::now();
    // While nobody polls, register 2 runs out of paper: the instance taking over must see it.
    sim.update(2, |state, _| state.paper = false);
    let before = sim.requests(3);
    eventually(
        "the second instance polling",
        Duration::from_secs(30),
        || async {
            if sim.requests(3) > before {
                Ok(())
            } else {
                Err("register 3 not asked yet".into())
            }
        },
    )
    .await;
    println!(
        "the second instance took the registers over {:.1} s after the first was killed",
        killed.elapsed().as_secs_f64()
    );
    wait_incidents(
        &store,
        &[("Касса 1", "offline", true), ("Касса 2", "no_paper", true)],
    )
    .await;
    sim.set_fault(1, Fault::None);
    wait_incidents(
        &store,
        &[("Касса 1", "offline", false), ("Касса 2", "no_paper", true)],
    )
    .await;
    let events = event_kinds(&store).await;
    let expected: Vec<(String, String)> = [
        ("monitor.incident_opened", "Касса 1 offline"),
        ("monitor.incident_opened", "Касса 2 no_paper"),
        ("monitor.incident_closed", "Касса 1 offline"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(events, expected, "each incident opened once, closed once");
    assert_within_limit(&sim);
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_shows_a_register_going_offline_and_back_without_a_reload() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let (sim, base) = simulator(2).await;
    let dir = common::data_dir();
    let settings = dir.path().join("tillwire.toml");
    write_settings(&settings, &base, 2);
    let server =
        common::serve_with_config(db.url(), &dir.path().join("data"), &settings, false, &[]).await;
    let password = common::admin_password(&server);
    let username = common::admin_username(&server.output());
    let browser = Browser::start().await;
    let driver = browser.driver();
    sign_in_browser(driver, &server.base_url(), &username, &password).await;
    driver
        .goto(format!("{}/monitor/", server.base_url()))
        .await
        .expect("open the monitor page");
    // Marks this page: a reload would forget it.
    driver
        .execute("window.sameLoad = true;", vec![])
        .await
        .expect("mark the page");
    let tile_state = |name: &'static str| async move {
        let found = driver
            .execute(
                "const tile = [...document.querySelectorAll('.tile')].find((t) => t.querySelector('strong').textContent === arguments[0]);
                 return tile ? [tile.className, tile.querySelector('.tile-state').textContent, window.sameLoad === true] : null;",
                vec![serde_json::Value::from(name)],
            )
            .await
            .map_err(|e| e.to_string())?;
        let value = found.json().clone();
        let parts = value.as_array().ok_or_else(|| "no tile yet".to_owned())?;
        Ok::<(String, String, bool), String>((
            parts[0].as_str().unwrap_or_default().to_owned(),
            parts[1].as_str().unwrap_or_default().to_owned(),
            parts[2].as_bool().unwrap_or(false),
        ))
    };
    let wait_tile = |level: &'static str, text: &'static str| async move {
        eventually(&format!("Касса 1 {level}"), LIMIT, || async {
            let (class, state, same) = tile_state("Касса 1").await?;
            if !same {
                return Err("the page was reloaded".into());
            }
            if class.split(' ').any(|c| c == level) && state.contains(text) {
                Ok(())
            } else {
                Err(format!("{class}: {state}"))
            }
        })
        .await
    };
    wait_tile("ok", "На связи").await;
    sim.set_fault(1, Fault::Drop);
    wait_tile("down", "Нет связи").await;
    // The open incident is listed too, without a reload.
    eventually("the incident listed", PAGE_LOAD.max(LIMIT), || async {
        let rows = driver
            .find_all(By::Css("tr.incident"))
            .await
            .map_err(|e| e.to_string())?;
        for row in rows {
            if row
                .text()
                .await
                .map_err(|e| e.to_string())?
                .contains("Касса 1")
            {
                return Ok(());
            }
        }
        let summary = driver
            .execute(
                "return document.getElementById('monitor-live').innerText",
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?;
        Err(format!("no incident row in: {:?}", summary.json()))
    })
    .await;
    // The metrics say the same.
    let metrics = tillwire_testkit::http_client()
        .get(format!("{}/metrics", server.base_url()))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics");
    let sample = |name: &str, labels: &[&str]| {
        metrics
            .lines()
            .find(|line| {
                line.starts_with(&format!("{name}{{")) && labels.iter().all(|l| line.contains(l))
            })
            .and_then(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
    };
    assert_eq!(
        sample("tillwire_monitor_register_up", &["register=\"Касса 1\""]),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        sample("tillwire_monitor_register_up", &["register=\"Касса 2\""]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            "tillwire_monitor_incident_open",
            &["register=\"Касса 1\"", "kind=\"offline\""]
        ),
        Some(1.0)
    );
    assert!(
        sample(
            "tillwire_monitor_requests_total",
            &["outcome=\"unreachable\""]
        )
        .is_some_and(|n| n >= 3.0)
    );
    let latencies = metrics
        .lines()
        .find(|line| line.starts_with("tillwire_monitor_poll_seconds_count"))
        .and_then(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok());
    assert!(
        latencies.is_some_and(|n| n >= 3.0),
        "the poll latency histogram: {metrics}"
    );
    sim.set_fault(1, Fault::None);
    wait_tile("ok", "На связи").await;
    let (_, _, same) = tile_state("Касса 1").await.expect("tile");
    assert!(same, "the page was never reloaded");
    browser.quit().await;
}
