//! `/admin/collector/`: every register's state (last success, lag, last error, cursor, backlog).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Router, middleware};
use tillwire_platform::Platform;
use tillwire_platform::admin::{Admin, html_errors, local_time};
use tillwire_platform::web::{PageContext, render};

use crate::status::{self, RegisterState};

pub fn router(platform: Platform) -> Router {
    Router::new()
        .route("/admin/collector/", get(collector_page))
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
        section: "/admin/collector/",
        rows,
    })
}
