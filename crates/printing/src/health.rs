//! `printer_health`: when each printer last printed and last failed, for the printers page.

use tillwire_platform::{Store, now_ms, read, write};

use crate::PrintError;

/// One upsert per attempt, success or failure.
pub(crate) async fn record(
    store: &Store,
    printer_id: i64,
    error: Option<&PrintError>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let sql = match error {
        None => {
            "INSERT INTO printer_health (printer_id, last_success_ms) VALUES ($1, $2)
             ON CONFLICT (printer_id) DO UPDATE SET last_success_ms = EXCLUDED.last_success_ms"
        }
        Some(_) => {
            "INSERT INTO printer_health (printer_id, last_error, last_error_ms) VALUES ($1, $3, $2)
             ON CONFLICT (printer_id) DO UPDATE SET last_error = EXCLUDED.last_error, last_error_ms = EXCLUDED.last_error_ms"
        }
    };
    let message = error.map(ToString::to_string);
    write!(store, db => sqlx::query(sql)
        .bind(printer_id)
        .bind(now)
        .bind(&message)
        .execute(db)
        .await
        .map(|_| ()))
}

#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub(crate) struct Health {
    pub printer_id: i64,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
}

pub(crate) async fn of_unit(store: &Store, unit: i64) -> Result<Vec<Health>, sqlx::Error> {
    read!(store, db => sqlx::query_as(
        "SELECT h.printer_id, h.last_success_ms, h.last_error, h.last_error_ms FROM printer_health h
         JOIN printers p ON p.id = h.printer_id WHERE p.unit_id = $1",
    )
    .bind(unit)
    .fetch_all(db)
    .await)
}
