//! Admin pages for units and their API keys.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tillwire_platform::web::{Lang, PageContext, render};
use tillwire_platform::{CurrentUser, Platform, Role};

use crate::{ApiKeyRow, ApiKeys, Unit, UnitError, UnitId, UnitName, Units};

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
    keys: Vec<ApiKeyRow>,
    issued: Option<String>,
}

impl KeysPage {
    fn unit_name(&self, unit_id: &i64) -> &str {
        self.units
            .iter()
            .find(|u| u.id == *unit_id)
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

async fn units_page(
    State(platform): State<Platform>,
    user: CurrentUser,
    lang: Lang,
) -> Result<Response, Response> {
    user.require(Role::Admin)
        .map_err(IntoResponse::into_response)?;
    let units = Units(&platform.store)
        .list()
        .await
        .map_err(IntoResponse::into_response)?;
    let title = lang.pick("Подразделения", "Units");
    Ok(render(&UnitsPage {
        page: PageContext::new(title, lang, Some(user)),
        section: "/admin/units/",
        units,
    }))
}

async fn create_unit(
    State(platform): State<Platform>,
    user: CurrentUser,
    Form(form): Form<NameForm>,
) -> Result<Redirect, UnitError> {
    user.require(Role::Admin)
        .map_err(|_| UnitError::Invalid("admins only".into()))?;
    let name = UnitName::parse(&form.name)?;
    let id = Units(&platform.store).create(&name).await?;
    tracing::info!(unit = id.0, by = %user.username, "unit created");
    Ok(Redirect::to("/admin/units/"))
}

async fn rename_unit(
    State(platform): State<Platform>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<NameForm>,
) -> Result<Redirect, Response> {
    user.require(Role::Admin)
        .map_err(IntoResponse::into_response)?;
    let name = UnitName::parse(&form.name).map_err(IntoResponse::into_response)?;
    Units(&platform.store)
        .rename(UnitId(id), &name)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(Redirect::to("/admin/units/"))
}

async fn delete_unit(
    State(platform): State<Platform>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Redirect, Response> {
    user.require(Role::Admin)
        .map_err(IntoResponse::into_response)?;
    Units(&platform.store)
        .delete(UnitId(id))
        .await
        .map_err(IntoResponse::into_response)?;
    tracing::info!(unit = id, by = %user.username, "unit deleted");
    Ok(Redirect::to("/admin/units/"))
}

async fn render_keys(
    platform: &Platform,
    user: CurrentUser,
    lang: Lang,
    issued: Option<String>,
) -> Result<Response, Response> {
    let units = Units(&platform.store)
        .list()
        .await
        .map_err(IntoResponse::into_response)?;
    let keys = ApiKeys(&platform.store)
        .list()
        .await
        .map_err(IntoResponse::into_response)?;
    let title = lang.pick("API-ключи", "API keys");
    Ok(render(&KeysPage {
        page: PageContext::new(title, lang, Some(user)),
        section: "/admin/api-keys/",
        units,
        keys,
        issued,
    }))
}

async fn keys_page(
    State(platform): State<Platform>,
    user: CurrentUser,
    lang: Lang,
) -> Result<Response, Response> {
    user.require(Role::Admin)
        .map_err(IntoResponse::into_response)?;
    render_keys(&platform, user, lang, None).await
}

/// Shows the new key in the response to this POST only; it is never retrievable again.
async fn issue_key(
    State(platform): State<Platform>,
    user: CurrentUser,
    lang: Lang,
    Form(form): Form<KeyForm>,
) -> Result<Response, Response> {
    user.require(Role::Admin)
        .map_err(IntoResponse::into_response)?;
    Units(&platform.store)
        .get(UnitId(form.unit_id))
        .await
        .map_err(IntoResponse::into_response)?;
    let issued = ApiKeys(&platform.store)
        .issue(UnitId(form.unit_id), &form.name)
        .await
        .map_err(IntoResponse::into_response)?;
    tracing::info!(key = issued.id, unit = form.unit_id, by = %user.username, "API key issued");
    render_keys(&platform, user, lang, Some(issued.plain)).await
}

async fn revoke_key(
    State(platform): State<Platform>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Redirect, Response> {
    user.require(Role::Admin)
        .map_err(IntoResponse::into_response)?;
    ApiKeys(&platform.store)
        .revoke(id)
        .await
        .map_err(IntoResponse::into_response)?;
    tracing::info!(key = id, by = %user.username, "API key revoked");
    Ok(Redirect::to("/admin/api-keys/"))
}
