//! The ERP bridge's management API under `/api/v1/erp/`: integrations with their health, added, changed and
//! removed; started, stopped, restarted and killed; their orders; a failed order put back in the queue or taken out
//! of the error queue. Callers present a service token of scope `erp` or `admin`. A password is written, never
//! read back.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tillwire_platform::error::ErrorBody;
use tillwire_platform::tokens::{ScopedCaller, TokenScope};
use tillwire_platform::{HttpError, Platform, Text};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::Erp;
use crate::connector::Script;
use crate::integrations::{
    ErpUrl, Integration, IntegrationId, IntegrationSpec, Problems, Workshop, script_problems,
};
use crate::listeners::ListenerState;
use crate::model::{ErpType, OrderStatus};
use crate::orders::{Order, OrderId};

#[derive(OpenApi)]
#[openapi(
    info(title = "tillwire ERP API", version = "1", description = "The ERP bridge (replaces oilmat-erp): integrations per workshop, their health and orders. OilMat's own contract is served per integration at /erp/{workshop}/ and on its port. Authenticate with `Authorization: Bearer <service token>` of scope `erp` or `admin`."),
    paths(list_integrations, create_integration, get_integration, update_integration, delete_integration, act, list_orders, get_order, requeue_order, forget_order),
    components(schemas(ErpIntegration, ErpIntegrationInput, ErpAction, ErpOrder, ErpType, ErpOrderStatus, ErrorBody)),
    modifiers(&TokenAuth)
)]
pub struct ErpApi;

struct TokenAuth;

impl utoipa::Modify for TokenAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("A service token of scope `erp` or `admin`.".into());
        components.add_security_scheme("erp_token", SecurityScheme::Http(scheme));
    }
}

pub struct ErpScope;

impl TokenScope for ErpScope {
    const SCOPE: &'static str = crate::AREA.name;
    const NAME_RU: &'static str = "интеграциям ERP";
    const NAME_EN: &'static str = "the ERP integrations";
}

type Caller = ScopedCaller<ErpScope>;

impl axum::extract::FromRef<Erp> for Platform {
    fn from_ref(erp: &Erp) -> Platform {
        erp.platform.clone()
    }
}

pub fn router(erp: Erp) -> Router {
    Router::new()
        .route(
            "/api/v1/erp/integrations",
            get(list_integrations).post(create_integration),
        )
        .route(
            "/api/v1/erp/integrations/{id}",
            get(get_integration)
                .put(update_integration)
                .delete(delete_integration),
        )
        .route("/api/v1/erp/integrations/{id}/orders", get(list_orders))
        .route("/api/v1/erp/integrations/{id}/{action}", post(act))
        .route("/api/v1/erp/orders/{id}", get(get_order))
        .route("/api/v1/erp/orders/{id}/requeue", post(requeue_order))
        .route("/api/v1/erp/orders/{id}/error", delete(forget_order))
        .with_state(erp)
}

/// An integration, its settings and its health in this instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErpIntegration {
    pub id: i64,
    pub workshop: String,
    pub erp_type: ErpType,
    pub base_url: String,
    pub unit_id: Option<i64>,
    pub username: Option<String>,
    /// Whether a password is stored (it is never shown).
    pub has_password: bool,
    pub active: bool,
    pub autostart: bool,
    pub worker_running: bool,
    pub port: Option<u16>,
    /// Where this instance listens for it, when it does.
    pub listening: Option<String>,
    /// Why this instance could not open its port.
    pub listener_error: Option<String>,
    pub max_attempts: i64,
    pub task_timeout_secs: i64,
    /// The connector's locators and waits.
    #[schema(value_type = Object)]
    pub script: serde_json::Value,
    pub script_version: i64,
    /// Orders received or processing.
    pub waiting: i64,
    /// Orders in the error queue.
    pub errors: i64,
    /// The order being processed.
    pub current_task: Option<String>,
    pub last_success_ms: Option<i64>,
    pub last_error_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// An integration's settings. Omitted fields take their defaults; `password` omitted keeps the stored one,
