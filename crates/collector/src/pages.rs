//! `/admin/collector/`: every register's state (last success, lag, last error, cursor, backlog), and
//! `/admin/collector/sources/`: the registers each unit collects from, added, changed and removed while running.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router, middleware};
use serde::Deserialize;
use tillwire_platform::Platform;
use tillwire_platform::admin::{Admin, html_errors, local_time};
use tillwire_platform::secretbox::SecretBox;
use tillwire_platform::web::{PageContext, render};
use tillwire_units::{Unit, Units};

use crate::config::{CashSource, RawCash, Timer};
use crate::sources::{NewSource, Sources};
use crate::status::{self, RegisterState};

const STATE: &str = "/admin/collector/";
const SOURCES: &str = "/admin/collector/sources/";

pub fn router(platform: Platform) -> Router {
    Router::new()
        .route(STATE, get(collector_page))
        .route(SOURCES, get(sources_page).post(create_source))
        .route("/admin/collector/sources/{id}", post(update_source))
        .route("/admin/collector/sources/{id}/delete", post(delete_source))
        .layer(middleware::from_fn(html_errors))
        .with_state(platform)
}

struct Row {
    state: RegisterState,
    last_success: String,
    lag: String,
}

#[derive(Template)]
#[template(path = "admin_collector.html")]
struct CollectorPage {
    page: PageContext,
    section: &'static str,
    rows: Vec<Row>,
}

async fn collector_page(State(platform): State<Platform>, admin: Admin) -> Response {
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
    render(&CollectorPage {
        page: admin.page("Сборщик чеков Set Retail", "Set Retail collector"),
        section: STATE,
        rows,
    })
}

/// A refusal, answered as `{"error": …}` and shown as a page by `html_errors`.
enum Refusal {
    Invalid(String),
    Conflict(&'static str),
    NotFound,
    Internal(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Refusal::Invalid(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
            Refusal::Conflict(message) => (StatusCode::CONFLICT, message.to_owned()),
            Refusal::NotFound => (StatusCode::NOT_FOUND, "no such register source".to_owned()),
            Refusal::Internal(message) => {
                tracing::error!(error = %message, "collector admin page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, message)
            }
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

impl From<sqlx::Error> for Refusal {
    fn from(error: sqlx::Error) -> Self {
        let constraint = error
            .as_database_error()
            .is_some_and(|e| e.is_unique_violation() || e.is_foreign_key_violation());
        if constraint {
            Refusal::Conflict("this unit already collects from that register database")
        } else {
            Refusal::Internal(error.to_string())
        }
    }
}

impl From<tillwire_units::UnitError> for Refusal {
    fn from(error: tillwire_units::UnitError) -> Self {
        Refusal::Internal(error.to_string())
    }
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

async fn sources_page(State(platform): State<Platform>, admin: Admin) -> Result<Response, Refusal> {
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
    fn checked(self) -> Result<(NewSource, bool), Refusal> {
        if self.sql_server.trim().is_empty() {
            return Err(Refusal::Invalid("sql_server: the register's host".into()));
        }
        let timer = match self.timer.trim() {
            "" => None,
            text => Some(
                text.parse()
                    .map_err(|_| Refusal::Invalid(format!("timer {text:?}: seconds")))?,
            ),
        };
        let keep_password = self.sql_password.is_empty();
        let source = CashSource::parse(RawCash {
            sql_server: Some(self.sql_server),
            sql_database: Some(self.sql_database.trim().to_owned()),
            sql_login: Some(self.sql_login.trim().to_owned()),
            sql_password: Some(self.sql_password),
            sql: Some(self.sql),
        })
        .map_err(Refusal::Invalid)?;
        let timer = Timer::parse(timer).map_err(Refusal::Invalid)?;
        Ok((NewSource { source, timer }, keep_password))
    }
}

fn seal(platform: &Platform, new: &NewSource) -> Result<String, Refusal> {
    let secret_box = SecretBox::load(&platform.settings.data_dir)
        .map_err(|e| Refusal::Internal(e.to_string()))?;
    Ok(secret_box.seal(new.source.password.expose()))
}

async fn create_source(
    State(platform): State<Platform>,
    admin: Admin,
    Form(form): Form<SourceForm>,
) -> Result<Redirect, Refusal> {
    let units = Units(&platform.store).list().await?;
    let unit = match form.unit.trim() {
        "" => units.iter().find(|u| u.is_default),
        id => units.iter().find(|u| id.parse() == Ok(u.id)),
    }
    .ok_or_else(|| Refusal::Invalid("unit: no such unit".into()))?
    .id;
    let (new, _) = form.checked()?;
    let sealed = seal(&platform, &new)?;
    let id = Sources(&platform.store).create(unit, &new, &sealed).await?;
    tracing::info!(source = id, unit, register = %new.source.name(), by = admin.username(), "collector source added");
    Ok(Redirect::to(SOURCES))
}

async fn update_source(
    State(platform): State<Platform>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<SourceForm>,
) -> Result<Redirect, Refusal> {
    let (new, keep_password) = form.checked()?;
    let sealed = match keep_password {
        true => None,
        false => Some(seal(&platform, &new)?),
    };
    if !Sources(&platform.store)
        .update(id, &new, sealed.as_deref())
        .await?
    {
        return Err(Refusal::NotFound);
    }
    tracing::info!(source = id, register = %new.source.name(), password_changed = !keep_password,
        by = admin.username(), "collector source changed");
    Ok(Redirect::to(SOURCES))
}

async fn delete_source(
    State(platform): State<Platform>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, Refusal> {
    if !Sources(&platform.store).delete(id).await? {
        return Err(Refusal::NotFound);
    }
    tracing::info!(
        source = id,
        by = admin.username(),
        "collector source removed"
    );
    Ok(Redirect::to(SOURCES))
}
