//! The production queue (replaces ELQ): the catalogue of production wares, receipt import with atomic
//! per-unit, per-day numbering, orders moving through data-driven statuses, the operator and kitchen screens,
//! and the live customer board.

mod admin;
pub mod api;
pub mod import;
mod key_cache;
pub mod model;
mod screens;
pub mod seed;
pub mod settings;
mod storage;
pub mod tickets;
mod writer;

use axum::Router;
use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use tillwire_platform::config::ConfigError;
use tillwire_platform::jobs::{Attempt, BackgroundJob, JobFailure};
use tillwire_platform::web::NavLink;
use tillwire_platform::{Access, Area, Migration, Platform, Store};

pub use screens::ASSETS;
pub use settings::KitchenSettings;
pub use storage::{Actor, NewLine, NewOrder, PurgeReport, ReceiptKey, Registered, StatusChange};
use tillwire_platform::area::SettingsSection;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        area: "kitchen",
        version: 1,
        sqlite: include_str!("../migrations/sqlite/0001_kitchen.sql"),
        postgres: include_str!("../migrations/postgres/0001_kitchen.sql"),
    },
    Migration {
        area: "kitchen",
        version: 2,
        sqlite: include_str!("../migrations/sqlite/0002_print_failed.sql"),
        postgres: include_str!("../migrations/postgres/0002_print_failed.sql"),
    },
];

/// The event topic screens follow.
pub const ORDER_CHANGED: &str = "order.changed";

/// The kitchen area: its state for handlers and its operations for other areas.
#[derive(Clone)]
pub struct Kitchen {
    pub platform: Platform,
    pub settings: Arc<KitchenSettings>,
    /// Attempts each ticket job gets; the printing area sets it from `[print] max_attempts`.
    ticket_attempts: Arc<AtomicI64>,
    counters: Option<storage::PgCounters>,
    /// Group commit for imports; `None` inside the writer task itself.
    writer: Option<writer::OrderWriter>,
    key_cache: key_cache::KeyCache,
}

impl Kitchen {
    /// The kitchen over `platform`, with its `[kitchen]` settings.
    pub fn new(platform: Platform) -> Result<Self, ConfigError> {
        let settings = KitchenSettings::load(&platform.settings)?;
        let counters = match &platform.store {
            Store::Postgres(pool) => Some(storage::PgCounters::new(pool)),
            Store::Sqlite { .. } => None,
        };
        let mut kitchen = Kitchen {
            platform,
            settings: Arc::new(settings),
            ticket_attempts: Arc::new(AtomicI64::new(tickets::TicketJob::MAX_ATTEMPTS)),
            counters,
            writer: None,
            key_cache: Default::default(),
        };
        kitchen.writer = Some(writer::OrderWriter::start(kitchen.clone()));
        Ok(kitchen)
    }

