//! Admin pages for units and their API keys.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tillwire_platform::Platform;
use tillwire_platform::admin::Admin;
use tillwire_platform::web::{PageContext, render};

use tillwire_platform::tokens::TokenRow;

use crate::{ApiKeys, Unit, UnitError, UnitId, UnitName, Units};

pub fn router(platform: Platform) -> Router {
    Router::new()
        .route("/admin/units/", get(units_page).post(create_unit))
        .route("/admin/units/{id}/rename", post(rename_unit))
        .route("/admin/units/{id}/delete", post(delete_unit))
        .route("/admin/api-keys/", get(keys_page).post(issue_key))
        .route("/admin/api-keys/{id}/revoke", post(revoke_key))
        .with_state(platform)
}

#[derive(Template)]
#[template(path = "admin_units.html")]
struct UnitsPage {
    page: PageContext,
    section: &'static str,
    units: Vec<Unit>,
}

#[derive(Template)]
#[template(path = "admin_api_keys.html")]
struct KeysPage {
    page: PageContext,
    section: &'static str,
    units: Vec<Unit>,
    keys: Vec<TokenRow>,
    issued: Option<String>,
}

impl KeysPage {
    fn unit_name(&self, unit_id: &Option<i64>) -> &str {
        self.units
            .iter()
            .find(|u| Some(u.id) == *unit_id)
            .map_or("?", |u| u.name.as_str())
    }
}

#[derive(Deserialize)]
struct NameForm {
    name: String,
}

#[derive(Deserialize)]
struct KeyForm {
    unit_id: i64,
    name: String,
}

async fn units_page(State(platform): State<Platform>, admin: Admin) -> Result<Response, UnitError> {
    let units = Units(&platform.store).list().await?;
    Ok(render(&UnitsPage {
        page: admin.page("Подразделения", "Units"),
        section: "/admin/units/",
        units,
    }))
}

async fn create_unit(
    State(platform): State<Platform>,
    admin: Admin,
    Form(form): Form<NameForm>,
) -> Result<Redirect, UnitError> {
    let id = Units(&platform.store)
        .create(&UnitName::parse(&form.name)?)
        .await?;
    tracing::info!(unit = id.0, by = %admin.username(), "unit created");
    Ok(Redirect::to("/admin/units/"))
}

async fn rename_unit(
    State(platform): State<Platform>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<NameForm>,
) -> Result<Redirect, UnitError> {
    Units(&platform.store)
        .rename(UnitId(id), &UnitName::parse(&form.name)?)
        .await?;
    tracing::info!(unit = id, by = %admin.username(), "unit renamed");
    Ok(Redirect::to("/admin/units/"))
}

async fn delete_unit(
    State(platform): State<Platform>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, UnitError> {
    Units(&platform.store)
        .delete(UnitId(id), admin.username())
        .await?;
    tracing::info!(unit = id, by = %admin.username(), "unit deleted");
    Ok(Redirect::to("/admin/units/"))
}

async fn render_keys(
    platform: &Platform,
    admin: &Admin,
    issued: Option<String>,
) -> Result<Response, UnitError> {
    let units = Units(&platform.store).list().await?;
    let keys = ApiKeys(&platform.store).list().await?;
    let page = admin.page("API-ключи", "API keys");
    let secret = issued.is_some();
    let page = render(&KeysPage {
        page,
        section: "/admin/api-keys/",
        units,
        keys,
        issued,
    });
    Ok(tillwire_platform::web::shown_once(page, secret))
}

async fn keys_page(State(platform): State<Platform>, admin: Admin) -> Result<Response, UnitError> {
    render_keys(&platform, &admin, None).await
}

/// Shows the new key in the response to this POST only; it is never retrievable again.
async fn issue_key(
    State(platform): State<Platform>,
    admin: Admin,
    Form(form): Form<KeyForm>,
) -> Result<Response, UnitError> {
    let unit = Units(&platform.store).get(UnitId(form.unit_id)).await?;
    let issued = ApiKeys(&platform.store)
        .issue(unit.unit_id(), &form.name, admin.username())
        .await?;
    tracing::info!(key = issued.id, unit = unit.id, by = %admin.username(), "API key issued");
    render_keys(&platform, &admin, Some(issued.plain)).await
}

async fn revoke_key(
    State(platform): State<Platform>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, UnitError> {
    ApiKeys(&platform.store)
        .revoke(id, admin.username())
        .await?;
    tracing::info!(key = id, by = %admin.username(), "API key revoked");
    Ok(Redirect::to("/admin/api-keys/"))
}
