//! The register monitor at the vendor's maximum: `tillwire sim ukm5` serves N simulated registers from its own
//! process, and the real server polls every one of them once a second (the cadence is set faster, so every
//! register is asked as often as the limit allows). Reports the polls per second achieved, the server's CPU time
//! per poll and the registers one core could poll at that rate, p99 staleness (how old a register's stored state
//! is, as the pages read it: the poll interval plus the 2 s flush), memory per register, and what the
//! simulator's rate checker saw.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Backend;
use crate::server::{Server, Target};

/// Seconds of CPU (user + system) the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name (which is in parentheses and may hold spaces).
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / ticks)
        })
        .unwrap_or(0.0)
}

/// Every poll the server has made, from its `/metrics`.
async fn polls(client: &reqwest::Client, base: &str) -> anyhow::Result<f64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| line.starts_with("tillwire_monitor_requests_total{"))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum())
}

/// How old each register's stored state is now, in milliseconds.
async fn staleness(database_url: &str) -> anyhow::Result<Vec<Duration>> {
    let store = tillwire_platform::Store::connect(database_url).await?;
    let rows: Vec<(String,)> = tillwire_platform::read!(&store, db => sqlx::query_as(
        "SELECT health FROM monitor_state",
    )
    .fetch_all(db)
    .await)?;
    store.close().await;
    let now = chrono::Utc::now().timestamp_millis();
    Ok(rows
        .iter()
        .filter_map(|(health,)| {
            serde_json::from_str::<serde_json::Value>(health).ok()?["last_poll_ms"].as_i64()
        })
        .map(|at| Duration::from_millis((now - at).max(0) as u64))
        .collect())
}

pub async fn run(
    target: &Target,
    backend: Backend,
    registers: u32,
    seconds: u64,
) -> anyhow::Result<()> {
    let sim_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut sim = Command::new(&target.binary)
        .args([
            "sim",
            "ukm5",
            "--registers",
            &registers.to_string(),
            "--listen",
        ])
        .arg(format!("127.0.0.1:{sim_port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let sim_out = BufReader::new(sim.stdout.take().expect("piped"));
    let violations = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = violations.clone();
    std::thread::spawn(move || {
        for line in sim_out.lines().map_while(Result::ok) {
            if line.contains("two requests") {
                seen.lock().expect("lock").push(line);
            }
        }
    });
    let settings_dir = tempfile::tempdir()?;
    let settings = settings_dir.path().join("tillwire.toml");
    let mut text = String::from("[monitor]\nstatus_every_secs = 1\ndetails_every_secs = 1\n");
    for n in 1..=registers {
        text.push_str(&format!(
            "[[monitor.register]]\nname = \"R{n}\"\nurl = \"http://127.0.0.1:{sim_port}/r/{n}/\"\n"
        ));
    }
    std::fs::write(&settings, text)?;

    // The same server with no registers first, for the memory the registers add.
    let empty = settings_dir.path().join("empty.toml");
    std::fs::write(&empty, "[monitor]\n")?;
    let (idle, _) = Server::start_with(
        target,
        backend,
        &["--config", empty.to_str().unwrap_or_default()],
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = idle.rss_mib();
    idle.stop().await;

    let (server, _) = Server::start_with(
        target,
        backend,
        &["--config", settings.to_str().unwrap_or_default()],
    )
    .await?;
    let client = reqwest::Client::new();
    // Every register's first poll comes within its jitter (one status period) after it is picked up.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (cpu_before, polls_before, started) = (
        cpu_seconds(server.pid),
        polls(&client, &server.base).await?,
        Instant::now(),
    );
    let mut stale = Vec::new();
    let mut rss = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        stale.extend(staleness(&server.database_url).await?);
        rss.push(server.rss_mib());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(server.pid) - cpu_before;
    let done = polls(&client, &server.base).await? - polls_before;
    server.stop().await;
    let _ = sim.kill();
    let _ = sim.wait();

    let per_second = done / elapsed;
    let cpu_per_poll = cpu / done.max(1.0);
    // At the limit a register is asked once per 1.05 s.
    let per_core = 1.0 / (cpu_per_poll * (1.0 / 1.05));
    let stale = crate::summarize(stale);
    rss.sort_by(f64::total_cmp);
    let rss_median = rss.get(rss.len() / 2).copied().unwrap_or(0.0);
    let violations = violations.lock().expect("lock").len();
    println!(
        "monitor {backend:?}: {registers} registers at the limit for {elapsed:.0} s: {per_second:.0} polls/s \
         (wanted {:.0}); CPU {:.1} µs/poll ({:.0}% of a core) → {per_core:.0} registers per core; \
         staleness p50 {:.0} ms p99 {:.0} ms max {:.0} ms; RSS {rss_median:.0} MiB ({:.1} KiB/register over \
         {idle_rss:.0} MiB idle); rate violations: {violations}",
        f64::from(registers) / 1.05,
        cpu_per_poll * 1e6,
        cpu / elapsed * 100.0,
        stale.p50,
        stale.p99,
        stale.max,
        (rss_median - idle_rss).max(0.0) * 1024.0 / f64::from(registers),
    );
    Ok(())
}
