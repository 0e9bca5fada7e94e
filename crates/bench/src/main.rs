//! `tillwire-bench`: measures the quality bars of docs/DESIGN against the real release binary, over loopback HTTP.
//!
//!   cargo build --release -p tillwire && cargo run --release -p tillwire-bench -- all
//!
//! Reports medians and tails; nothing here asserts on time.

mod board;
mod collect;
mod directory;
mod erp;
mod iiko;
mod import;
mod jobs;
mod monitor;
mod notify;
mod print;
mod server;
mod startup;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    about = "Benchmarks for tillwire (build the release binary first: cargo build --release -p tillwire)"
)]
struct Cli {
    /// The tillwire binary to measure.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/tillwire"))]
    binary: std::path::PathBuf,
    /// PostgreSQL server for the PostgreSQL runs (a fresh database is created on it).
    #[arg(
        long,
        env = "TILLWIRE_BENCH_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Subcommand)]
enum Command {
    /// Receipt import throughput and latency with concurrent clients (legacy endpoint).
    Import {
        #[arg(long, value_enum, default_value = "both")]
        backend: Backend,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long, default_value_t = 20_000)]
        receipts: usize,
    },
    /// Status change → customer board SSE event latency.
    Board {
        #[arg(long, value_enum, default_value = "both")]
        backend: Backend,
        #[arg(long, default_value_t = 300)]
        changes: usize,
    },
    /// The ERP bridge as `tillwire erp run`: OilMat's POST /create and GET /alive with concurrent clients, then
    /// seconds per order line into the AD Manager simulator (headless Chromium, verified).
    Erp {
        #[arg(long, value_enum, default_value = "both")]
        backend: Backend,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        #[arg(long, default_value_t = 20)]
        lines: usize,
    },
    /// The iiko intake: webhooks accepted and turned into queue numbers per second, webhook → queue number
    /// latency, and the cost of a reconciliation poll of one organization.
    Iiko {
        #[arg(long, value_enum, default_value = "both")]
        backend: Backend,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long, default_value_t = 10_000)]
        webhooks: usize,
    },
    /// Set Retail collector: backfill receipts/s from one register database, then commit → number lag.
    Collect {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value_t = 100_000)]
        receipts: i64,
        /// Seconds between passes once caught up (main.json's `timer`).
        #[arg(long, default_value_t = 1.0)]
        timer: f64,
        #[arg(long, default_value_t = 50)]
        samples: usize,
    },
    /// Tickets through the print queue to a raw TCP printer: tickets/s, and import reply → first byte latency.
    Print {
        #[arg(long, value_enum, default_value = "both")]
        backend: Backend,
        /// Tickets in the throughput burst.
        #[arg(long, default_value_t = 2_000)]
        tickets: usize,
        /// Printers (registers 1–5 each get their own, all pointing at the sink); each prints in order.
        #[arg(long, default_value_t = 5)]
        printers: usize,
        /// One-at-a-time tickets for the latency figures.
        #[arg(long, default_value_t = 300)]
        samples: usize,
    },
    /// Directory reads: GET /report-routes/telegram-chats/ and GET /units/ with concurrent clients.
    Directory {
        #[arg(long, value_enum, default_value = "both")]
        backend: Backend,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long, default_value_t = 5_000)]
        units: usize,
        #[arg(long, default_value_t = 50_000)]
        routes: usize,
        /// Requests per endpoint.
        #[arg(long, default_value_t = 50_000)]
        requests: usize,
    },
    /// No-op jobs/s through the typed durable queue, in process, with 1, 100 and 10,000 distinct keys.
    Jobs {
        #[arg(long, value_enum, default_value = "both")]
        backend: Backend,
        #[arg(long, default_value_t = 20_000)]
        jobs: usize,
        /// Jobs run at once (`tillwire serve` runs 64).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// The register monitor polling N simulated UKM 5 registers at the one-request-a-second limit: polls/s, CPU per
    /// poll, registers per core, p99 staleness, memory per register.
    Monitor {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value_t = 2_000)]
        registers: u32,
        /// Seconds measured (after a warm-up of 12 s).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Telegram delivery to the Bot API simulator with the limits raised: messages/s to N chats, and the latency
    /// from an event to Telegram's answer.
    Notify {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value_t = 1_000)]
        chats: i64,
        /// Events, each to every chat.
        #[arg(long, default_value_t = 5)]
        events: usize,
        #[arg(long, default_value_t = 50)]
        samples: usize,
    },
    /// Start-up time to a healthy /healthz, and idle resident memory.
    Startup {
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Board screens kept open for the memory figure (0: none).
        #[arg(long, default_value_t = 1_000)]
        streams: usize,
    },
    /// Everything above with default sizes.
    All,
}

