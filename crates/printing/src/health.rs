//! `printer_health`: when each printer last printed and last failed, for the printers page.

use tillwire_kitchen::tickets::Printer;
use tillwire_platform::outbox::{NewEvent, RecordEvent};
use tillwire_platform::{Store, now_ms, read, write_tx};

use crate::{PRINTER_FAILING, PRINTER_RECOVERED, PrintError, TICKET_GIVEN_UP};

/// The outcome of one attempt at a printer, for its health row and its durable events.
pub(crate) struct Outcome<'a> {
    pub printer: &'a Printer,
    pub error: Option<&'a PrintError>,
    /// The order whose ticket this was, when it was the ticket's last attempt: failing now gives it up.
    pub last_attempt_of: Option<i64>,
}

/// One upsert per attempt, success or failure. In the same transaction, a change of the printer's state is a
/// durable event ([`PRINTER_FAILING`] when it starts failing, [`PRINTER_RECOVERED`] when it prints again) and a
/// failed last attempt is [`TICKET_GIVEN_UP`], for whoever routes alerts.
pub(crate) async fn record(store: &Store, outcome: Outcome<'_>) -> Result<(), sqlx::Error> {
    let printer = outcome.printer;
    let now = now_ms();
    let sql = match outcome.error {
        None => {
            "INSERT INTO printer_health (printer_id, last_success_ms) VALUES ($1, $2)
             ON CONFLICT (printer_id) DO UPDATE SET last_success_ms = EXCLUDED.last_success_ms"
        }
        Some(_) => {
            "INSERT INTO printer_health (printer_id, last_error, last_error_ms) VALUES ($1, $3, $2)
             ON CONFLICT (printer_id) DO UPDATE SET last_error = EXCLUDED.last_error, last_error_ms = EXCLUDED.last_error_ms"
        }
    };
    let message = outcome.error.map(ToString::to_string);
    let event = |kind, order_id: Option<i64>| NewEvent {
        kind,
        unit_id: Some(printer.unit_id),
        payload: serde_json::json!({
            "printer_id": printer.id,
            "printer": printer.name,
            "order_id": order_id,
            "error": message,
        }),
    };
    write_tx!(store, tx => {
        let before: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT last_success_ms, last_error_ms FROM printer_health WHERE printer_id = $1",
        )
        .bind(printer.id)
        .fetch_optional(&mut **tx)
        .await?;
        sqlx::query(sql)
            .bind(printer.id)
            .bind(now)
            .bind(&message)
            .execute(&mut **tx)
            .await?;
        let was_failing = matches!(before, Some((success, Some(error))) if success.is_none_or(|s| error > s));
        match (outcome.error, was_failing) {
            (Some(_), false) => {
                (**tx).record_event(&event(PRINTER_FAILING, None)).await?;
            }
            (None, true) => {
                (**tx).record_event(&event(PRINTER_RECOVERED, None)).await?;
            }
            _ => {}
        }
        if let (Some(_), Some(order_id)) = (outcome.error, outcome.last_attempt_of) {
            (**tx).record_event(&event(TICKET_GIVEN_UP, Some(order_id))).await?;
        }
        Ok(())
    })
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
