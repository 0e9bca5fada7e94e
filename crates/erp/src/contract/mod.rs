//! oilmat-erp's HTTP contract (spec §1.2–§1.7 and §7.2–§7.5), served for each integration on its own listener
//! (where OilMat's clients call it) and under `/erp/{workshop}/` on the main one. The paths, methods, keys,
//! messages and status codes are the original's; what §6 calls defects is not: no password is read back, a
//! `unique_id` is queued once, `/queue` lists without draining, values are checked before they are queued, and
//! every route needs a token or an allow-listed address (intake and management are separate scopes).

pub mod flask;

use axum::Router;
use axum::extract::{FromRequestParts, Query, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get, post, put};
use bytes::Bytes;
use serde_json::{Map, Value};
use tillwire_platform::jobs::JobState;
use tillwire_platform::tokens::{Tokens, presented};
use tillwire_platform::web::ClientAddr;

use crate::Erp;
use crate::integrations::{Integration, IntegrationId};
use crate::model::{Amount, Credentials, LineOrder, OrderRef, OrderStatus};
use crate::orders::{Intake, Order, Received};
use flask::{Item, object};

/// The token scope of OilMat's order intake: `/create`, `/check_order_status` and `/alive`. The rest (queues,
/// worker, kill) needs the area's own scope, `erp`.
pub const INTAKE_SCOPE: &str = "erp.intake";

/// The typo existing clients read (spec §1.2).
const ALIVE_KEY: &str = "API is alive, worker runningg";

/// The integration a request on its own listener is for.
#[derive(Debug, Clone, Copy)]
struct Fixed(IntegrationId);

/// The routes, without the integration: [`own_listener`] and [`main_mount`] say which.
fn routes() -> Router<Erp> {
    Router::new()
        .route("/alive", get(alive))
        .route("/check_order_status", get(check_order_status))
        .route("/queue", get(queue))
        .route("/clear_queue", put(clear_queue))
        .route("/kill", put(kill))
        .route("/start_worker", put(start_worker))
        .route("/stop_worker", put(stop_worker))
        .route("/create", post(create))
        .method_not_allowed_fallback(|| async { flask::method_not_allowed() })
}

/// The contract on an integration's own listener, as `python app.py PORT WORKSHOP TYPE` served it.
pub fn own_listener(erp: Erp, id: IntegrationId) -> Router {
    routes()
        .fallback(|| async { flask::not_found() })
        .layer(middleware::from_fn_with_state(erp.clone(), guard))
        .layer(axum::Extension(Fixed(id)))
        .with_state(erp)
}

/// The contract of every integration under `/erp/{workshop}/` on the main listener.
pub fn main_mount(erp: Erp) -> Router {
    Router::new()
        .nest("/erp/{workshop}", routes())
        .route(
            "/erp/{workshop}/{*rest}",
            any(|| async { flask::not_found() }),
        )
        .layer(middleware::from_fn_with_state(erp.clone(), guard))
        .with_state(erp)
}

/// The integration a request is for, active; a request for an unknown or inactive one is answered 404 as an
/// unknown path was.
struct Target(Integration);

impl FromRequestParts<Erp> for Target {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, erp: &Erp) -> Result<Self, Response> {
        let found = match parts.extensions.get::<Fixed>() {
            Some(Fixed(id)) => erp.integration(*id).await,
            None => {
                let params = RawPathParams::from_request_parts(parts, erp)
                    .await
                    .map_err(|_| flask::not_found())?;
                let workshop = params
                    .iter()
                    .find(|(name, _)| *name == "workshop")
                    .map(|(_, value)| value.to_owned())
                    .ok_or_else(flask::not_found)?;
                erp.integration_of(&workshop).await
            }
        };
        match found {
            Ok(integration) if integration.active => Ok(Target(integration)),
            Ok(_) => Err(flask::not_found()),
            Err(error) if error.status() == StatusCode::NOT_FOUND => Err(flask::not_found()),
            Err(error) => Err(internal(error)),
        }
    }
}

fn internal(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "erp: the contract could not answer");
    flask::error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
}

/// Whether a path is OilMat's intake (the rest is management).
fn is_intake(path: &str) -> bool {
    ["/create", "/check_order_status", "/alive"]
        .iter()
        .any(|route| path.ends_with(route))
}

