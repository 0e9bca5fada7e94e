//! `tillwire collect setretail --config main.json`: ELQ's collector, with a cursor. Cursors live in a small SQLite
//! file under the data dir, so this runs on any machine that can reach the registers and the import endpoint.

use std::path::PathBuf;

use tillwire_platform::{Settings, Store};

use crate::config::{Lookback, MainConfig};
use crate::run::{Collectors, Options, Task};
use crate::{CollectorError, Cursors, HttpSink, MIGRATIONS, status};

pub struct CliOptions {
    pub main_json: PathBuf,
    pub batch: u32,
    pub lookback_hours: Option<u32>,
}

/// Runs until Ctrl-C or SIGTERM, then stops every task at once (see [`Collectors`]).
pub async fn run(settings: &Settings, options: CliOptions) -> Result<(), CollectorError> {
    let config = MainConfig::load(&options.main_json)?;
    if config.cashes.is_empty() {
        return Err(CollectorError::Config {
            origin: options.main_json.display().to_string(),
            message: "no registers: `cashes` is empty".into(),
        });
    }
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| CollectorError::Config {
        origin: settings.data_dir.display().to_string(),
        message: e.to_string(),
    })?;
    let path = settings.data_dir.join("collector.sqlite3");
    let store = Store::connect(&format!("sqlite://{}", path.display())).await?;
    store.migrate(&[MIGRATIONS]).await?;
    let sink = HttpSink::new(config.api.clone(), config.api_key.clone())?;
    let run_options = Options {
        timer: config.timer,
        lookback: Lookback::hours(options.lookback_hours),
        batch: options.batch.max(1),
        zone: settings.timezone,
    };
    let target = config.api.host_str().unwrap_or_default().to_owned();
    let tasks = config
        .cashes
        .into_iter()
        .map(|source| Task {
            key: source.name(),
            reporter: status::Reporter::new(&source.name(), &target),
            sink: sink.clone(),
            cursors: Cursors(store.clone()),
            options: run_options,
            source,
        })
        .collect();
    println!(
        "Collecting from {} register(s) into {}; cursors in {}",
        status::snapshot().len(),
        config.api,
        path.display()
    );
    let collectors = Collectors::start(tasks);
    shutdown_signal().await;
    collectors.stop().await;
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
