//! The simulator's own door, outside the API's tokens and faults: `GET /sim/` (a page of the world, the orders,
//! the revision and the webhook log, with a box to run a script), `GET /sim/state` (the same as JSON) and
//! `POST /sim/script` (runs the body as a live script: 200, or 400 naming the line).

use std::fmt::Write;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::snapshot::number;
use super::{CloudSim, zones};
use crate::sim::escape;

pub(super) fn routes() -> Router<CloudSim> {
    Router::new()
        .route("/sim/", get(index))
        .route("/sim/state", get(state))
        .route("/sim/script", post(script))
}

impl CloudSim {
    /// Everything the page shows, as JSON.
    fn state_json(&self) -> Value {
        self.with(|inner| {
            let organizations: Vec<Value> = inner
                .organizations
                .iter()
                .map(|org| {
                    let groups: Vec<Value> = inner
                        .terminal_groups
                        .iter()
                        .filter(|group| group.organization == org.id)
                        .map(|group| json!({"id": group.id, "name": group.name, "timeZone": group.time_zone}))
                        .collect();
                    let tables: Vec<Value> = inner
                        .tables
                        .iter()
                        .filter(|table| table.organization == org.id)
                        .map(|table| json!({"id": table.id, "number": table.number}))
                        .collect();
                    let products: Vec<Value> = inner
                        .products
                        .iter()
                        .filter(|product| product.organization == org.id)
                        .map(|product| {
                            json!({"id": product.id, "code": product.code, "name": product.name,
                                   "price": number(product.price)})
                        })
                        .collect();
                    json!({
                        "id": org.id,
                        "name": org.name,
                        "terminalGroups": groups,
                        "tables": tables,
                        "products": products,
                        "webhook": inner.webhooks.get(&org.id).map(|settings| settings.stored.clone()),
                    })
                })
                .collect();
            let orders: Vec<Value> = inner
                .orders
                .iter()
                .map(|order| inner.snapshot(order))
                .collect();
            json!({
                "now": zones::format(inner.now().naive_utc()),
                "revision": inner.revision,
                "menuRevision": inner.menu_revision,
                "tokensIssued": inner.tokens_issued,
                "organizations": organizations,
                "orders": orders,
                "webhookLog": inner.webhook_log,
                "requests": inner.requests,
            })
        })
    }
}

async fn state(State(sim): State<CloudSim>) -> Json<Value> {
    Json(sim.state_json())
}

async fn script(State(sim): State<CloudSim>, body: String) -> Response {
    match sim.play_script(&body).await {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"ok": false, "line": error.line, "error": error.to_string()})),
        )
            .into_response(),
    }
}

/// A JSON value as page text: strings bare, null as a dash.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => escape(text),
        Value::Null => "—".to_owned(),
        other => escape(&other.to_string()),
    }
}

const STYLE: &str = "body{font-family:sans-serif;max-width:72rem;margin:1rem auto;padding:0 1rem}\
    table{border-collapse:collapse;margin:.4rem 0 1rem}td,th{text-align:left;padding:.2rem .6rem;\
    border-bottom:1px solid #ddd;vertical-align:top}.deleted{text-decoration:line-through;color:#888}\
    code{font-size:.85rem}textarea{width:100%;font-family:monospace}.bad{color:#b00}";

/// Posts the box's text to /sim/script and reloads on success.
const SCRIPT: &str = "document.getElementById('run').onclick=async()=>{\
    const out=document.getElementById('out');out.textContent='…';\
    const r=await fetch('/sim/script',{method:'POST',body:document.getElementById('dsl').value});\
    const j=await r.json();if(j.ok){location.reload()}else{out.textContent=j.error;out.className='bad'}};";