/// `""` removes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErpIntegrationInput {
    #[schema(min_length = 1, max_length = 64, pattern = r"^[\p{L}\p{N} ._-]+$")]
    pub workshop: String,
    pub erp_type: ErpType,
    /// Default: the real ERP.
    pub base_url: Option<String>,
    pub unit_id: Option<i64>,
    pub username: Option<String>,
    #[schema(write_only)]
    pub password: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub autostart: bool,
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    #[schema(minimum = 1, maximum = 10)]
    pub max_attempts: Option<i64>,
    #[schema(minimum = 5, maximum = 50)]
    pub task_timeout_secs: Option<i64>,
    /// The connector's locators and waits; default: the ERP's.
    #[schema(value_type = Option<Object>)]
    pub script: Option<serde_json::Value>,
}

fn yes() -> bool {
    true
}

/// What to do with an integration.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErpAction {
    /// Active, worker on.
    Start,
    /// Worker parked (between tasks).
    Stop,
    /// Browser closed, then started.
    Restart,
    /// Listener closed, worker parked: inactive until started.
    Kill,
}

/// An order's status, as OilMat reads it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum ErpOrderStatus {
    #[serde(rename = "received")]
    Received,
    #[serde(rename = "processing")]
    Processing,
    #[serde(rename = "completed")]
    Completed,
    #[serde(rename = "failed")]
    Failed,
    #[serde(rename = "bad request")]
    BadRequest,
}

impl ErpOrderStatus {
    fn of(status: OrderStatus) -> Self {
        match status {
            OrderStatus::Received => ErpOrderStatus::Received,
            OrderStatus::Processing => ErpOrderStatus::Processing,
            OrderStatus::Completed => ErpOrderStatus::Completed,
            OrderStatus::Failed => ErpOrderStatus::Failed,
            OrderStatus::BadRequest => ErpOrderStatus::BadRequest,
        }
    }

    fn status(self) -> OrderStatus {
        match self {
            ErpOrderStatus::Received => OrderStatus::Received,
            ErpOrderStatus::Processing => OrderStatus::Processing,
            ErpOrderStatus::Completed => OrderStatus::Completed,
            ErpOrderStatus::Failed => OrderStatus::Failed,
            ErpOrderStatus::BadRequest => OrderStatus::BadRequest,
        }
    }
}

/// An order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErpOrder {
    pub id: i64,
    pub integration_id: i64,
    pub unique_id: String,
    pub dealer: String,
    pub case_nr: String,
    pub product_nr: String,
    pub amount: Option<i64>,
    pub status: ErpOrderStatus,
    /// `login_failed`, `case_not_found`, `product_entry_failed`, `verify_failed`, `browser_start_failed`,
    /// `timeout`, `erp_unreachable`, `no_credentials`, `not_migrated` or `cleared`.
    pub reason: Option<String>,
    pub message: Option<String>,
    pub attempts: i64,
    /// Imported from OilMat's database.
    pub imported: bool,
    pub received_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

impl From<Order> for ErpOrder {
    fn from(order: Order) -> Self {
        ErpOrder {
            id: order.id.0,
            integration_id: order.integration_id.0,
            unique_id: order.unique_id,
            dealer: order.dealer,
            case_nr: order.case_nr,
            product_nr: order.product_nr,
            amount: order.amount,
            status: ErpOrderStatus::of(order.status),
            reason: order.reason.map(|r| r.code().to_owned()),
            message: order.message,
            attempts: order.attempts,
            imported: order.imported,
            received_ms: order.received_ms,
            started_ms: order.started_ms,
            finished_ms: order.finished_ms,
        }
    }
}

async fn describe(erp: &Erp, integration: Integration) -> Result<ErpIntegration, HttpError> {
    let health = erp.orders.health(integration.id).await?;
    let (listening, listener_error) = match erp.listeners.get(integration.id) {
        Some(ListenerState::Listening { address }) => (Some(address), None),
        Some(ListenerState::Refused { address, error }) => {
            (None, Some(format!("{address}: {error}")))
        }
        None => (None, None),
    };
    Ok(ErpIntegration {
        id: integration.id.0,
        workshop: integration.workshop.to_string(),
        erp_type: integration.erp_type,
        base_url: integration.base_url.as_str().to_owned(),
        unit_id: integration.unit_id,
        username: integration.username,
        has_password: integration.has_password,
        active: integration.active,
        autostart: integration.autostart,
        worker_running: integration.worker_running,
        port: integration.port,
        listening,
        listener_error,
        max_attempts: integration.max_attempts,
        task_timeout_secs: integration.task_timeout_secs,
        script: serde_json::from_str(&integration.script.to_json_pretty()).unwrap_or_default(),
        script_version: integration.script_version,
        waiting: health.waiting,
        errors: health.errors,
        current_task: health.current,
        last_success_ms: health.last_success_ms,
        last_error_ms: health.last_error_ms,
        last_error: health.last_error,
    })
}

