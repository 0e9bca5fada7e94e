//! `/admin/erp/`: the integrations and their health (listener, worker, current task, queue and error lengths,
//! last success, last error), start, stop, restart and kill; each integration's settings (the password is
//! write-only), its connector script with its versions, its orders, and a failed order's screenshot and page.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tillwire_platform::admin::{Admin, local_time};
use tillwire_platform::jobs::JobState;
use tillwire_platform::web::{Lang, NavLink, PageContext, render};
use tillwire_platform::{HttpError, Text};
use tillwire_units::Units;

use crate::Erp;
use crate::connector::Script;
use crate::integrations::{
    ErpUrl, Integration, IntegrationId, IntegrationSpec, Problems, ScriptVersion, Workshop,
    port_range, script_problems,
};
use crate::listeners::ListenerState;
use crate::model::{ErpType, OrderStatus};
use crate::orders::{EvidenceRow, Health, Order, OrderId};

pub const ADMIN_NAV: &[NavLink] = &[NavLink::to("/admin/erp/", "ERP (OilMat)", "ERP (OilMat)")];
const ORDERS_SHOWN: i64 = 100;

pub fn router(erp: Erp) -> Router {
    Router::new()
        .route("/admin/erp/", get(list_page).post(create))
        .route("/admin/erp/{id}/", get(integration_page).post(update))
        .route("/admin/erp/{id}/delete", post(delete))
        .route("/admin/erp/{id}/{action}", post(act))
        .route("/admin/erp/orders/{id}", get(order_page))
        .route("/admin/erp/orders/{id}/requeue", post(requeue))
        .route("/admin/erp/orders/{id}/forget", post(forget))
        .route(
            "/admin/erp/orders/{id}/evidence/{attempt}/{file}",
            get(evidence_file),
        )
        .with_state(erp)
}

/// One integration's line on the list.
struct Row {
    integration: Integration,
    health: Health,
    listener: String,
    listener_ok: bool,
    last_success: String,
    last_error: String,
    last_reason: String,
}

#[derive(Template)]
#[template(path = "admin_erp.html")]
struct ListPage {
    page: PageContext,
    section: &'static str,
    rows: Vec<Row>,
    form: FormValues,
    units: Vec<(i64, String)>,
    types: Vec<&'static str>,
}

/// The settings form's values: an integration's, or a new one's defaults.
struct FormValues {
    workshop: String,
    erp_type: &'static str,
    base_url: String,
    unit_id: Option<i64>,
    username: String,
    has_password: bool,
    active: bool,
    autostart: bool,
    port: String,
    max_attempts: i64,
    task_timeout_secs: i64,
    script: String,
}

impl FormValues {
    fn of(integration: &Integration) -> Self {
        FormValues {
            workshop: integration.workshop.to_string(),
            erp_type: integration.erp_type.name(),
            base_url: integration.base_url.as_str().to_owned(),
            unit_id: integration.unit_id,
            username: integration.username.clone().unwrap_or_default(),
            has_password: integration.has_password,
            active: integration.active,
            autostart: integration.autostart,
            port: integration.port.map(|p| p.to_string()).unwrap_or_default(),
            max_attempts: integration.max_attempts,
            task_timeout_secs: integration.task_timeout_secs,
            script: integration.script.to_json_pretty(),
        }
    }

    fn new_one() -> Self {
        let spec = IntegrationSpec::new(
            Workshop::parse("new").expect("a valid name"),
            ErpType::AdManager,
        );
        FormValues {
            workshop: String::new(),
            erp_type: spec.erp_type.name(),
            base_url: String::new(),
            unit_id: None,
            username: String::new(),
            has_password: false,
            active: true,
            autostart: true,
            port: String::new(),
            max_attempts: spec.max_attempts,
            task_timeout_secs: spec.task_timeout_secs,
            script: String::new(),
        }
    }
}

fn when(erp: &Erp, ms: Option<i64>) -> String {
    ms.map(|ms| local_time(&erp.platform.settings, ms, "%Y-%m-%d %H:%M:%S"))
        .unwrap_or_default()
}

async fn units(erp: &Erp) -> Result<Vec<(i64, String)>, HttpError> {
    Ok(Units(&erp.platform.store)
        .list()
        .await
        .map_err(HttpError::internal)?
        .into_iter()
        .map(|unit| (unit.id, unit.name))
        .collect())
}

fn listener_text(
    lang: Lang,
    integration: &Integration,
    state: Option<ListenerState>,
) -> (String, bool) {
    match (integration.port, state) {
        (None, _) => (
            lang.pick("без своего порта", "no own port").to_owned(),
            true,
        ),
        (Some(_), Some(ListenerState::Listening { address })) => (address, true),
        (Some(port), Some(ListenerState::Refused { address, error })) => {
            (format!("{address}: {error}"), port == 0)
        }
        (Some(port), None) if !integration.active => {
            (format!("{port} · {}", lang.pick("закрыт", "closed")), true)
        }
        (Some(port), None) => (
            format!("{port} · {}", lang.pick("открывается…", "opening…")),
            true,
        ),
    }
}

