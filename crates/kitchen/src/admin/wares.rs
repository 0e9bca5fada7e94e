//! `/admin/wares/`: a unit's catalogue of production wares: search, paging, create, edit, delete.
//! CSV export and import live in [`super::wares_csv`].

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tillwire_platform::admin::Admin;
use tillwire_platform::web::{PageContext, render};
use tillwire_platform::{now_ms, read, write};
use tillwire_units::UnitId;

use super::{Owned, UnitPicker, UnitQuery, back_to, conflict_on_constraint};
use crate::Thing;
use crate::model::Label;
use crate::model::{Name, Quantity, WareCode, format_quantity};
use crate::screens::StationRef;
use crate::{Kitchen, KitchenError};
use tillwire_platform::{HttpError, Text};

pub(super) const SECTION: &str = "/admin/wares/";
const PAGE_SIZE: usize = 100;
const FULL_NAME_MAX: usize = 128;
/// The name printed on tickets.
const SHORT_NAME_MAX: usize = 80;

pub fn router() -> Router<Kitchen> {
    Router::new()
        .route(SECTION, get(wares_page).post(create_ware))
        .route("/admin/wares/{id}", get(ware_page).post(update_ware))
        .route("/admin/wares/{id}/delete", post(delete_ware))
        .merge(super::wares_csv::router())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct WareRow {
    pub id: i64,
    pub unit_id: i64,
    pub code: String,
    pub full_name: String,
    pub short_name: String,
    pub station_id: i64,
    pub station_name: String,
    pub catch_quantity: f64,
}

const WARE_COLUMNS: &str = "SELECT w.id, w.unit_id, w.code, w.full_name, w.short_name, w.station_id, s.name AS station_name,
     w.catch_quantity FROM wares w JOIN stations s ON s.id = w.station_id";

/// A unit's whole catalogue, by code.
pub(super) async fn unit_wares(kitchen: &Kitchen, unit: i64) -> Result<Vec<WareRow>, KitchenError> {
    let sql = format!("{WARE_COLUMNS} WHERE w.unit_id = $1 ORDER BY w.code");
    Ok(
        read!(kitchen.store(), db => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(unit)
        .fetch_all(db)
        .await)?,
    )
}

async fn ware(kitchen: &Kitchen, id: i64) -> Result<WareRow, KitchenError> {
    let sql = format!("{WARE_COLUMNS} WHERE w.id = $1");
    let found: Option<WareRow> = read!(kitchen.store(), db => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db)
        .await)?;
    found.ok_or(KitchenError::NotFound(Thing::Ware))
}

/// One invalid field of a ware; the CSV import reports them with their line.
pub(super) struct FieldError {
    pub field: &'static str,
    pub message: Text,
}

/// A ware's own fields, checked one by one so that every bad field can be named at once.
pub(super) struct WareFields {
    pub code: WareCode,
    pub full_name: Name,
    pub short_name: Name,
    pub catch_quantity: Quantity,
}

impl WareFields {
    pub(super) fn parse(
        code: &str,
        full_name: &str,
        short_name: &str,
        catch_quantity: &str,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let code = checked(&mut errors, "code", WareCode::parse(code));
        let full_name = checked(
            &mut errors,
            "full_name",
            Name::parse(
                full_name,
                FULL_NAME_MAX,
                Label::new("full_name", "полное название", "full name"),
            ),
        );
        let short_name = checked(
            &mut errors,
            "short_name",
            Name::parse(
                short_name,
                SHORT_NAME_MAX,
                Label::new("short_name", "краткое название", "short name"),
            ),
        );
        let catch_quantity = checked(
            &mut errors,
            "catch_quantity",
            parse_catch_quantity(catch_quantity),
        );
        match (code, full_name, short_name, catch_quantity) {
            (Some(code), Some(full_name), Some(short_name), Some(catch_quantity)) => {
                Ok(WareFields {
                    code,
                    full_name,
                    short_name,
                    catch_quantity,
                })
            }
            _ => Err(errors),
        }
    }
}