/// A presented token must be valid and of the right scope (`erp.intake` for the intake, `erp` for all,
/// `admin`); without one the client's address must be allow-listed (`[erp] allow`, default loopback).
async fn guard(
    State(erp): State<Erp>,
    ClientAddr(address): ClientAddr,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    let intake = is_intake(request.uri().path());
    match presented(request.headers(), &["bearer"]) {
        Some(token) => match Tokens(&erp.platform.store).authenticate(token).await {
            Ok(Some(identity))
                if identity.allows(crate::AREA.name)
                    || (intake && identity.scope == INTAKE_SCOPE) =>
            {
                next.run(request).await
            }
            Ok(Some(identity)) => {
                tracing::warn!(%address, token = identity.id, scope = %identity.scope, "erp: a token of another scope");
                flask::error(
                    StatusCode::FORBIDDEN,
                    "This token does not allow this request",
                )
            }
            Ok(None) => flask::error(StatusCode::UNAUTHORIZED, "Invalid token"),
            Err(error) => internal(error),
        },
        None if erp.allow.contains(address) => next.run(request).await,
        None => {
            tracing::warn!(%address, "erp: a request without a token from outside the allowed networks");
            flask::error(
                StatusCode::UNAUTHORIZED,
                "A token is required: Authorization: Bearer <token>",
            )
        }
    }
}

#[tracing::instrument(skip_all, fields(workshop = %integration.workshop))]
async fn alive(State(erp): State<Erp>, Target(integration): Target) -> Response {
    let health = match erp.health(integration.id).await {
        Ok(health) => health,
        Err(error) => return internal(error),
    };
    let running = integration.worker_running;
    flask::json(
        StatusCode::OK,
        &object([
            (ALIVE_KEY, Value::from(running)),
            ("worker_running", Value::from(running)),
            ("workshop", Value::from(integration.workshop.as_str())),
            ("erp_type", Value::from(integration.erp_type.name())),
            ("current_task", Value::from(health.current)),
            ("queue_length", Value::from(health.waiting)),
            ("error_length", Value::from(health.errors)),
            (
                "last_success_at",
                Value::from(health.last_success_ms.map(iso)),
            ),
            ("last_error_at", Value::from(health.last_error_ms.map(iso))),
            ("last_error", Value::from(health.last_error)),
        ]),
    )
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[derive(serde::Deserialize)]
struct StatusQuery {
    unique_id: Option<String>,
}

#[tracing::instrument(skip_all, fields(workshop = %integration.workshop))]
async fn check_order_status(
    State(erp): State<Erp>,
    Target(integration): Target,
    Query(query): Query<StatusQuery>,
) -> Response {
    let Some(unique_id) = query.unique_id.filter(|id| !id.is_empty()) else {
        return flask::error(StatusCode::BAD_REQUEST, "order_id is required");
    };
    match erp.orders.get(integration.id, &unique_id).await {
        Ok(Some(order)) => flask::json(StatusCode::OK, &status_of(&order)),
        Ok(None) => flask::error(StatusCode::NOT_FOUND, "Order not found"),
        Err(error) => internal(error),
    }
}

/// `{reason, status, unique_id}`, plus what §8 asks: the reason's code, attempts and times. `reason` is the
/// failure's code and message (never the request, which held the password); `null` while nothing went wrong.
fn status_of(order: &Order) -> Value {
    let reason = match (order.reason, order.message.as_deref()) {
        (Some(code), Some(message)) => Some(format!("{code}: {message}")),
        (Some(code), None) => Some(code.code().to_owned()),
        (None, Some(message)) if order.status != OrderStatus::Completed => Some(message.to_owned()),
        _ => None,
    };
    object([
        ("reason", Value::from(reason)),
        ("reason_code", Value::from(order.reason.map(|r| r.code()))),
        ("status", Value::from(order.status.as_str())),
        ("unique_id", Value::from(order.unique_id.as_str())),
        ("attempts", Value::from(order.attempts)),
        ("received_at", Value::from(iso(order.received_ms))),
        ("started_at", Value::from(order.started_ms.map(iso))),
        ("finished_at", Value::from(order.finished_ms.map(iso))),
    ])
}

#[derive(serde::Deserialize)]
struct QueueQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Which queue `?type=` names: the task queue (waiting and running jobs) or the error queue (dead jobs).
fn queue_states(query: &QueueQuery) -> Option<&'static [JobState]> {
    match query.kind.as_deref() {
        Some("task") => Some(&[JobState::Pending, JobState::Running]),
        Some("error") => Some(&[JobState::Dead]),
        _ => None,
    }
}

