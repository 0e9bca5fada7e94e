//! Sales from iiko, for people and programs: `/admin/iiko/sales/` shows a unit's day (revenue, orders, average
//! check, its dishes by revenue, and the fortnight's revenue as a plot), and `GET /api/v1/iiko/sales` gives the
//! kept days as JSON to a token of scope `iiko` or `admin`. Both read what the poll kept (see `reports`).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{NaiveDate, TimeDelta};
use serde::Deserialize;
use tillwire_platform::admin::{Admin, local_time};
use tillwire_platform::error::ErrorBody;
use tillwire_platform::tokens::{ScopedCaller, TokenScope};
use tillwire_platform::web::{PageContext, render};
use tillwire_platform::{HttpError, Text};
use tillwire_units::{Unit, UnitId, Units};
use utoipa::{IntoParams, OpenApi};

use crate::Iiko;
use crate::reports::{DaySales, DishSales, money};

/// How many days the revenue plot covers, ending with the day shown.
const PLOT_DAYS: i64 = 14;
/// Dishes drawn in the dishes plot (the table lists them all).
const PLOT_DISHES: usize = 10;
/// The longest range the API answers at once.
const MAX_API_DAYS: i64 = 366;

pub fn page_router(iiko: Iiko) -> Router {
    Router::new()
        .route("/admin/iiko/sales/", get(sales_page))
        .with_state(iiko)
}

pub fn api_router(iiko: Iiko) -> Router {
    Router::new()
        .route("/api/v1/iiko/sales", get(sales_api))
        .with_state(iiko)
}

#[derive(Deserialize)]
struct PageQuery {
    unit: Option<i64>,
    day: Option<String>,
}

/// A bar of a plot, placed.
struct Bar {
    label: String,
    value: String,
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

/// A plot: its size and bars (server-drawn SVG, no script).
struct Plot {
    width: f64,
    height: f64,
    bars: Vec<Bar>,
}

#[derive(Template)]
#[template(path = "admin_iiko_sales.html")]
struct SalesPage {
    page: PageContext,
    section: &'static str,
    units: Vec<Unit>,
    unit: i64,
    day: String,
    previous_day: String,
    next_day: String,
    sales: Option<DaySales>,
    fetched: String,
    average_check: String,
    /// The day's revenue as people write it.
    revenue: String,
    dishes_plot: Option<Plot>,
    days_plot: Option<Plot>,
}

#[tracing::instrument(skip_all)]
async fn sales_page(
    State(iiko): State<Iiko>,
    admin: Admin,
    Query(query): Query<PageQuery>,
) -> Result<Response, HttpError> {
    let units = Units(&iiko.platform.store).list().await?;
    let unit = match query.unit {
        Some(id) => units.iter().find(|u| u.id == id).ok_or_else(|| {
            HttpError::not_found(Text::new("Подразделение не найдено.", "Unit not found."))
        })?,
        None => units.first().ok_or_else(|| {
            HttpError::not_found(Text::new(
                "Подразделений ещё нет.",
                "There are no units yet.",
            ))
        })?,
    }
    .clone();
    let today = iiko.kitchen.today();
    let day = match query
        .day
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        None => today,
        Some(text) => text.parse::<NaiveDate>().map_err(|_| {
            HttpError::field(
                "day",
                Text::new("Дата в виде ГГГГ-ММ-ДД.", "A date as YYYY-MM-DD."),
            )
        })?,
    };
    let sales = iiko.reports.day(UnitId(unit.id), day).await?;
    let fortnight = iiko
        .reports
        .days(UnitId(unit.id), day - TimeDelta::days(PLOT_DAYS - 1), day)
        .await?;
    let lang = admin.lang;
    let average_check = sales
        .as_ref()
        .filter(|s| s.orders > 0)
        .map(|s| {
            let revenue: f64 = s.revenue.parse().unwrap_or(0.0);
            money(&(revenue / s.orders as f64).to_string(), lang)
        })
        .unwrap_or_else(|| "—".into());
    let revenue = sales
        .as_ref()
        .map(|s| money(&s.revenue, lang))
        .unwrap_or_default();
    let fetched = sales
        .as_ref()
        .map(|s| local_time(&iiko.platform.settings, s.fetched_ms, "%d.%m %H:%M"))
        .unwrap_or_default();
    let dishes_plot = sales.as_ref().and_then(|s| dishes_plot(&s.dishes));
    let days_plot = days_plot(&fortnight, day);
    Ok(render(&SalesPage {
        page: admin.page("Продажи iiko", "iiko sales"),
        section: "/admin/iiko/",
        unit: unit.id,
        units,
        previous_day: (day - TimeDelta::days(1)).to_string(),
        next_day: if day < today {
            (day + TimeDelta::days(1)).to_string()
        } else {
            String::new()
        },
        day: day.to_string(),
        average_check,
        revenue,
        fetched,
        dishes_plot,
        days_plot,
        sales,
    }))
}

