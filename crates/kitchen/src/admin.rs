//! Admin pages for the kitchen: stations, wares (with CSV export and import), statuses and flows, cash registers,
//! printers, orders with their audit log, and prep-time statistics.
//!
//! Every handler takes the platform's [`Admin`](tillwire_platform::admin::Admin) extractor, which is the
//! permission check. Unit-scoped pages work on `?unit=ID` (the default unit when absent); statuses and flows are
//! global. Refusals are plain [`KitchenError`]s; the page route group shows them as pages.

mod devices;
mod orders;
mod stations;
mod stats;
mod statuses;
mod wares;
mod wares_csv;

use axum::Router;
use axum::response::Redirect;
use serde::Deserialize;
use tillwire_platform::{read, write};
use tillwire_units::{Unit, Units};

use tillwire_platform::Text;
use tillwire_platform::error::{Constraint, violates};

use crate::model::Label;
use crate::{Kitchen, KitchenError, Thing};

pub fn router() -> Router<Kitchen> {
    Router::new()
        .merge(stations::router())
        .merge(wares::router())
        .merge(statuses::router())
        .merge(devices::router())
        .merge(orders::router())
        .merge(stats::router())
}

#[derive(Deserialize)]
struct UnitQuery {
    unit: Option<i64>,
}

/// The business day a page was asked for (`?day=`, `YYYY-MM-DD`), or today's.
fn chosen_day(kitchen: &Kitchen, asked: &str) -> Result<chrono::NaiveDate, KitchenError> {
    match asked.trim() {
        "" => Ok(kitchen.today()),
        text => crate::import::parse_day(text)
            .ok_or_else(|| Label::new("day", "день", "day").error("ГГГГ-ММ-ДД", "YYYY-MM-DD")),
    }
}

/// The unit a page works on and the units it could switch to (the switch shows only when there are several).
struct UnitPicker {
    units: Vec<Unit>,
    current: Unit,
}

impl UnitPicker {
    async fn load(kitchen: &Kitchen, asked: Option<i64>) -> Result<Self, KitchenError> {
        let units = Units(kitchen.store()).list().await?;
        let current = match asked {
            Some(id) => units.iter().find(|u| u.id == id),
            None => units.iter().find(|u| u.is_default).or(units.first()),
        }
        .cloned()
        .ok_or(KitchenError::NotFound(Thing::Unit))?;
        Ok(UnitPicker { units, current })
    }

    fn id(&self) -> i64 {
        self.current.id
    }
}

/// Back to a unit-scoped list after a successful form (303 See Other).
fn back_to(section: &str, unit: i64) -> Redirect {
    Redirect::to(&format!("{section}?unit={unit}"))
}

/// A unique or foreign-key violation means the data around the form is in the way, not that the server failed:
/// it becomes a 409 with `message`. Anything else stays a server error.
fn conflict_on_constraint(message: Text) -> impl FnOnce(sqlx::Error) -> KitchenError {
    move |error| {
        if violates(&error, Constraint::Unique) || violates(&error, Constraint::ForeignKey) {
            KitchenError::Conflict(message)
        } else {
            error.into()
        }
    }
}

/// A whole number typed into a form field.
fn parse_integer(text: &str, label: Label) -> Result<i64, KitchenError> {
    text.trim()
        .parse()
        .map_err(|_| label.error("целое число", "a whole number"))
}

/// The unit-scoped tables the admin pages edit. Table names go into SQL text, so only these constants can.
#[derive(Debug, Clone, Copy)]
enum Owned {
    Station,
    Ware,
    Printer,
    Register,
}

impl Owned {
    fn table(self) -> &'static str {
        match self {
            Owned::Station => "stations",
            Owned::Ware => "wares",
            Owned::Printer => "printers",
            Owned::Register => "cash_registers",
        }
    }

    fn what(self) -> Thing {
        match self {
            Owned::Station => Thing::Station,
            Owned::Ware => Thing::Ware,
            Owned::Printer => Thing::Printer,
            Owned::Register => Thing::CashRegister,
        }
    }

    /// The form field that links to a row of this table.
    fn label(self) -> Label {
        match self {
            Owned::Station => Label::new("station_id", "станция", "station"),
            Owned::Ware => Label::new("ware_id", "товар", "ware"),
            Owned::Printer => Label::new("printer", "принтер", "printer"),
            Owned::Register => Label::new("register", "касса", "cash register"),
        }
    }

    /// The unit a row belongs to; 404 when there is no such row.
    async fn unit_of(self, kitchen: &Kitchen, id: i64) -> Result<i64, KitchenError> {
        let sql = format!("SELECT unit_id FROM {} WHERE id = $1", self.table());
        let found: Option<(i64,)> = read!(kitchen.store(), db => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(db)
            .await)?;
        found
            .map(|(unit,)| unit)
            .ok_or(KitchenError::NotFound(self.what()))
    }

    /// Links stay inside a unit: a ware's station and a register's printer must belong to the same unit.
    async fn require_in_unit(
        self,
        kitchen: &Kitchen,
        id: i64,
        unit: i64,
    ) -> Result<(), KitchenError> {
        match self.unit_of(kitchen, id).await {
            Ok(found) if found == unit => Ok(()),
            Ok(_) | Err(KitchenError::NotFound(_)) => Err(self
                .label()
                .error("нет в этом подразделении", "not found in this unit")),
            Err(error) => Err(error),
        }
    }

    /// Deletes a row and returns its unit. A row other rows still point to is refused with 409 `in_use`
    /// (the database checks it, so nothing is half-deleted).
    async fn delete(self, kitchen: &Kitchen, id: i64, in_use: Text) -> Result<i64, KitchenError> {
        let sql = format!(
            "DELETE FROM {} WHERE id = $1 RETURNING unit_id",
            self.table()
        );
        let deleted: Option<(i64,)> =
            write!(kitchen.store(), db => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(db)
            .await)
            .map_err(conflict_on_constraint(in_use))?;
        deleted
            .map(|(unit,)| unit)
            .ok_or(KitchenError::NotFound(self.what()))
    }
}