/// The original's 7-tuples (8 with the error), the login left out: `'***'` stands where it was.
fn tuples(orders: &[Order], with_error: bool) -> String {
    let rows: Vec<Vec<Item>> = orders
        .iter()
        .map(|order| {
            let mut row = vec![
                Item::Str(order.dealer.clone()),
                Item::Str(order.case_nr.clone()),
                Item::Str(order.product_nr.clone()),
                Item::Str(order.amount.map(|a| a.to_string()).unwrap_or_default()),
                Item::Str(order.unique_id.clone()),
                Item::Str("***".into()),
                Item::Str("***".into()),
            ];
            if with_error {
                let error = match (order.reason, order.message.as_deref()) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.code().to_owned(),
                    (None, message) => message.unwrap_or_default().to_owned(),
                };
                row.push(Item::Str(error));
            }
            row
        })
        .collect();
    flask::repr_tuples(&rows)
}

#[tracing::instrument(skip_all, fields(workshop = %integration.workshop))]
async fn queue(
    State(erp): State<Erp>,
    Target(integration): Target,
    Query(query): Query<QueueQuery>,
) -> Response {
    let Some(states) = queue_states(&query) else {
        return flask::error(StatusCode::BAD_REQUEST, "Invalid queue type");
    };
    match erp.orders.queued(integration.id, states).await {
        Ok(queued) => {
            let orders: Vec<Order> = queued.into_iter().map(|(_, order)| order).collect();
            flask::json(
                StatusCode::OK,
                &object([
                    (
                        "queue",
                        Value::from(tuples(&orders, states == [JobState::Dead])),
                    ),
                    ("length", Value::from(orders.len())),
                ]),
            )
        }
        Err(error) => internal(error),
    }
}

#[tracing::instrument(skip_all, fields(workshop = %integration.workshop))]
async fn clear_queue(
    State(erp): State<Erp>,
    Target(integration): Target,
    Query(query): Query<QueueQuery>,
) -> Response {
    let removed = match query.kind.as_deref() {
        Some("task") => erp
            .orders
            .clear_tasks(integration.id)
            .await
            .map(|o| (o, false)),
        Some("error") => erp
            .orders
            .clear_errors(integration.id)
            .await
            .map(|o| (o, true)),
        _ => return flask::error(StatusCode::BAD_REQUEST, "Invalid queue type"),
    };
    match removed {
        Ok((orders, errors)) => {
            tracing::info!(removed = orders.len(), errors, "erp: queue cleared");
            flask::json(
                StatusCode::OK,
                &object([(
                    "Queue elements removed",
                    Value::from(tuples(&orders, errors)),
                )]),
            )
        }
        Err(error) => internal(error),
    }
}

#[tracing::instrument(skip_all, fields(workshop = %integration.workshop))]
async fn kill(State(erp): State<Erp>, Target(integration): Target) -> Response {
    match erp.kill(integration.id).await {
        Ok(()) => flask::json(
            StatusCode::OK,
            &object([("Shutting down", Value::from(std::process::id()))]),
        ),
        Err(error) => {
            tracing::error!(%error, "erp: kill failed");
            flask::error(StatusCode::INTERNAL_SERVER_ERROR, "Failed to shutdown API")
        }
    }
}

async fn start_worker(State(erp): State<Erp>, Target(integration): Target) -> Response {
    switch_worker(erp, integration, true).await
}

async fn stop_worker(State(erp): State<Erp>, Target(integration): Target) -> Response {
    switch_worker(erp, integration, false).await
}

#[tracing::instrument(skip_all, fields(workshop = %integration.workshop, running))]
async fn switch_worker(erp: Erp, integration: Integration, running: bool) -> Response {
    match erp.set_worker(integration.id, running).await {
        Ok(()) => flask::json(
            StatusCode::OK,
            &object([("Worker running", Value::from(running))]),
        ),
        Err(error) => internal(error),
    }
}

/// The keys of `/create`, in the order the original checked them, with the README's aliases.
const REQUIRED: [(&str, Option<&str>); 5] = [
    ("unique_id", None),
    ("dealer", Some("workshop")),
    ("case_nr", Some("case_id")),
    ("product_nr", None),
    ("product_amount", None),
];
const LOGIN: [&str; 2] = ["username", "password"];

