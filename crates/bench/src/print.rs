//! Tickets through the durable print queue to a raw TCP ESC/POS printer on loopback (`tillwire_printing::sim`).
//! Latency: one receipt at a time, from the import reply to the first byte at the printer. Throughput: a burst of
//! receipts from 32 clients, tickets/s from the first post until the last ticket's first byte.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tillwire_printing::sim::{EscPosSink, decode};

use crate::server::{DEVICE_KEY, Server, Target, today};
use crate::{Backend, summarize};

const CLIENTS: usize = 32;
const WAIT: Duration = Duration::from_secs(120);

pub async fn run(
    target: &Target,
    backend: Backend,
    tickets: usize,
    printers: usize,
    samples: usize,
) -> anyhow::Result<()> {
    let (server, _) = Server::start(target, backend).await?;
    let sink = EscPosSink::start(0).await?;
    let printers = printers.clamp(1, 5);
    attach_printers(&server.database_url, &sink.printer_address(), printers).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()?;
    let url = format!("{}/devices/import_receipt/", server.base);
    let day = today();
    let check = Arc::new(AtomicUsize::new(1));

    // Latency: one at a time, so the figure is the queue's reaction, not a backlog.
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (number, replied) = post(&client, &url, &day, &check, printers).await?;
        let first_byte = wait_for(&sink, |n| n == number).await?;
        latencies.push(first_byte.saturating_duration_since(replied));
    }
    let latency = summarize(latencies);

    // Throughput: a burst from many clients; each printer prints its own tickets in order.
    let already = sink.received().len();
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, url, day, check, next) = (
            client.clone(),
            url.clone(),
            day.clone(),
            check.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < tickets {
                post(&client, &url, &day, &check, printers).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let deadline = Instant::now() + WAIT;
    while sink.received().len() < already + tickets {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {tickets} tickets printed",
            sink.received().len() - already
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let last = sink
        .received()
        .iter()
        .map(|r| r.first_byte)
        .max()
        .unwrap_or(started);
    let elapsed = last.duration_since(started);
    println!(
        "print {backend:?}: {tickets} tickets on {printers} printer(s): {:.0} tickets/s; reply → first byte ({samples} one at a time): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        tickets as f64 / elapsed.as_secs_f64(),
        latency.p50,
        latency.p99,
        latency.max,
    );
    server.stop().await;
    Ok(())
}

/// Gives registers 1..=`printers` a printer each at `address` (what the admin pages would do).
async fn attach_printers(database_url: &str, address: &str, printers: usize) -> anyhow::Result<()> {
    let statements = [
        "INSERT INTO printers (unit_id, name, address, created_ms) SELECT unit_id, 'bench ' || number, $1, 0 FROM cash_registers WHERE number <= $2".to_owned(),
        "UPDATE cash_registers SET printer_id = (SELECT p.id FROM printers p WHERE p.name = 'bench ' || cash_registers.number) WHERE number <= $2".to_owned(),
    ];
    if database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database_url).await?;
        for sql in &statements {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(address)
                .bind(printers as i64)
                .execute(&pool)
                .await?;
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(database_url).await?;
        for sql in &statements {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(address)
                .bind(printers as i64)
                .execute(&pool)
                .await?;
        }
        pool.close().await;
    }
    Ok(())
}

/// Posts the next receipt (spread over the printing registers); returns its number and when the reply came.
async fn post(
    client: &reqwest::Client,
    url: &str,
    day: &str,
    check: &AtomicUsize,
    printers: usize,
) -> anyhow::Result<(i64, Instant)> {
    let id = check.fetch_add(1, Ordering::Relaxed);
    let body = format!(
        r#"{{"cash_id": {}, "shift_id": 1, "check_id": {id}, "check_date": "{day}", "wares": [{{"ware_code": "48566", "ware_count": 1}}]}}"#,
        id % printers + 1
    );
    let reply: serde_json::Value = client
        .post(url)
        .header("key", DEVICE_KEY)
        .body(body)
        .send()
        .await?
        .json()
        .await?;
    let replied = Instant::now();
    let number = reply["doc_number"].as_i64().unwrap_or(-1);
    anyhow::ensure!(number > 0, "import failed: {reply}");
    Ok((number, replied))
}

/// When the ticket whose number satisfies `wanted` first reached the printer.
async fn wait_for(sink: &EscPosSink, wanted: impl Fn(i64) -> bool) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + WAIT;
    let mut seen: HashMap<usize, Option<i64>> = HashMap::new();
    loop {
        for (index, job) in sink.received().iter().enumerate() {
            let number = *seen.entry(index).or_insert_with(|| {
                let printed = decode(&job.bytes).ok()?;
                printed
                    .numbers()
                    .first()?
                    .trim_start_matches("№ ")
                    .parse()
                    .ok()
            });
            if number.is_some_and(&wanted) {
                return Ok(job.first_byte);
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "the ticket never printed");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}
