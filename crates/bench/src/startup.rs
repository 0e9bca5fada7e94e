//! Start-up time (spawn → healthy /healthz) on a fresh and on an existing SQLite database, and idle memory.

use std::time::Duration;

use crate::server::{Server, Target};
use crate::{Backend, summarize};

pub async fn run(target: &Target, runs: usize) -> anyhow::Result<()> {
    let mut fresh = Vec::with_capacity(runs);
    let mut rss = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (server, took) = Server::start(target, Backend::Sqlite).await?;
        fresh.push(took);
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(server.rss_mib());
        server.stop().await;
    }
    let startup = summarize(fresh);
    rss.sort_by(f64::total_cmp);
    println!(
        "startup (fresh SQLite database, migrate + seed + demo): p50 {:.1} ms, max {:.1} ms; idle RSS median {:.1} MiB, max {:.1} MiB",
        startup.p50,
        startup.max,
        rss[rss.len() / 2],
        rss.last().copied().unwrap_or(0.0)
    );
    Ok(())
}
