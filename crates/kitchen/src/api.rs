//! The JSON API under `/api/v1/`: real status codes, an OpenAPI document, device-key authentication
//! (`Authorization: Bearer <key>`). Keys are per unit, so every call is scoped to the key's unit.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tillwire_units::UnitId;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::Thing;
use crate::import::{ImportOutcome, Receipt, parse_day};
use crate::model::Label;
use crate::model::{OrderView, Quantity, Workflow};
use crate::stats::{HourPrepTimes, PrepTimes, StationPrepTimes};
use crate::storage::{Actor, ReceiptKey, StatusChange};
use crate::{Kitchen, KitchenError};
use tillwire_platform::Text;
use tillwire_platform::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(title = "tillwire kitchen API", version = "1", description = "Receipts in, orders out. Authenticate with `Authorization: Bearer <unit API key>`."),
    paths(post_receipt, list_orders, get_order, change_status, station_ready, reprint, order_history, workflow, prep_times),
    components(schemas(ReceiptIn, ReceiptLineIn, ReceiptOut, StatusIn, OrderView, Workflow, ErrorBody, StatusChangeOut, PrepTimes, StationPrepTimes, HourPrepTimes)),
    modifiers(&BearerAuth)
)]
pub struct KitchenApi;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "device_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "device_key",
            Vec::<String>::new(),
        )]);
    }
}

pub fn router() -> Router<Kitchen> {
    Router::new()
        .route("/api/v1/receipts", post(post_receipt))
        .route("/api/v1/orders", get(list_orders))
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/api/v1/orders/{id}/status", post(change_status))
        .route(
            "/api/v1/orders/{id}/stations/{station_id}/ready",
            post(station_ready),
        )
        .route("/api/v1/orders/{id}/reprint", post(reprint))
        .route("/api/v1/orders/{id}/history", get(order_history))
        .route("/api/v1/workflow", get(workflow))
        .route("/api/v1/stats/prep-times", get(prep_times))
}

