//! Units: every register, station, ware, printer and order belongs to one. A single-shop install has one
//! default unit and never mentions it. Each unit has its own device API keys.

mod keys;
mod pages;
mod storage;

pub use keys::{ApiKeyRow, ApiKeys, IssuedKey};
pub use pages::router;
pub use storage::{Unit, UnitName, Units};

use tillwire_platform::Migration;

pub const MIGRATIONS: &[Migration] = &[Migration {
    area: "units",
    version: 1,
    sqlite: include_str!("../migrations/sqlite/0001_units.sql"),
    postgres: include_str!("../migrations/postgres/0001_units.sql"),
}];

/// A unit's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct UnitId(pub i64);

#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("{0}")]
    Invalid(String),
    #[error("a unit with this name already exists")]
    Duplicate,
    #[error("unit not found")]
    NotFound,
    #[error("the unit still has orders, registers or other records; move or delete them first")]
    InUse,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl axum::response::IntoResponse for UnitError {
    fn into_response(self) -> axum::response::Response {
        use axum::http::StatusCode;
        let status = match &self {
            UnitError::Invalid(_) => StatusCode::BAD_REQUEST,
            UnitError::Duplicate | UnitError::InUse => StatusCode::CONFLICT,
            UnitError::NotFound => StatusCode::NOT_FOUND,
            UnitError::Database(error) => {
                tracing::error!(%error, "units storage failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = if status.is_server_error() {
            "internal error".to_owned()
        } else {
            self.to_string()
        };
        (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
    }
}
