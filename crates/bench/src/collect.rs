//! Set Retail collector: receipts per second while backfilling a register database into the real server over
//! HTTP (the `collect setretail` path), then the lag from a sale's commit to its queue number in steady state.

use std::time::{Duration, Instant};

use chrono::Utc;
use tillwire_collector::config::{Lookback, MainConfig, Overlap};
use tillwire_collector::status::Reporter;
use tillwire_collector::{Collectors, Cursors, HttpSink, Options, Parked, Task};
use tillwire_testkit::{Purchase, SetRetailDatabase};

use crate::server::{DEVICE_KEY, Server, Target};
use crate::{Backend, summarize};

const PIZZA: &str = "48566";

pub async fn run(
    target: &Target,
    backend: Backend,
    receipts: i64,
    timer_secs: f64,
    samples: usize,
) -> anyhow::Result<()> {
    let (server, _) = Server::start(target, backend).await?;
    let register = SetRetailDatabase::new().await;
    let now = Utc::now().naive_utc();
    register
        .open_shift(1, 1, 1, &(now - chrono::TimeDelta::hours(1)).to_string())
        .await;
    // One sale per millisecond, ending before now.
    let first = now - chrono::TimeDelta::milliseconds(receipts + 1_000);
    register
        .insert_many(1, 1, receipts, &first.to_string(), PIZZA)
        .await;

    let config = MainConfig::parse(
        &serde_json::json!({
            "api": format!("{}/devices/import_receipt/", server.base),
            "api_key": DEVICE_KEY,
            "timer": timer_secs,
            "cashes": [{"sql_server": register.server(), "sql_database": register.database(), "sql_login": register.login()}],
        })
        .to_string(),
    )
    .map_err(anyhow::Error::msg)?;
    let state_dir = tempfile::tempdir()?;
    let store = tillwire_platform::Store::connect(&format!(
        "sqlite://{}/collector.sqlite3",
        state_dir.path().display()
    ))
    .await?;
    store
        .migrate(&[
            tillwire_platform::MIGRATIONS,
            tillwire_collector::MIGRATIONS,
        ])
        .await?;
    let source = config.cashes[0].clone();
    let reporter = Reporter::new(&source.name(), "bench");
    let task = Task {
        key: source.name(),
        reporter: reporter.clone(),
        sink: HttpSink::new(config.api.clone(), config.api_key.clone())?,
        cursors: Cursors(store.clone()),
        parked: Parked(store.clone()),
        leases: tillwire_platform::Leases::new(store.clone()),
        options: Options {
            timer: config.timer,
            lookback: Lookback::hours(Some(24)),
            batch: tillwire_collector::DEFAULT_BATCH,
            zone: Some(chrono_tz::UTC),
            // The default window: every idle pass re-reads the last 10 minutes behind the cursor.
            overlap: Overlap::default(),
        },
        source,
        alerts: None,
    };
    let started = Instant::now();
    let collectors = Collectors::start(vec![task]);
    while reporter.state().delivered < receipts as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    // Acknowledged is not enough: every sale must have become exactly one order.
    let orders = count_orders(&server.database_url).await?;
    anyhow::ensure!(
        orders == receipts,
        "{receipts} sales collected but {orders} orders in the queue"
    );
    println!(
        "collect {backend:?}: backfill of {receipts} receipts from one register, overlap window on: {:.0} receipts/s ({:.1} s), {orders} orders",
        receipts as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );

    // Steady state: one sale at a time, committed now; time until the server gave it a number.
    let mut lags = Vec::with_capacity(samples);
    for n in 0..samples as i64 {
        let delivered = reporter.state().delivered;
        let id = receipts + 10 + n;
        let sale = Purchase::sale(
            id,
            1,
            id,
            &Utc::now().naive_utc().to_string(),
            &[(PIZZA, 1000, 1.0)],
        );
        let committed = Instant::now();
        register.insert(&[sale]).await;
        while reporter.state().delivered == delivered {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lags.push(committed.elapsed());
        // Commits land at random points of the polling cycle.
        tokio::time::sleep(Duration::from_secs_f64(timer_secs * rand::random::<f64>())).await;
    }
    let summary = summarize(lags);
    println!(
        "collect {backend:?}: commit → queue number, timer {timer_secs} s, {samples} sales: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        summary.p50, summary.p99, summary.max
    );
    collectors.stop().await;
    store.close().await;
    server.stop().await;
    Ok(())
}

async fn count_orders(database_url: &str) -> anyhow::Result<i64> {
    let store = tillwire_platform::Store::connect(database_url).await?;
    let (orders,): (i64,) = tillwire_platform::read!(&store, db => sqlx::query_as("SELECT COUNT(*) FROM orders")
        .fetch_one(db)
        .await)?;
    store.close().await;
    Ok(orders)
}
