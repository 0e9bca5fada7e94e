//! The ERP bridge against the release binary, as `tillwire erp run` (the drop-in for oilmat-erp's
//! `python app.py PORT WORKSHOP TYPE`): OilMat's `POST /create` (each a new order, double-encoded as OilMat's
//! client sends it) and `GET /alive` with concurrent clients, the worker parked; then seconds per order line, each
//! added by headless Chromium to the AD Manager simulator and read back, until every order is `completed`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tillwire_erp::ErpType;
use tillwire_erp::sim::{DEFAULT_PASSWORD, DEFAULT_USERNAME, ErpSim, Product};

use crate::server::{Server, Target};
use crate::{Backend, hammer, summarize};

fn order(n: usize, case: &str) -> String {
    let order = json!({"unique_id": format!("bench-{n}"), "dealer": "Bench", "case_nr": case, "product_nr": "10",
                       "product_amount": "2", "username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD});
    // OilMat's client: requests.post(url, json=json.dumps(data)).
    serde_json::to_string(&order.to_string()).expect("a string")
}

pub async fn run(
    target: &Target,
    backend: Backend,
    clients: usize,
    requests: usize,
    lines: usize,
) -> anyhow::Result<()> {
    contract(target, backend, clients, requests).await?;
    line_time(target, backend, lines).await
}

async fn contract(
    target: &Target,
    backend: Backend,
    clients: usize,
    requests: usize,
) -> anyhow::Result<()> {
    // Nothing answers at this ERP; the worker stays parked, so only the contract is measured.
    let server = Server::start_erp(target, backend, "bench", "http://127.0.0.1:9").await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let create = {
        let url = format!("{}/create", server.base);
        move |client: &reqwest::Client, i: usize| {
            client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(order(i, "560"))
        }
    };
    let alive = {
        let url = format!("{}/alive", server.base);
        move |client: &reqwest::Client, _: usize| client.get(&url)
    };
    hammer(&client, clients, 1_000, alive.clone()).await?;
    for (name, total) in [("POST /create", requests), ("GET /alive", requests)] {
        let started = Instant::now();
        // Every request to /create is a new order.
        let (latencies, errors) = if name.starts_with("POST") {
            hammer(&client, clients, total, create.clone()).await?
        } else {
            hammer(&client, clients, total, alive.clone()).await?
        };
        let elapsed = started.elapsed();
        let summary = summarize(latencies);
        println!(
            "erp {backend:?} {name}: {clients} clients: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {errors} errors",
            total as f64 / elapsed.as_secs_f64(),
            summary.p50,
            summary.p99,
            summary.max
        );
    }
    server.stop().await;
    Ok(())
}

async fn line_time(target: &Target, backend: Backend, lines: usize) -> anyhow::Result<()> {
    let sim = ErpSim::new(ErpType::AdManager);
    sim.set_cases((550..575).map(|case| case.to_string()));
    sim.set_catalogue([Product::new("10", "Motorolie 5W-30", "L", "Olie", "89,00")]);
    let erp = sim.serve_on_loopback().await?;
    let server = Server::start_erp(target, backend, "bench", &erp).await?;
    let client = reqwest::Client::new();
    for n in 0..lines {
        let case = (550 + n % 25).to_string();
        client
            .post(format!("{}/create", server.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(order(n, &case))
            .send()
            .await?
            .error_for_status()?;
    }
    let started = Instant::now();
    client
        .put(format!("{}/start_worker", server.base))
        .send()
        .await?
        .error_for_status()?;
    let mut done_at = Vec::new();
    for n in 0..lines {
        loop {
            let status: Value = client
                .get(format!(
                    "{}/check_order_status?unique_id=bench-{n}",
                    server.base
                ))
                .send()
                .await?
                .json()
                .await?;
            match status["status"].as_str() {
                Some("completed") => break,
                Some("failed") => anyhow::bail!("order bench-{n} failed: {status}"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "the lines took over ten minutes"
            );
        }
        done_at.push(started.elapsed());
    }
    let added: usize = sim.all_lines().values().map(Vec::len).sum();
    anyhow::ensure!(
        added == lines,
        "{added} lines in the ERP for {lines} orders"
    );
    let gaps: Vec<Duration> = done_at.windows(2).map(|pair| pair[1] - pair[0]).collect();
    let summary = summarize(gaps);
    let total = done_at.last().copied().unwrap_or_default();
    println!(
        "erp {backend:?} lines into AD Manager (simulator), verified: {lines} lines in {:.1} s; first line {:.2} s (browser start and login); then per line p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        total.as_secs_f64(),
        done_at.first().copied().unwrap_or_default().as_secs_f64(),
        summary.p50 / 1000.0,
        summary.p99 / 1000.0,
        summary.max / 1000.0
    );
    server.stop().await;
    Ok(())
}
