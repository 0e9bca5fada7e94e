//! Start-up time (spawn → healthy /healthz) on a fresh SQLite database, idle memory, and memory with many open board
//! screens (each an event stream).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::server::{Server, Target};
use crate::{Backend, summarize};

pub async fn run(target: &Target, runs: usize, streams: usize) -> anyhow::Result<()> {
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
    if streams > 0 {
        let (server, _) = Server::start(target, Backend::Sqlite).await?;
        let open = open_board_streams(&server.base, streams).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!(
            "{} open board streams: RSS {:.1} MiB",
            open.len(),
            server.rss_mib()
        );
        drop(open);
        server.stop().await;
    }
    Ok(())
}

/// Opens `count` board event streams as screens would, each kept open once its first snapshot arrived.
async fn open_board_streams(base: &str, count: usize) -> anyhow::Result<Vec<TcpStream>> {
    let address = base.trim_start_matches("http://").to_owned();
    let mut open = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(&address).await?;
        stream
            .write_all(b"GET /dashboard/events?unit=1 HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
            .await?;
        let mut seen = Vec::new();
        let mut buffer = [0u8; 8192];
        while !String::from_utf8_lossy(&seen).contains("event: snapshot") {
            let read =
                tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await??;
            anyhow::ensure!(read > 0, "a board stream closed before its snapshot");
            seen.extend_from_slice(&buffer[..read]);
        }
        open.push(stream);
    }
    Ok(open)
}