async fn index(State(sim): State<CloudSim>) -> Html<String> {
    let state = sim.state_json();
    let mut page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\">\
         <title>iikoCloud simulator</title><style>{STYLE}</style></head><body>\
         <h1>iikoCloud simulator</h1><p>Now (UTC) {}; revision <b>{}</b>; menu revision {}; {} token(s) issued. \
         <a href=\"/sim/\">Refresh</a> · <a href=\"/sim/state\">JSON</a></p><h2>Organizations</h2>",
        text(&state["now"]),
        text(&state["revision"]),
        text(&state["menuRevision"]),
        text(&state["tokensIssued"]),
    );
    let list = |value: &Value| value.as_array().cloned().unwrap_or_default();
    for org in list(&state["organizations"]) {
        let _ = write!(
            page,
            "<h3>{} <code>{}</code></h3><p>Webhook: <code>{}</code></p><table>\
             <tr><th>Terminal group</th><th>Id</th><th>Time zone</th></tr>",
            text(&org["name"]),
            text(&org["id"]),
            text(&org["webhook"]["webHooksUri"]),
        );
        for group in list(&org["terminalGroups"]) {
            let _ = write!(
                page,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                text(&group["name"]),
                text(&group["id"]),
                text(&group["timeZone"])
            );
        }
        page.push_str("</table><table><tr><th>Table</th><th>Id</th></tr>");
        for table in list(&org["tables"]) {
            let _ = write!(
                page,
                "<tr><td>{}</td><td><code>{}</code></td></tr>",
                text(&table["number"]),
                text(&table["id"])
            );
        }
        page.push_str(
            "</table><table><tr><th>Code</th><th>Product</th><th>Price</th><th>Id</th></tr>",
        );
        for product in list(&org["products"]) {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                text(&product["code"]),
                text(&product["name"]),
                text(&product["price"]),
                text(&product["id"])
            );
        }
        page.push_str("</table>");
    }
    page.push_str("<h2>Orders</h2>");
    let orders = list(&state["orders"]);
    if orders.is_empty() {
        page.push_str("<p>No orders yet.</p>");
    }
    for info in orders {
        let order = &info["order"];
        let kind = if order["tableIds"].is_array() {
            "Table order"
        } else {
            "Delivery"
        };
        let _ = write!(
            page,
            "<h3>{kind} №{}: {} <code>{}</code></h3><p>Created {} · sum {} · timestamp {}</p>\
             <table><tr><th>Position</th><th>Product</th><th>Amount</th><th>Price</th><th>Status</th></tr>",
            text(&order["number"]),
            text(&order["status"]),
            text(&info["id"]),
            text(&order["whenCreated"]),
            text(&order["sum"]),
            text(&info["timestamp"]),
        );
        for item in list(&order["items"]) {
            let class = if item["deleted"].is_null() {
                ""
            } else {
                " class=\"deleted\""
            };
            let _ = write!(
                page,
                "<tr{class}><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                text(&item["positionId"]),
                text(&item["product"]["name"]),
                text(&item["amount"]),
                text(&item["price"]),
                text(&item["status"]),
            );
        }
        page.push_str("</table>");
    }
    page.push_str(
        "<h2>Webhook log</h2><table><tr><th>Organization</th><th>URL</th><th>Events</th><th>Retry</th>\
         <th>Answer</th></tr>",
    );
    for attempt in list(&state["webhookLog"]).iter().rev().take(100) {
        let events: Vec<String> = list(&attempt["events"])
            .iter()
            .map(|event| {
                format!(
                    "{} {} @{}",
                    text(&event["eventType"]),
                    text(&event["eventInfo"]["id"]),
                    text(&event["eventInfo"]["timestamp"])
                )
            })
            .collect();
        let answer = match attempt["status"].as_u64() {
            Some(status) => status.to_string(),
            None => text(&attempt["error"]),
        };
        let _ = write!(
            page,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            text(&attempt["organization_id"]),
            text(&attempt["url"]),
            events.join("<br>"),
            text(&attempt["retry"]),
            answer,
        );
    }
    let suggested = escape(&sim.suggested_script());
    let _ = write!(
        page,
        "</table><h2>Run a script</h2><textarea id=\"dsl\" rows=\"12\" placeholder=\"status ORDER_ID Bill\">{suggested}\
         </textarea><p><button id=\"run\">Run</button> <span id=\"out\"></span></p><script>{SCRIPT}</script>\
         </body></html>"
    );
    Html(page)
}
