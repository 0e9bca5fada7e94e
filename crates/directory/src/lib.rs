//! The unit-routes directory (replaces unit-routes-database): which Telegram chats get which report for which
//! unit. It serves the original's HTTP contract (era C'' semantics, `specs/unit_routes.md` §3) both unprefixed and
//! under `/api/`, over the same `units` table the kitchen uses, and fixes the original's holes: service clients
//! need a token unless they come from an allow-listed network, access codes are hashed and rate-limited, every
//! write is audited, and every error is a JSON envelope.

mod access;
mod api;
mod cache;
mod error;
pub mod import;
mod input;
mod manage;
mod pages;
pub mod routing;
pub mod seed;
mod storage;
pub mod subscriptions;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use tillwire_platform::area::SettingsSection;
use tillwire_platform::web::{Lang, NavLink};
use tillwire_platform::{Access, Answer, Area, HttpError, Migration, Platform};

pub use access::{AccessConfig, CodeLimiter};
pub use error::DirectoryError;
pub use storage::ChatType;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        area: "directory",
        version: 1,
        sqlite: include_str!("../migrations/sqlite/0001_directory.sql"),
        postgres: include_str!("../migrations/postgres/0001_directory.sql"),
    },
    Migration {
        area: "directory",
        version: 2,
        sqlite: include_str!("../migrations/sqlite/0002_tokens_are_platform_tokens.sql"),
        postgres: include_str!("../migrations/postgres/0002_tokens_are_platform_tokens.sql"),
    },
    Migration {
        area: "directory",
        version: 3,
        sqlite: include_str!("../migrations/sqlite/0003_delivery.sql"),
        postgres: include_str!("../migrations/postgres/0003_delivery.sql"),
    },
];

/// The directory's state for handlers. Cheap to clone.
#[derive(Clone)]
pub struct Directory {
    pub platform: Platform,
    access: Arc<AccessConfig>,
    limiter: CodeLimiter,
    /// `/units/` by (limit, offset).
    unit_pages: cache::PageCache<(i64, i64)>,
    /// The fan-out by (unit, report type, limit, offset).
    fan_out_pages: cache::PageCache<(i64, i64, i64, i64)>,
}

impl Directory {
    /// Reads the allow-list from `TILLWIRE_DIRECTORY_ALLOW` or `[directory] allow` in `tillwire.toml`.
    pub fn new(platform: Platform) -> Result<Self, tillwire_platform::config::ConfigError> {
        let access = AccessConfig::from_settings(&platform.settings)?;
        Ok(Self::with_access(platform, access))
    }

    pub fn with_access(platform: Platform, access: AccessConfig) -> Self {
        Directory {
            platform,
            access: Arc::new(access),
            limiter: CodeLimiter::default(),
            // Pages of units are few; the fan-out has one entry per unit and report type asked about, each a
            // few hundred bytes.
            unit_pages: cache::PageCache::with_capacity(1024),
            fan_out_pages: cache::PageCache::with_capacity(65_536),
        }
    }
}

impl FromRef<Directory> for Platform {
    fn from_ref(directory: &Directory) -> Platform {
        directory.platform.clone()
    }
}

/// The compatible API (unprefixed and under `/api/`; a token or an allow-listed address; errors in the original's
/// envelope) and the admin pages (a session; errors as pages).
pub fn routes(directory: Directory) -> [(Access, Answer, Router); 2] {
    let finish = |routes: Router<Directory>| {
        routes
            .layer(middleware::from_fn(invalidate_after_writes))
            .with_state(directory.clone())
    };
    [
        (
            Access::Credential,
            Answer::Shaped(error::envelope),
            finish(api::router(directory.clone())),
        ),
        (Access::Session, Answer::Page, finish(pages::router())),
    ]
}

/// The unit-routes directory (replaces unit-routes-database).
pub const AREA: Area = Area {
    name: "directory",
    migrations: MIGRATIONS,
    admin_nav: &[NavLink::to(
        "/admin/directory/",
        "Справочник маршрутов",
        "Routes directory",
    )],
    settings: Some(SettingsSection {
        name: "directory",
        env: access::ENV,
        check: |settings| AccessConfig::from_settings(settings).map(|_| ()),
    }),
    seed: Some(|platform| {
        Box::pin(async move {
            seed::init(platform).await?;
            Ok(())
        })
    }),
    build: |assembly| {
        for (access, answer, routes) in routes(Directory::new(assembly.platform.clone())?) {
            assembly.routes(access, answer, routes);
        }
        Ok(())
    },
    unmatched: Some(|path| owns_unmatched(path).then(not_found)),
    ..Area::NONE
};

/// Whether an unmatched path belongs to the directory's API (its sections, unprefixed or under `/api/`, where
/// the kitchen's `/api/v1/` is not its): its clients get the JSON envelope there instead of an empty 404.
pub fn owns_unmatched(path: &str) -> bool {
    const SECTIONS: [&str; 5] = [
        "/units",
        "/telegram-chats",
        "/report-types",
        "/report-routes",
        "/roles",
    ];
    let in_section = |rest: &str| {
        SECTIONS.iter().any(|section| {
            rest.strip_prefix(section)
                .is_some_and(|tail| tail.is_empty() || tail.starts_with('/'))
        })
    };
    match path.strip_prefix("/api") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            !(rest == "/v1" || rest.starts_with("/v1/"))
        }
        _ => in_section(path),
    }
}

/// The directory's 404 envelope, for paths [`owns_unmatched`] claims (outside any route group, so shaped here).
pub fn not_found() -> Response {
    let error = HttpError::from(DirectoryError::NotFound(error::messages::UNKNOWN_PATH));
    error::envelope(error.reply(), Lang::default())
}

/// Any request that may write (API or admin form) invalidates cached reads once it has been answered, that is
/// after its transaction committed.
async fn invalidate_after_writes(request: Request, next: Next) -> Response {
    let writes = !request.method().is_safe();
    let response = next.run(request).await;
    if writes {
        cache::changed();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::{not_found, owns_unmatched};

    #[tokio::test]
    async fn unmatched_paths_answer_the_envelope() {
        let response = not_found();
        assert_eq!(response.status(), axum::http::StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(
            std::str::from_utf8(&body).expect("UTF-8"),
            r#"{"message":"Страница не найдена.","extra":{}}"#
        );
    }

    #[test]
    fn claims_its_sections_under_both_mounts_only() {
        for path in [
            "/units",
            "/units/7",
            "/roles/",
            "/telegram-chats/111",
            "/api/",
            "/api/anything/",
            "/api/units",
        ] {
            assert!(owns_unmatched(path), "{path}");
        }
        for path in ["/unitsx", "/", "/admin/nothing", "/api/v1/nothing", "/apix"] {
            assert!(!owns_unmatched(path), "{path}");
        }
    }
}
