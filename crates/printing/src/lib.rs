//! Queue tickets (ELQ spec §4), printed reliably: the ticket layout, ESC/POS over raw TCP, IPP/CUPS with a PDF
//! (or raw ESC/POS for raw queues), the job handlers behind the durable print queue, the printers status page
//! and the test page.
//!
//! The kitchen enqueues a ticket job in the transaction that stores the order (`tillwire_kitchen::tickets`);
//! this area runs those jobs. Delivery is at-least-once: see docs/architecture.md ("Printing").

pub mod drivers;
pub mod escpos;
mod health;
mod pages;
pub mod pdf;
pub mod settings;
pub mod sim;
pub mod ticket;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tillwire_kitchen::tickets::{Printer, TicketJob, printer_job_key};
use tillwire_kitchen::{Kitchen, KitchenError};
use tillwire_platform::admin::local_time;
use tillwire_platform::area::SettingsSection;
use tillwire_platform::config::ConfigError;
use tillwire_platform::jobs::{Attempt, BackgroundJob, JobFailure, JobRegistry};
use tillwire_platform::web::NavLink;
use tillwire_platform::{Access, Answer, Area, Event, Migration, Settings};

use settings::PrintSettings;
use tillwire_units::UnitId;

pub use drivers::{Drivers, PrintError};
use ticket::{Extras, Paper, Ticket};

pub const MIGRATIONS: &[Migration] = &[Migration {
    area: "printing",
    version: 1,
    sqlite: include_str!("../migrations/sqlite/0001_printing.sql"),
    postgres: include_str!("../migrations/postgres/0001_printing.sql"),
}];

/// Ticket printing: runs the kitchen's ticket jobs and test pages; the printers status page.
pub const AREA: Area = Area {
    name: "printing",
    migrations: MIGRATIONS,
    admin_nav: &[NavLink::to(
        "/admin/printers/status",
        "Состояние принтеров",
        "Printer status",
    )],
    settings: Some(SettingsSection {
        name: "print",
        env: settings::ENV,
        check: |settings| PrintSettings::load(settings).map(|_| ()),
    }),
    build: |assembly| {
        let kitchen: Kitchen = assembly.service()?;
        Printing::new(kitchen.clone())?.register_jobs(assembly.jobs());
        assembly.routes(
            Access::Session,
            Answer::Page,
            pages::router().with_state(kitchen),
        );
        Ok(())
    },
    ..Area::NONE
};

/// Published after each failed attempt, for whoever routes alerts: `{printer_id, printer, order_id, error}`.
pub const PRINTER_FAILED: &str = "printer.failed";

/// Durable events (`platform::outbox`), recorded with the printer's health: it started failing…
pub const PRINTER_FAILING: &str = "printing.printer_failing";
/// …it printed again after failing…
pub const PRINTER_RECOVERED: &str = "printing.printer_recovered";
/// …a ticket's last attempt failed: it will not print unless someone retries or reprints it.
/// Payload of each: `{printer_id, printer, order_id, error}`.
pub const TICKET_GIVEN_UP: &str = "printing.ticket_given_up";

/// A test page for a printer (keyed by printer like tickets, so a test page waits its turn).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct TestPageJob {
    pub printer_id: i64,
}

impl BackgroundJob for TestPageJob {
    const QUEUE: &'static str = "print.test";
    /// A test page is asked for by someone watching: it is not worth retrying for long.
    const MAX_ATTEMPTS: i64 = 3;

    fn key(&self) -> String {
        printer_job_key(self.printer_id)
    }
}

/// Runs print jobs.
#[derive(Clone)]
pub struct Printing {
    kitchen: Kitchen,
    drivers: Drivers,
    print: Arc<PrintSettings>,
}

impl Printing {
    /// Reads `[print]` and gives the kitchen its tickets' attempt budget.
    pub fn new(kitchen: Kitchen) -> Result<Self, ConfigError> {
        let print = PrintSettings::load(&kitchen.platform.settings)?;
        kitchen.set_ticket_attempts(print.max_attempts);
        let drivers = Drivers::new(
            print.code_page,
            Duration::from_secs(print.timeout_secs),
            drivers::ATTEMPT_DEADLINE,
        );
        Ok(Printing {
            kitchen,
            drivers,
            print: Arc::new(print),
        })
    }

    fn settings(&self) -> &Settings {
        &self.kitchen.platform.settings
    }

    /// Registers the handlers of ticket and test page jobs.
    pub fn register_jobs(&self, registry: &mut JobRegistry) {
        let tickets = self.clone();
        let tests = self.clone();
        registry
            .register(move |job: TicketJob, attempt: Attempt| {
                let printing = tickets.clone();
                async move { printing.run_ticket(job, attempt.is_last()).await }
            })
            .register(move |job: TestPageJob, _: Attempt| {
                let printing = tests.clone();
                async move { printing.run_test_page(job).await }
            });
    }

