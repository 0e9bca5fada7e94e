//! The screens: the operator's order list, a kitchen screen per station, and the public customer board.
//!
//! Pages are thin server-rendered shells; `screens.js` renders them from one JSON snapshot and then follows the
//! unit's order events over Server-Sent Events. Every (re)connection starts with a fresh snapshot, so a screen
//! that was offline resynchronises by itself; nothing polls.

use std::convert::Infallible;

use askama::Template;
use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::response::sse::Event as SseEvent;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use futures::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tillwire_platform::web::{Asset, Lang, PageContext, live, render};
use tillwire_platform::{CurrentUser, Role};
use tillwire_units::picker::{Choice, Screen};
use tillwire_units::{UnitId, Units};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::Thing;
use crate::model::{OrderView, Status};
use crate::storage::Actor;
use crate::{Kitchen, KitchenError, ORDER_CHANGED};
use tillwire_platform::Text;

pub const ASSETS: &[Asset] = &[
    Asset {
        name: "screens.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/screens.js"),
    },
    Asset {
        name: "screens.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/screens.css"),
    },
    Asset {
        name: "bootstrap-icons.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/bootstrap-icons.css"),
    },
    Asset {
        name: "bootstrap-icons.woff2",
        content_type: "font/woff2",
        bytes: include_bytes!("../assets/bootstrap-icons.woff2"),
    },
];

/// The screens' pages.
pub fn pages() -> Router<Kitchen> {
    Router::new()
        .route("/", get(operator_page))
        .route("/documents/", get(operator_page))
        .route("/kitchen/", get(kitchen_index))
        .route("/kitchen/{station_id}", get(kitchen_page))
        .route("/dashboard/", get(board_page))
        .route("/dashboard/logo", get(board_logo))
}

/// What the screens' scripts call: snapshots, event streams and the buttons' actions (JSON).
pub fn calls() -> Router<Kitchen> {
    Router::new()
        .route("/dashboard/snapshot", get(board_snapshot))
        .route("/dashboard/events", get(board_events))
        .route("/screens/snapshot", get(staff_snapshot))
        .route("/screens/events", get(staff_events))
        .route("/orders/{id}/status", post(change_status))
        .route("/orders/{id}/reprint", post(reprint))
        .route(
            "/orders/{id}/stations/{station_id}/ready",
            post(station_ready),
        )
        .route(
            "/orders/{id}/stations/{station_id}/recall",
            post(station_recall),
        )
        .route("/orders/{id}/recall", post(recall))
        .route("/orders/{id}/lines/cross", post(cross_line))
}

#[derive(Deserialize)]
struct UnitQuery {
    unit: Option<i64>,
}

/// A screen page's query: its unit, or the unit picker's search.
#[derive(Deserialize)]
struct PageQuery {
    unit: Option<i64>,
    q: Option<String>,
}

