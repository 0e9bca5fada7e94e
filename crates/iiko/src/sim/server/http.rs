//! The iikoServer API's routes, and the guard in front of them: in-flight counting (overlaps), the key check, the
//! request delay, armed failures and the request log.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{Refusal, RequestRecord, ServerSim, journal, olap};

const API: &str = "/resto/api/";
const AUTH: &str = "/resto/api/auth";

pub(super) fn routes() -> Router<ServerSim> {
    Router::new()
        .route(AUTH, get(auth))
        .route("/resto/api/logout", get(logout))
        .route("/resto/get_server_info.jsp", get(server_info))
        .route("/resto/api/v2/reports/olap", post(olap_report))
        .route("/resto/api/v2/reports/olap/columns", get(olap_columns))
        .route("/resto/api/events", get(events).post(filtered_events))
        .route("/resto/api/events/metadata", get(events_metadata))
        .fallback(not_found)
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn xml(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The key from the `key` query parameter, or else from a `key` cookie.
fn request_key(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let from_query = Query::<HashMap<String, String>>::try_from_uri(uri)
        .ok()
        .and_then(|Query(params)| params.get("key").cloned());
    from_query.or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|cookies| cookies.split(';'))
            .find_map(|cookie| {
                let (name, value) = cookie.trim().split_once('=')?;
                (name == "key").then(|| value.to_owned())
            })
    })
}

/// The query as logged: `key` and `pass` values masked.
fn masked(query: Option<&str>) -> String {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name @ ("key" | "pass"), _)) => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// In front of every iikoServer route: counts the request in flight, checks the key of everything under
/// `/resto/api/` but `auth`, waits the request delay, answers an armed failure, and logs the outcome.
pub(super) async fn guard(State(sim): State<ServerSim>, request: Request, next: Next) -> Response {
    let _in_flight = sim.begin_request();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = masked(request.uri().query());
    let response = answer(&sim, &path, request, next).await;
    sim.record(RequestRecord {
        method,
        path,
        query,
        status: response.status().as_u16(),
    });
    response
}

async fn answer(sim: &ServerSim, path: &str, request: Request, next: Next) -> Response {
    if path.starts_with(API) && path != AUTH {
        let key = request_key(request.uri(), request.headers());
        if !sim.with(|inner| inner.key_is_live(key.as_deref())) {
            return text(StatusCode::UNAUTHORIZED, "Token is expired or invalid");
        }
        let delay = sim.with(|inner| inner.request_delay);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    if let Some(status) = sim.take_failure(path) {
        return text(status, "Simulated failure");
    }
    next.run(request).await
}

/// `login`, `pass` (SHA-1 hex of the password) and an optional `client-type`, which is not checked.
#[tracing::instrument(skip_all)]
async fn auth(
    State(sim): State<ServerSim>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (Some(login), Some(pass)) = (params.get("login"), params.get("pass")) else {
        return text(
            StatusCode::BAD_REQUEST,
            "Parameters login and pass are required",
        );
    };
    match sim.with(|inner| inner.authenticate(login, pass)) {
        Ok(token) => text(StatusCode::OK, token),
        Err(Refusal::Credentials) => text(
            StatusCode::UNAUTHORIZED,
            "Неверное имя пользователя или пароль (wrong login or password)",
        ),
        Err(Refusal::Licence) => text(
            StatusCode::FORBIDDEN,
            "Лицензия исчерпана: все слоты iikoAPIServer заняты (license is exhausted: no free iikoAPIServer slot)",
        ),
    }
}

/// Frees the key's slot; the guard has already refused an unknown key.
#[tracing::instrument(skip_all)]
async fn logout(State(sim): State<ServerSim>, request: Request) -> Response {
    if let Some(key) = request_key(request.uri(), request.headers()) {
        sim.with(|inner| {
            if inner.tokens.remove(&key).is_some() {
                inner.logout_count += 1;
            }
        });
    }
    text(StatusCode::OK, "")
}

/// Root `r` and `version` as a public client's test reads them; the other elements are plausible guesses.
#[tracing::instrument(skip_all)]
async fn server_info() -> Response {
    xml(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r>\n  <serverName>tillwire iikoServer simulator</serverName>\n  \
         <edition>default</edition>\n  <version>8.9.0000.0</version>\n  <computerName>localhost</computerName>\n  \
         <serverState>STARTED_SUCCESSFULLY</serverState>\n  <protocol>http</protocol>\n  \
         <serverSubUrl>/resto</serverSubUrl>\n  <isPresent>true</isPresent>\n</r>\n"
            .to_owned(),
    )
}

#[tracing::instrument(skip_all)]
async fn olap_report(State(sim): State<ServerSim>, body: Bytes) -> Response {
    let request: olap::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("The body is not an OLAP request: {error}"),
            );
        }
    };
    match sim.with(|inner| inner.olap(&request)) {
        Ok(report) => axum::Json(report).into_response(),
        Err(refused) => text(StatusCode::BAD_REQUEST, refused),
    }
}

#[tracing::instrument(skip_all)]
async fn olap_columns(Query(params): Query<HashMap<String, String>>) -> Response {
    match params.get("reportType").map(String::as_str) {
        Some("SALES") => axum::Json(olap::columns()).into_response(),
        Some(other) => text(
            StatusCode::BAD_REQUEST,
            format!("reportType {other} is not simulated, only SALES"),
        ),
        None => text(StatusCode::BAD_REQUEST, "reportType is required"),
    }
}

#[tracing::instrument(skip_all)]
async fn events(
    State(sim): State<ServerSim>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match journal::window(&params) {
        Ok(window) => xml(sim.with(|inner| inner.events_xml(&window, &journal::Filter::default()))),
        Err(refused) => text(StatusCode::BAD_REQUEST, refused),
    }
}

#[tracing::instrument(skip_all)]
async fn filtered_events(
    State(sim): State<ServerSim>,
    Query(params): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let asked = journal::window(&params).and_then(|window| Ok((window, journal::filter(&body)?)));
    match asked {
        Ok((window, filter)) => xml(sim.with(|inner| inner.events_xml(&window, &filter))),
        Err(refused) => text(StatusCode::BAD_REQUEST, refused),
    }
}

#[tracing::instrument(skip_all)]
async fn events_metadata() -> Response {
    xml(journal::metadata_xml())
}

async fn not_found(uri: Uri) -> Response {
    text(
        StatusCode::NOT_FOUND,
        format!("No such resource: {}", uri.path()),
    )
}
