//! `/admin/printers/status`: per printer, the last success, the last error, the jobs waiting and the tickets given
//! up on; a test page button, a "print now" button that ends the backoff of a printer that is back, and a retry
//! button that puts the given-up tickets back in line (the platform's manual retry of dead jobs).

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tillwire_kitchen::tickets::{TicketJob, printer_job_key};
use tillwire_kitchen::{Kitchen, KitchenError, Thing};
use tillwire_platform::admin::{Admin, local_time};
use tillwire_platform::jobs::{BackgroundJob, JobRow, JobState};
use tillwire_platform::web::{PageContext, render};
use tillwire_units::{Unit, UnitId, Units};

use crate::{TestPageJob, health};

const STATUS: &str = "/admin/printers/status";
/// How many of the newest dead jobs the page looks through for given-up tickets (a ticket dies only after
/// `TILLWIRE_PRINT_MAX_ATTEMPTS`, ≈ 2 h by default, so this is days of a busy shop's tickets). Beyond it the
/// count stops growing; "Retry" takes the ones found, and `/admin/jobs/?state=dead` lists every dead job.
const DEAD_SCANNED: i64 = 10_000;

pub fn router() -> Router<Kitchen> {
    Router::new()
        .route(STATUS, get(status_page))
        .route("/admin/printers/{id}/test", post(test_page))
        .route("/admin/printers/{id}/wake", post(wake))
        .route("/admin/printers/{id}/retry", post(retry))
}

#[derive(Deserialize)]
struct UnitQuery {
    unit: Option<i64>,
}

struct Row {
    id: i64,
    name: String,
    address: String,
    last_success: String,
    last_error: String,
    last_error_at: String,
    pending: i64,
    dead: usize,
}

#[derive(Template)]
#[template(path = "printers_status.html")]
struct StatusPage {
    page: PageContext,
    section: &'static str,
    units: Vec<Unit>,
    unit: Unit,
    printers: Vec<Row>,
}

async fn status_page(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Query(query): Query<UnitQuery>,
) -> Result<Response, KitchenError> {
    let units = Units(kitchen.store()).list().await?;
    let unit = match query.unit {
        Some(id) => units.iter().find(|u| u.id == id),
        None => units.iter().find(|u| u.is_default).or(units.first()),
    }
    .cloned()
    .ok_or(KitchenError::NotFound(Thing::Unit))?;
    let health: HashMap<i64, health::Health> = health::of_unit(kitchen.store(), unit.id)
        .await?
        .into_iter()
        .map(|h| (h.printer_id, h))
        .collect();
    let backlog: HashMap<String, i64> = kitchen
        .platform
        .jobs
        .backlog(&[TicketJob::QUEUE, TestPageJob::QUEUE])
        .await?
        .into_iter()
        .collect();
    let dead = dead_tickets(&kitchen).await?;
    let settings = &kitchen.platform.settings;
    let when = |ms: Option<i64>| {
        ms.map_or_else(String::new, |ms| {
            local_time(settings, ms, "%Y-%m-%d %H:%M:%S")
        })
    };
    let printers = kitchen
        .printers(UnitId(unit.id))
        .await?
        .into_iter()
        .map(|printer| {
            let health = health.get(&printer.id).cloned().unwrap_or_default();
            Row {
                pending: backlog
                    .get(&printer_job_key(printer.id))
                    .copied()
                    .unwrap_or(0),
                dead: dead
                    .iter()
                    .filter(|job| job.job_key == printer_job_key(printer.id))
                    .count(),
                address: printer.address.map(|a| a.to_string()).unwrap_or_default(),
                last_success: when(health.last_success_ms),
                last_error_at: when(health.last_error_ms),
                last_error: health.last_error.unwrap_or_default(),
                id: printer.id,
                name: printer.name,
            }
        })
        .collect();
    Ok(render(&StatusPage {
        page: admin.page("Состояние принтеров", "Printer status"),
        section: STATUS,
        units,
        unit,
        printers,
    }))
}

/// The ticket jobs that ran out of attempts (the newest [`DEAD_SCANNED`] dead jobs of any queue).
async fn dead_tickets(kitchen: &Kitchen) -> Result<Vec<JobRow>, KitchenError> {
    let mut dead = kitchen
        .platform
        .jobs
        .list(Some(JobState::Dead.as_str()), DEAD_SCANNED)
        .await?;
    dead.retain(|job| job.queue == TicketJob::QUEUE);
    Ok(dead)
}

/// The printer's unit, for the way back; 404 when there is no such printer.
async fn unit_of(kitchen: &Kitchen, id: i64) -> Result<i64, KitchenError> {
    Ok(kitchen.printer(id).await?.unit_id)
}

async fn test_page(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, KitchenError> {
    let unit = unit_of(&kitchen, id).await?;
    kitchen
        .platform
        .jobs
        .enqueue(&TestPageJob { printer_id: id }.to_job())
        .await?;
    tracing::info!(printer = id, by = admin.username(), "test page queued");
    Ok(Redirect::to(&format!("{STATUS}?unit={unit}")))
}

async fn wake(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, KitchenError> {
    let unit = unit_of(&kitchen, id).await?;
    let woken = kitchen.platform.jobs.run_now(&printer_job_key(id)).await?;
    tracing::info!(
        printer = id,
        woken,
        by = admin.username(),
        "printer's jobs woken"
    );
    Ok(Redirect::to(&format!("{STATUS}?unit={unit}")))
}

/// Puts every given-up ticket of the printer back in line with a fresh set of attempts; they print in their
/// original order (the queue goes by job id within a printer).
async fn retry(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, KitchenError> {
    let unit = unit_of(&kitchen, id).await?;
    let key = printer_job_key(id);
    let mut retried = 0;
    for job in dead_tickets(&kitchen).await? {
        if job.job_key == key && kitchen.platform.jobs.retry(job.id).await? {
            retried += 1;
        }
    }
    tracing::info!(
        printer = id,
        retried,
        by = admin.username(),
        "given-up tickets put back in line"
    );
    Ok(Redirect::to(&format!("{STATUS}?unit={unit}")))
}
