//! ERP order lines (issue 14, replaces oilmat-erp): OilMat's "pumped oil" orders become lines on a workshop's
//! work card in its ERP, added by driving the ERP's web pages with a real browser, once and verified.
//!
//! `model` holds the area's words; `integrations` and `orders` its storage; `contract` OilMat's HTTP contract
//! (on each integration's own listener, run by `listeners`, and under `/erp/{workshop}/`); `worker` the job
//! handler that runs `connector` (the browser automation, its script as data); `pages` and `api` the management
//! layer; `import` carries OilMat's status databases over; `sim` simulates both ERPs for tests and the demo.

mod api;
mod cache;
pub mod config;
pub mod connector;
pub mod contract;
mod demo;
pub mod import;
mod intake;
pub mod integrations;
pub mod listeners;
pub mod model;
pub mod orders;
mod pages;
pub mod sim;
pub mod standalone;
pub mod worker;

use std::sync::Arc;

use tillwire_platform::area::SettingsSection;
use tillwire_platform::server::Networks;
use tillwire_platform::web::Asset;
use tillwire_platform::{Access, Answer, Area, HttpError, Migration, Platform};

pub use integrations::{Integration, IntegrationId, IntegrationSpec, Integrations, Workshop};
pub use model::{Amount, Credentials, ErpType, LineOrder, OrderRef, OrderStatus, Reason};
pub use orders::{Order, Orders};

pub const MIGRATIONS: &[Migration] = &[Migration {
    area: "erp",
    version: 1,
    sqlite: include_str!("../migrations/sqlite/0001_erp.sql"),
    postgres: include_str!("../migrations/postgres/0001_erp.sql"),
}];

const ASSETS: &[Asset] = &[Asset {
    name: "erp.css",
    content_type: "text/css; charset=utf-8",
    bytes: include_bytes!("../assets/erp.css"),
}];

/// The area's services, shared by the contract, the pages, the worker and the listeners.
#[derive(Clone)]
pub struct Erp {
    pub platform: Platform,
    pub integrations: Integrations,
    pub orders: Orders,
    pub worker: worker::Worker,
    /// This process's integration listeners.
    pub listeners: listeners::Listeners,
    /// Who may call the contract without a token.
    pub allow: Networks,
    /// `tillwire erp run`: `/kill` ends the process, as the original's did.
    pub standalone: bool,
    /// `/create`'s orders, written in batches.
    intake: intake::IntakeWriter,
    /// Integrations by id and by workshop, and their health, as OilMat's clients ask for them again and again.
    by_id: Arc<cache::Recent<IntegrationId, Integration>>,
    by_workshop: Arc<cache::Recent<String, Integration>>,
    health: Arc<cache::Recent<IntegrationId, orders::Health>>,
}

impl Erp {
    pub fn new(platform: Platform, settings: &config::ErpSettings) -> Erp {
        let integrations =
            Integrations::new(platform.store.clone(), platform.settings.data_dir.clone());
        let orders = Orders::new(platform.store.clone(), platform.jobs.clone());
        let worker = worker::Worker::new(
            integrations.clone(),
            orders.clone(),
            settings.browser.clone(),
        );
        let intake = intake::IntakeWriter::start(orders.clone());
        Erp {
            platform,
            integrations,
            orders,
            worker,
            listeners: listeners::Listeners::default(),
            allow: settings.allow.clone(),
            standalone: standalone::is_standalone(),
            intake,
            by_id: Arc::default(),
            by_workshop: Arc::default(),
            health: Arc::default(),
        }
    }

    /// Receives an order from OilMat (see [`Orders::receive_all`]), committed with those arriving at the same time.
    pub async fn receive(
        &self,
        integration: Integration,
        intake: orders::Intake,
    ) -> Result<orders::Received, HttpError> {
        self.intake.receive(integration, intake).await
    }

    /// An integration, read at most once a second while nothing here changes it.
    pub async fn integration(&self, id: IntegrationId) -> Result<Integration, HttpError> {
        let generation = self.integrations.generation();
        if let Some(kept) = self.by_id.get(&id, generation) {
            return Ok(kept);
        }
        let integration = self.integrations.get(id).await?;
        self.by_id.put(id, generation, integration.clone());
        Ok(integration)
    }

