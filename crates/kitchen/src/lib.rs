//! The production queue (replaces ELQ): the catalogue of production wares, receipt import with atomic
//! per-unit, per-day numbering, orders moving through data-driven statuses, the operator and kitchen screens,
//! and the live customer board.

mod admin;
pub mod api;
pub mod external;
pub mod import;
mod key_cache;
pub mod model;
mod screens;
pub mod seed;
pub mod settings;
pub mod stats;
mod storage;
pub mod tickets;
mod writer;

use axum::Router;
use axum::extract::FromRef;
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use tillwire_platform::config::ConfigError;
use tillwire_platform::jobs::{Attempt, BackgroundJob, JobFailure};
use tillwire_platform::web::NavLink;
use tillwire_platform::{Access, Answer, Area, HttpError, Migration, Platform, Store, Text};

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
    Migration {
        area: "kitchen",
        version: 3,
        sqlite: include_str!("../migrations/sqlite/0003_cancelling_statuses.sql"),
        postgres: include_str!("../migrations/postgres/0003_cancelling_statuses.sql"),
    },
    Migration {
        area: "kitchen",
        version: 4,
        sqlite: include_str!("../migrations/sqlite/0004_status_alerts.sql"),
        postgres: include_str!("../migrations/postgres/0004_status_alerts.sql"),
    },
    Migration {
        area: "kitchen",
        version: 5,
        sqlite: include_str!("../migrations/sqlite/0005_board_colours.sql"),
        postgres: include_str!("../migrations/postgres/0005_board_colours.sql"),
    },
    Migration {
        area: "kitchen",
        version: 6,
        sqlite: include_str!("../migrations/sqlite/0006_crossed_lines.sql"),
        postgres: include_str!("../migrations/postgres/0006_crossed_lines.sql"),
    },
    Migration {
        area: "kitchen",
        version: 7,
        sqlite: include_str!("../migrations/sqlite/0007_external_orders.sql"),
        postgres: include_str!("../migrations/postgres/0007_external_orders.sql"),
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
        (self.local_time(at) - chrono::TimeDelta::hours(i64::from(self.settings.day_rollover_hour)))
            .date()
    }

    /// The wall-clock time of an instant in the configured zone (the machine's when none is set).
    pub fn local_time(&self, at: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
        match self.platform.settings.timezone {
            Some(zone) => at.with_timezone(&zone).naive_local(),
            None => at.with_timezone(&chrono::Local).naive_local(),
        }
    }

    /// When business day `day` starts and when the next one does (Unix ms): the rollover hour on the local wall
    /// clock, the earlier instant when a DST change makes it ambiguous.
    pub fn business_day_bounds(&self, day: chrono::NaiveDate) -> (i64, i64) {
        let start = |day: chrono::NaiveDate| {
            let local = day.and_time(chrono::NaiveTime::MIN)
                + chrono::TimeDelta::hours(i64::from(self.settings.day_rollover_hour));
            let instant = match self.platform.settings.timezone {
                Some(zone) => local
                    .and_local_timezone(zone)
                    .earliest()
                    .map(|at| at.to_utc()),
                None => local
                    .and_local_timezone(chrono::Local)
                    .earliest()
                    .map(|at| at.to_utc()),
            };
            instant
                .unwrap_or_else(|| local.and_utc())
                .timestamp_millis()
        };
        (start(day), start(day + chrono::TimeDelta::days(1)))
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

/// The kitchen's routes by how they authenticate and answer: the ELQ-compatible import (ELQ's reply) and the JSON
/// API take a device key; the screens, the board and the admin pages a session, and the screens' scripts call
/// JSON endpoints.
pub fn routes(kitchen: Kitchen) -> [(Access, Answer, Router); 4] {
    [
        (
            Access::Credential,
            Answer::Shaped(import::legacy_error),
            import::legacy_router().with_state(kitchen.clone()),
        ),
        (
            Access::Credential,
            Answer::Json,
            api::router().with_state(kitchen.clone()),
        ),
        (
            Access::Session,
            Answer::Page,
            Router::new()
                .merge(screens::pages())
                .merge(admin::router())
                .with_state(kitchen.clone()),
        ),
        (
            Access::Session,
            Answer::Json,
            screens::calls().with_state(kitchen),
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
        NavLink::to("/admin/stats/", "Время приготовления", "Prep times"),
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
        for (access, answer, routes) in routes(kitchen.clone()) {
            assembly.routes(access, answer, routes);
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
    /// Input that does not fit: the field it concerns (when one does), and why.
    #[error("{message}")]
    Invalid {
        field: Option<Cow<'static, str>>,
        message: Text,
    },
    #[error("{0} not found")]
    NotFound(Thing),
    #[error("{0}")]
    Conflict(Text),
    #[error("receipt already imported")]
    AlreadyImported,
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
    /// Bad input in one field.
    pub fn field(field: impl Into<Cow<'static, str>>, message: Text) -> Self {
        KitchenError::Invalid {
            field: Some(field.into()),
            message,
        }
    }

    /// Bad input as a whole.
    pub fn invalid(message: Text) -> Self {
        KitchenError::Invalid {
            field: None,
            message,
        }
    }
}

/// What the kitchen looked for and did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thing {
    Order,
    Station,
    Ware,
    Status,
    Flow,
    CashRegister,
    Printer,
    Unit,
    Logo,
    Line,
}

impl Thing {
    fn missing(self) -> Text {
        let (ru, en) = match self {
            Thing::Order => ("Заказ не найден.", "Order not found."),
            Thing::Station => ("Станция не найдена.", "Station not found."),
            Thing::Ware => ("Товар не найден.", "Ware not found."),
            Thing::Status => ("Статус не найден.", "Status not found."),
            Thing::Flow => ("Смена статуса не найдена.", "Flow not found."),
            Thing::CashRegister => ("Касса не найдена.", "Cash register not found."),
            Thing::Printer => ("Принтер не найден.", "Printer not found."),
            Thing::Unit => ("Подразделение не найдено.", "Unit not found."),
            Thing::Logo => ("Логотип не задан.", "No logo is set."),
            Thing::Line => ("Строка заказа не найдена.", "Order line not found."),
        };
        Text::new(ru, en)
    }
}

impl std::fmt::Display for Thing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Thing::Order => "order",
            Thing::Station => "station",
            Thing::Ware => "ware",
            Thing::Status => "status",
            Thing::Flow => "flow",
            Thing::CashRegister => "cash register",
            Thing::Printer => "printer",
            Thing::Unit => "unit",
            Thing::Logo => "board logo",
            Thing::Line => "order line",
        };
        f.write_str(name)
    }
}

