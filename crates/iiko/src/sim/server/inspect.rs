//! The simulator's own door, outside the key check, the delay and the overlap count: `GET /resto/sim/` (a page),
//! `GET /resto/sim/state` (the same as JSON) and `POST /resto/sim/script` (runs a script; `400` naming the line).

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Dish, Inner, JournalEvent, RequestRecord, SaleLine, ServerSim};
use crate::sim::escape;

pub(super) fn routes() -> Router<ServerSim> {
    Router::new()
        .route("/resto/sim", get(|| async { Redirect::to("/resto/sim/") }))
        .route("/resto/sim/", get(page))
        .route("/resto/sim/state", get(state))
        .route("/resto/sim/script", post(script))
}

#[derive(Serialize)]
struct Token {
    key: String,
    expires: DateTime<Utc>,
}

#[derive(Serialize)]
struct Order {
    id: String,
    department: String,
    order_num: i64,
    table_num: i64,
    waiter: String,
    opened_at: DateTime<Utc>,
    dishes: Vec<Dish>,
}

/// Everything the simulator holds, for a person or a script looking in.
#[derive(Serialize)]
struct Snapshot {
    now: DateTime<Utc>,
    timezone: String,
    license_slots: usize,
    slots_in_use: usize,
    tokens: Vec<Token>,
    token_ttl_seconds: u64,
    request_delay_ms: u128,
    overlaps: usize,
    auth_count: usize,
    logout_count: usize,
    departments: BTreeMap<String, String>,
    open_orders: Vec<Order>,
    events: Vec<JournalEvent>,
    sales: Vec<SaleLine>,
    requests: Vec<RequestRecord>,
}

fn snapshot(inner: &mut Inner) -> Snapshot {
    inner.expire_tokens();
    Snapshot {
        now: inner.now(),
        timezone: inner.timezone.name().to_owned(),
        license_slots: inner.slots,
        slots_in_use: inner.tokens.len(),
        tokens: inner
            .tokens
            .iter()
            .map(|(key, expires)| Token {
                key: key.clone(),
                expires: *expires,
            })
            .collect(),
        token_ttl_seconds: inner.token_ttl.as_secs(),
        request_delay_ms: inner.request_delay.as_millis(),
        overlaps: inner.overlaps,
        auth_count: inner.auth_count,
        logout_count: inner.logout_count,
        departments: inner.departments.clone(),
        open_orders: inner
            .orders
            .iter()
            .map(|(id, order)| Order {
                id: id.clone(),
                department: order.department.clone(),
                order_num: order.order_num,
                table_num: order.table_num,
                waiter: order.waiter.clone(),
                opened_at: order.opened_at,
                dishes: order.dishes.clone(),
            })
            .collect(),
        events: inner.journal.clone(),
        sales: inner.sales.clone(),
        requests: inner.requests.iter().cloned().collect(),
    }
}

#[tracing::instrument(skip_all)]
async fn state(State(sim): State<ServerSim>) -> Json<Snapshot> {
    Json(sim.with(snapshot))
}

#[tracing::instrument(skip_all)]
async fn script(State(sim): State<ServerSim>, body: String) -> Response {
    match sim.run_script(&body) {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(refused) => (StatusCode::BAD_REQUEST, refused.to_string()).into_response(),
    }
}

/// A table of already escaped cells; an empty one says so.
fn table(page: &mut String, heads: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        page.push_str("<p class=\"none\">None.</p>");
        return;
    }
    page.push_str("<table><tr>");
    for head in heads {
        let _ = write!(page, "<th>{head}</th>");
    }
    page.push_str("</tr>");
    for row in rows {
        page.push_str("<tr>");
        for cell in row {
            let _ = write!(page, "<td>{cell}</td>");
        }
        page.push_str("</tr>");
    }
    page.push_str("</table>");
}

/// Submits the script box and shows the answer; reloads when the script ran.
const SCRIPT: &str = "document.getElementById('run').addEventListener('click',async()=>{\
const out=document.getElementById('out');\
const r=await fetch('/resto/sim/script',{method:'POST',body:document.getElementById('script').value});\
out.textContent=await r.text();if(r.ok){location.reload();}});";