    /// How many attempts each ticket job enqueued from now on gets.
    pub fn set_ticket_attempts(&self, attempts: i64) {
        self.ticket_attempts
            .store(attempts.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    fn ticket_attempts(&self) -> i64 {
        self.ticket_attempts
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The business day an instant belongs to: the local date (in the configured zone) after subtracting the
    /// rollover hour. The hour is subtracted on the local wall clock, so a DST change does not move the rollover.
    pub fn business_day(&self, at: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
        let local = match self.platform.settings.timezone {
            Some(zone) => at.with_timezone(&zone).naive_local(),
            None => at.with_timezone(&chrono::Local).naive_local(),
        };
        (local - chrono::TimeDelta::hours(i64::from(self.settings.day_rollover_hour))).date()
    }

    pub fn today(&self) -> chrono::NaiveDate {
        self.business_day(chrono::Utc::now())
    }
}

impl FromRef<Kitchen> for Platform {
    fn from_ref(kitchen: &Kitchen) -> Platform {
        kitchen.platform.clone()
    }
}

/// The kitchen's routes by how they authenticate: the ELQ-compatible import and the JSON API take a device key;
/// the screens, the board and the admin pages a session.
pub fn routes(kitchen: Kitchen) -> [(Access, Router); 2] {
    [
        (
            Access::Credential,
            Router::new()
                .merge(import::legacy_router())
                .merge(api::router())
                .with_state(kitchen.clone()),
        ),
        (
            Access::Session,
            Router::new()
                .merge(screens::router())
                .merge(admin::router())
                .with_state(kitchen),
        ),
    ]
}

/// The production queue (replaces ELQ).
pub const AREA: Area = Area {
    name: "kitchen",
    migrations: MIGRATIONS,
    assets: ASSETS,
    main_nav: &[
        NavLink::to("/", "Заказы", "Orders"),
        NavLink::to("/kitchen/", "Кухня", "Kitchen"),
        NavLink {
            href: "/dashboard/",
            ru: "Очередь",
            en: "Board",
            new_tab: true,
        },
    ],
    admin_nav: &[
        NavLink::to("/admin/stations/", "Станции", "Stations"),
        NavLink::to("/admin/wares/", "Товары", "Wares"),
        NavLink::to("/admin/statuses/", "Статусы", "Statuses"),
        NavLink::to("/admin/flows/", "Смены статусов", "Flows"),
        NavLink::to("/admin/registers/", "Кассы", "Cash registers"),
        NavLink::to("/admin/printers/", "Принтеры", "Printers"),
        NavLink::to("/admin/orders/", "Заказы", "Orders"),
    ],
    seed: Some(|platform| {
        Box::pin(async move {
            if let Some(unit) = seed::init(platform).await? {
                tracing::info!(
                    unit = unit.0,
                    "created the default unit with its stations, printer and registers 1–5"
                );
            }
            Ok(())
        })
    }),
    demo: Some(|platform| {
        Box::pin(async move {
            let added = seed::load_demo(platform).await?;
            println!("Demo catalogue: {added} wares added.");
            Ok(())
        })
    }),
    settings: Some(SettingsSection {
        name: "kitchen",
        env: settings::ENV,
        check: |settings| KitchenSettings::load(settings).map(|_| ()),
    }),
    build: |assembly| {
        let kitchen = Kitchen::new(assembly.platform.clone())?;
        for (access, routes) in routes(kitchen.clone()) {
            assembly.routes(access, routes);
        }
        let retention = kitchen.clone();
        assembly
            .jobs()
            .register(move |_: RetentionJob, _: Attempt| {
                let kitchen = retention.clone();
                async move {
                    let report = kitchen
                        .run_retention()
                        .await
                        .map_err(|e| JobFailure::Retry(e.to_string()))?;
                    tracing::info!(
                        orders = report.orders,
                        receipts = report.receipts,
                        "retention purge done"
                    );
                    Ok(())
                }
            });
        let jobs = kitchen.platform.jobs.clone();
        assembly.task("retention schedule", move |mut shutdown| async move {
            let mut daily = tokio::time::interval(std::time::Duration::from_secs(24 * 3600));
            loop {
                tokio::select! {
                    _ = shutdown.wait() => return Ok(()),
                    _ = daily.tick() => {}
                }
                if let Err(error) = jobs.enqueue(&RetentionJob::default().to_job()).await {
                    tracing::warn!(%error, "could not schedule the retention purge");
                }
            }
        });
        assembly.provide(kitchen);
        Ok(())
    },
    openapi: Some(<api::KitchenApi as utoipa::OpenApi>::openapi),
    ..Area::NONE
};

#[derive(Debug, thiserror::Error)]
pub enum KitchenError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("moving from status {from} to {to} is not allowed")]
    TransitionNotAllowed { from: i64, to: i64 },
    #[error("login required")]
    Unauthorized,
    #[error("not allowed")]
    Forbidden,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Units(#[from] tillwire_units::UnitError),
}

impl KitchenError {
    pub fn status(&self) -> StatusCode {
        match self {
            KitchenError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            KitchenError::NotFound(_) => StatusCode::NOT_FOUND,
            KitchenError::Conflict(_) | KitchenError::TransitionNotAllowed { .. } => {
                StatusCode::CONFLICT
            }
            KitchenError::Unauthorized => StatusCode::UNAUTHORIZED,
            KitchenError::Forbidden => StatusCode::FORBIDDEN,
            KitchenError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
            KitchenError::Units(error) => error.status(),
        }
    }
}

impl IntoResponse for KitchenError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "kitchen request failed");
            "internal error".to_owned()
        } else {
            self.to_string()
        };
        (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
    }
}

impl From<tillwire_platform::auth::AuthError> for KitchenError {
    fn from(error: tillwire_platform::auth::AuthError) -> Self {
        use tillwire_platform::auth::AuthError;
        match error {
            AuthError::LoginRequired => KitchenError::Unauthorized,
            AuthError::Forbidden | AuthError::Csrf => KitchenError::Forbidden,
            AuthError::Database(e) => KitchenError::Database(e),
            other => KitchenError::Invalid(other.to_string()),
        }
    }
}

/// The daily purge of finished orders and settled jobs (stored as `{}`), enqueued once a day from start.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct RetentionJob {}

impl BackgroundJob for RetentionJob {
    const QUEUE: &'static str = "kitchen.retention";
    const MAX_ATTEMPTS: i64 = 5;

    fn key(&self) -> String {
        Self::QUEUE.to_owned()
    }
}

impl Kitchen {
    /// Purges finished orders (and settled jobs) older than the retention period.
    pub async fn run_retention(&self) -> Result<PurgeReport, KitchenError> {
        let days = i64::from(self.settings.retention_days);
        let cutoff = self.today() - chrono::TimeDelta::days(days);
        let report = self.purge_finished(cutoff).await?;
        self.platform
            .jobs
            .purge_done(tillwire_platform::now_ms() - days * 86_400_000)
            .await?;
        Ok(report)
    }
}