    /// The integration of a workshop, kept as [`Erp::integration`] is.
    pub async fn integration_of(&self, workshop: &str) -> Result<Integration, HttpError> {
        let generation = self.integrations.generation();
        if let Some(kept) = self.by_workshop.get(&workshop.to_owned(), generation) {
            return Ok(kept);
        }
        let integration = self.integrations.by_workshop(workshop).await?;
        self.by_workshop
            .put(workshop.to_owned(), generation, integration.clone());
        Ok(integration)
    }

    /// An integration's orders in numbers (what `/alive` and the pages tell), kept as [`Erp::integration`] is.
    pub async fn health(&self, id: IntegrationId) -> Result<orders::Health, HttpError> {
        let generation = self.orders.generation();
        if let Some(kept) = self.health.get(&id, generation) {
            return Ok(kept);
        }
        let health = self.orders.health(id).await?;
        self.health.put(id, generation, health.clone());
        Ok(health)
    }

    /// Tells listeners and pages on every instance that integrations changed.
    pub async fn changed(&self) {
        self.platform
            .events
            .publish(tillwire_platform::events::Event {
                topic: integrations::TOPIC_INTEGRATIONS.into(),
                unit_id: tillwire_platform::events::EVERY_UNIT,
                payload: serde_json::Value::Null,
            })
            .await;
    }

    /// Starts or parks the worker; a start wakes the integration's waiting job at once.
    pub async fn set_worker(&self, id: IntegrationId, running: bool) -> Result<(), HttpError> {
        self.integrations.set_worker(id, running).await?;
        if running {
            self.platform
                .jobs
                .run_now(&integrations::job_key(id))
                .await?;
        }
        self.changed().await;
        Ok(())
    }

    /// Brings an integration up: active (its listener opens), worker on.
    pub async fn start(&self, id: IntegrationId) -> Result<(), HttpError> {
        self.integrations.set_active(id, true).await?;
        self.set_worker(id, true).await
    }

    /// `/kill`: the integration stops: its worker parks (a task in progress ends first, or is abandoned by its
    /// timeout), its browser closes, its listener closes. Under `tillwire erp run` the process then ends.
    pub async fn kill(&self, id: IntegrationId) -> Result<(), HttpError> {
        self.integrations.set_worker(id, false).await?;
        self.integrations.set_active(id, false).await?;
        self.changed().await;
        let erp = self.clone();
        // After the answer has gone out.
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            erp.worker.close(id).await;
            if erp.standalone {
                erp.platform.begin_shutdown();
            }
        });
        tracing::info!(integration = %id, "erp: integration killed");
        Ok(())
    }

    /// Closes the browser and opens again: the integration is started afresh.
    pub async fn restart(&self, id: IntegrationId) -> Result<(), HttpError> {
        self.worker.close(id).await;
        self.start(id).await
    }
}

pub const AREA: Area = Area {
    name: "erp",
    migrations: MIGRATIONS,
    assets: ASSETS,
    admin_nav: pages::ADMIN_NAV,
    scopes: &[contract::INTAKE_SCOPE],
    settings: Some(SettingsSection {
        name: "erp",
        env: config::ENV,
        check: |settings| config::parse(settings).map(|_| ()),
    }),
    demo: Some(|platform| Box::pin(demo::start(platform))),
    build: |assembly| {
        let platform = assembly.platform.clone();
        let settings = config::parse(&platform.settings)?;
        let erp = Erp::new(platform, &settings);
        assembly.routes(
            Access::Credential,
            Answer::Json,
            contract::main_mount(erp.clone()),
        );
        assembly.routes(Access::Session, Answer::Page, pages::router(erp.clone()));
        assembly.routes(Access::Credential, Answer::Json, api::router(erp.clone()));
        let worker = erp.worker.clone();
        assembly
            .jobs()
            .register(move |job: orders::LineJob, attempt| {
                let worker = worker.clone();
                async move { worker.handle(job, attempt).await }
            });
        // Tests and other areas take the one `Erp` whose worker holds the browser sessions.
        assembly.provide(erp.clone());
        let listen_host = settings.listen_host;
        assembly.task("erp", move |shutdown| {
            listeners::run(erp, listen_host, shutdown)
        });
        Ok(())
    },
    openapi: Some(<api::ErpApi as utoipa::OpenApi>::openapi),
    ..Area::NONE
};
