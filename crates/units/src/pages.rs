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

use tillwire_platform::screens::{NewScreen, PairingCode, ScreenRow, Screens};
use tillwire_platform::tokens::TokenRow;

use crate::{ApiKeys, Unit, UnitError, UnitId, UnitName, Units};

pub fn router(platform: Platform) -> Router {
    Router::new()
        .route("/admin/units/", get(units_page).post(create_unit))
        .route("/admin/units/{id}/rename", post(rename_unit))
        .route("/admin/units/{id}/delete", post(delete_unit))
        .route("/admin/api-keys/", get(keys_page).post(issue_key))
        .route("/admin/api-keys/{id}/revoke", post(revoke_key))
        .route("/admin/screens/", get(screens_page).post(create_screen))
        .route("/admin/screens/{id}/code", post(new_screen_code))
        .route("/admin/screens/{id}/revoke", post(revoke_screen))
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

#[derive(Template)]
#[template(path = "admin_screens.html")]
struct ScreensPage {
    page: PageContext,
    section: &'static str,
    units: Vec<Unit>,
    screens: Vec<ScreenRow>,
    /// A code just made: the screen's name, the code and the link that carries it.
    issued: Option<(String, String, String)>,
    settings: std::sync::Arc<tillwire_platform::Settings>,
}

impl ScreensPage {
    fn unit_name(&self, unit_id: &i64) -> &str {
        self.units
            .iter()
            .find(|u| u.id == *unit_id)
            .map_or("?", |u| u.name.as_str())
    }
    fn role_label(&self, role: &str) -> &'static str {
        match role {
            "operator" => self.page.lang.pick("оператор", "operator"),
            _ => self.page.lang.pick("наблюдатель", "viewer"),
        }
    }
    fn time(&self, ms: &i64) -> String {
        tillwire_platform::admin::local_time(&self.settings, *ms, "%Y-%m-%d %H:%M")
    }
}

#[derive(Deserialize)]
struct ScreenForm {
    name: String,
    unit_id: i64,
    role: String,
    opens: String,
}

/// The screens page, with the code just made for `issued` (a screen's id) shown once.
async fn render_screens(
    platform: &Platform,
    admin: &Admin,
    host: Option<&str>,
    issued: Option<(i64, PairingCode)>,
) -> Result<Response, UnitError> {
    let units = Units(&platform.store).list().await?;
    let screens = Screens(&platform.store).list().await?;
    let issued = issued.map(|(id, code)| {
        let name = screens
            .iter()
            .find(|screen| screen.id == id)
            .map_or_else(String::new, |screen| screen.name.clone());
        let link = format!("http://{}/pair/?code={}", host.unwrap_or("…"), code.plain());
        (name, code.to_string(), link)
    });
    let secret = issued.is_some();
    let page = render(&ScreensPage {
        page: admin.page("Экраны", "Screens"),
        section: "/admin/screens/",
        units,
        screens,
        issued,
        settings: platform.settings.clone(),
    });
    Ok(tillwire_platform::web::shown_once(page, secret))
}

fn host(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
}

async fn screens_page(
    State(platform): State<Platform>,
    admin: Admin,
    headers: axum::http::HeaderMap,
) -> Result<Response, UnitError> {
    render_screens(&platform, &admin, host(&headers), None).await
}

/// Records a screen and shows its pairing code in the response to this POST only.
async fn create_screen(
    State(platform): State<Platform>,
    admin: Admin,
    headers: axum::http::HeaderMap,
    Form(form): Form<ScreenForm>,
) -> Result<Response, UnitError> {
    let unit = Units(&platform.store).get(UnitId(form.unit_id)).await?;
    let new = NewScreen::parse(&form.name, unit.id, &form.role, &form.opens)?;
    let issued = Screens(&platform.store)
        .create(&new, admin.username())
        .await?;
    render_screens(&platform, &admin, host(&headers), Some(issued)).await
}

async fn new_screen_code(
    State(platform): State<Platform>,
    admin: Admin,
    headers: axum::http::HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, UnitError> {
    let code = Screens(&platform.store)
        .new_code(id, admin.username())
        .await?;
    render_screens(&platform, &admin, host(&headers), Some((id, code))).await
}

async fn revoke_screen(
    State(platform): State<Platform>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, UnitError> {
    Screens(&platform.store)
        .revoke(id, admin.username())
        .await?;
    Ok(Redirect::to("/admin/screens/"))
}