fn amount(text: &str) -> f64 {
    text.parse().unwrap_or(0.0)
}

/// The day's dishes by revenue, as horizontal bars.
fn dishes_plot(dishes: &[DishSales]) -> Option<Plot> {
    let shown: Vec<&DishSales> = dishes.iter().take(PLOT_DISHES).collect();
    let top = shown.iter().map(|d| amount(&d.revenue)).fold(0.0, f64::max);
    if shown.is_empty() || top <= 0.0 {
        return None;
    }
    let (left, right, row) = (180.0, 560.0, 28.0);
    let bars = shown
        .iter()
        .enumerate()
        .map(|(i, dish)| {
            let width = (amount(&dish.revenue) / top * (right - left)).max(1.0);
            Bar {
                label: dish.name.clone(),
                value: dish.revenue.clone(),
                x: left,
                y: 8.0 + i as f64 * row,
                width,
                height: row - 8.0,
            }
        })
        .collect::<Vec<_>>();
    Some(Plot {
        width: 680.0,
        height: 16.0 + bars.len() as f64 * row,
        bars,
    })
}

/// Revenue by day over the fortnight ending with `day` (a day without figures is an empty slot).
fn days_plot(days: &[DaySales], day: NaiveDate) -> Option<Plot> {
    let top = days.iter().map(|d| amount(&d.revenue)).fold(0.0, f64::max);
    if top <= 0.0 {
        return None;
    }
    let (left, bottom, height, slot) = (10.0, 170.0, 150.0, 46.0);
    let bars = (0..PLOT_DAYS)
        .map(|i| {
            let date = day - TimeDelta::days(PLOT_DAYS - 1 - i);
            let revenue = days
                .iter()
                .find(|d| d.day == date.to_string())
                .map_or(0.0, |d| amount(&d.revenue));
            let bar = revenue / top * height;
            Bar {
                label: date.format("%d.%m").to_string(),
                value: if revenue > 0.0 {
                    format!("{revenue:.0}")
                } else {
                    String::new()
                },
                x: left + i as f64 * slot,
                y: bottom - bar,
                width: slot - 10.0,
                height: bar,
            }
        })
        .collect();
    Some(Plot {
        width: left * 2.0 + PLOT_DAYS as f64 * slot,
        height: 200.0,
        bars,
    })
}

#[derive(OpenApi)]
#[openapi(
    info(title = "tillwire iiko API", version = "1", description = "Sales from iiko (iikoServer's OLAP, closed orders by the day they were opened), kept per unit and day. Authenticate with `Authorization: Bearer <service token>` of scope `iiko` or `admin`."),
    paths(sales_api),
    components(schemas(DaySales, DishSales, ErrorBody)),
    modifiers(&TokenAuth)
)]
pub struct IikoApi;

struct TokenAuth;

impl utoipa::Modify for TokenAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("A service token of scope `iiko` or `admin`.".into());
        components.add_security_scheme("iiko_token", SecurityScheme::Http(scheme));
    }
}

pub struct IikoScope;

impl TokenScope for IikoScope {
    const SCOPE: &'static str = crate::AREA.name;
    const NAME_RU: &'static str = "продажам iiko";
    const NAME_EN: &'static str = "iiko's sales";
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SalesQuery {
    /// The unit's id.
    unit: i64,
    /// The first day, `YYYY-MM-DD`.
    #[param(value_type = String, format = Date)]
    from: NaiveDate,
    /// The last day, `YYYY-MM-DD` (included; at most a year after `from`).
    #[param(value_type = String, format = Date)]
    to: NaiveDate,
}

#[utoipa::path(get, path = "/api/v1/iiko/sales", tag = "iiko", security(("iiko_token" = [])),
    params(SalesQuery),
    responses((status = 200, body = [DaySales]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn sales_api(
    State(iiko): State<Iiko>,
    _caller: ScopedCaller<IikoScope>,
    query: Result<Query<SalesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<DaySales>>, HttpError> {
    let Query(query) = query.map_err(|_| {
        HttpError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid",
            Text::new(
                "Нужны unit (число), from и to (ГГГГ-ММ-ДД).",
                "unit (a number), from and to (YYYY-MM-DD) are needed.",
            ),
        )
    })?;
    if query.to < query.from || (query.to - query.from).num_days() >= MAX_API_DAYS {
        return Err(HttpError::field(
            "to",
            Text::new(
                "to — не раньше from и не дальше чем через год.",
                "to must be on or after from, and within a year of it.",
            ),
        ));
    }
    let units = Units(&iiko.platform.store).list().await?;
    if !units.iter().any(|u| u.id == query.unit) {
        return Err(HttpError::not_found(Text::new(
            "Подразделение не найдено.",
            "Unit not found.",
        )));
    }
    Ok(Json(
        iiko.reports
            .days(UnitId(query.unit), query.from, query.to)
            .await?,
    ))
}