impl PageQuery {
    fn screen<'a>(&'a self, uri: &'a axum::http::Uri) -> Screen<'a> {
        Screen {
            path: uri.path(),
            unit: self.unit,
            search: self.q.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StationRef {
    pub id: i64,
    pub name: String,
}

/// Everything a screen needs to draw itself; `public` snapshots leave out what customers need not see.
#[derive(Serialize)]
struct Snapshot {
    unit_id: i64,
    day: String,
    now_ms: i64,
    statuses: Vec<Status>,
    flows: Vec<crate::model::Flow>,
    stations: Vec<StationRef>,
    initial_status_id: Option<i64>,
    ready_status_id: Option<i64>,
    hide_ready_after_ms: i64,
    orders: Vec<OrderView>,
}

impl Kitchen {
    /// The unit a screen shows: the one asked for, or the default unit of a single-shop install.
    async fn screen_unit(&self, asked: Option<i64>) -> Result<UnitId, KitchenError> {
        let units = Units(self.store());
        match asked {
            Some(id) => Ok(units.get(UnitId(id)).await?.unit_id()),
            None => units
                .default_unit()
                .await?
                .map(|u| u.unit_id())
                .ok_or_else(|| {
                    KitchenError::field(
                        "unit",
                        Text::new(
                            "Подразделений несколько: добавьте ?unit=ID к адресу.",
                            "Several units: add ?unit=ID to the address.",
                        ),
                    )
                }),
        }
    }

    pub async fn stations(&self, unit: UnitId) -> Result<Vec<StationRef>, KitchenError> {
        Ok(tillwire_platform::read!(self.store(), db => sqlx::query_as(
            "SELECT id, name FROM stations WHERE unit_id = $1 ORDER BY name",
        )
        .bind(unit.0)
        .fetch_all(db)
        .await)?)
    }

    async fn snapshot(&self, unit: UnitId, public: bool) -> Result<Snapshot, KitchenError> {
        let workflow = self.workflow().await?;
        let day = self.today();
        let mut orders = self.order_views(unit, day, true).await?;
        let hide_after_ms = i64::from(self.settings.board_ready_hide_minutes) * 60_000;
        let ready_id = workflow.ready().map(|s| s.id);
        let now = tillwire_platform::now_ms();
        if public {
            orders.retain(|o| {
                !(hide_after_ms > 0
                    && Some(o.status_id) == ready_id
                    && now - o.status_changed_ms > hide_after_ms)
            });
            orders.iter_mut().for_each(strip_for_public);
        }
        Ok(Snapshot {
            unit_id: unit.0,
            day: day.to_string(),
            now_ms: now,
            initial_status_id: workflow.initial().map(|s| s.id),
            ready_status_id: ready_id,
            hide_ready_after_ms: hide_after_ms,
            stations: if public {
                Vec::new()
            } else {
                self.stations(unit).await?
            },
            statuses: workflow.statuses,
            flows: if public { Vec::new() } else { workflow.flows },
            orders,
        })
    }

    /// A snapshot event, then this unit's order changes as they happen.
    fn live_stream(
        &self,
        unit: UnitId,
        public: bool,
    ) -> impl Stream<Item = Result<SseEvent, Infallible>> + use<> {
        let kitchen = self.clone();
        let first = kitchen.clone();
        let updates = BroadcastStream::new(self.platform.events.subscribe());
        let initial = stream::once(async move { snapshot_event(&first, unit, public).await });
        let following = updates.then(move |received| {
            let kitchen = kitchen.clone();
            async move {
                match received {
                    Ok(event) if event.unit_id == unit.0 && event.topic == ORDER_CHANGED => {
                        match serde_json::from_value::<OrderView>(event.payload) {
                            Ok(mut order) => {
                                if public {
                                    strip_for_public(&mut order);
                                }
                                Some(
                                    SseEvent::default()
                                        .event("order")
                                        .json_data(order)
                                        .unwrap_or_default(),
                                )
                            }
                            Err(_) => Some(snapshot_event(&kitchen, unit, public).await),
                        }
                    }
                    Ok(event) if event.resyncs(unit.0) => {
                        Some(snapshot_event(&kitchen, unit, public).await)
                    }
                    Ok(_) => None,
                    // This screen fell behind the event stream: start it over from a fresh snapshot.
                    Err(BroadcastStreamRecvError::Lagged(_)) => {
                        Some(snapshot_event(&kitchen, unit, public).await)
                    }
                }
            }
        });
        initial
            .chain(following.filter_map(|event| async move { event }))
            .map(Ok)
    }
}

fn strip_for_public(order: &mut OrderView) {
    order.lines.clear();
    order.stations.clear();
}

async fn snapshot_event(kitchen: &Kitchen, unit: UnitId, public: bool) -> SseEvent {
    match kitchen.snapshot(unit, public).await {
        Ok(snapshot) => SseEvent::default()
            .event("snapshot")
            .json_data(snapshot)
            .unwrap_or_default(),
        Err(error) => {
            tracing::warn!(%error, "could not build a screen snapshot");
            SseEvent::default()
                .event("failed")
                .data("snapshot unavailable")
        }
    }
}

#[derive(Template)]
#[template(path = "operator.html")]
struct OperatorPage {
    page: PageContext,
    unit_id: i64,
    can_change: bool,
    recall_minutes: u32,
}

#[derive(Template)]
#[template(path = "kitchen_index.html")]
struct KitchenIndexPage {
    page: PageContext,
    stations: Vec<StationRef>,
}

#[derive(Template)]
#[template(path = "kitchen.html")]
struct KitchenPage {
    page: PageContext,
    unit_id: i64,
    station: StationRef,
    can_change: bool,
    recall_minutes: u32,
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage {
    lang: Lang,
    unit_id: i64,
    title: String,
    logo: bool,
    min_number_px: u32,
    page_seconds: u32,
}

async fn operator_page(
    State(kitchen): State<Kitchen>,
    user: CurrentUser,
    lang: Lang,
    uri: axum::http::Uri,
    Query(query): Query<PageQuery>,
) -> Result<Response, KitchenError> {
    let unit = match Units(kitchen.store())
        .choose(query.screen(&uri), lang, Some(user.clone()))
        .await?
    {
        Choice::Unit(unit) => unit,
        Choice::Pick(picker) => return Ok(picker),
    };
    let can_change = user.role >= Role::Operator;
    let title = lang.pick("Список заказов", "Orders");
    Ok(render(&OperatorPage {
        page: PageContext::new(title, lang, Some(user)),
        unit_id: unit.0,
        can_change,
        recall_minutes: kitchen.settings.recall_minutes,
    }))
}

async fn kitchen_index(
    State(kitchen): State<Kitchen>,
    user: CurrentUser,
    lang: Lang,
    uri: axum::http::Uri,
    Query(query): Query<PageQuery>,
) -> Result<Response, KitchenError> {
    let unit = match Units(kitchen.store())
        .choose(query.screen(&uri), lang, Some(user.clone()))
        .await?
    {
        Choice::Unit(unit) => unit,
        Choice::Pick(picker) => return Ok(picker),
    };
    let stations = kitchen.stations(unit).await?;
    let title = lang.pick("Кухня", "Kitchen");
    Ok(render(&KitchenIndexPage {
        page: PageContext::new(title, lang, Some(user)),
        stations,
    }))
}

async fn kitchen_page(
    State(kitchen): State<Kitchen>,
    user: CurrentUser,
    lang: Lang,
    Path(station_id): Path<i64>,
) -> Result<Response, KitchenError> {
    let found: Option<(i64, String, i64)> = tillwire_platform::read!(kitchen.store(), db => sqlx::query_as(
        "SELECT id, name, unit_id FROM stations WHERE id = $1",
    )
    .bind(station_id)
    .fetch_optional(db)
    .await)?;
    let (id, name, unit_id) = found.ok_or(KitchenError::NotFound(Thing::Station))?;
    let can_change = user.role >= Role::Operator;
    let page = PageContext::new(name.clone(), lang, Some(user));
    Ok(render(&KitchenPage {
        page,
        unit_id,
        station: StationRef { id, name },
        can_change,
        recall_minutes: kitchen.settings.recall_minutes,
    }))
}

async fn board_page(
    State(kitchen): State<Kitchen>,
    viewer: Option<CurrentUser>,
    lang: Lang,
    uri: axum::http::Uri,
    Query(query): Query<PageQuery>,
) -> Result<Response, KitchenError> {
    let unit = match Units(kitchen.store())
        .choose(query.screen(&uri), lang, viewer)
        .await?
    {
        Choice::Unit(unit) => unit,
        Choice::Pick(picker) => return Ok(picker),
    };
    let settings = &kitchen.settings;
    Ok(render(&BoardPage {
        lang,
        unit_id: unit.0,
        title: match settings.board_title.trim() {
            "" => lang.pick("Электронная очередь", "Order board").to_owned(),
            title => title.to_owned(),
        },
        logo: settings.board_logo.is_some(),
        min_number_px: settings.board_min_number_px,
        page_seconds: settings.board_page_seconds,
    }))
}

/// The board's logo (`kitchen.board_logo`), read when asked so a replaced file shows after a reload.
async fn board_logo(State(kitchen): State<Kitchen>) -> Result<Response, KitchenError> {
    let settings = &kitchen.settings;
    let (Some(path), Some(content_type)) = (&settings.board_logo, settings.logo_type()) else {
        return Err(KitchenError::NotFound(crate::Thing::Logo));
    };
    let image = tokio::fs::read(path).await.map_err(|error| {
        tracing::warn!(path = %path.display(), %error, "the board logo cannot be read");
        KitchenError::NotFound(crate::Thing::Logo)
    })?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type),
            (axum::http::header::CACHE_CONTROL, "max-age=300"),
        ],
        image,
    )
        .into_response())
}

