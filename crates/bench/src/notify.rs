//! Telegram delivery: `tillwire sim telegram` in its own process with its flood limits raised, the real server
//! sending to it with its own limit raised too (so what is measured is tillwire's ceiling, not Telegram's 30 a
//! second). Throughput: events for a unit routed to N chats become N messages each, timed until every message is
//! sent. Latency: one event at a time to one chat, from the event's commit to Telegram's answer.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tillwire_platform::{Store, now_ms, read, write};

use crate::server::{Server, Target};
use crate::{Backend, summarize};

const TOKEN: &str = "123456:BENCH";
const UNIT: i64 = 1;

async fn count_sent(store: &Store) -> anyhow::Result<i64> {
    Ok(read!(store, db => sqlx::query_scalar(
        "SELECT COUNT(*) FROM notify_messages WHERE state = 'sent'",
    )
    .fetch_one(db)
    .await)?)
}

async fn record_events(store: &Store, count: usize) -> anyhow::Result<()> {
    for n in 0..count {
        write!(store, db => sqlx::query(
            "INSERT INTO domain_events (unit_id, kind, payload, created_ms) VALUES ($1, 'monitor.incident_opened', $2, $3)",
        )
        .bind(UNIT)
        .bind(json!({ "register_name": format!("Касса {n}"), "kind": "offline", "detail": "" }).to_string())
        .bind(now_ms())
        .execute(db)
        .await
        .map(|_| ()))?;
    }
    Ok(())
}

/// Routes chats `first..first + count` to the unit for register incidents.
async fn route_chats(store: &Store, first: i64, count: i64) -> anyhow::Result<()> {
    for chat in first..first + count {
        write!(store, db => sqlx::query(
            "INSERT INTO directory_chats (chat_id, username, title, chat_type, created_ms) VALUES ($1, NULL, 'bench', 'PRIVATE', 0)",
        )
        .bind(chat)
        .execute(db)
        .await
        .map(|_| ()))?;
        write!(store, db => sqlx::query(
            "INSERT INTO directory_routes (report_type_id, unit_id, chat_id)
             SELECT t.id, $2, c.id FROM directory_report_types t, directory_chats c
             WHERE t.name = 'REGISTER_INCIDENTS' AND c.chat_id = $1",
        )
        .bind(chat)
        .bind(UNIT)
        .execute(db)
        .await
        .map(|_| ()))?;
    }
    Ok(())
}

pub async fn run(
    target: &Target,
    backend: Backend,
    chats: i64,
    events: usize,
    samples: usize,
) -> anyhow::Result<()> {
    let sim_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut sim = Command::new(&target.binary)
        .args(["sim", "telegram", "--token", TOKEN, "--listen"])
        .arg(format!("127.0.0.1:{sim_port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let sim_base = format!("http://127.0.0.1:{sim_port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let raised = client
            .post(format!("{sim_base}/sim/limits"))
            .json(&json!({ "per_chat_interval": 1000, "group_max": 20, "group_window": 60000, "global_max": 1_000_000, "global_window": 1000 }))
            .send()
            .await;
        if raised.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(20),
            "the Telegram simulator did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let settings_dir = tempfile::tempdir()?;
    let settings = settings_dir.path().join("tillwire.toml");
    std::fs::write(
        &settings,
        format!(
            "[telegram]\napi_url = \"{sim_base}\"\nbot_token = \"{TOKEN}\"\nmessages_per_second = 10000\n"
        ),
    )?;
    let (server, _) = Server::start_with(
        target,
        backend,
        &["--config", settings.to_str().unwrap_or_default()],
    )
    .await?;
    let store = Store::connect(&server.database_url).await?;

    // Throughput: every event to every chat.
    route_chats(&store, 1, chats).await?;
    let total = chats * events as i64;
    let started = Instant::now();
    record_events(&store, events).await?;
    while count_sent(&store).await? < total {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not every message was sent in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();

    // Latency: one chat, one event at a time.
    write!(&store, db => sqlx::query("DELETE FROM directory_routes").execute(db).await.map(|_| ()))?;
    route_chats(&store, chats + 1, 1).await?;
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let before = count_sent(&store).await?;
        record_events(&store, 1).await?;
        while count_sent(&store).await? == before {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (created, sent): (i64, Option<i64>) = read!(&store, db => sqlx::query_as(
            "SELECT e.created_ms, m.sent_ms FROM notify_messages m JOIN domain_events e ON e.id = m.event_id
             WHERE m.state = 'sent' ORDER BY m.id DESC LIMIT 1",
        )
        .fetch_one(db)
        .await)?;
        latencies.push(Duration::from_millis(
            (sent.unwrap_or(created) - created).max(0) as u64,
        ));
        // Past the chat's pacing (a message a second, with tillwire's margin), so only the path is timed; with a
        // random part, so events do not fall into step with the consumer's polling and hide its wait.
        tokio::time::sleep(Duration::from_millis(1_500 + rand::random_range(0..500))).await;
    }
    store.close().await;
    server.stop().await;
    let _ = sim.kill();
    let _ = sim.wait();
    let latency = summarize(latencies);
    println!(
        "notify {backend:?}: {total} messages to {chats} chats in {elapsed:.1} s = {:.0} messages/s \
         (Telegram's own limits: 30/s in all, 1/s per chat); event → Telegram's answer p50 {:.0} ms, p99 {:.0} ms, \
         max {:.0} ms over {samples} events",
        total as f64 / elapsed,
        latency.p50,
        latency.p99,
        latency.max
    );
    Ok(())
}
