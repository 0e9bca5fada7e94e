//! The kitchen's side of ticket printing: which printer an order's ticket goes to, the print job enqueued with the
//! order (see `Kitchen::register_orders`), reprints, and the `print_failed` mark the operator screen shows.
//! Rendering and drivers live in the printing area, which runs the jobs; the kitchen only knows the job contract.

use serde::{Deserialize, Serialize};
use tillwire_platform::jobs::{BackgroundJob, NewJob};
use tillwire_platform::{read, write};
use tillwire_units::UnitId;

use crate::Thing;
use crate::model::{OrderView, PrinterAddress};
use crate::{Kitchen, KitchenError};
use tillwire_platform::Text;

/// A ticket job: print this order on this printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketJob {
    pub order_id: i64,
    pub printer_id: i64,
}

impl BackgroundJob for TicketJob {
    const QUEUE: &'static str = "print.ticket";
    /// The default of `TILLWIRE_PRINT_MAX_ATTEMPTS`, which each enqueued ticket carries.
    const MAX_ATTEMPTS: i64 = 20;

    fn key(&self) -> String {
        printer_job_key(self.printer_id)
    }
}

/// Jobs of one printer share this key, so each printer prints its tickets one at a time, in order.
pub fn printer_job_key(printer_id: i64) -> String {
    format!("printer:{printer_id}")
}

/// A ticket printer as the printing area needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printer {
    pub id: i64,
    pub unit_id: i64,
    /// A label, or the CUPS queue name.
    pub name: String,
    /// `None` while the printer has no address: nothing prints on it.
    pub address: Option<PrinterAddress>,
}

#[derive(sqlx::FromRow)]
struct PrinterRow {
    id: i64,
    unit_id: i64,
    name: String,
    address: String,
}

impl TryFrom<PrinterRow> for Printer {
    type Error = KitchenError;
    fn try_from(row: PrinterRow) -> Result<Self, KitchenError> {
        Ok(Printer {
            address: PrinterAddress::parse(&row.address)?,
            id: row.id,
            unit_id: row.unit_id,
            name: row.name,
        })
    }
}

impl Kitchen {
    /// The job printing `order_id`'s ticket on `printer_id`.
    pub fn ticket_job(&self, order_id: i64, printer_id: i64) -> NewJob {
        TicketJob {
            order_id,
            printer_id,
        }
        .to_job()
        .with_max_attempts(self.ticket_attempts())
    }

    pub async fn printer(&self, id: i64) -> Result<Printer, KitchenError> {
        let row: Option<PrinterRow> = read!(self.store(), db => sqlx::query_as(
            "SELECT id, unit_id, name, address FROM printers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(db)
        .await)?;
        row.ok_or(KitchenError::NotFound(Thing::Printer))?
            .try_into()
    }

    /// A unit's printers by name. A stored address that no longer parses is shown as missing.
    pub async fn printers(&self, unit: UnitId) -> Result<Vec<Printer>, KitchenError> {
        let rows: Vec<PrinterRow> = read!(self.store(), db => sqlx::query_as(
            "SELECT id, unit_id, name, address FROM printers WHERE unit_id = $1 ORDER BY name",
        )
        .bind(unit.0)
        .fetch_all(db)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|row| Printer {
                address: PrinterAddress::parse(&row.address).ok().flatten(),
                id: row.id,
                unit_id: row.unit_id,
                name: row.name,
            })
            .collect())
    }

    /// Prints an order's ticket again on its register's printer (the operator's or the API's reprint).
    pub async fn reprint(&self, order_id: i64) -> Result<OrderView, KitchenError> {
        let order = self.order_view(order_id).await?;
        let printer: Option<(i64,)> = read!(self.store(), db => sqlx::query_as(
            "SELECT p.id FROM orders o JOIN cash_registers r ON r.id = o.cash_register_id
             JOIN printers p ON p.id = r.printer_id WHERE o.id = $1 AND p.address <> ''",
        )
        .bind(order_id)
        .fetch_optional(db)
        .await)?;
        let (printer_id,) = printer.ok_or_else(|| {
            KitchenError::Conflict(Text::new(
                "У кассы этого заказа нет принтера с адресом.",
                "The order's cash register has no printer with an address.",
            ))
        })?;
        self.platform
            .jobs
            .enqueue(&self.ticket_job(order_id, printer_id))
            .await?;
        tracing::info!(
            order = order_id,
            printer = printer_id,
            "ticket reprint queued"
        );
        Ok(order)
    }

    /// Marks whether an order's ticket failed to print; screens hear about a change.
    pub async fn set_print_failed(&self, order_id: i64, failed: bool) -> Result<(), KitchenError> {
        let changed = write!(self.store(), db => sqlx::query(
            "UPDATE orders SET print_failed = $2 WHERE id = $1 AND print_failed <> $2",
        )
        .bind(order_id)
        .bind(failed)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        if changed > 0 {
            self.announce(&self.order_view(order_id).await?).await;
        }
        Ok(())
    }
}
