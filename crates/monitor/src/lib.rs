//! The UKM 5 register monitor: every register of every unit polled within the vendor's one-request-a-second limit
//! (by one instance at a time), its answers read defensively (`parse`), turned into a state and incidents
//! (`health`), stored with their history and domain events (`storage`), and shown live (`pages`), over a JSON
//! API (`api`) and as Prometheus metrics. `sim` simulates registers for the tests, the demo and the benchmark.

mod api;
pub mod config;
mod demo;
pub mod health;
pub mod import;
pub mod manage;
pub mod model;
mod pages;
pub mod parse;
mod plot;
pub mod poller;
pub mod scenario;
pub mod schedule;
pub mod sim;
pub mod storage;

use tillwire_platform::area::SettingsSection;
use tillwire_platform::web::Asset;
use tillwire_platform::{Access, Answer, Area, Migration, Platform};
use tillwire_units::Units;

pub use model::{BaseUrl, Kind, RegisterId, RegisterName, Thresholds};
pub use storage::{MonitorError, NewRegister, Registers};

/// Published when registers are added, changed or removed, so the poller picks the change up at once.
pub const TOPIC_REGISTERS_CHANGED: &str = "monitor.registers";

pub const MIGRATIONS: &[Migration] = &[Migration {
    area: "monitor",
    version: 1,
    sqlite: include_str!("../migrations/sqlite/0001_monitor.sql"),
    postgres: include_str!("../migrations/postgres/0001_monitor.sql"),
}];

const ASSETS: &[Asset] = &[
    Asset {
        name: "monitor.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/monitor.css"),
    },
    Asset {
        name: "monitor.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/monitor.js"),
    },
];

pub const AREA: Area = Area {
    name: "monitor",
    migrations: MIGRATIONS,
    assets: ASSETS,
    main_nav: pages::MAIN_NAV,
    admin_nav: pages::ADMIN_NAV,
    settings: Some(SettingsSection {
        name: "monitor",
        env: config::ENV,
        check: |settings| config::parse(settings).map(|_| ()),
    }),
    demo: Some(|platform| Box::pin(demo::start(platform))),
    build: |assembly| {
        let platform = assembly.platform.clone();
        let settings = config::parse(&platform.settings)?;
        assembly.routes(
            Access::Session,
            Answer::Page,
            pages::router(pages::Pages {
                platform: platform.clone(),
                settings: std::sync::Arc::new(settings.clone()),
            }),
        );
        assembly.routes(
            Access::Credential,
            Answer::Json,
            api::router(platform.clone()),
        );
        assembly.task("monitor", move |shutdown| async move {
            declare(&platform, &settings.declared).await?;
            poller::run(platform, settings, shutdown).await
        });
        Ok(())
    },
    openapi: Some(<api::MonitorApi as utoipa::OpenApi>::openapi),
    ..Area::NONE
};

/// Brings the registers of `tillwire.toml` into the table: added or updated, and those no longer declared there
/// removed. A unit named there must exist.
pub async fn declare(platform: &Platform, declared: &[config::Declared]) -> anyhow::Result<()> {
    let units = Units(&platform.store).list().await?;
    let registers = Registers(platform.store.clone());
    let mut kept = Vec::new();
    for register in declared {
        let unit = match &register.unit {
            None => units.iter().find(|unit| unit.is_default),
            Some(name) => units.iter().find(|unit| &unit.name == name),
        }
        .ok_or_else(|| {
            anyhow::anyhow!(
                "tillwire.toml [[monitor.register]] {:?}: no unit named {:?}",
                register.name.as_str(),
                register.unit.as_deref().unwrap_or("(the default unit)")
            )
        })?;
        registers
            .upsert(
                &NewRegister {
                    unit_id: unit.id,
                    name: register.name.clone(),
                    url: register.url.clone(),
                    zone: register.zone,
                    region: register.region.clone(),
                    enabled: true,
                    overrides: Default::default(),
                },
                true,
            )
            .await?;
        kept.push((unit.id, register.name.as_str().to_owned()));
    }
    for stale in registers
        .list()
        .await?
        .into_iter()
        .filter(|r| r.declared && !kept.contains(&(r.unit_id, r.name.clone())))
    {
        tracing::info!(register = %stale.name, "monitor: no longer declared in tillwire.toml; removed");
        registers.delete(stale.register_id()).await?;
    }
    Ok(())
}
