//! `/admin/orders/`: the orders of a unit's business day with their lines and per-station readiness, and
//! `/admin/orders/{id}` with the audit log of status changes (who, when, from, to), where an admin can move the
//! order to any status (a mistake fixed, a lost order closed), audited like every move.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tillwire_platform::Settings;
use tillwire_platform::admin::{Admin, local_time};
use tillwire_platform::web::{PageContext, render};
use tillwire_units::UnitId;

use super::UnitPicker;
use crate::model::{OrderView, Workflow, format_quantity};
use crate::screens::StationRef;
use crate::storage::StatusChange;
use crate::{Kitchen, KitchenError};

const SECTION: &str = "/admin/orders/";

pub fn router() -> Router<Kitchen> {
    Router::new()
        .route(SECTION, get(orders_page))
        .route("/admin/orders/{id}", get(order_page))
        .route("/admin/orders/{id}/status", post(move_order))
}

#[derive(Deserialize)]
struct MoveForm {
    status_id: i64,
}

#[tracing::instrument(skip_all, fields(order = id, by = admin.username()))]
async fn move_order(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<MoveForm>,
) -> Result<Redirect, KitchenError> {
    let actor = crate::screens::actor(&admin.user);
    let moved = kitchen
        .move_to_any_status(id, form.status_id, &actor)
        .await?;
    tracing::info!(status = moved.status_id, "order moved by an admin");
    Ok(Redirect::to(&format!("/admin/orders/{id}")))
}

/// Turns the ids and instants of orders into what people read: status and station names, local times.
struct Legend {
    workflow: Workflow,
    stations: Vec<StationRef>,
    settings: Arc<Settings>,
}

impl Legend {
    async fn load(kitchen: &Kitchen, unit: i64) -> Result<Self, KitchenError> {
        Ok(Legend {
            workflow: kitchen.workflow().await?,
            stations: kitchen.stations(UnitId(unit)).await?,
            settings: kitchen.platform.settings.clone(),
        })
    }
    fn status(&self, id: &i64) -> String {
        self.workflow
            .status(*id)
            .map_or_else(|| format!("#{id}"), |s| s.name.clone())
    }
    fn color(&self, id: &i64) -> String {
        self.workflow
            .status(*id)
            .map_or_else(|| "gray".to_owned(), |s| s.color.clone())
    }
    fn station(&self, id: &i64) -> String {
        self.stations
            .iter()
            .find(|s| s.id == *id)
            .map_or_else(|| format!("#{id}"), |s| s.name.clone())
    }
    fn time(&self, ms: &i64) -> String {
        local_time(&self.settings, *ms, "%H:%M:%S")
    }
    fn moment(&self, ms: &i64) -> String {
        local_time(&self.settings, *ms, "%Y-%m-%d %H:%M:%S")
    }
    fn quantity(&self, value: &f64) -> String {
        format_quantity(*value)
    }
}

#[derive(Deserialize)]
struct DayQuery {
    unit: Option<i64>,
    /// `YYYY-MM-DD`; empty means today's business day.
    #[serde(default)]
    day: String,
}

#[derive(Template)]
#[template(path = "admin_orders.html")]
struct OrdersPage {
    page: PageContext,
    section: &'static str,
    picker: UnitPicker,
    day: String,
    previous_day: String,
    next_day: String,
    orders: Vec<OrderView>,
    legend: Legend,
}

async fn orders_page(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Query(query): Query<DayQuery>,
) -> Result<Response, KitchenError> {
    let picker = UnitPicker::load(&kitchen, query.unit).await?;
    let day = super::chosen_day(&kitchen, &query.day)?;
    let orders = kitchen.order_views(UnitId(picker.id()), day, false).await?;
    let around = |next: Option<chrono::NaiveDate>| next.map(|d| d.to_string()).unwrap_or_default();
    Ok(render(&OrdersPage {
        page: admin.page("Заказы", "Orders"),
        section: SECTION,
        legend: Legend::load(&kitchen, picker.id()).await?,
        picker,
        day: day.to_string(),
        previous_day: around(day.pred_opt()),
        next_day: around(day.succ_opt()),
        orders,
    }))
}

#[derive(Template)]
#[template(path = "admin_order.html")]
struct OrderPage {
    page: PageContext,
    section: &'static str,
    picker: UnitPicker,
    order: OrderView,
    log: Vec<StatusChange>,
    legend: Legend,
}

async fn order_page(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Response, KitchenError> {
    let order = kitchen.order_view(id).await?;
    let log = kitchen.status_log(id).await?;
    let picker = UnitPicker::load(&kitchen, Some(order.unit_id)).await?;
    let page = admin.page(
        &format!("Заказ № {}", order.number),
        &format!("Order No. {}", order.number),
    );
    Ok(render(&OrderPage {
        page,
        section: SECTION,
        legend: Legend::load(&kitchen, order.unit_id).await?,
        picker,
        order,
        log,
    }))
}