impl From<KitchenError> for HttpError {
    fn from(error: KitchenError) -> Self {
        match error {
            KitchenError::Invalid {
                field: Some(field),
                message,
            } => HttpError::field(field, message),
            KitchenError::Invalid {
                field: None,
                message,
            } => HttpError::invalid(message),
            KitchenError::NotFound(thing) => HttpError::not_found(thing.missing()),
            KitchenError::Conflict(message) => HttpError::conflict(message),
            KitchenError::TransitionNotAllowed { from, to } => HttpError::conflict(Text::new(
                format!("Переход из статуса {from} в статус {to} не разрешён."),
                format!("Moving from status {from} to {to} is not allowed."),
            ))
            .with_code("transition_not_allowed"),
            KitchenError::AlreadyImported => {
                HttpError::conflict(Text::new("Чек уже загружен.", "Receipt already imported."))
                    .with_code("receipt_already_imported")
            }
            KitchenError::Unauthorized => HttpError::login_required(),
            KitchenError::Forbidden => HttpError::forbidden(),
            KitchenError::Database(error) => HttpError::internal(error),
            KitchenError::Units(error) => error.into(),
        }
    }
}

impl IntoResponse for KitchenError {
    fn into_response(self) -> Response {
        HttpError::from(self).into_response()
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