/// A receipt from a till.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptIn {
    /// The register's number in its unit.
    pub cash_register: i64,
    /// The shift number.
    pub shift: i64,
    /// The receipt number within the shift.
    pub receipt: i64,
    /// The date the shift opened (`YYYY-MM-DD`), part of the receipt's identity; defaults to the business day.
    pub shift_opened_on: Option<String>,
    /// When the sale happened (RFC 3339). Decides the business day with the rollover hour; defaults to now.
    pub sold_at: Option<String>,
    pub lines: Vec<ReceiptLineIn>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptLineIn {
    pub code: String,
    /// Pieces or kilograms; fractions are kept.
    pub quantity: f64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceiptOut {
    /// False when no line is a production ware ("Nothing to register").
    pub registered: bool,
    pub order_id: Option<i64>,
    pub number: Option<i64>,
    pub business_day: Option<String>,
    /// How many kitchen stations the order involves.
    pub stations: usize,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusIn {
    pub status_id: i64,
    /// The status the client saw the order in; if it has moved since, the move is refused (409) and nothing
    /// changes.
    #[serde(default)]
    pub from_status_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChangeOut {
    pub from_status_id: Option<i64>,
    pub to_status_id: i64,
    pub actor: String,
    pub at_ms: i64,
}

impl From<StatusChange> for StatusChangeOut {
    fn from(change: StatusChange) -> Self {
        StatusChangeOut {
            from_status_id: change.from_status_id,
            to_status_id: change.to_status_id,
            actor: change.actor,
            at_ms: change.at_ms,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OrdersQuery {
    /// Business day `YYYY-MM-DD`; defaults to today.
    #[param(format = Date, example = "2026-12-06")]
    pub day: Option<String>,
    /// Only orders in shown, unfinished statuses.
    #[serde(default)]
    pub active: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PrepTimesQuery {
    /// The unit; defaults to the key's own, the only one a device key may ask for.
    #[param(value_type = Option<i64>)]
    pub unit: Option<String>,
    /// Business day `YYYY-MM-DD`; defaults to today.
    #[param(format = Date, example = "2026-12-06")]
    pub day: Option<String>,
}

/// The unit of the presented device key.
pub struct DeviceUnit(pub UnitId);

impl FromRequestParts<Kitchen> for DeviceUnit {
    type Rejection = KitchenError;

    async fn from_request_parts(
        parts: &mut Parts,
        kitchen: &Kitchen,
    ) -> Result<Self, KitchenError> {
        let presented =
            tillwire_platform::tokens::presented(&parts.headers, &["bearer"]).unwrap_or("");
        kitchen
            .unit_for_key(presented.trim())
            .await?
            .map(DeviceUnit)
            .ok_or(KitchenError::Unauthorized)
    }
}

fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, KitchenError> {
    payload.map(|Json(value)| value).map_err(|rejection| {
        // For integrators: serde's words say which field of the body is wrong.
        let detail = rejection.body_text();
        KitchenError::invalid(Text::new(
            format!("Тело запроса не подходит: {detail}"),
            format!("The request body does not fit: {detail}"),
        ))
    })
}

/// The `day` a query asks for, or today's business day.
fn day_or_today(kitchen: &Kitchen, day: Option<&str>) -> Result<NaiveDate, KitchenError> {
    match day {
        Some(text) => parse_day(text).ok_or_else(|| {
            Label::new("day", "day", "day").error("нужна дата ГГГГ-ММ-ДД", "expected YYYY-MM-DD")
        }),
        None => Ok(kitchen.today()),
    }
}

fn api_actor() -> Actor {
    Actor {
        user_id: None,
        name: "api".into(),
    }
}

impl Kitchen {
    async fn order_in_unit(&self, unit: UnitId, id: i64) -> Result<OrderView, KitchenError> {
        let order = self.order_view(id).await?;
        if order.unit_id != unit.0 {
            return Err(KitchenError::NotFound(Thing::Order));
        }
        Ok(order)
    }
}

/// Import a receipt.
#[utoipa::path(post, path = "/api/v1/receipts", request_body = ReceiptIn, responses(
    (status = 201, description = "Order created", body = ReceiptOut),
    (status = 200, description = "No production wares: nothing to register", body = ReceiptOut),
    (status = 401, body = ErrorBody), (status = 409, description = "Receipt already imported", body = ErrorBody),
    (status = 422, description = "Invalid receipt or unknown register", body = ErrorBody)))]
async fn post_receipt(
    State(kitchen): State<Kitchen>,
    DeviceUnit(unit): DeviceUnit,
    payload: Result<Json<ReceiptIn>, JsonRejection>,
) -> Result<Response, KitchenError> {
    let started = std::time::Instant::now();
    let input = body(payload)?;
    let sold_at = match &input.sold_at {
        Some(text) => DateTime::<FixedOffset>::parse_from_rfc3339(text)
            .map_err(|_| {
                Label::new("sold_at", "sold_at", "sold_at").error(
                    "нужно время RFC 3339, например 2026-11-23T12:30:00+03:00",
                    "expected an RFC 3339 time such as 2026-11-23T12:30:00+03:00",
                )
            })?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let business_day = kitchen.business_day(sold_at);
    let check_date = match &input.shift_opened_on {
        Some(text) => parse_day(text).ok_or_else(|| {
            Label::new("shift_opened_on", "shift_opened_on", "shift_opened_on")
                .error("нужна дата ГГГГ-ММ-ДД", "expected YYYY-MM-DD")
        })?,
        None => business_day,
    };
    if input.lines.len() > crate::import::MAX_LINES {
        let most = crate::import::MAX_LINES;
        return Err(Label::new("lines", "lines", "lines")
            .error(format!("не больше {most}"), format!("at most {most}")));
    }
    let mut lines = Vec::with_capacity(input.lines.len());
    for (index, line) in input.lines.iter().enumerate() {
        let quantity = Quantity::parse(line.quantity).ok_or_else(|| {
            KitchenError::field(
                format!("lines[{index}].quantity"),
                Text::new(
                    "положительное число до 1000000",
                    "a positive number up to 1000000",
                ),
            )
        })?;
        let code = crate::model::WareCode::parse(&line.code).map_err(|error| match error {
            KitchenError::Invalid { message, .. } => {
                KitchenError::field(format!("lines[{index}].code"), message)
            }
            other => other,
        })?;
        lines.push((code.as_str().to_owned(), quantity));
    }
    if let Some(code) = crate::model::over_cap(&lines) {
        return Err(KitchenError::field(
            "lines",
            Text::new(
                format!("товар {code}: всего в чеке не больше 1000000"),
                format!("ware {code}: up to 1000000 in the whole receipt"),
            ),
        ));
    }
    let key = ReceiptKey {
        unit,
        cash_number: input.cash_register,
        shift_id: input.shift,
        check_date,
        check_id: input.receipt,
    };
    let context = kitchen
        .receipt_context(unit, input.cash_register, Some(&key))
        .await?
        .ok_or_else(|| {
            let number = input.cash_register;
            KitchenError::field(
                "cash_register",
                Text::new(
                    format!("неизвестная касса {number}"),
                    format!("unknown cash register {number}"),
                ),
            )
        })?;
    if context.seen {
        return Err(KitchenError::AlreadyImported);
    }
    let receipt = Receipt {
        key,
        business_day,
        lines,
    };
    let outcome = kitchen.import_receipt(&receipt, &context).await?;
    metrics::histogram!("tillwire_import_seconds", "api" => "v1")
        .record(started.elapsed().as_secs_f64());
    Ok(match outcome {
        ImportOutcome::Registered(registered) => (
            StatusCode::CREATED,
            Json(ReceiptOut {
                registered: true,
                order_id: Some(registered.order_id),
                number: Some(registered.number),
                business_day: Some(business_day.to_string()),
                stations: registered.stations,
            }),
        )
            .into_response(),
        ImportOutcome::NothingToRegister => Json(ReceiptOut {
            registered: false,
            order_id: None,
            number: None,
            business_day: None,
            stations: 0,
        })
        .into_response(),
        ImportOutcome::AlreadyImported => return Err(KitchenError::AlreadyImported),
    })
}

/// Orders of one business day.
#[utoipa::path(get, path = "/api/v1/orders", params(OrdersQuery), responses((status = 200, body = Vec<OrderView>), (status = 401, body = ErrorBody)))]
async fn list_orders(
    State(kitchen): State<Kitchen>,
    DeviceUnit(unit): DeviceUnit,
    Query(query): Query<OrdersQuery>,
) -> Result<Json<Vec<OrderView>>, KitchenError> {
    let day = day_or_today(&kitchen, query.day.as_deref())?;
    Ok(Json(kitchen.order_views(unit, day, query.active).await?))
}

/// One order with its lines and stations.
#[utoipa::path(get, path = "/api/v1/orders/{id}", responses((status = 200, body = OrderView), (status = 404, body = ErrorBody)))]
async fn get_order(
    State(kitchen): State<Kitchen>,
    DeviceUnit(unit): DeviceUnit,
    Path(id): Path<i64>,
) -> Result<Json<OrderView>, KitchenError> {
    Ok(Json(kitchen.order_in_unit(unit, id).await?))
}

/// Move an order to another status; only transitions in the flow table are allowed.
#[utoipa::path(post, path = "/api/v1/orders/{id}/status", request_body = StatusIn, responses(
    (status = 200, body = OrderView), (status = 404, body = ErrorBody), (status = 409, description = "Transition not allowed", body = ErrorBody)))]
async fn change_status(
    State(kitchen): State<Kitchen>,
    DeviceUnit(unit): DeviceUnit,
    Path(id): Path<i64>,
    payload: Result<Json<StatusIn>, JsonRejection>,
) -> Result<Json<OrderView>, KitchenError> {
    let input = body(payload)?;
    kitchen.order_in_unit(unit, id).await?;
    Ok(Json(
        kitchen
            .change_status_from(id, input.from_status_id, input.status_id, &api_actor())
            .await?,
    ))
}

/// Mark one station's part of an order ready.
#[utoipa::path(post, path = "/api/v1/orders/{id}/stations/{station_id}/ready", responses((status = 200, body = OrderView), (status = 404, body = ErrorBody)))]
async fn station_ready(
    State(kitchen): State<Kitchen>,
    DeviceUnit(unit): DeviceUnit,
    Path((id, station_id)): Path<(i64, i64)>,
) -> Result<Json<OrderView>, KitchenError> {
    kitchen.order_in_unit(unit, id).await?;
    Ok(Json(
        kitchen
            .mark_station_ready(id, station_id, &api_actor())
            .await?,
    ))
}

/// Print an order's ticket again on its cash register's printer (queued; it prints once the printer answers).
#[utoipa::path(post, path = "/api/v1/orders/{id}/reprint", responses(
    (status = 202, description = "Ticket queued", body = OrderView), (status = 404, body = ErrorBody),
    (status = 409, description = "The order's register has no printer", body = ErrorBody)))]