#[tracing::instrument(skip_all)]
async fn page(State(sim): State<ServerSim>) -> Html<String> {
    let (snapshot, timezone) = sim.with(|inner| (snapshot(inner), inner.timezone));
    let department = |id: &str| escape(snapshot.departments.get(id).map_or(id, String::as_str));
    let local = |at: &DateTime<Utc>| {
        escape(
            &at.with_timezone(&timezone)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
        )
    };
    let mut page = format!(
        "<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\">\
         <title>iikoServer simulator</title><style>\
         body{{font-family:sans-serif;max-width:75rem;margin:1rem auto;padding:0 1rem}}\
         table{{border-collapse:collapse;margin-bottom:1rem}}\
         td,th{{text-align:left;padding:.2rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}}\
         .none{{color:#777}} .bad{{color:#b00;font-weight:bold}} textarea{{width:100%;height:8rem}}\
         </style></head><body><h1>iikoServer simulator</h1>\
         <p>Server time {} ({}). Licence slots in use: <b>{}</b> of {}. Overlapping requests: <b{}>{}</b>. \
         Keys handed out: {}, given back: {}. Key lifetime {} s (fixed), request delay {} ms. \
         <a href=\"/resto/sim/state\">State as JSON</a>.</p>",
        local(&snapshot.now),
        escape(&snapshot.timezone),
        snapshot.slots_in_use,
        snapshot.license_slots,
        if snapshot.overlaps > 0 {
            " class=\"bad\""
        } else {
            ""
        },
        snapshot.overlaps,
        snapshot.auth_count,
        snapshot.logout_count,
        snapshot.token_ttl_seconds,
        snapshot.request_delay_ms,
    );

    page.push_str("<h2>Live keys</h2>");
    let tokens: Vec<Vec<String>> = snapshot
        .tokens
        .iter()
        .map(|token| vec![escape(&token.key), local(&token.expires)])
        .collect();
    table(&mut page, &["Key", "Expires"], &tokens);

    page.push_str(
        "<h2>Script</h2><textarea id=\"script\" placeholder=\"open ORDER dept=DEPT num=1 table=1 waiter=&quot;Анна&quot;\">\
         </textarea><p><button id=\"run\">Run</button> <code id=\"out\"></code></p>",
    );

    page.push_str("<h2>Open orders</h2>");
    let orders: Vec<Vec<String>> = snapshot
        .open_orders
        .iter()
        .map(|order| {
            let dishes = order
                .dishes
                .iter()
                .map(|dish| {
                    format!(
                        "{} × {} ({})",
                        escape(&dish.amount),
                        escape(&dish.name),
                        escape(&dish.position_id)
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>");
            vec![
                escape(&order.id),
                department(&order.department),
                order.order_num.to_string(),
                order.table_num.to_string(),
                escape(&order.waiter),
                local(&order.opened_at),
                dishes,
            ]
        })
        .collect();
    table(
        &mut page,
        &[
            "Order",
            "Department",
            "Number",
            "Table",
            "Waiter",
            "Opened",
            "Items",
        ],
        &orders,
    );

    page.push_str("<h2>Journal (newest first)</h2>");
    let events: Vec<Vec<String>> = snapshot
        .events
        .iter()
        .rev()
        .take(100)
        .map(|event| {
            let attribute = |name| escape(event.attribute(name).unwrap_or_default());
            vec![
                event.revision.to_string(),
                local(&event.date),
                escape(&event.event_type),
                attribute("orderNum"),
                attribute("dishes"),
                attribute("rowCount"),
                attribute("sum"),
            ]
        })
        .collect();
    table(
        &mut page,
        &[
            "Revision",
            "Date",
            "Type",
            "Order No.",
            "Item",
            "Amount",
            "Order sum",
        ],
        &events,
    );

    page.push_str("<h2>Closed sales</h2>");
    let sales: Vec<Vec<String>> = snapshot
        .sales
        .iter()
        .map(|sale| {
            let mut flags = Vec::new();
            if sale.order_deleted {
                flags.push("order deleted");
            }
            if sale.deleted_with_writeoff {
                flags.push("deleted with write-off");
            }
            if sale.storned {
                flags.push("storned");
            }
            vec![
                sale.open_date.to_string(),
                department(&sale.department),
                sale.order_num.to_string(),
                escape(&sale.dish_name),
                escape(&sale.dish_category),
                escape(&sale.amount),
                escape(&sale.sum),
                escape(&sale.discount_sum),
                escape(sale.service_type.as_deref().unwrap_or_default()),
                escape(&sale.waiter),
                flags.join(", "),
            ]
        })
        .collect();
    table(
        &mut page,
        &[
            "Day",
            "Department",
            "Order No.",
            "Item",
            "Category",
            "Amount",
            "Sum",
            "After discount",
            "Delivery",
            "Waiter",
            "Flags",
        ],
        &sales,
    );

    page.push_str("<h2>Requests (newest first)</h2>");
    let requests: Vec<Vec<String>> = snapshot
        .requests
        .iter()
        .rev()
        .take(50)
        .map(|request| {
            vec![
                escape(&request.method),
                escape(&request.path),
                escape(&request.query),
                request.status.to_string(),
            ]
        })
        .collect();
    table(&mut page, &["Method", "Path", "Query", "Status"], &requests);

    let _ = write!(page, "<script>{SCRIPT}</script></body></html>");
    Html(page)
}