#[tracing::instrument(skip_all)]
async fn list_page(State(erp): State<Erp>, admin: Admin) -> Result<Response, HttpError> {
    let mut rows = Vec::new();
    for integration in erp.integrations.list().await? {
        let health = erp.orders.health(integration.id).await?;
        let (listener, listener_ok) =
            listener_text(admin.lang, &integration, erp.listeners.get(integration.id));
        rows.push(Row {
            last_success: when(&erp, health.last_success_ms),
            last_error: when(&erp, health.last_error_ms),
            last_reason: last_reason(admin.lang, &health),
            integration,
            health,
            listener,
            listener_ok,
        });
    }
    Ok(render(&ListPage {
        page: admin.page("ERP (OilMat)", "ERP (OilMat)"),
        section: "/admin/erp/",
        rows,
        form: FormValues::new_one(),
        units: units(&erp).await?,
        types: ErpType::ALL.iter().map(|t| t.name()).collect(),
    }))
}

/// The settings form as posted. Checkboxes come as `on` or not at all.
#[derive(Deserialize)]
struct SettingsForm {
    workshop: String,
    erp_type: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    unit_id: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    clear_password: Option<String>,
    #[serde(default)]
    active: Option<String>,
    #[serde(default)]
    autostart: Option<String>,
    #[serde(default)]
    port: String,
    #[serde(default)]
    max_attempts: String,
    #[serde(default)]
    task_timeout_secs: String,
    #[serde(default)]
    script: String,
}

impl SettingsForm {
    /// The checked settings, every wrong field named.
    fn spec(&self, current: Option<&Integration>) -> Result<IntegrationSpec, HttpError> {
        let mut problems = Problems::default();
        let workshop = Workshop::parse(&self.workshop)
            .map_err(|text| problems.add("workshop", text))
            .unwrap_or_else(|()| Workshop::parse("-").expect("a valid name"));
        let erp_type = self.erp_type.parse().unwrap_or_else(|_| {
            problems.add("erp_type", Text::same("admanager, au2office"));
            ErpType::AdManager
        });
        let mut spec = IntegrationSpec::new(workshop, erp_type);
        if !self.base_url.trim().is_empty() {
            match ErpUrl::parse(&self.base_url) {
                Ok(url) => spec.base_url = url,
                Err(text) => problems.add("base_url", text),
            }
        }
        let mut number = |text: &str, field: &'static str| -> Option<i64> {
            let text = text.trim();
            if text.is_empty() {
                return None;
            }
            text.parse::<i64>()
                .map_err(|_| {
                    problems.add(
                        field,
                        Text::new("Нужно целое число.", "A whole number is needed."),
                    )
                })
                .ok()
        };
        let port = number(&self.port, "port");
        let max_attempts = number(&self.max_attempts, "max_attempts");
        let task_timeout_secs = number(&self.task_timeout_secs, "task_timeout_secs");
        spec.unit_id = number(&self.unit_id, "unit_id");
        spec.port = port.and_then(|port| {
            u16::try_from(port)
                .map_err(|_| problems.add("port", port_range()))
                .ok()
        });
        spec.max_attempts = max_attempts.unwrap_or(spec.max_attempts);
        spec.task_timeout_secs = task_timeout_secs.unwrap_or(spec.task_timeout_secs);
        spec.script = match (self.script.trim(), current) {
            ("", Some(current)) if current.erp_type == erp_type => current.script.clone(),
            ("", _) => spec.script,
            (text, _) => Script::from_json(text).unwrap_or_else(|found| {
                problems.add("script", script_problems(&found));
                spec.script.clone()
            }),
        };
        spec.username = Some(self.username.trim().to_owned()).filter(|u| !u.is_empty());
        spec.password = match (self.clear_password.is_some(), self.password.as_str()) {
            (true, _) => Some(String::new()),
            (false, "") => None,
            (false, password) => Some(password.to_owned()),
        };
        spec.active = self.active.is_some();
        spec.autostart = self.autostart.is_some();
        problems.absorb(spec.check());
        problems.into_result()?;
        Ok(spec)
    }
}

#[tracing::instrument(skip_all)]
async fn create(
    State(erp): State<Erp>,
    admin: Admin,
    Form(form): Form<SettingsForm>,
) -> Result<Redirect, HttpError> {
    let integration = erp
        .integrations
        .create(&form.spec(None)?, admin.username())
        .await?;
    if integration.autostart && integration.active {
        erp.set_worker(integration.id, true).await?;
    }
    erp.changed().await;
    Ok(Redirect::to(&format!("/admin/erp/{}/", integration.id)))
}

