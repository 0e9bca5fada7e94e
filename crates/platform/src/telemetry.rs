//! Structured logs (tracing), request spans with a request id, panics turned into answers, and Prometheus
//! metrics.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::error::{HttpError, Text};

/// The header carrying a request's id, both ways: a proxy's id is kept, otherwise one is made.
pub const REQUEST_ID: &str = "x-request-id";

/// The id of the request being served (a request extension).
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

/// A proxy's id is kept when it is short and plain, so logs can be joined across hops; anything else is replaced.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(|| crate::random_token(16), str::to_owned)
}

/// Every request: a span with its id, method and route (never the query: it may hold a CSRF token), the status
/// recorded on it, a log line (an error for 5xx), the `x-request-id` header on the answer and the latency metric.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = %route,
        status = tracing::field::Empty,
    );
    request
        .extensions_mut()
        .insert(RequestId(Arc::from(id.as_str())));
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("status", status);
    let elapsed = started.elapsed();
    metrics::histogram!("tillwire_http_seconds", "route" => route, "status" => status.to_string())
        .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        if response.status().is_server_error() {
            tracing::error!(elapsed_ms = elapsed.as_millis() as u64, "request failed");
        } else {
            tracing::debug!(elapsed_ms = elapsed.as_millis() as u64, "request");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Runs the rest of a route group's stack; a handler that panics answers 500 the way its group answers errors
/// (the caller, `error::render`, shapes it), telling the reader the request id to quote. The panic is logged within
/// the request's span.
pub(crate) async fn catch_panics(request: Request, next: Next) -> Response {
    let id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let panic = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => return response,
        Err(panic) => panic,
    };
    tracing::error!(panic = %crate::jobs::panic_message(panic.as_ref()), "handler panicked");
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        Text::new(
            format!("Внутренняя ошибка. Номер запроса: {id}"),
            format!("Internal error. Request id: {id}"),
        ),
    )
    .into_response()
}

/// Logs to stderr; `TILLWIRE_LOG_FORMAT=json` gives one JSON object per line. Level from `RUST_LOG` (default info).
pub fn init_logging() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if std::env::var("TILLWIRE_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    let _ = result;
}

/// `/metrics`: every metric of this process in Prometheus's text format.
pub fn metrics_reply() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        metrics_handle().render(),
    )
        .into_response()
}

/// Installs the global metrics recorder once and returns the handle `/metrics` renders.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .expect("static buckets")
                .build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
