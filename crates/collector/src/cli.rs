//! `tillwire collect setretail --config main.json`: ELQ's collector, with a cursor. Cursors live in a small SQLite
//! file under the data dir, so this runs on any machine that can reach the registers and the import endpoint.
//! Each register's state is printed every minute and on SIGUSR1; `--metrics-listen` serves `/metrics`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tillwire_platform::area::Shutdown;
use tillwire_platform::server::{Edge, stop_signal};
use tillwire_platform::{Leases, Settings, Store};

use crate::config::{Lookback, MainConfig, Overlap};
use crate::run::{Collectors, Options, Task};
use crate::status::RegisterState;
use crate::{CollectorError, Cursors, HttpSink, MIGRATIONS, Parked, status};

pub struct CliOptions {
    pub main_json: PathBuf,
    pub batch: u32,
    pub lookback_hours: Option<u32>,
    pub overlap: Overlap,
    pub metrics_listen: Option<SocketAddr>,
}

const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Runs until Ctrl-C or SIGTERM, then stops every task at once (see [`Collectors`]).
pub async fn run(settings: &Settings, options: CliOptions) -> Result<(), CollectorError> {
    let config = MainConfig::load(&options.main_json)?;
    if config.cashes.is_empty() {
        return Err(CollectorError::Config {
            origin: options.main_json.display().to_string(),
            message: "no registers: `cashes` is empty".into(),
        });
    }
    let trouble = |origin: String| {
        move |e: std::io::Error| CollectorError::Config {
            origin,
            message: e.to_string(),
        }
    };
    std::fs::create_dir_all(&settings.data_dir)
        .map_err(trouble(settings.data_dir.display().to_string()))?;
    let metrics = match options.metrics_listen {
        Some(address) => {
            tillwire_platform::telemetry::metrics_handle();
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(trouble(format!("--metrics-listen {address}")))?;
            Some(listener)
        }
        None => None,
    };
    let path = settings.data_dir.join("collector.sqlite3");
    let store = Store::connect(&format!("sqlite://{}", path.display())).await?;
    // The platform's schema too, for its leases: two collectors started on one data dir read each register once.
    store
        .migrate(&[tillwire_platform::MIGRATIONS, MIGRATIONS])
        .await?;
    let sink = HttpSink::new(config.api.clone(), config.api_key.clone())?;
    let run_options = Options {
        timer: config.timer,
        lookback: Lookback::hours(options.lookback_hours),
        batch: options.batch.max(1),
        zone: settings.timezone,
        overlap: options.overlap,
    };
    let target = config.api.host_str().unwrap_or_default().to_owned();
    let leases = Leases::new(store.clone());
    let tasks = config
        .cashes
        .into_iter()
        .map(|source| Task {
            key: source.name(),
            reporter: status::Reporter::new(&source.name(), &target),
            sink: sink.clone(),
            cursors: Cursors(store.clone()),
            parked: Parked(store.clone()),
            leases: leases.clone(),
            options: run_options,
            source,
            alerts: None,
        })
        .collect();
    println!(
        "Collecting from {} register(s) into {}; cursors in {}",
        status::snapshot().len(),
        config.api,
        path.display()
    );
    let collectors = Collectors::start(tasks);
    let (stop_metrics, metrics_stopping) = Shutdown::channel();
    let metrics = metrics.map(|listener| {
        let address = listener.local_addr().ok();
        println!(
            "Metrics at http://{}/metrics",
            address.map(|a| a.to_string()).unwrap_or_default()
        );
        let router = axum::Router::new().route(
            "/metrics",
            axum::routing::get(|| async { tillwire_platform::telemetry::metrics_reply() }),
        );
        tokio::spawn(async move {
            tillwire_platform::server::serve(
                listener,
                router,
                &Edge::default(),
                metrics_stopping,
                Duration::from_secs(1),
            )
            .await
        })
    });
    let parked = Parked(store.clone());
    tokio::select! {
        _ = stop_signal() => {}
        _ = report_states(&parked) => {}
    }
    stop_metrics.send_replace(true);
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    collectors.stop().await;
    print_states(&parked).await;
    store.close().await;
    Ok(())
}

/// Prints every register's state each minute and whenever the process gets SIGUSR1 (`kill -USR1 PID`).
async fn report_states(parked: &Parked) {
    let mut asked = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .map_err(
            |error| tracing::warn!(%error, "SIGUSR1 cannot be caught; states print every minute"),
        )
        .ok();
    let mut every =
        tokio::time::interval_at(tokio::time::Instant::now() + REPORT_EVERY, REPORT_EVERY);
    loop {
        match asked.as_mut() {
            Some(signal) => tokio::select! {
                _ = every.tick() => {}
                _ = signal.recv() => {}
            },
            None => {
                every.tick().await;
            }
        }
        print_states(parked).await;
    }
}

async fn print_states(parked: &Parked) {
    let now = tillwire_platform::now_ms();
    for state in status::snapshot() {
        let waiting = parked.count(&state.source).await.unwrap_or(0);
        println!("{}", state_line(&state, waiting, now));
    }
}

/// One register's state on one line: lag, backlog, parked receipts, last success and last error.
pub fn state_line(state: &RegisterState, parked: i64, now_ms: i64) -> String {
    let seconds = |ms: i64| format!("{:.1} s", ms as f64 / 1e3);
    let mut line = format!(
        "register {}: delivered {}, lag {}, backlog {}, parked {}, last success {}",
        state.source,
        state.delivered,
        state.lag_ms.map_or_else(|| "—".into(), seconds),
        state.backlog,
        parked,
        state.last_success_ms.map_or_else(
            || "never".into(),
            |at| format!("{} ago", seconds(now_ms - at))
        ),
    );
    if let Some(holder) = &state.standby_for {
        line.push_str(&format!(", standing by (read by {holder})"));
    }
    if let Some(error) = &state.last_error {
        line.push_str(&format!(", last error: {error}"));
    }
    line
}
