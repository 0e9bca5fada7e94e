//! tillwire's platform: what every area (kitchen, printing, intake, directory, …) builds on.

pub mod admin;
pub mod area;
pub mod auth;
pub mod config;
pub mod error;
pub mod events;
pub mod jobs;
pub mod leases;
pub mod outbox;
pub mod screens;
pub mod secretbox;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod web;

use std::sync::Arc;

use rand::Rng;
use sha2::{Digest, Sha256};

pub use area::{Access, Area, Assembly};
pub use auth::{CurrentUser, Role};
pub use config::Settings;
pub use error::{Answer, HttpError, Text};
pub use events::{Event, EventBus};
pub use jobs::JobQueue;
pub use leases::Leases;
pub use outbox::Outbox;
pub use store::{Backend, Migration, Store};

/// The schema the platform owns (jobs, users, sessions).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        area: "platform",
        version: 1,
        sqlite: include_str!("../migrations/sqlite/0001_platform.sql"),
        postgres: include_str!("../migrations/postgres/0001_platform.sql"),
    },
    Migration {
        area: "platform",
        version: 2,
        sqlite: include_str!("../migrations/sqlite/0002_active_jobs.sql"),
        postgres: include_str!("../migrations/postgres/0002_active_jobs.sql"),
    },
    Migration {
        area: "platform",
        version: 3,
        sqlite: include_str!("../migrations/sqlite/0003_outbox.sql"),
        postgres: include_str!("../migrations/postgres/0003_outbox.sql"),
    },
    Migration {
        area: "platform",
        version: 4,
        sqlite: include_str!("../migrations/sqlite/0004_open_jobs.sql"),
        postgres: include_str!("../migrations/postgres/0004_open_jobs.sql"),
    },
    Migration {
        area: "platform",
        version: 5,
        sqlite: include_str!("../migrations/sqlite/0005_service_tokens.sql"),
        postgres: include_str!("../migrations/postgres/0005_service_tokens.sql"),
    },
    Migration {
        area: "platform",
        version: 6,
        sqlite: include_str!("../migrations/sqlite/0006_sliding_sessions.sql"),
        postgres: include_str!("../migrations/postgres/0006_sliding_sessions.sql"),
    },
    Migration {
        area: "platform",
        version: 7,
        sqlite: include_str!("../migrations/sqlite/0007_screens.sql"),
        postgres: include_str!("../migrations/postgres/0007_screens.sql"),
    },
    Migration {
        area: "platform",
        version: 8,
        sqlite: include_str!("../migrations/sqlite/0008_leases.sql"),
        postgres: include_str!("../migrations/postgres/0008_leases.sql"),
    },
    Migration {
        area: "platform",
        version: 9,
        sqlite: include_str!("../migrations/sqlite/0009_events_by_unit.sql"),
        postgres: include_str!("../migrations/postgres/0009_events_by_unit.sql"),
    },
];

/// The platform's own area: sign-in, language, health, metrics, users and jobs pages, the first admin.
pub const AREA: Area = Area {
    name: "platform",
    migrations: MIGRATIONS,
    assets: web::SHELL_ASSETS,
    admin_nav: web::PLATFORM_ADMIN_NAV,
    seed: Some(|platform| Box::pin(admin::ensure_admin(platform))),
    build: |assembly| {
        let platform = assembly.platform.clone();
        assembly.routes(
            Access::Session,
            Answer::Page,
            web::shell_router(platform.clone()),
        );
        assembly.routes(
            Access::Session,
            Answer::Page,
            admin::router(platform.clone()),
        );
        assembly.routes(Access::Public, Answer::Json, web::report_router());
        assembly.routes(Access::Public, Answer::Page, screens::router(platform));
        Ok(())
    },
    ..Area::NONE
};

/// Shared services handed to every area. Cheap to clone.
#[derive(Clone)]
pub struct Platform {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub events: EventBus,
    pub jobs: JobQueue,
    /// This instance's leases on outside work (one owner per register or device across instances).
    pub leases: Leases,
    pub outbox: Outbox,
    pub login_limiter: auth::LoginLimiter,
    /// The assembled areas' token scopes, known once [`area::assemble`] ran.
    scopes: Arc<std::sync::OnceLock<Vec<&'static str>>>,
    /// Set when the process begins to stop: live streams end, background work winds down.
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Platform {
    pub fn new(store: Store, settings: Settings) -> Self {
        Platform {
            events: EventBus::new(store.clone()),
            jobs: JobQueue::new(store.clone()),
            outbox: Outbox::new(store.clone()),
            leases: Leases::new(store.clone()),
            store,
            settings: Arc::new(settings),
            login_limiter: auth::LoginLimiter::default(),
            scopes: Arc::default(),
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Resolves once the process begins to stop (see [`Platform::begin_shutdown`]).
    pub fn stopping(&self) -> area::Shutdown {
        area::Shutdown::from(self.stopping.subscribe())
    }

    /// Tells live streams, background tasks and the job runner to wind down.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// The token scopes of the areas this process serves: their names and the extra scopes they define (empty
    /// before they are assembled).
    pub fn token_scopes(&self) -> Vec<&'static str> {
        self.scopes.get().cloned().unwrap_or_default()
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A random URL-safe token of `len` characters from a CSPRNG.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
