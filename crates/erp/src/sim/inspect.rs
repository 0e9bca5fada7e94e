//! The simulator's own door, outside the ERP's login and faults: `GET /sim/` (a page of the cases and their
//! lines), `GET /sim/lines` (JSON, case → lines), `POST /sim/lines` (a line already present), `GET|POST
//! /sim/faults`, `POST /sim/cases` and `POST /sim/catalogue` (what exists).

use std::fmt::Write;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ErpSim, Faults, Line, Product, escape};

pub(super) fn routes() -> Router<ErpSim> {
    Router::new()
        .route("/sim/", get(index))
        .route("/sim/lines", get(lines).post(seed_line))
        .route("/sim/faults", get(faults).post(set_faults))
        .route("/sim/cases", post(set_cases))
        .route("/sim/catalogue", post(set_catalogue))
}

#[tracing::instrument(skip_all)]
async fn index(State(sim): State<ErpSim>) -> Html<String> {
    let lines = sim.all_lines();
    let faults = sim.faults();
    let mut page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ERP simulator</title><style>\
         body{{font-family:sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem}}\
         td,th{{text-align:left;padding:.2rem .6rem;border-bottom:1px solid #ddd}}</style></head><body>\
         <h1>ERP simulator: {}</h1><p>Login page: <a href=\"{login}\">{login}</a>. Faults: <code>{}</code>; \
         {} save(s) dropped.</p><h2>Cases</h2><p>{}</p><h2>Lines</h2>",
        sim.kind().name(),
        escape(&serde_json::to_string(&faults).unwrap_or_default()),
        sim.dropped_saves(),
        escape(&sim.cases().join(", ")),
        login = sim.kind().login_path(),
    );
    if lines.is_empty() {
        page.push_str("<p>No lines yet.</p>");
    }
    for (case, lines) in &lines {
        let _ = write!(
            page,
            "<h3>Case {}</h3><table><tr><th>Item</th><th>Name</th><th>Amount</th></tr>",
            escape(case)
        );
        for line in lines {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&line.item),
                escape(&line.name),
                escape(&line.amount)
            );
        }
        page.push_str("</table>");
    }
    page.push_str("</body></html>");
    Html(page)
}

#[tracing::instrument(skip_all)]
async fn lines(State(sim): State<ErpSim>) -> Response {
    Json(sim.all_lines()).into_response()
}

/// `{"case":"1025","item":"10","name":"Motorolie 5W-30","amount":"2"}`
#[derive(Deserialize)]
struct Seeded {
    case: String,
    #[serde(flatten)]
    line: Line,
}

#[tracing::instrument(skip_all)]
async fn seed_line(State(sim): State<ErpSim>, Json(seeded): Json<Seeded>) -> StatusCode {
    sim.seed_line(&seeded.case, seeded.line);
    StatusCode::NO_CONTENT
}

#[tracing::instrument(skip_all)]
async fn faults(State(sim): State<ErpSim>) -> Json<Faults> {
    Json(sim.faults())
}

/// `{"page_delay_ms":1500,"session_requests":3,"drop_saves":true}`; a field left out is off.
#[tracing::instrument(skip_all)]
async fn set_faults(State(sim): State<ErpSim>, Json(faults): Json<Faults>) -> Json<Faults> {
    sim.set_faults(faults);
    Json(sim.faults())
}

/// `["1001","1002"]`: the cases that exist, in order.
#[tracing::instrument(skip_all)]
async fn set_cases(State(sim): State<ErpSim>, Json(cases): Json<Vec<String>>) -> StatusCode {
    sim.set_cases(cases);
    StatusCode::NO_CONTENT
}

/// `[{"item":"10","name":"Motorolie 5W-30","unit":"L","group":"Olie","price":"89,00"}]`: the items that exist.
#[tracing::instrument(skip_all)]
async fn set_catalogue(
    State(sim): State<ErpSim>,
    Json(products): Json<Vec<Product>>,
) -> StatusCode {
    sim.set_catalogue(products);
    StatusCode::NO_CONTENT
}
