//! Admin pages for the kitchen: stations, wares (with CSV export and import), statuses and flows, cash registers,
//! printers, and orders with their audit log.
//!
//! Every handler takes the platform's [`Admin`](tillwire_platform::admin::Admin) extractor, which is the
//! permission check. Unit-scoped pages work on `?unit=ID` (the default unit when absent); statuses and flows are
//! global. Refusals are plain [`KitchenError`]s, shown as pages by the platform's `html_errors` layer.

mod devices;
mod orders;
mod stations;
mod statuses;
mod wares;
mod wares_csv;

use axum::Router;
use axum::middleware;
use axum::response::Redirect;
use serde::Deserialize;
use tillwire_platform::admin::html_errors;
use tillwire_platform::{read, write};
use tillwire_units::{Unit, Units};

use crate::{Kitchen, KitchenError};

pub fn router() -> Router<Kitchen> {
    Router::new()
        .merge(stations::router())
        .merge(wares::router())
        .merge(statuses::router())
        .merge(devices::router())
        .merge(orders::router())
        .layer(middleware::from_fn(html_errors))
}

#[derive(Deserialize)]
struct UnitQuery {
    unit: Option<i64>,
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
        .ok_or(KitchenError::NotFound("unit"))?;
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
fn conflict_on_constraint(message: &str) -> impl FnOnce(sqlx::Error) -> KitchenError + '_ {
    move |error| {
        let constraint = error
            .as_database_error()
            .is_some_and(|e| e.is_unique_violation() || e.is_foreign_key_violation());
        if constraint {
            KitchenError::Conflict(message.to_owned())
        } else {
            error.into()
        }
    }
}

/// A whole number typed into a form field.
fn parse_integer(text: &str, what: &str) -> Result<i64, KitchenError> {
    text.trim()
        .parse()
        .map_err(|_| KitchenError::Invalid(format!("{what}: a whole number")))
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

    fn what(self) -> &'static str {
        match self {
            Owned::Station => "station",
            Owned::Ware => "ware",
            Owned::Printer => "printer",
            Owned::Register => "cash register",
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
            Ok(_) | Err(KitchenError::NotFound(_)) => Err(KitchenError::Invalid(format!(
                "{}: not found in this unit",
                self.what()
            ))),
            Err(error) => Err(error),
        }
    }

    /// Deletes a row and returns its unit. A row other rows still point to is refused with 409 `in_use`
    /// (the database checks it, so nothing is half-deleted).
    async fn delete(self, kitchen: &Kitchen, id: i64, in_use: &str) -> Result<i64, KitchenError> {
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