fn backends(choice: Backend) -> Vec<Backend> {
    match choice {
        Backend::Both => vec![Backend::Sqlite, Backend::Postgres],
        one => vec![one],
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!(
        cli.binary.exists(),
        "{} not found: build it with `cargo build --release -p tillwire`",
        cli.binary.display()
    );
    let target = server::Target {
        binary: cli.binary.clone(),
        postgres: cli.postgres.clone(),
    };
    match cli.command {
        Command::Import {
            backend,
            clients,
            receipts,
        } => {
            for backend in backends(backend) {
                import::run(&target, backend, clients, receipts).await?;
            }
        }
        Command::Erp {
            backend,
            clients,
            requests,
            lines,
        } => {
            for backend in backends(backend) {
                erp::run(&target, backend, clients, requests, lines).await?;
            }
        }
        Command::Iiko {
            backend,
            clients,
            webhooks,
        } => {
            for backend in backends(backend) {
                iiko::run(&target, backend, clients, webhooks).await?;
            }
        }
        Command::Board { backend, changes } => {
            for backend in backends(backend) {
                board::run(&target, backend, changes).await?;
            }
        }
        Command::Collect {
            backend,
            receipts,
            timer,
            samples,
        } => {
            for backend in backends(backend) {
                collect::run(&target, backend, receipts, timer, samples).await?;
            }
        }
        Command::Print {
            backend,
            tickets,
            printers,
            samples,
        } => {
            for backend in backends(backend) {
                print::run(&target, backend, tickets, printers, samples).await?;
            }
        }
        Command::Directory {
            backend,
            clients,
            units,
            routes,
            requests,
        } => {
            for backend in backends(backend) {
                directory::run(&target, backend, clients, units, routes, requests).await?;
            }
        }
        Command::Jobs {
            backend,
            jobs,
            concurrency,
        } => {
            for backend in backends(backend) {
                jobs::run(&target, backend, jobs, concurrency).await?;
            }
        }
        Command::Monitor {
            backend,
            registers,
            seconds,
        } => {
            for backend in backends(backend) {
                monitor::run(&target, backend, registers, seconds).await?;
            }
        }
        Command::Notify {
            backend,
            chats,
            events,
            samples,
        } => {
            for backend in backends(backend) {
                notify::run(&target, backend, chats, events, samples).await?;
            }
        }
        Command::Startup { runs, streams } => startup::run(&target, runs, streams).await?,
        Command::All => {
            for backend in backends(Backend::Both) {
                import::run(&target, backend, 64, 20_000).await?;
                board::run(&target, backend, 300).await?;
            }
            startup::run(&target, 10, 1_000).await?;
        }
    }
    Ok(())
}

/// Sends `total` requests from `clients` concurrent clients, request `i` built by `request`; each one's latency,
/// and how many failed (not 2xx, or the body lost).
pub async fn hammer<F>(
    client: &reqwest::Client,
    clients: usize,
    total: usize,
    request: F,
) -> anyhow::Result<(Vec<std::time::Duration>, usize)>
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = Arc::new(AtomicUsize::new(0));
    let request = Arc::new(request);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, next, request) = (client.clone(), next.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    break;
                }
                let sent = std::time::Instant::now();
                let ok = match request(&client, index).send().await {
                    Ok(response) => {
                        response.status().is_success() && response.bytes().await.is_ok()
                    }
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

/// Latency summary in milliseconds.
pub struct Summary {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn summarize(mut samples: Vec<std::time::Duration>) -> Summary {
    samples.sort_unstable();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Summary {
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
    }
}
