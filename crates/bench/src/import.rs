//! Import throughput: `clients` tasks post distinct receipts to the ELQ-compatible endpoint as fast as they can.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::server::{DEVICE_KEY, Server, Target, today};
use crate::{Backend, summarize};

const WARMUP: usize = 500;

pub async fn run(
    target: &Target,
    backend: Backend,
    clients: usize,
    receipts: usize,
) -> anyhow::Result<()> {
    let (server, _) = Server::start(target, backend).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    // Warm up connections and caches with receipts of another day.
    load(
        &client,
        &server.base,
        clients,
        WARMUP,
        Arc::new(AtomicUsize::new(0)),
        "2000-01-01",
    )
    .await?;
    let started = Instant::now();
    let (latencies, errors) =
        load(&client, &server.base, clients, receipts, next, &today()).await?;
    let elapsed = started.elapsed();
    let summary = summarize(latencies);
    println!(
        "import {backend:?}: {receipts} receipts, {clients} clients: {:.0} receipts/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {errors} errors, RSS {:.1} MiB",
        receipts as f64 / elapsed.as_secs_f64(),
        summary.p50,
        summary.p99,
        summary.max,
        server.rss_mib()
    );
    server.stop().await;
    Ok(())
}

async fn load(
    client: &reqwest::Client,
    base: &str,
    clients: usize,
    total: usize,
    next: Arc<AtomicUsize>,
    day: &str,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let url = format!("{base}/devices/import_receipt/");
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, next, day) = (client.clone(), url.clone(), next.clone(), day.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    break;
                }
                let body = format!(
                    r#"{{"cash_id": {}, "shift_id": 1, "check_id": {}, "check_date": "{day}", "wares": [{{"ware_code": "48566", "ware_count": 1}}, {{"ware_code": "51356", "ware_count": 2.0}}]}}"#,
                    index % 5 + 1,
                    index
                );
                let sent = Instant::now();
                let reply = client.post(&url).header("key", DEVICE_KEY).body(body).send().await;
                let ok = match reply {
                    Ok(response) => response.json::<serde_json::Value>().await.is_ok_and(|v| v["doc_number"].as_i64().unwrap_or(-1) > 0),
                    Err(_) => false,
                };
                latencies.push(sent.elapsed());
                errors += usize::from(!ok);
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0;
    for task in tasks {
        let (mine, failed) = task.await?;
        latencies.extend(mine);
        errors += failed;
    }
    Ok((latencies, errors))
}