async fn reprint(
    State(kitchen): State<Kitchen>,
    DeviceUnit(unit): DeviceUnit,
    Path(id): Path<i64>,
) -> Result<Response, KitchenError> {
    kitchen.order_in_unit(unit, id).await?;
    Ok((StatusCode::ACCEPTED, Json(kitchen.reprint(id).await?)).into_response())
}

/// Who moved an order, and when.
#[utoipa::path(get, path = "/api/v1/orders/{id}/history", responses((status = 200, body = Vec<StatusChangeOut>), (status = 404, body = ErrorBody)))]
async fn order_history(
    State(kitchen): State<Kitchen>,
    DeviceUnit(unit): DeviceUnit,
    Path(id): Path<i64>,
) -> Result<Json<Vec<StatusChangeOut>>, KitchenError> {
    kitchen.order_in_unit(unit, id).await?;
    Ok(Json(
        kitchen
            .status_log(id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Statuses and allowed transitions.
#[utoipa::path(get, path = "/api/v1/workflow", responses((status = 200, body = Workflow)))]
async fn workflow(
    State(kitchen): State<Kitchen>,
    _device: DeviceUnit,
) -> Result<Json<Workflow>, KitchenError> {
    Ok(Json(kitchen.workflow().await?))
}

/// Prep times of one business day.
///
/// Orders, and the average and 90th percentile (nearest rank) of the time from order to the ready status, also per
/// station (to the station's part ready) and per local hour the orders were placed in.
#[utoipa::path(get, path = "/api/v1/stats/prep-times", params(PrepTimesQuery), responses(
    (status = 200, body = PrepTimes),
    (status = 422, description = "A day that is not YYYY-MM-DD, or a unit other than the key's", body = ErrorBody)))]
async fn prep_times(
    State(kitchen): State<Kitchen>,
    DeviceUnit(unit): DeviceUnit,
    Query(query): Query<PrepTimesQuery>,
) -> Result<Json<PrepTimes>, KitchenError> {
    if let Some(asked) = &query.unit {
        let label = Label::new("unit", "unit", "unit");
        let asked: i64 = asked.trim().parse().map_err(|_| {
            label.error(
                "нужен номер подразделения (целое число)",
                "expected a unit id (a whole number)",
            )
        })?;
        // A device key acts for its own unit only; another unit's id, existing or not, gets the same answer.
        if asked != unit.0 {
            let own = unit.0;
            return Err(label.error(
                format!("ключ устройства даёт данные только своего подразделения ({own})"),
                format!("a device key reads its own unit only ({own})"),
            ));
        }
    }
    let day = day_or_today(&kitchen, query.day.as_deref())?;
    Ok(Json(kitchen.prep_times(unit, day).await?))
}