    async fn run_ticket(&self, request: TicketJob, last_attempt: bool) -> Result<(), JobFailure> {
        let printer = self
            .kitchen
            .printer(request.printer_id)
            .await
            .map_err(failure)?;
        let order = self
            .kitchen
            .order_view(request.order_id)
            .await
            .map_err(failure)?;
        let stations = if self.print.station_slips {
            self.kitchen
                .stations(UnitId(order.unit_id))
                .await
                .map_err(failure)?
                .into_iter()
                .map(|s| (s.id, s.name))
                .collect()
        } else {
            Vec::new()
        };
        let ticket = Ticket::layout(
            &order,
            &stations,
            &local_time(self.settings(), order.created_ms, "%Y-%m-%d %H:%M"),
            Paper::from_settings(&self.print),
            self.print.copies,
            Extras::from_settings(&self.print),
        );
        let printed = self
            .print(
                &printer,
                &ticket,
                &format!("№ {}", order.number),
                last_attempt.then_some(order.id),
            )
            .await;
        // The mark only changes on a change of outcome, so a healthy printer costs no write here.
        let mark = self.kitchen.set_print_failed(order.id, printed.is_err());
        if printed.is_err() || order.print_failed {
            mark.await.map_err(failure)?;
        }
        if let Err(error) = &printed {
            self.announce_failure(&printer, Some(order.id), error).await;
        }
        printed.map_err(|e| JobFailure::Retry(e.to_string()))
    }

    async fn run_test_page(&self, request: TestPageJob) -> Result<(), JobFailure> {
        let printer = self
            .kitchen
            .printer(request.printer_id)
            .await
            .map_err(failure)?;
        let printed = self.test_page(&printer).await;
        if let Err(error) = &printed {
            self.announce_failure(&printer, None, error).await;
        }
        printed.map_err(|e| JobFailure::Retry(e.to_string()))
    }

    /// Prints a test page now (the CLI's `print test`; the page's button goes through the queue).
    pub async fn test_page(&self, printer: &Printer) -> Result<(), PrintError> {
        let when = local_time(
            self.settings(),
            tillwire_platform::now_ms(),
            "%Y-%m-%d %H:%M",
        );
        let ticket = Ticket::test_page(&printer.name, &when, Paper::from_settings(&self.print));
        self.print(printer, &ticket, "tillwire test page", None)
            .await
    }

    /// Sends a ticket and records the outcome on the printer's health row (and its durable events).
    async fn print(
        &self,
        printer: &Printer,
        ticket: &Ticket,
        title: &str,
        last_attempt_of: Option<i64>,
    ) -> Result<(), PrintError> {
        let printed = match &printer.address {
            Some(address) => self.drivers.print(address, ticket, title).await,
            None => Err(PrintError::new("the printer has no address")),
        };
        let outcome = health::Outcome {
            printer,
            error: printed.as_ref().err(),
            last_attempt_of,
        };
        if let Err(error) = health::record(self.kitchen.store(), outcome).await {
            tracing::warn!(%error, printer = printer.id, "could not record the printer's health");
        }
        match &printed {
            Ok(()) => tracing::debug!(printer = printer.id, title, "printed"),
            Err(error) => tracing::warn!(printer = printer.id, title, %error, "printing failed"),
        }
        printed
    }

    async fn announce_failure(&self, printer: &Printer, order_id: Option<i64>, error: &PrintError) {
        self.kitchen
            .platform
            .events
            .publish(Event {
                topic: PRINTER_FAILED.into(),
                unit_id: printer.unit_id,
                payload: serde_json::json!({
                    "printer_id": printer.id,
                    "printer": printer.name,
                    "order_id": order_id,
                    "error": error.to_string(),
                }),
            })
            .await;
    }
}

/// Whether two printer or queue names are the same, ignoring case in any script ("Принтер" = "пРИНТЕР"), as
/// ELQ's `lower()` comparison did.
pub fn same_name(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// A vanished order or printer (deleted, purged) cannot print later either; anything else may pass.
fn failure(error: KitchenError) -> JobFailure {
    match error {
        KitchenError::NotFound(_) | KitchenError::Invalid { .. } => {
            JobFailure::Fatal(error.to_string())
        }
        other => JobFailure::Retry(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::same_name;

    #[test]
    fn names_match_ignoring_case_in_any_script() {
        assert!(same_name("Принтер этикеток", "пРИНТЕР ЭТИКЕТОК"));
        assert!(same_name("Kitchen57", "KITCHEN57"));
        assert!(same_name("Ёлка", "ёЛКА"));
        assert!(!same_name("Принтер этикеток", "Принтер этикеток 2"));
        assert!(!same_name("Кухня", "Кухня "));
    }
}