#[tracing::instrument(skip_all)]
async fn update(
    State(erp): State<Erp>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<SettingsForm>,
) -> Result<Redirect, HttpError> {
    let id = IntegrationId(id);
    let current = erp.integrations.get(id).await?;
    erp.integrations
        .update(id, &form.spec(Some(&current))?, admin.username())
        .await?;
    erp.changed().await;
    Ok(Redirect::to(&format!("/admin/erp/{id}/")))
}

#[tracing::instrument(skip_all)]
async fn delete(
    State(erp): State<Erp>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, HttpError> {
    let id = IntegrationId(id);
    erp.worker.close(id).await;
    erp.integrations.delete(id, admin.username()).await?;
    erp.changed().await;
    Ok(Redirect::to("/admin/erp/"))
}

#[derive(Deserialize)]
struct ClearQuery {
    #[serde(rename = "type", default)]
    kind: String,
}

/// The buttons: start, stop (the worker), restart, kill, and clearing a queue.
#[tracing::instrument(skip_all, fields(action))]
async fn act(
    State(erp): State<Erp>,
    _admin: Admin,
    Path((id, action)): Path<(i64, String)>,
    Query(query): Query<ClearQuery>,
) -> Result<Redirect, HttpError> {
    let id = IntegrationId(id);
    erp.integrations.get(id).await?;
    match action.as_str() {
        "start" => erp.start(id).await?,
        "stop" => erp.set_worker(id, false).await?,
        "restart" => erp.restart(id).await?,
        "kill" => erp.kill(id).await?,
        "clear" if query.kind == "task" => drop(erp.orders.clear_tasks(id).await?),
        "clear" if query.kind == "error" => drop(erp.orders.clear_errors(id).await?),
        _ => {
            return Err(HttpError::not_found(Text::new(
                "Нет такого действия.",
                "No such action.",
            )));
        }
    }
    Ok(Redirect::to(&format!("/admin/erp/{id}/")))
}

struct OrderRow {
    order: Order,
    received: String,
    finished: String,
    reason: String,
}

/// The last error's reason in the page's language.
fn last_reason(lang: Lang, health: &Health) -> String {
    health
        .last_reason
        .map(|reason| reason.describe(lang == Lang::Ru).to_owned())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "admin_erp_integration.html")]
struct IntegrationPage {
    page: PageContext,
    section: &'static str,
    integration: Integration,
    health: Health,
    listener: String,
    listener_ok: bool,
    form: FormValues,
    units: Vec<(i64, String)>,
    types: Vec<&'static str>,
    status: String,
    statuses: Vec<&'static str>,
    orders: Vec<OrderRow>,
    versions: Vec<(ScriptVersion, String)>,
    last_success: String,
    last_error: String,
    last_reason: String,
}

impl IntegrationPage {
    fn is_current(&self, status: &str) -> bool {
        self.status == status
    }

    fn status_label(&self, status: &str) -> &'static str {
        status_label(self.page.lang, status)
    }
}

fn status_label(lang: Lang, status: &str) -> &'static str {
    match OrderStatus::parse(status) {
        Some(OrderStatus::Received) => lang.pick("принят", "received"),
        Some(OrderStatus::Processing) => lang.pick("в работе", "processing"),
        Some(OrderStatus::Completed) => lang.pick("добавлен", "completed"),
        Some(OrderStatus::Failed) => lang.pick("ошибка", "failed"),
        Some(OrderStatus::BadRequest) => lang.pick("неверный запрос", "bad request"),
        None => lang.pick("все", "all"),
    }
}

/// Why an order failed, in the page's language (the connector's own words go under "details").
fn reason_text(lang: Lang, order: &Order) -> String {
    match order.reason {
        Some(reason) => reason.describe(lang == Lang::Ru).to_owned(),
        None if order.status == OrderStatus::BadRequest => lang
            .pick("заказ OilMat не принят", "OilMat's order was refused")
            .to_owned(),
        None => String::new(),
    }
}

#[derive(Deserialize)]
struct StatusQuery {
    #[serde(default)]
    status: String,
}

