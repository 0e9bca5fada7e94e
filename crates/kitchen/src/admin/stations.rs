//! `/admin/stations/`: the kitchen stations of a unit (ELQ's departments).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tillwire_platform::admin::Admin;
use tillwire_platform::web::{PageContext, render};
use tillwire_platform::{now_ms, read, write};

use super::{Owned, UnitPicker, UnitQuery, back_to, conflict_on_constraint};
use crate::Thing;
use crate::model::Label;
use crate::model::Name;
use crate::{Kitchen, KitchenError};
use tillwire_platform::Text;

const SECTION: &str = "/admin/stations/";
const NAME_MAX: usize = 128;

pub fn router() -> Router<Kitchen> {
    Router::new()
        .route(SECTION, get(stations_page).post(create_station))
        .route("/admin/stations/{id}/rename", post(rename_station))
        .route("/admin/stations/{id}/delete", post(delete_station))
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct StationRow {
    id: i64,
    name: String,
    wares: i64,
}

#[derive(Template)]
#[template(path = "admin_stations.html")]
struct StationsPage {
    page: PageContext,
    section: &'static str,
    picker: UnitPicker,
    stations: Vec<StationRow>,
}

#[derive(Deserialize)]
struct NameForm {
    name: String,
}

/// A station's name; also how the CSV import refers to stations.
pub(super) fn station_name(text: &str) -> Result<Name, KitchenError> {
    Name::parse(
        text,
        NAME_MAX,
        Label::new("name", "название станции", "station name"),
    )
}

fn name_taken() -> Text {
    Text::new(
        "Станция с таким названием в этом подразделении уже есть.",
        "This unit already has a station with that name.",
    )
}

async fn stations_page(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Query(query): Query<UnitQuery>,
) -> Result<Response, KitchenError> {
    let picker = UnitPicker::load(&kitchen, query.unit).await?;
    let stations: Vec<StationRow> = read!(kitchen.store(), db => sqlx::query_as(
        "SELECT s.id, s.name, (SELECT COUNT(*) FROM wares w WHERE w.station_id = s.id) AS wares
         FROM stations s WHERE s.unit_id = $1 ORDER BY s.name",
    )
    .bind(picker.id())
    .fetch_all(db)
    .await)?;
    Ok(render(&StationsPage {
        page: admin.page("Станции", "Stations"),
        section: SECTION,
        picker,
        stations,
    }))
}

async fn create_station(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Query(query): Query<UnitQuery>,
    Form(form): Form<NameForm>,
) -> Result<Redirect, KitchenError> {
    let unit = UnitPicker::load(&kitchen, query.unit).await?.id();
    let name = station_name(&form.name)?;
    let (id,): (i64,) = write!(kitchen.store(), db => sqlx::query_as(
        "INSERT INTO stations (unit_id, name, created_ms) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(unit)
    .bind(name.as_str())
    .bind(now_ms())
    .fetch_one(db)
    .await)
    .map_err(conflict_on_constraint(name_taken()))?;
    tracing::info!(
        station = id,
        unit,
        name = name.as_str(),
        by = admin.username(),
        "station created"
    );
    Ok(back_to(SECTION, unit))
}

async fn rename_station(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<NameForm>,
) -> Result<Redirect, KitchenError> {
    let name = station_name(&form.name)?;
    let renamed: Option<(i64,)> = write!(kitchen.store(), db => sqlx::query_as(
        "UPDATE stations SET name = $2 WHERE id = $1 RETURNING unit_id",
    )
    .bind(id)
    .bind(name.as_str())
    .fetch_optional(db)
    .await)
    .map_err(conflict_on_constraint(name_taken()))?;
    let (unit,) = renamed.ok_or(KitchenError::NotFound(Thing::Station))?;
    tracing::info!(
        station = id,
        unit,
        name = name.as_str(),
        by = admin.username(),
        "station renamed"
    );
    Ok(back_to(SECTION, unit))
}

async fn delete_station(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, KitchenError> {
    let in_use = Text::new(
        "Станция используется товарами или заказами: сначала перенесите товары на другую станцию.",
        "The station is used by wares or orders: move its wares to another station first.",
    );
    let unit = Owned::Station.delete(&kitchen, id, in_use).await?;
    tracing::info!(station = id, unit, by = admin.username(), "station deleted");
    Ok(back_to(SECTION, unit))
}