/// Why a `/create` was refused, as the original words it.
enum Refusal {
    /// Werkzeug's 415 page.
    NotJson,
    /// Werkzeug's 400 page.
    Unreadable,
    /// 400 `{"error": …}`.
    Said(String),
}

/// What Python raised when the inner JSON was not an object and the handler indexed it with a key.
fn python_index_error(value: &Value) -> String {
    let error = match value {
        Value::Array(_) => "TypeError('list indices must be integers or slices, not str')",
        Value::String(_) => "TypeError('string indices must be integers, not \\'str\\'')",
        Value::Number(n) if n.is_f64() => "TypeError(\"'float' object is not subscriptable\")",
        Value::Number(_) => "TypeError(\"'int' object is not subscriptable\")",
        Value::Bool(_) => "TypeError(\"'bool' object is not subscriptable\")",
        _ => "TypeError(\"'NoneType' object is not subscriptable\")",
    };
    format!("Missing required parameter:e={error}")
}

/// The order's fields, double-encoded (a JSON string holding JSON, as OilMat's client sends it) or a plain
/// object (which the original answered 500).
fn fields(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Refusal> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase())
        .is_some_and(|mime| {
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
    if !json_type {
        return Err(Refusal::NotJson);
    }
    let outer: Value = serde_json::from_slice(body).map_err(|_| Refusal::Unreadable)?;
    let inner = match outer {
        Value::String(text) => serde_json::from_str::<Value>(&text)
            .map_err(|_| Refusal::Said("Invalid JSON format".into()))?,
        Value::Object(_) => outer,
        _ => return Err(Refusal::Said("Invalid JSON format".into())),
    };
    match inner {
        Value::Object(map) => Ok(map),
        other => Err(Refusal::Said(python_index_error(&other))),
    }
}

/// A value as text: strings as they are, numbers as Python's `str()` would print them.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The checked order, or the refusal and the `unique_id` to record it under when one could be read.
fn parse_order(
    map: &Map<String, Value>,
    needs_login: bool,
) -> Result<(Intake, Option<Credentials>), (String, Option<OrderRef>)> {
    let get =
        |key: &str, alias: Option<&str>| map.get(key).or_else(|| alias.and_then(|a| map.get(a)));
    let missing = |key: &str| format!("Missing required parameter:e=KeyError('{key}')");
    for (key, alias) in REQUIRED {
        if get(key, alias).is_none() {
            let unique_id = get("unique_id", None)
                .and_then(text_of)
                .and_then(|t| OrderRef::parse(&t).ok());
            return Err((missing(key), unique_id));
        }
    }
    let unique_id = text_of(&map["unique_id"])
        .ok_or_else(|| "Invalid unique_id".to_owned())
        .and_then(|text| OrderRef::parse(&text).map_err(|why| format!("Invalid unique_id: {why}")))
        .map_err(|message| (message, None))?;
    let refuse = |message: String| (message, Some(unique_id.clone()));
    if needs_login && let Some(key) = LOGIN.iter().find(|key| !map.contains_key(**key)) {
        return Err(refuse(missing(key)));
    }
    let checked = |key: &str, alias: Option<&str>| {
        get(key, alias)
            .and_then(text_of)
            .ok_or_else(|| "must be a string".to_owned())
            .and_then(|text| OrderRef::parse(&text))
            .map_err(|why| refuse(format!("Invalid {key}: {why}")))
    };
    let case_nr = checked("case_nr", Some("case_id"))?;
    let product_nr = checked("product_nr", None)?;
    let amount = Amount::from_json(&map["product_amount"])
        .map_err(|why| refuse(format!("Invalid product_amount: {why}")))?;
    let dealer = get("dealer", Some("workshop"))
        .and_then(text_of)
        .unwrap_or_default();
    if dealer.chars().count() > 200 {
        return Err(refuse("Invalid dealer: at most 200 characters".into()));
    }
    let login = if needs_login {
        let text = |key: &str| map.get(key).and_then(text_of).unwrap_or_default();
        let login = Credentials {
            username: text("username"),
            password: text("password"),
        };
        if login.username.is_empty() || login.password.is_empty() {
            return Err(refuse(
                "Invalid username or password: must not be empty".into(),
            ));
        }
        Some(login)
    } else {
        None
    };
    Ok((
        Intake {
            dealer,
            line: LineOrder {
                unique_id,
                case_nr,
                product_nr,
                amount,
            },
            sealed_credentials: None,
        },
        login,
    ))
}

#[tracing::instrument(skip_all, fields(workshop = %integration.workshop))]
async fn create(
    State(erp): State<Erp>,
    Target(integration): Target,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let map = match fields(&headers, &body) {
        Ok(map) => map,
        Err(Refusal::NotJson) => return flask::unsupported_media_type(),
        Err(Refusal::Unreadable) => return flask::bad_request(),
        Err(Refusal::Said(message)) => return flask::error(StatusCode::BAD_REQUEST, &message),
    };
    let needs_login = !integration.has_login();
    let (mut intake, login) = match parse_order(&map, needs_login) {
        Ok(parsed) => parsed,
        Err((message, unique_id)) => {
            if let Some(unique_id) = unique_id
                && let Err(error) = erp
                    .orders
                    .bad_request(integration.id, &unique_id, &message)
                    .await
            {
                return internal(error);
            }
            tracing::info!(%message, "erp: bad request");
            return flask::error(StatusCode::BAD_REQUEST, &message);
        }
    };
    if let Some(login) = login {
        let sealed = serde_json::to_string(&login)
            .map_err(|e| e.to_string())
            .and_then(|text| erp.integrations.seal(&text).map_err(|e| e.to_string()));
        match sealed {
            Ok(sealed) => intake.sealed_credentials = Some(sealed),
            Err(error) => return internal(error),
        }
    }
    let unique_id = intake.line.unique_id.clone();
    match erp.receive(integration, intake).await {
        Ok(Received::Queued(_)) => {
            tracing::info!(order = %unique_id, "erp: order received");
            flask::json(
                StatusCode::OK,
                &object([(
                    "message",
                    Value::from("Order line creation task added to queue"),
                )]),
            )
        }
        Ok(Received::Seen(order)) => flask::json(
            StatusCode::OK,
            &object([
                (
                    "message",
                    Value::from("Order already received; not queued again"),
                ),
                ("status", Value::from(order.status.as_str())),
                ("unique_id", Value::from(order.unique_id.as_str())),
            ]),
        ),
        Err(error) => internal(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order(
        value: Value,
        needs_login: bool,
    ) -> Result<(Intake, Option<Credentials>), (String, Option<OrderRef>)> {
        parse_order(value.as_object().unwrap(), needs_login)
    }

    #[test]
    fn keys_are_checked_in_the_originals_order() {
        let refused = order(json!({"unique_id": "7", "product_nr": "10"}), false).unwrap_err();
        assert_eq!(refused.0, "Missing required parameter:e=KeyError('dealer')");
        assert_eq!(refused.1.map(String::from), Some("7".to_owned()));
        let refused = order(json!({"dealer": "x"}), false).unwrap_err();
        assert_eq!(
            refused.0,
            "Missing required parameter:e=KeyError('unique_id')"
        );
        let full = json!({"unique_id": "7", "dealer": "d", "case_nr": "560", "product_nr": "10", "product_amount": "5"});
        assert_eq!(
            order(full.clone(), true).unwrap_err().0,
            "Missing required parameter:e=KeyError('username')"
        );
        let (intake, login) = order(full, false).unwrap();
        assert_eq!(intake.line.amount.get(), 5);
        assert!(login.is_none());
    }

    #[test]
    fn the_readmes_aliases_and_numbers_are_read() {
        let (intake, _) = order(
            json!({"unique_id": 7, "workshop": "d", "case_id": 560, "product_nr": "10", "product_amount": 5}),
            false,
        )
        .unwrap();
        assert_eq!(intake.line.unique_id.as_str(), "7");
        assert_eq!(intake.line.case_nr.as_str(), "560");
        assert_eq!(intake.dealer, "d");
    }

    #[test]
    fn webdriver_keys_never_pass() {
        let refused = order(
            json!({"unique_id": "7", "dealer": "d", "case_nr": "560", "product_nr": "10\u{E007}", "product_amount": "5"}),
            false,
        )
        .unwrap_err();
        assert!(refused.0.starts_with("Invalid product_nr"), "{}", refused.0);
    }

    #[test]
    fn a_list_fails_as_python_did() {
        assert_eq!(
            python_index_error(&json!([1])),
            "Missing required parameter:e=TypeError('list indices must be integers or slices, not str')"
        );
    }
}
