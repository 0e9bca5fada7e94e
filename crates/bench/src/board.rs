//! Board latency: the time from sending a status change to receiving its event on the public board's SSE stream.

use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::server::{DEVICE_KEY, Server, Target, today};
use crate::{Backend, summarize};

pub async fn run(target: &Target, backend: Backend, changes: usize) -> anyhow::Result<()> {
    let (server, _) = Server::start(target, backend).await?;
    let client = reqwest::Client::new();
    let mut orders = Vec::with_capacity(changes);
    for index in 0..changes {
        let body = format!(
            r#"{{"cash_id": 1, "shift_id": 1, "check_id": {index}, "check_date": "{}", "wares": [{{"ware_code": "12356", "ware_count": 1}}]}}"#,
            today()
        );
        let reply: serde_json::Value = client
            .post(format!("{}/devices/import_receipt/", server.base))
            .header("key", DEVICE_KEY)
            .body(body)
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(
            reply["doc_number"].as_i64().unwrap_or(0) > 0,
            "import failed: {reply}"
        );
    }
    let listed: Vec<serde_json::Value> = client
        .get(format!("{}/api/v1/orders?active=true", server.base))
        .bearer_auth(DEVICE_KEY)
        .send()
        .await?
        .json()
        .await?;
    orders.extend(listed.iter().filter_map(|o| o["id"].as_i64()));

    let stream = client
        .get(format!("{}/dashboard/events", server.base))
        .send()
        .await?;
    let mut bytes = stream.bytes_stream();
    let mut buffer = String::new();
    let mut latencies = Vec::with_capacity(orders.len());
    // Wait for the opening snapshot so the stream is live before measuring.
    next_event(&mut bytes, &mut buffer, |name, _| name == "snapshot").await?;
    for id in orders {
        let sent = Instant::now();
        let response = client
            .post(format!("{}/api/v1/orders/{id}/status", server.base))
            .bearer_auth(DEVICE_KEY)
            .json(&serde_json::json!({"status_id": 2}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "status change failed: {}",
            response.status()
        );
        next_event(&mut bytes, &mut buffer, |name, data| {
            name == "order"
                && serde_json::from_str::<serde_json::Value>(data)
                    .is_ok_and(|v| v["id"] == id && v["status_id"] == 2)
        })
        .await?;
        latencies.push(sent.elapsed());
    }
    let count = latencies.len();
    let summary = summarize(latencies);
    println!(
        "board {backend:?}: {count} status changes → SSE event: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        summary.p50, summary.p99, summary.max
    );
    // Close the board's stream first: a server finishing its requests before it exits would wait for it.
    drop(bytes);
    server.stop().await;
    Ok(())
}

/// Reads SSE frames until one satisfies `wanted(event name, data)`.
async fn next_event(
    bytes: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
    wanted: impl Fn(&str, &str) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let name = frame
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map_or("message", str::trim);
            let data = frame
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map_or("", str::trim);
            if wanted(name, data) {
                return Ok(());
            }
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        anyhow::ensure!(!remaining.is_zero(), "no matching SSE event within 10 s");
        match tokio::time::timeout(remaining, bytes.next()).await {
            Ok(Some(chunk)) => buffer.push_str(&String::from_utf8_lossy(&chunk?)),
            Ok(None) => anyhow::bail!("SSE stream ended"),
            Err(_) => anyhow::bail!("no matching SSE event within 10 s"),
        }
    }
}
