//! `/admin/collector/`: every register's state (last success, lag, last error, cursor, backlog), and
//! `/admin/collector/sources/`: the registers each unit collects from, added, changed and removed while running.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tillwire_platform::admin::{Admin, local_time};
use tillwire_platform::error::{Constraint, ResultExt};
use tillwire_platform::secretbox::SecretBox;
use tillwire_platform::web::{PageContext, render};
use tillwire_platform::{HttpError, Platform, Text};
use tillwire_units::{Unit, Units};

use crate::config::{CashSource, RawCash, Timer};
use crate::parked::{Parked, ParkedRow};
use crate::sources::{NewSource, Sources};
use crate::status::{self, RegisterState};

const STATE: &str = "/admin/collector/";
const SOURCES: &str = "/admin/collector/sources/";
const PARKED: &str = "/admin/collector/#parked";

pub fn router(platform: Platform) -> Router {
    Router::new()
        .route(STATE, get(collector_page))
        .route(SOURCES, get(sources_page).post(create_source))
        .route("/admin/collector/sources/{id}", post(update_source))
        .route("/admin/collector/sources/{id}/delete", post(delete_source))
        .route("/admin/collector/parked/{id}/retry", post(retry_parked))
        .route("/admin/collector/parked/{id}/skip", post(skip_parked))
        .with_state(platform)
}

struct Row {
    state: RegisterState,
    last_success: String,
    lag: String,
}

/// A parked receipt as the page shows it.
struct ParkedView {
    id: i64,
    source: String,
    receipt: String,
    committed: String,
    reason: String,
    parked: String,
    retry_requested: bool,
}

#[derive(Template)]
#[template(path = "admin_collector.html")]
struct CollectorPage {
    page: PageContext,
    section: &'static str,
    rows: Vec<Row>,
    parked: Vec<ParkedView>,
}