async fn board_snapshot(
    State(kitchen): State<Kitchen>,
    Query(query): Query<UnitQuery>,
) -> Result<Response, KitchenError> {
    let unit = kitchen.screen_unit(query.unit).await?;
    Ok(Json(kitchen.snapshot(unit, true).await?).into_response())
}

async fn board_events(
    State(kitchen): State<Kitchen>,
    Query(query): Query<UnitQuery>,
) -> Result<Response, KitchenError> {
    let unit = kitchen.screen_unit(query.unit).await?;
    Ok(live(
        kitchen.live_stream(unit, true),
        kitchen.platform.stopping(),
    ))
}

async fn staff_snapshot(
    State(kitchen): State<Kitchen>,
    _user: CurrentUser,
    Query(query): Query<UnitQuery>,
) -> Result<Response, KitchenError> {
    let unit = kitchen.screen_unit(query.unit).await?;
    Ok(Json(kitchen.snapshot(unit, false).await?).into_response())
}

async fn staff_events(
    State(kitchen): State<Kitchen>,
    _user: CurrentUser,
    Query(query): Query<UnitQuery>,
) -> Result<Response, KitchenError> {
    let unit = kitchen.screen_unit(query.unit).await?;
    Ok(live(
        kitchen.live_stream(unit, false),
        kitchen.platform.stopping(),
    ))
}

