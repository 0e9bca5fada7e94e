//! iiko intake (issue 15): orders from iikoCloud (webhooks and reconciliation polls) become production orders with
//! queue numbers, kept in step as items are added and deleted and the order is cancelled.
//!
//! `model` reads iiko's orders (decimals, open enums), `timezone` their terminal-local times; `cloud` is the
//! iikoCloud client; `connections` the accounts with their sealed secrets, terminal groups and product mapping;
//! `intake` the inbox and the job that applies an order to the kitchen; `webhook` the endpoint iiko calls; `poll`
//! the reconciliation poll; `sim` simulates both iiko servers for tests and the demo, built from the spec, not
//! from this crate's clients.

pub mod cloud;
pub mod config;
pub mod connections;
mod demo;
pub mod intake;
pub mod journal;
pub mod model;
mod pages;
pub mod poll;
pub mod reports;
mod sales;
pub mod server;
pub mod servers;
pub mod sim;
pub mod timezone;
mod views;
pub mod webhook;

use tillwire_kitchen::Kitchen;
use tillwire_platform::area::SettingsSection;
use tillwire_platform::{Access, Answer, Area, HttpError, Migration, Platform};
use tillwire_units::Units;

pub use connections::{Connection, ConnectionId, Connections};
pub use intake::Intake;
pub use model::{IikoId, IikoOrder, OrderKind};

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        area: "iiko",
        version: 1,
        sqlite: include_str!("../migrations/sqlite/0001_iiko.sql"),
        postgres: include_str!("../migrations/postgres/0001_iiko.sql"),
    },
    Migration {
        area: "iiko",
        version: 2,
        sqlite: include_str!("../migrations/sqlite/0002_server_keys.sql"),
        postgres: include_str!("../migrations/postgres/0002_server_keys.sql"),
    },
    Migration {
        area: "iiko",
        version: 3,
        sqlite: include_str!("../migrations/sqlite/0003_servers.sql"),
        postgres: include_str!("../migrations/postgres/0003_servers.sql"),
    },
    Migration {
        area: "iiko",
        version: 4,
        sqlite: include_str!("../migrations/sqlite/0004_daily_sales.sql"),
        postgres: include_str!("../migrations/postgres/0004_daily_sales.sql"),
    },
];

/// The area's services, shared by the webhook, the jobs and the poll.
#[derive(Clone)]
pub struct Iiko {
    pub platform: Platform,
    pub connections: Connections,
    pub servers: servers::Servers,
    pub intake: Intake,
    pub reports: reports::Reports,
    pub kitchen: Kitchen,
    pub settings: config::IikoSettings,
    webhook_tokens: webhook::Tokens,
}

impl Iiko {
    pub fn new(platform: Platform, kitchen: Kitchen, settings: config::IikoSettings) -> Iiko {
        let connections =
            Connections::new(platform.store.clone(), platform.settings.data_dir.clone());
        let intake = Intake::new(platform.store.clone(), kitchen.clone(), connections.clone());
        let servers = servers::Servers::new(platform.store.clone(), connections.clone());
        Iiko {
            servers,
            reports: reports::Reports::new(platform.store.clone()),
            kitchen,
            platform,
            connections,
            intake,
            settings,
            webhook_tokens: webhook::Tokens::default(),
        }
    }

    /// A client of `server`, with the installation's secret box for the key it writes down.
    pub fn server_client(
        &self,
        server: &servers::Server,
    ) -> Result<server::ServerClient, HttpError> {
        Ok(server::ServerClient::new(
            self.platform.clone(),
            self.connections.secret_box()?.clone(),
            &server.url,
            &server.login,
            &server.password,
        ))
    }

    /// Writes the `[[iiko.cloud]]` entries of the settings file as connections (refreshing those already there).
    pub async fn load_config(&self) -> Result<(), HttpError> {
        if self.settings.cloud.is_empty() && self.settings.server.is_empty() {
            return Ok(());
        }
        let units = Units(&self.platform.store).list().await?;
        let unit_named = |name: &Option<String>, entry: &str| match name {
            None => Ok(None),
            Some(name) => units
                .iter()
                .find(|u| u.name.as_str() == name)
                .map(|u| Some(u.unit_id()))
                .ok_or_else(|| {
                    HttpError::internal(anyhow::anyhow!("{entry}: there is no unit named {name:?}"))
                }),
        };
        for entry in &self.settings.cloud {
            let unit = unit_named(
                &entry.unit,
                &format!("[[iiko.cloud]] {}", entry.organization),
            )?;
            self.connections.upsert_from_config(entry, unit).await?;
        }
        for entry in &self.settings.server {
            let unit = unit_named(&entry.unit, &format!("[[iiko.server]] {}", entry.url))?;
            self.servers.upsert_from_config(entry, unit).await?;
        }
        self.webhook_tokens.clear();
        Ok(())
    }
}

/// Handlers that need the platform (an admin's session, a token's scope) take it from the area's state.
impl axum::extract::FromRef<Iiko> for Platform {
    fn from_ref(iiko: &Iiko) -> Platform {
        iiko.platform.clone()
    }
}

pub const AREA: Area = Area {
    name: "iiko",
    migrations: MIGRATIONS,
    assets: pages::ASSETS,
    admin_nav: pages::ADMIN_NAV,
    settings: Some(SettingsSection {
        name: "iiko",
        env: config::ENV,
        check: |settings| config::parse(settings).map(|_| ()),
    }),
    demo: Some(|platform| Box::pin(demo::start(platform))),
    build: |assembly| {
        let platform = assembly.platform.clone();
        let settings = config::parse(&platform.settings)?;
        let kitchen: Kitchen = assembly.service()?;
        let iiko = Iiko::new(platform, kitchen, settings);
        assembly.routes(Access::Public, Answer::Json, webhook::router(iiko.clone()));
        assembly.routes(
            Access::Session,
            Answer::Page,
            sales::page_router(iiko.clone()),
        );
        assembly.routes(
            Access::Credential,
            Answer::Json,
            sales::api_router(iiko.clone()),
        );
        assembly.routes(Access::Session, Answer::Page, pages::router(iiko.clone()));
        let intake = iiko.intake.clone();
        assembly
            .jobs()
            .register(move |job: intake::ApplyJob, attempt| {
                let intake = intake.clone();
                async move { intake.apply(job, attempt).await }
            });
        assembly.provide(iiko.clone());
        assembly.task("iiko", move |shutdown| async move {
            iiko.load_config()
                .await
                .map_err(|e| anyhow::anyhow!("iiko: {e}"))?;
            poll::run(iiko, shutdown).await
        });
        Ok(())
    },
    openapi: Some(<sales::IikoApi as utoipa::OpenApi>::openapi),
    ..Area::NONE
};