impl ErpIntegrationInput {
    fn spec(self, current: Option<&Integration>) -> Result<IntegrationSpec, HttpError> {
        let workshop = Workshop::parse(&self.workshop);
        let placeholder = || Workshop::parse("-").expect("a valid name");
        let mut spec = IntegrationSpec::new(
            workshop.clone().unwrap_or_else(|_| placeholder()),
            self.erp_type,
        );
        if let Some(url) = self.base_url.filter(|url| !url.trim().is_empty()) {
            spec.base_url =
                ErpUrl::parse(&url).map_err(|text| HttpError::field("base_url", text))?;
        }
        spec.script = match (self.script, current) {
            (Some(script), _) => Script::from_json(&script.to_string())
                .map_err(|found| HttpError::field("script", script_problems(&found)))?,
            (None, Some(current)) if current.erp_type == self.erp_type => current.script.clone(),
            (None, _) => spec.script,
        };
        spec.unit_id = self.unit_id;
        spec.username = self.username.filter(|u| !u.trim().is_empty());
        spec.password = self.password;
        spec.active = self.active;
        spec.autostart = self.autostart;
        spec.port = self.port;
        spec.max_attempts = self.max_attempts.unwrap_or(spec.max_attempts);
        spec.task_timeout_secs = self.task_timeout_secs.unwrap_or(spec.task_timeout_secs);
        // Every wrong field is named at once.
        if let Err(text) = workshop {
            let mut problems = Problems::default();
            problems.add("workshop", text);
            problems.absorb(spec.check());
            problems.into_result()?;
        }
        Ok(spec)
    }
}

fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, HttpError> {
    json.map(|Json(value)| value)
        .map_err(HttpError::unreadable_body)
}