pub(super) fn checked<T>(
    errors: &mut Vec<FieldError>,
    field: &'static str,
    parsed: Result<T, KitchenError>,
) -> Option<T> {
    parsed
        .map_err(|error| {
            let message = match error {
                KitchenError::Invalid { message, .. } => message,
                other => Text::same(other.to_string()),
            };
            errors.push(FieldError { field, message })
        })
        .ok()
}

/// Empty means ELQ's default of 1. A decimal comma is accepted: that is how a Russian spreadsheet writes 0,5.
fn parse_catch_quantity(text: &str) -> Result<Quantity, KitchenError> {
    let text = text.trim();
    let value = if text.is_empty() {
        Some(1.0)
    } else {
        text.replace(',', ".").parse::<f64>().ok()
    };
    value.and_then(Quantity::parse).ok_or_else(|| {
        Label::new("catch_quantity", "количество в заказе", "catch quantity").error(
            "число больше 0 (не больше 1000000)",
            "a number greater than 0 (at most 1000000)",
        )
    })
}

#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    unit: Option<i64>,
    #[serde(default)]
    q: String,
    /// A station id, or empty for all stations.
    #[serde(default)]
    station: String,
    page: Option<usize>,
    /// Set by the redirect after a successful CSV import.
    added: Option<usize>,
    updated: Option<usize>,
}

