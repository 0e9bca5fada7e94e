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
mod storage;
pub mod tickets;
mod writer;

use axum::Router;
use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tillwire_platform::{Migration, Platform, Store};

pub use screens::ASSETS;
pub use storage::{Actor, NewLine, NewOrder, PurgeReport, ReceiptKey, Registered, StatusChange};

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
    counters: Option<storage::PgCounters>,
    /// Group commit for imports; `None` inside the writer task itself.
    writer: Option<writer::OrderWriter>,
    key_cache: key_cache::KeyCache,
}

impl Kitchen {
    pub fn new(platform: Platform) -> Self {
        let counters = match &platform.store {
            Store::Postgres(pool) => Some(storage::PgCounters::new(pool)),
            Store::Sqlite { .. } => None,
        };
        let mut kitchen = Kitchen {
            platform,
            counters,
            writer: None,
            key_cache: Default::default(),
        };
        kitchen.writer = Some(writer::OrderWriter::start(kitchen.clone()));
        kitchen
    }
}

impl FromRef<Kitchen> for Platform {
    fn from_ref(kitchen: &Kitchen) -> Platform {
        kitchen.platform.clone()
    }
}

/// Every route of the kitchen: the ELQ-compatible import, the JSON API, screens, board and admin pages.
pub fn router(kitchen: Kitchen) -> Router {
    Router::new()
        .merge(import::legacy_router())
        .merge(api::router())
        .merge(screens::router())
        .merge(admin::router())
        .with_state(kitchen)
}

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

/// The job queue the retention purge runs on.
pub const RETENTION_QUEUE: &str = "kitchen.retention";

impl Kitchen {
    /// Purges finished orders (and settled jobs) older than the retention period.
    pub async fn run_retention(&self) -> Result<PurgeReport, KitchenError> {
        let days = i64::from(self.platform.settings.kitchen.retention_days);
        let cutoff = self.platform.settings.today() - chrono::TimeDelta::days(days);
        let report = self.purge_finished(cutoff).await?;
        self.platform
            .jobs
            .purge_done(tillwire_platform::now_ms() - days * 86_400_000)
            .await?;
        Ok(report)
    }
}
