//! The iikoCloud API over HTTP: every method a `POST` with a JSON body, answered with a fresh `correlationId`;
//! errors as `ErrorResponse` (B.3). In front of them all, the gate counts requests per path and applies the
//! faults armed for it, then each method checks its bearer token (except the token methods).

mod auth;
mod hooks;
mod orders;
mod world;

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::state::Inner;
use super::{CloudSim, Fault};

/// What iikoCloud waits for the terminal when the request has no `Timeout` header.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// A method: the state, the caller's login (empty for the token methods) and the body; the answer's fields
/// (an object) without the correlationId.
type Method = fn(&mut Inner, &str, &[u8]) -> Result<Value, ApiError>;

pub(super) fn routes(sim: CloudSim) -> Router<CloudSim> {
    Router::new()
        .route("/api/1/access_token", open(auth::access_token))
        .route("/api/v2/access_token", open(auth::access_token_v2))
        .route("/api/1/organizations", authed(world::organizations))
        .route("/api/1/terminal_groups", authed(world::terminal_groups))
        .route("/api/1/terminal_groups/is_alive", authed(world::is_alive))
        .route("/api/1/nomenclature", authed(world::nomenclature))
        .route(
            "/api/1/reserve/available_restaurant_sections",
            authed(world::restaurant_sections),
        )
        .route("/api/1/deliveries/by_id", authed(orders::deliveries_by_id))
        .route(
            "/api/1/deliveries/by_delivery_date_and_status",
            authed(orders::deliveries_by_date),
        )
        .route(
            "/api/1/deliveries/by_revision",
            authed(orders::deliveries_by_revision),
        )
        .route("/api/1/order/by_id", authed(orders::orders_by_id))
        .route("/api/1/order/by_table", authed(orders::orders_by_table))
        .route(
            "/api/1/webhooks/update_settings",
            authed(hooks::update_settings),
        )
        .route("/api/1/webhooks/settings", authed(hooks::settings))
        .route("/api/1/commands/status", authed(hooks::command_status))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(sim, gate))
}

/// An error answer before its correlationId is known.
struct ApiError {
    status: StatusCode,
    description: String,
    code: &'static str,
}

impl ApiError {
    fn new(status: StatusCode, description: impl Into<String>) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => "BAD_REQUEST",
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::REQUEST_TIMEOUT => "TIMEOUT",
            StatusCode::GONE => "GONE",
            StatusCode::TOO_MANY_REQUESTS => "TOO_MANY_REQUESTS",
            _ => "INTERNAL_SERVER_ERROR",
        };
        ApiError {
            status,
            description: description.into(),
            code,
        }
    }

    fn bad(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, description)
    }

    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Token is expired or invalid; get a new one from access_token",
        )
    }
}

/// The answer to a method: 200 with the correlationId first, or the ErrorResponse.
fn respond(inner: &mut Inner, result: Result<Value, ApiError>) -> Response {
    let correlation = inner.correlation();
    match result {
        Ok(fields) => {
            let mut body = Map::new();
            body.insert("correlationId".into(), Value::String(correlation));
            if let Value::Object(fields) = fields {
                body.extend(fields);
            }
            axum::Json(Value::Object(body)).into_response()
        }
        Err(error) => error_response(correlation, error),
    }
}

fn error_response(correlation: String, error: ApiError) -> Response {
    let body = json!({
        "correlationId": correlation,
        "errorDescription": error.description,
        "error": error.code,
    });
    (error.status, axum::Json(body)).into_response()
}

fn open(method: Method) -> MethodRouter<CloudSim> {
    post(move |State(sim): State<CloudSim>, body: Bytes| async move {
        sim.with(|inner| {
            let result = method(inner, "", &body);
            respond(inner, result)
        })
    })
}

fn authed(method: Method) -> MethodRouter<CloudSim> {
    post(
        move |State(sim): State<CloudSim>, headers: HeaderMap, body: Bytes| async move {
            sim.with(|inner| {
                let login = bearer(&headers).and_then(|token| inner.token_login(token));
                let result = match login {
                    Some(login) => method(inner, &login, &body),
                    None => Err(ApiError::unauthorized()),
                };
                respond(inner, result)
            })
        },
    )
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

async fn not_found(State(sim): State<CloudSim>) -> Response {
    sim.with(|inner| {
        let result = Err(ApiError::new(StatusCode::NOT_FOUND, "No such method"));
        respond(inner, result)
    })
}

/// Counts the request and applies the next fault armed for its path.
async fn gate(State(sim): State<CloudSim>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let Some(fault) = sim.with(|inner| inner.arrive(&path)) else {
        return next.run(request).await;
    };
    let status = match fault {
        Fault::Slow(delay) => {
            let timeout = request_timeout(request.headers());
            if delay <= timeout {
                tokio::time::sleep(delay).await;
                return next.run(request).await;
            }
            tokio::time::sleep(timeout).await;
            StatusCode::REQUEST_TIMEOUT
        }
        Fault::Status(code) => {
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Fault::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        Fault::Unauthorized => StatusCode::UNAUTHORIZED,
        Fault::Gone => StatusCode::GONE,
    };
    let description = match status {
        StatusCode::REQUEST_TIMEOUT => "The terminal did not answer within the timeout".to_owned(),
        StatusCode::TOO_MANY_REQUESTS => "Too many requests".to_owned(),
        StatusCode::UNAUTHORIZED => ApiError::unauthorized().description,
        StatusCode::GONE => "The operation is no longer available".to_owned(),
        other => format!("Simulated failure {}", other.as_u16()),
    };
    let correlation = sim.with(|inner| inner.correlation());
    let mut response = error_response(correlation, ApiError::new(status, description));
    if let Fault::TooManyRequests { retry_after_secs } = fault {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    response
}

/// The `Timeout` header: seconds (`15`, `2.5`) or a .NET time span (`00:00:15`).
fn request_timeout(headers: &HeaderMap) -> Duration {
    let parse = |text: &str| -> Option<Duration> {
        let seconds = match text.split(':').collect::<Vec<_>>()[..] {
            [seconds] => seconds.trim().parse::<f64>().ok()?,
            [hours, minutes, seconds] => {
                hours.trim().parse::<f64>().ok()? * 3600.0
                    + minutes.trim().parse::<f64>().ok()? * 60.0
                    + seconds.trim().parse::<f64>().ok()?
            }
            _ => return None,
        };
        Duration::try_from_secs_f64(seconds).ok()
    };
    headers
        .get("Timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse)
        .unwrap_or(DEFAULT_TIMEOUT)
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| ApiError::bad(format!("Invalid request: {error}")))
}

fn check_organizations(inner: &Inner, ids: &[String]) -> Result<(), ApiError> {
    match ids.iter().find(|id| inner.organization(id).is_none()) {
        Some(unknown) => Err(ApiError::bad(format!(
            "Organization {unknown} is not available for this apiLogin"
        ))),
        None => Ok(()),
    }
}