/// What the import box shows after a refused import: the pasted text (kept so it can be fixed) and every error.
#[derive(Default)]
pub(super) struct ImportBox {
    pub text: String,
    pub errors: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin_wares.html")]
struct WaresPage {
    page: PageContext,
    section: &'static str,
    picker: UnitPicker,
    stations: Vec<StationRef>,
    wares: Vec<WareRow>,
    total: usize,
    matching: usize,
    q: String,
    station: Option<i64>,
    page_no: usize,
    pages: usize,
    notice: Option<String>,
    import: ImportBox,
}

impl WaresPage {
    fn quantity(&self, value: &f64) -> String {
        format_quantity(*value)
    }
    fn is_station(&self, id: &i64) -> bool {
        self.station == Some(*id)
    }
}

/// SQLite's LOWER and LIKE fold only ASCII, so "пицца" would miss "Пицца". A unit's catalogue is small enough to
/// filter here, which also behaves the same on both engines.
fn matches(ware: &WareRow, needle: &str, station: Option<i64>) -> bool {
    station.is_none_or(|id| ware.station_id == id)
        && (needle.is_empty()
            || [&ware.code, &ware.full_name, &ware.short_name]
                .iter()
                .any(|text| text.to_lowercase().contains(needle)))
}

/// The list page; also what a refused CSV import answers with, its errors in the import box.
pub(super) async fn list_page(
    kitchen: &Kitchen,
    admin: &Admin,
    picker: UnitPicker,
    query: ListQuery,
    import: ImportBox,
) -> Result<Response, KitchenError> {
    let all = unit_wares(kitchen, picker.id()).await?;
    let needle = query.q.trim().to_lowercase();
    let station = query.station.parse().ok();
    let found: Vec<WareRow> = all
        .iter()
        .filter(|w| matches(w, &needle, station))
        .cloned()
        .collect();
    let pages = found.len().div_ceil(PAGE_SIZE).max(1);
    let page_no = query.page.unwrap_or(1).clamp(1, pages);
    let notice = query.added.zip(query.updated).map(|(added, updated)| {
        admin.lang.pick(
            format!("Импорт выполнен: добавлено {added}, обновлено {updated}."),
            format!("Imported: {added} added, {updated} updated."),
        )
    });
    Ok(render(&WaresPage {
        page: admin.page("Товары", "Wares"),
        section: SECTION,
        stations: kitchen.stations(UnitId(picker.id())).await?,
        picker,
        total: all.len(),
        matching: found.len(),
        wares: found
            .into_iter()
            .skip((page_no - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .collect(),
        q: query.q,
        station,
        page_no,
        pages,
        notice,
        import,
    }))
}

async fn wares_page(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Result<Response, KitchenError> {
    let picker = UnitPicker::load(&kitchen, query.unit).await?;
    list_page(&kitchen, &admin, picker, query, ImportBox::default()).await
}

#[derive(Template)]
#[template(path = "admin_ware.html")]
struct WarePage {
    page: PageContext,
    section: &'static str,
    picker: UnitPicker,
    stations: Vec<StationRef>,
    ware: WareRow,
}

async fn ware_page(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Response, KitchenError> {
    let ware = ware(&kitchen, id).await?;
    let picker = UnitPicker::load(&kitchen, Some(ware.unit_id)).await?;
    Ok(render(&WarePage {
        page: admin.page("Товар", "Ware"),
        section: SECTION,
        stations: kitchen.stations(UnitId(ware.unit_id)).await?,
        picker,
        ware,
    }))
}

#[derive(Deserialize)]
struct WareForm {
    code: String,
    full_name: String,
    short_name: String,
    station: i64,
    catch_quantity: String,
}

impl WareForm {
    fn fields(&self) -> Result<WareFields, HttpError> {
        WareFields::parse(
            &self.code,
            &self.full_name,
            &self.short_name,
            &self.catch_quantity,
        )
        .map_err(|errors| {
            let mut fields = errors.into_iter();
            let first = fields.next().expect("a refused ware has a field error");
            fields.fold(
                HttpError::field(first.field, first.message),
                |error, next| error.with_field(next.field, next.message),
            )
        })
    }
}

fn code_taken() -> Text {
    Text::new(
        "В этом подразделении уже есть товар с таким кодом.",
        "This unit already has a ware with that code.",
    )
}

async fn create_ware(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Query(query): Query<UnitQuery>,
    Form(form): Form<WareForm>,
) -> Result<Redirect, HttpError> {
    let unit = UnitPicker::load(&kitchen, query.unit).await?.id();
    let fields = form.fields()?;
    Owned::Station
        .require_in_unit(&kitchen, form.station, unit)
        .await?;
    let (id,): (i64,) = write!(kitchen.store(), db => sqlx::query_as(
        "INSERT INTO wares (unit_id, code, full_name, short_name, station_id, catch_quantity, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(unit)
    .bind(fields.code.as_str())
    .bind(fields.full_name.as_str())
    .bind(fields.short_name.as_str())
    .bind(form.station)
    .bind(fields.catch_quantity.value())
    .bind(now_ms())
    .fetch_one(db)
    .await)
    .map_err(conflict_on_constraint(code_taken()))?;
    tracing::info!(
        ware = id,
        unit,
        code = fields.code.as_str(),
        by = admin.username(),
        "ware created"
    );
    Ok(back_to(SECTION, unit))
}

async fn update_ware(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<WareForm>,
) -> Result<Redirect, HttpError> {
    let fields = form.fields()?;
    let unit = Owned::Ware.unit_of(&kitchen, id).await?;
    Owned::Station
        .require_in_unit(&kitchen, form.station, unit)
        .await?;
    let updated = write!(kitchen.store(), db => sqlx::query(
        "UPDATE wares SET code = $2, full_name = $3, short_name = $4, station_id = $5, catch_quantity = $6 WHERE id = $1",
    )
    .bind(id)
    .bind(fields.code.as_str())
    .bind(fields.full_name.as_str())
    .bind(fields.short_name.as_str())
    .bind(form.station)
    .bind(fields.catch_quantity.value())
    .execute(db)
    .await
    .map(|r| r.rows_affected()))
    .map_err(conflict_on_constraint(code_taken()))?;
    if updated == 0 {
        return Err(KitchenError::NotFound(Thing::Ware).into());
    }
    tracing::info!(
        ware = id,
        unit,
        code = fields.code.as_str(),
        by = admin.username(),
        "ware updated"
    );
    Ok(back_to(SECTION, unit))
}

async fn delete_ware(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, KitchenError> {
    // Order lines keep their own copy of code and name, so nothing refers to a ware for good.
    let unit = Owned::Ware
        .delete(
            &kitchen,
            id,
            Text::new("На товар ещё есть ссылки.", "The ware is still referenced."),
        )
        .await?;
    tracing::info!(ware = id, unit, by = admin.username(), "ware deleted");
    Ok(back_to(SECTION, unit))
}