#[utoipa::path(get, path = "/api/v1/erp/integrations", tag = "erp", security(("erp_token" = [])),
    responses((status = 200, body = [ErpIntegration]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn list_integrations(
    State(erp): State<Erp>,
    _caller: Caller,
) -> Result<Json<Vec<ErpIntegration>>, HttpError> {
    let mut described = Vec::new();
    for integration in erp.integrations.list().await? {
        described.push(describe(&erp, integration).await?);
    }
    Ok(Json(described))
}

#[utoipa::path(post, path = "/api/v1/erp/integrations", tag = "erp", security(("erp_token" = [])),
    request_body = ErpIntegrationInput,
    responses((status = 201, body = ErpIntegration), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn create_integration(
    State(erp): State<Erp>,
    caller: Caller,
    json: Result<Json<ErpIntegrationInput>, JsonRejection>,
) -> Result<(StatusCode, Json<ErpIntegration>), HttpError> {
    let spec = body(json)?.spec(None)?;
    let by = format!("token:{}", caller.0.name);
    let integration = erp.integrations.create(&spec, &by).await?;
    if integration.active && integration.autostart {
        erp.set_worker(integration.id, true).await?;
    }
    erp.changed().await;
    let integration = erp.integrations.get(integration.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(describe(&erp, integration).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/erp/integrations/{id}", tag = "erp", security(("erp_token" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = ErpIntegration), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn get_integration(
    State(erp): State<Erp>,
    _caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<ErpIntegration>, HttpError> {
    let integration = erp.integrations.get(IntegrationId(id)).await?;
    Ok(Json(describe(&erp, integration).await?))
}

#[utoipa::path(put, path = "/api/v1/erp/integrations/{id}", tag = "erp", security(("erp_token" = [])),
    params(("id" = i64, Path)), request_body = ErpIntegrationInput,
    responses((status = 200, body = ErpIntegration), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn update_integration(
    State(erp): State<Erp>,
    caller: Caller,
    Path(id): Path<i64>,
    json: Result<Json<ErpIntegrationInput>, JsonRejection>,
) -> Result<Json<ErpIntegration>, HttpError> {
    let id = IntegrationId(id);
    let current = erp.integrations.get(id).await?;
    let spec = body(json)?.spec(Some(&current))?;
    let integration = erp
        .integrations
        .update(id, &spec, &format!("token:{}", caller.0.name))
        .await?;
    erp.changed().await;
    Ok(Json(describe(&erp, integration).await?))
}

#[utoipa::path(delete, path = "/api/v1/erp/integrations/{id}", tag = "erp", security(("erp_token" = [])),
    params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn delete_integration(
    State(erp): State<Erp>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, HttpError> {
    let id = IntegrationId(id);
    erp.integrations.get(id).await?;
    erp.worker.close(id).await;
    erp.integrations
        .delete(id, &format!("token:{}", caller.0.name))
        .await?;
    erp.changed().await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/erp/integrations/{id}/{action}", tag = "erp", security(("erp_token" = [])),
    params(("id" = i64, Path), ("action" = ErpAction, Path)),
    responses((status = 200, body = ErpIntegration), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn act(
    State(erp): State<Erp>,
    _caller: Caller,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Json<ErpIntegration>, HttpError> {
    let id = IntegrationId(id);
    let action: ErpAction = serde_json::from_value(serde_json::Value::from(action))
        .map_err(|_| HttpError::field("action", Text::same("start, stop, restart, kill")))?;
    erp.integrations.get(id).await?;
    match action {
        ErpAction::Start => erp.start(id).await?,
        ErpAction::Stop => erp.set_worker(id, false).await?,
        ErpAction::Restart => erp.restart(id).await?,
        ErpAction::Kill => erp.kill(id).await?,
    }
    let integration = erp.integrations.get(id).await?;
    Ok(Json(describe(&erp, integration).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OrderQuery {
    /// Only orders in this status.
    status: Option<ErpOrderStatus>,
    /// At most this many, newest first (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/erp/integrations/{id}/orders", tag = "erp", security(("erp_token" = [])),
    params(("id" = i64, Path), OrderQuery),
    responses((status = 200, body = [ErpOrder]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn list_orders(
    State(erp): State<Erp>,
    _caller: Caller,
    Path(id): Path<i64>,
    query: Result<Query<OrderQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ErpOrder>>, HttpError> {
    let Query(query) = query.map_err(|_| {
        HttpError::invalid(Text::new(
            "status: received, processing, completed, failed или bad request; limit: от 1 до 1000.",
            "status: received, processing, completed, failed or bad request; limit: 1 to 1000.",
        ))
    })?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(HttpError::field(
            "limit",
            Text::new("От 1 до 1000.", "1 to 1000."),
        ));
    }
    let integration = erp.integrations.get(IntegrationId(id)).await?;
    let orders = erp
        .orders
        .list(
            integration.id,
            query.status.map(ErpOrderStatus::status),
            limit,
        )
        .await?;
    Ok(Json(orders.into_iter().map(ErpOrder::from).collect()))
}

#[utoipa::path(get, path = "/api/v1/erp/orders/{id}", tag = "erp", security(("erp_token" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = ErpOrder), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn get_order(
    State(erp): State<Erp>,
    _caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<ErpOrder>, HttpError> {
    Ok(Json(erp.orders.find(OrderId(id)).await?.into()))
}

#[utoipa::path(post, path = "/api/v1/erp/orders/{id}/requeue", tag = "erp", security(("erp_token" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = ErpOrder), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn requeue_order(
    State(erp): State<Erp>,
    _caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<ErpOrder>, HttpError> {
    let order = erp.orders.find(OrderId(id)).await?;
    let integration = erp.integrations.get(order.integration_id).await?;
    Ok(Json(
        erp.orders.requeue(&integration, order.id).await?.into(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/erp/orders/{id}/error", tag = "erp", security(("erp_token" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = ErpOrder), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn forget_order(
    State(erp): State<Erp>,
    _caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<ErpOrder>, HttpError> {
    let order = erp.orders.find(OrderId(id)).await?;
    Ok(Json(
        erp.orders
            .delete_error(order.integration_id, order.id)
            .await?
            .into(),
    ))
}
