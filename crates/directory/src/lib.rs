//! The unit-routes directory (replaces unit-routes-database): which Telegram chats get which report for which
//! unit. It serves the original's HTTP contract (era C'' semantics, `specs/unit_routes.md` §3) both unprefixed and
//! under `/api/`, over the same `units` table the kitchen uses, and fixes the original's holes: service clients
//! need a token unless they come from an allow-listed network, access codes are hashed and rate-limited, every
//! write is audited, and every error is a JSON envelope.

mod access;
mod api;
mod error;
pub mod import;
mod input;
mod manage;
mod pages;
pub mod seed;
mod storage;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use tillwire_platform::{Migration, Platform};

pub use access::{AccessConfig, CodeLimiter, Tokens};
pub use error::DirectoryError;
pub use storage::ChatType;

pub const MIGRATIONS: &[Migration] = &[Migration {
    area: "directory",
    version: 1,
    sqlite: include_str!("../migrations/sqlite/0001_directory.sql"),
    postgres: include_str!("../migrations/postgres/0001_directory.sql"),
}];

/// The directory's state for handlers. Cheap to clone.
#[derive(Clone)]
pub struct Directory {
    pub platform: Platform,
    access: Arc<AccessConfig>,
    limiter: CodeLimiter,
}

impl Directory {
    /// Reads the allow-list from `TILLWIRE_DIRECTORY_ALLOW` or `[directory] allow` in `tillwire.toml`.
    pub fn new(platform: Platform) -> Result<Self, DirectoryError> {
        let access = AccessConfig::from_settings(&platform.settings.directory)?;
        Ok(Self::with_access(platform, access))
    }

    pub fn with_access(platform: Platform, access: AccessConfig) -> Self {
        Directory {
            platform,
            access: Arc::new(access),
            limiter: CodeLimiter::default(),
        }
    }
}

impl FromRef<Directory> for Platform {
    fn from_ref(directory: &Directory) -> Platform {
        directory.platform.clone()
    }
}

/// The compatible API (unprefixed and under `/api/`) and the admin pages.
pub fn router(directory: Directory) -> Router {
    Router::new()
        .merge(api::router(directory.clone()))
        .merge(pages::router())
        .with_state(directory)
}