#[tracing::instrument(skip_all)]
async fn integration_page(
    State(erp): State<Erp>,
    admin: Admin,
    Path(id): Path<i64>,
    Query(query): Query<StatusQuery>,
) -> Result<Response, HttpError> {
    let integration = erp.integrations.get(IntegrationId(id)).await?;
    let status = OrderStatus::parse(&query.status);
    let health = erp.orders.health(integration.id).await?;
    let orders = erp
        .orders
        .list(integration.id, status, ORDERS_SHOWN)
        .await?
        .into_iter()
        .map(|order| OrderRow {
            received: when(&erp, Some(order.received_ms)),
            finished: when(&erp, order.finished_ms),
            reason: reason_text(admin.lang, &order),
            order,
        })
        .collect();
    let versions = erp
        .integrations
        .script_versions(integration.id)
        .await?
        .into_iter()
        .map(|version| {
            let changed = when(&erp, Some(version.changed_ms));
            (version, changed)
        })
        .collect();
    let (listener, listener_ok) =
        listener_text(admin.lang, &integration, erp.listeners.get(integration.id));
    Ok(render(&IntegrationPage {
        page: admin.page(integration.workshop.as_str(), integration.workshop.as_str()),
        section: "/admin/erp/",
        form: FormValues::of(&integration),
        last_success: when(&erp, health.last_success_ms),
        last_error: when(&erp, health.last_error_ms),
        last_reason: last_reason(admin.lang, &health),
        health,
        listener,
        listener_ok,
        integration,
        units: units(&erp).await?,
        types: ErpType::ALL.iter().map(|t| t.name()).collect(),
        status: status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        statuses: OrderStatus::ALL.iter().map(|s| s.as_str()).collect(),
        orders,
        versions,
    }))
}

#[derive(Template)]
#[template(path = "admin_erp_order.html")]
struct OrderPage {
    page: PageContext,
    section: &'static str,
    integration: Integration,
    order: Order,
    status: &'static str,
    reason: String,
    times: Vec<(&'static str, String)>,
    evidence: Vec<(EvidenceRow, String)>,
    in_error_queue: bool,
}

#[tracing::instrument(skip_all)]
async fn order_page(
    State(erp): State<Erp>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Response, HttpError> {
    let order = erp.orders.find(OrderId(id)).await?;
    let integration = erp.integrations.get(order.integration_id).await?;
    let lang = admin.lang;
    let evidence = erp
        .orders
        .evidence(order.id)
        .await?
        .into_iter()
        .map(|row| {
            let at = when(&erp, Some(row.created_ms));
            (row, at)
        })
        .collect();
    let in_error_queue = erp
        .orders
        .queued(integration.id, &[JobState::Dead])
        .await?
        .iter()
        .any(|(_, queued)| queued.id == order.id);
    Ok(render(&OrderPage {
        page: admin.page(
            &format!("Заказ {}", order.unique_id),
            &format!("Order {}", order.unique_id),
        ),
        section: "/admin/erp/",
        status: status_label(lang, order.status.as_str()),
        reason: reason_text(lang, &order),
        times: vec![
            (
                lang.pick("Принят", "Received"),
                when(&erp, Some(order.received_ms)),
            ),
            (lang.pick("Начат", "Started"), when(&erp, order.started_ms)),
            (
                lang.pick("Закончен", "Finished"),
                when(&erp, order.finished_ms),
            ),
        ],
        evidence,
        in_error_queue,
        integration,
        order,
    }))
}

#[tracing::instrument(skip_all)]
async fn requeue(
    State(erp): State<Erp>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, HttpError> {
    let order = erp.orders.find(OrderId(id)).await?;
    let integration = erp.integrations.get(order.integration_id).await?;
    erp.orders.requeue(&integration, order.id).await?;
    Ok(Redirect::to(&format!("/admin/erp/orders/{id}")))
}

/// Deletes the order's dead letter (it stays `failed`).
#[tracing::instrument(skip_all)]
async fn forget(
    State(erp): State<Erp>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, HttpError> {
    let order = erp.orders.find(OrderId(id)).await?;
    erp.orders
        .delete_error(order.integration_id, order.id)
        .await?;
    Ok(Redirect::to(&format!("/admin/erp/orders/{id}")))
}

/// A failed attempt's screenshot (`screenshot.png`) or page (`page.html`, served as text so it never runs here).
async fn evidence_file(
    State(erp): State<Erp>,
    _admin: Admin,
    Path((id, attempt, file)): Path<(i64, i64, String)>,
) -> Result<Response, HttpError> {
    let evidence = erp.orders.evidence(OrderId(id)).await?;
    let Some(row) = evidence.into_iter().find(|row| row.attempt == attempt) else {
        return Err(HttpError::not_found(Text::new(
            "Нет такого снимка.",
            "No such screenshot.",
        )));
    };
    let (kind, body) = match file.as_str() {
        "screenshot.png" => ("image/png", row.screenshot),
        "page.html" => ("text/plain; charset=utf-8", row.dom.into_bytes()),
        _ => {
            return Err(HttpError::not_found(Text::new(
                "Нет такого файла.",
                "No such file.",
            )));
        }
    };
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(kind))],
        body,
    )
        .into_response())
}
