//! The Set Retail 10 collector (replaces ELQ's `api_import_receipts`): reads each register's database after a
//! persistent cursor, delivers every sale in commit order exactly once, backfills after any downtime, and runs
//! either as `tillwire collect setretail` (posting to an import endpoint) or inside `tillwire serve`.

mod alerts;
pub mod cli;
pub mod config;
mod cursors;
mod http;
mod inprocess;
mod pages;
mod parked;
pub mod reader;
mod run;
mod sources;
pub mod status;

use tillwire_kitchen::Kitchen;
use tillwire_platform::area::SettingsSection;
use tillwire_platform::config::ConfigError;
use tillwire_platform::web::NavLink;
use tillwire_platform::{Access, Answer, Area, Migration};
use tillwire_units::Units;

pub use alerts::{Alerts, REGISTER_BEHIND, REGISTER_RECOVERED};
pub use cursors::Cursors;
pub use http::{HttpSink, legacy_body};
pub use inprocess::KitchenSink;
pub use pages::router;
pub use parked::{Parked, ParkedRow};
pub use run::{Ack, Collectors, DEFAULT_BATCH, Options, Refusal, Sink, Task};

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        area: "collector",
        version: 1,
        sqlite: include_str!("../migrations/sqlite/0001_collector.sql"),
        postgres: include_str!("../migrations/postgres/0001_collector.sql"),
    },
    Migration {
        area: "collector",
        version: 2,
        sqlite: include_str!("../migrations/sqlite/0002_sources.sql"),
        postgres: include_str!("../migrations/postgres/0002_sources.sql"),
    },
    Migration {
        area: "collector",
        version: 3,
        sqlite: include_str!("../migrations/sqlite/0003_overlap_and_parking.sql"),
        postgres: include_str!("../migrations/postgres/0003_overlap_and_parking.sql"),
    },
    Migration {
        area: "collector",
        version: 4,
        sqlite: include_str!("../migrations/sqlite/0004_alerts.sql"),
        postgres: include_str!("../migrations/postgres/0004_alerts.sql"),
    },
];

#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("{origin}: {message}")]
    Config { origin: String, message: String },
    #[error("no unit named {0:?} (collector.setretail)")]
    UnknownUnit(String),
    #[error(transparent)]
    Store(#[from] tillwire_platform::store::StoreError),
    #[error(transparent)]
    Units(#[from] tillwire_units::UnitError),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// The Set Retail collector: its admin pages, and in `serve` one task per register.
pub const AREA: Area = Area {
    name: "collector",
    migrations: MIGRATIONS,
    admin_nav: &[NavLink::to(
        "/admin/collector/",
        "Сборщик Set Retail",
        "Set Retail collector",
    )],
    settings: Some(SettingsSection {
        name: "collector",
        env: &[],
        check: |settings| {
            config::parse_section(&settings.section("collector")?)
                .map(|_| ())
                .map_err(|error| ConfigError::Layer(error.to_string()))
        },
    }),
    build: |assembly| {
        let kitchen: Kitchen = assembly.service()?;
        assembly.routes(
            Access::Session,
            Answer::Page,
            router(assembly.platform.clone()),
        );
        assembly.task("collector", move |mut shutdown| async move {
            let running = start_in_process(&kitchen).await?;
            shutdown.wait().await;
            running.stop().await;
            Ok(())
        });
        Ok(())
    },
    ..Area::NONE
};

/// The collector inside `tillwire serve`: the registers of `tillwire.toml` and those added on the admin pages.
pub struct InProcess {
    configured: Collectors,
    stop: tokio::sync::watch::Sender<bool>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl InProcess {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.supervisor.await;
        self.configured.stop().await;
    }
}

/// Starts the registers configured under `[[collector.setretail]]` in `tillwire.toml`, and those of
/// `collector_sources` (kept in step with the admin pages), each feeding its unit's kitchen directly. Their cursors
/// live in tillwire's own database.
pub async fn start_in_process(kitchen: &Kitchen) -> Result<InProcess, CollectorError> {
    let platform = &kitchen.platform;
    let units = Units(&platform.store);
    let mut tasks = Vec::new();
    let table: toml::Table =
        platform
            .settings
            .section("collector")
            .map_err(|error| CollectorError::Config {
                origin: "tillwire.toml [collector]".into(),
                message: error.to_string(),
            })?;
    let parsed = config::parse_section(&table)?;
    for section in parsed.units {
        let unit = match &section.unit {
            None => units.default_unit().await?,
            Some(name) => units.list().await?.into_iter().find(|u| &u.name == name),
        }
        .ok_or_else(|| CollectorError::UnknownUnit(section.unit.clone().unwrap_or_default()))?;
        let options = Options {
            timer: section.timer,
            lookback: section.lookback,
            batch: DEFAULT_BATCH,
            zone: platform.settings.timezone,
            overlap: parsed.overlap,
        };
        for source in section.cashes {
            let name = source.name();
            tasks.push(Task {
                key: sources::task_key(unit.id, &name),
                reporter: status::Reporter::new(&name, &unit.name),
                sink: KitchenSink {
                    kitchen: kitchen.clone(),
                    unit: unit.unit_id(),
                },
                cursors: Cursors(platform.store.clone()),
                parked: Parked(platform.store.clone()),
                leases: platform.leases.clone(),
                options,
                source,
                alerts: parsed.alert_after.map(|after| Alerts {
                    store: platform.store.clone(),
                    unit_id: unit.id,
                    after,
                }),
            });
        }
    }
    let keys = tasks.iter().map(|task| task.key.clone()).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let supervisor = tokio::spawn(sources::supervise(
        kitchen.clone(),
        keys,
        sources::Policy {
            overlap: parsed.overlap,
            alert_after: parsed.alert_after,
        },
        stopped,
    ));
    Ok(InProcess {
        configured: Collectors::start(tasks),
        stop,
        supervisor,
    })
}