#[derive(Deserialize)]
struct StatusForm {
    next_status: i64,
    /// The status the screen showed when it was tapped.
    from_status: Option<i64>,
}

/// Someone allowed to move orders (an operator or an admin, or a paired operator screen), as the audit log names
/// them. Taking it as an extractor is the permission check, so no screen action can forget it.
struct Operator(Actor);

impl<S> FromRequestParts<S> for Operator
where
    tillwire_platform::Platform: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        user.require(Role::Operator)
            .map_err(|_| KitchenError::Forbidden.into_response())?;
        Ok(Operator(actor(&user)))
    }
}

pub(crate) fn actor(user: &CurrentUser) -> Actor {
    Actor {
        // A paired screen acts under its own name, as no user.
        user_id: user.screen.is_none().then_some(user.id),
        name: user.username.clone(),
    }
}

async fn change_status(
    State(kitchen): State<Kitchen>,
    Operator(actor): Operator,
    Path(id): Path<i64>,
    Form(form): Form<StatusForm>,
) -> Result<Json<OrderView>, KitchenError> {
    Ok(Json(
        kitchen
            .change_status_from(id, form.from_status, form.next_status, &actor)
            .await?,
    ))
}

async fn reprint(
    State(kitchen): State<Kitchen>,
    Operator(actor): Operator,
    Path(id): Path<i64>,
) -> Result<Json<OrderView>, KitchenError> {
    tracing::info!(order = id, by = %actor.name, "reprint requested");
    Ok(Json(kitchen.reprint(id).await?))
}

#[derive(Deserialize)]
struct RecallForm {
    /// The status the screen shows the order in: the result of the move to undo.
    seen: i64,
}

/// Undoes this screen's last move of an order, within the recall window.
#[tracing::instrument(skip_all, fields(order = id, by = %actor.name))]
async fn recall(
    State(kitchen): State<Kitchen>,
    Operator(actor): Operator,
    Path(id): Path<i64>,
    Form(form): Form<RecallForm>,
) -> Result<Json<OrderView>, KitchenError> {
    Ok(Json(kitchen.recall(id, form.seen, &actor).await?))
}

#[tracing::instrument(skip_all, fields(order = id, station = station_id, by = %actor.name))]
async fn station_recall(
    State(kitchen): State<Kitchen>,
    Operator(actor): Operator,
    Path((id, station_id)): Path<(i64, i64)>,
) -> Result<Json<OrderView>, KitchenError> {
    Ok(Json(
        kitchen.recall_station_ready(id, station_id, &actor).await?,
    ))
}

#[derive(Deserialize)]
struct CrossForm {
    code: String,
    crossed: bool,
}

#[tracing::instrument(skip_all, fields(order = id, by = %actor.name))]
async fn cross_line(
    State(kitchen): State<Kitchen>,
    Operator(actor): Operator,
    Path(id): Path<i64>,
    Form(form): Form<CrossForm>,
) -> Result<Json<OrderView>, KitchenError> {
    Ok(Json(
        kitchen
            .cross_line(id, &form.code, form.crossed, &actor)
            .await?,
    ))
}

async fn station_ready(
    State(kitchen): State<Kitchen>,
    Operator(actor): Operator,
    Path((id, station_id)): Path<(i64, i64)>,
) -> Result<Json<OrderView>, KitchenError> {
    Ok(Json(
        kitchen.mark_station_ready(id, station_id, &actor).await?,
    ))
}
