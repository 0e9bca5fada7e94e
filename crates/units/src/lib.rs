//! Units: every register, station, ware, printer and order belongs to one. A single-shop install has one
//! default unit and never mentions it. Each unit has its own device API keys.

mod keys;
mod pages;
pub mod picker;
mod storage;

pub use keys::ApiKeys;
pub use pages::router;
pub use storage::{Unit, UnitName, Units};

use tillwire_platform::tokens::TokenError;
use tillwire_platform::web::NavLink;
use tillwire_platform::{Access, Answer, Area, HttpError, Migration, Platform, Text};

/// Units and their device keys: admin pages, and the demo's device key.
pub const AREA: Area = Area {
    name: "units",
    migrations: MIGRATIONS,
    admin_nav: &[
        NavLink::to("/admin/units/", "Подразделения", "Units"),
        NavLink::to("/admin/api-keys/", "API-ключи", "API keys"),
        NavLink::to("/admin/screens/", "Экраны", "Screens"),
    ],
    demo: Some(|platform| Box::pin(demo_key(platform))),
    build: |assembly| {
        assembly.routes(
            Access::Session,
            Answer::Page,
            router(assembly.platform.clone()),
        );
        Ok(())
    },
    ..Area::NONE
};

/// With demo data, a newcomer needs a device key to post a receipt: one is issued for the default unit and
/// printed once, unless ELQ's `API_KEY` is set or the unit already has a key.
async fn demo_key(platform: &Platform) -> anyhow::Result<()> {
    if platform.settings.api_key.is_some() {
        return Ok(());
    }
    let Some(unit) = Units(&platform.store).default_unit().await? else {
        return Ok(());
    };
    let keys = ApiKeys(&platform.store);
    if keys
        .list()
        .await?
        .iter()
        .any(|k| k.unit_id == Some(unit.id) && !k.revoked())
    {
        return Ok(());
    }
    let issued = keys.issue(unit.unit_id(), "demo", "demo").await?;
    println!(
        "Demo device key for \"{}\": {}  (shown once; send it in the `key` header)",
        unit.name, issued.plain
    );
    Ok(())
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        area: "units",
        version: 1,
        sqlite: include_str!("../migrations/sqlite/0001_units.sql"),
        postgres: include_str!("../migrations/postgres/0001_units.sql"),
    },
    Migration {
        area: "units",
        version: 2,
        sqlite: include_str!("../migrations/sqlite/0002_device_keys_are_tokens.sql"),
        postgres: include_str!("../migrations/postgres/0002_device_keys_are_tokens.sql"),
    },
];

static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bumped by every write to units or keys in this process, so callers that cache "which unit does this key
/// mean" can tell their answer may be stale.
pub fn generation() -> u64 {
    GENERATION.load(std::sync::atomic::Ordering::Acquire)
}

fn changed() {
    GENERATION.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
}

/// A unit's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct UnitId(pub i64);

#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    /// A field that does not fit (the field, and why).
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: Text },
    #[error("a unit with this name already exists")]
    Duplicate,
    #[error("unit not found")]
    NotFound,
    #[error("the unit still has orders, registers or other records; move or delete them first")]
    InUse,
    #[error(transparent)]
    Tokens(#[from] TokenError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<UnitError> for HttpError {
    fn from(error: UnitError) -> Self {
        match error {
            UnitError::Invalid { field, message } => HttpError::field(field, message),
            UnitError::Duplicate => HttpError::conflict(Text::new(
                "Подразделение с таким названием уже есть.",
                "A unit with this name already exists.",
            ))
            .with_code("unit_exists"),
            UnitError::NotFound => HttpError::not_found(Text::new(
                "Подразделение не найдено.",
                "Unit not found.",
            )),
            UnitError::InUse => HttpError::conflict(Text::new(
                "У подразделения ещё есть заказы, кассы или другие записи: сначала перенесите или удалите их.",
                "The unit still has orders, registers or other records; move or delete them first.",
            ))
            .with_code("unit_in_use"),
            UnitError::Tokens(error) => error.into(),
            UnitError::Database(error) => HttpError::internal(error),
        }
    }
}

impl axum::response::IntoResponse for UnitError {
    fn into_response(self) -> axum::response::Response {
        HttpError::from(self).into_response()
    }
}