fn parked_view(platform: &Platform, row: ParkedRow) -> ParkedView {
    let sale = row.sale().ok();
    ParkedView {
        id: row.id,
        receipt: sale.as_ref().map_or_else(String::new, |sale| {
            format!(
                "№{} · {} {} · {}",
                sale.check_id, sale.cash_id, sale.shift_id, sale.check_date
            )
        }),
        committed: sale
            .and_then(|sale| sale.position)
            .map(|position| position.commit.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default(),
        parked: local_time(&platform.settings, row.parked_ms, "%Y-%m-%d %H:%M:%S"),
        source: row.source,
        reason: row.reason,
        retry_requested: row.retry_requested,
    }
}

async fn collector_page(
    State(platform): State<Platform>,
    admin: Admin,
) -> Result<Response, HttpError> {
    let parked = Parked(platform.store.clone())
        .list()
        .await?
        .into_iter()
        .map(|row| parked_view(&platform, row))
        .collect();
    let rows = status::snapshot()
        .into_iter()
        .map(|state| Row {
            last_success: state
                .last_success_ms
                .map(|ms| local_time(&platform.settings, ms, "%Y-%m-%d %H:%M:%S"))
                .unwrap_or_else(|| "—".into()),
            lag: state
                .lag_ms
                .map(|ms| format!("{:.1} s", ms as f64 / 1e3))
                .unwrap_or_else(|| "—".into()),
            state,
        })
        .collect();
    Ok(render(&CollectorPage {
        page: admin.page("Сборщик чеков Set Retail", "Set Retail collector"),
        section: STATE,
        rows,
        parked,
    }))
}

fn no_parked() -> HttpError {
    HttpError::not_found(Text::new(
        "Такого отложенного чека нет.",
        "No such parked receipt.",
    ))
}

/// Asks the register's task (on whichever instance reads the register) to send the receipt again.
async fn retry_parked(
    State(platform): State<Platform>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, HttpError> {
    if !Parked(platform.store.clone()).request_retry(id).await? {
        return Err(no_parked());
    }
    tracing::info!(
        parked = id,
        by = admin.username(),
        "parked receipt: retry requested"
    );
    Ok(Redirect::to(PARKED))
}

async fn skip_parked(
    State(platform): State<Platform>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, HttpError> {
    let row = Parked(platform.store.clone())
        .remove(id)
        .await?
        .ok_or_else(no_parked)?;
    tracing::warn!(parked = id, register = %row.source, purchase = row.purchase_id, reason = %row.reason,
        by = admin.username(), "parked receipt skipped");
    Ok(Redirect::to(PARKED))
}

fn already_collected() -> HttpError {
    HttpError::conflict(Text::new(
        "Это подразделение уже собирает чеки из этой базы кассы.",
        "This unit already collects from that register database.",
    ))
}

fn no_source() -> HttpError {
    HttpError::not_found(Text::new(
        "Такой кассы в списке нет.",
        "No such register source.",
    ))
}

/// One stored source as the page shows it: everything but the password.
struct SourceView {
    id: i64,
    unit: String,
    server: String,
    database: String,
    login: String,
    sql: String,
    timer: String,
}

#[derive(Template)]
#[template(path = "admin_collector_sources.html")]
struct SourcesPage {
    page: PageContext,
    section: &'static str,
    sources: Vec<SourceView>,
    units: Vec<Unit>,
}

async fn sources_page(
    State(platform): State<Platform>,
    admin: Admin,
) -> Result<Response, HttpError> {
    let units = Units(&platform.store).list().await?;
    let sources = Sources(&platform.store)
        .list()
        .await?
        .into_iter()
        .map(|row| SourceView {
            id: row.id,
            unit: units
                .iter()
                .find(|u| u.id == row.unit_id)
                .map(|u| u.name.clone())
                .unwrap_or_default(),
            server: format!("{}:{}", row.host, row.port),
            database: row.database_name,
            login: row.login,
            sql: row.custom_sql.unwrap_or_default(),
            timer: (row.timer_ms as f64 / 1e3).to_string(),
        })
        .collect();
    Ok(render(&SourcesPage {
        page: admin.page("Кассы Set Retail", "Set Retail registers"),
        section: STATE,
        sources,
        units,
    }))
}

/// The form of one source, with main.json's keys. An empty password keeps the stored one (editing) or is ELQ's
/// default (adding).
#[derive(Deserialize)]
struct SourceForm {
    #[serde(default)]
    unit: String,
    #[serde(default)]
    sql_server: String,
    #[serde(default)]
    sql_database: String,
    #[serde(default)]
    sql_login: String,
    #[serde(default)]
    sql_password: String,
    #[serde(default)]
    sql: String,
    #[serde(default)]
    timer: String,
}

impl SourceForm {
    fn checked(self) -> Result<(NewSource, bool), HttpError> {
        if self.sql_server.trim().is_empty() {
            return Err(HttpError::field(
                "sql_server",
                Text::new("укажите адрес кассы", "the register's host"),
            ));
        }
        let bad_timer = || {
            HttpError::field(
                "timer",
                Text::new("секунды, от 0,05 до 3600", "seconds, from 0.05 to 3600"),
            )
        };
        let timer = match self.timer.trim() {
            "" => None,
            text => Some(text.replace(',', ".").parse().map_err(|_| bad_timer())?),
        };
        let timer = Timer::parse(timer).map_err(|_| bad_timer())?;
        let keep_password = self.sql_password.is_empty();
        let source = CashSource::parse(RawCash {
            sql_server: Some(self.sql_server),
            sql_database: Some(self.sql_database.trim().to_owned()),
            sql_login: Some(self.sql_login.trim().to_owned()),
            sql_password: Some(self.sql_password),
            sql: Some(self.sql),
        })
        .map_err(|_| {
            HttpError::field(
                "sql_server",
                Text::new(
                    "адрес кассы: ИМЯ или ИМЯ:ПОРТ",
                    "the register's host: HOST or HOST:PORT",
                ),
            )
        })?;
        Ok((NewSource { source, timer }, keep_password))
    }
}

fn seal(platform: &Platform, new: &NewSource) -> Result<String, HttpError> {
    let secret_box = SecretBox::load(&platform.settings.data_dir).map_err(HttpError::internal)?;
    Ok(secret_box.seal(new.source.password.expose()))
}

async fn create_source(
    State(platform): State<Platform>,
    admin: Admin,
    Form(form): Form<SourceForm>,
) -> Result<Redirect, HttpError> {
    let units = Units(&platform.store).list().await?;
    let unit = match form.unit.trim() {
        "" => units.iter().find(|u| u.is_default),
        id => units.iter().find(|u| id.parse() == Ok(u.id)),
    }
    .ok_or_else(|| {
        HttpError::field(
            "unit",
            Text::new("нет такого подразделения", "no such unit"),
        )
    })?
    .id;
    let (new, _) = form.checked()?;
    let sealed = seal(&platform, &new)?;
    let id = Sources(&platform.store)
        .create(unit, &new, &sealed)
        .await
        .on_constraint(Constraint::Unique, already_collected)?;
    tracing::info!(source = id, unit, register = %new.source.name(), by = admin.username(), "collector source added");
    Ok(Redirect::to(SOURCES))
}

async fn update_source(
    State(platform): State<Platform>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<SourceForm>,
) -> Result<Redirect, HttpError> {
    let (new, keep_password) = form.checked()?;
    let sealed = match keep_password {
        true => None,
        false => Some(seal(&platform, &new)?),
    };
    if !Sources(&platform.store)
        .update(id, &new, sealed.as_deref())
        .await
        .on_constraint(Constraint::Unique, already_collected)?
    {
        return Err(no_source());
    }
    tracing::info!(source = id, register = %new.source.name(), password_changed = !keep_password,
        by = admin.username(), "collector source changed");
    Ok(Redirect::to(SOURCES))
}

async fn delete_source(
    State(platform): State<Platform>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, HttpError> {
    if !Sources(&platform.store).delete(id).await? {
        return Err(no_source());
    }
    tracing::info!(
        source = id,
        by = admin.username(),
        "collector source removed"
    );
    Ok(Redirect::to(SOURCES))
}
