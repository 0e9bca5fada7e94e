//! The web shell: languages, the page layout, embedded assets, login/logout, health and metrics.

use std::net::{IpAddr, SocketAddr};

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use crate::Platform;
use crate::auth::{self, CurrentUser, SESSION_COOKIE, Sessions, Users};

/// The interface language: Russian by default, English on request (cookie `lang`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Ru,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }
    pub fn pick<T>(self, ru: T, en: T) -> T {
        match self {
            Lang::Ru => ru,
            Lang::En => en,
        }
    }
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        match auth::cookie_value(headers, "lang") {
            Some("en") => Lang::En,
            _ => Lang::Ru,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::from_headers(&parts.headers))
    }
}

/// The client's address: the one the edge found (behind a trusted proxy, the address it forwards), else the TCP
/// peer's; loopback when served without one, as in unit tests.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(client) = parts.extensions.get::<ClientAddr>() {
            return Ok(*client);
        }
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        Ok(ClientAddr(address))
    }
}

/// Words of the layout and the login page.
pub struct ShellTexts {
    pub admin: &'static str,
    pub login: &'static str,
    pub logout: &'static str,
    pub login_title: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub bad_login: &'static str,
    pub too_many: &'static str,
    pub other_lang: &'static str,
    pub pair_screen: &'static str,
}

const SHELL_RU: ShellTexts = ShellTexts {
    admin: "Администрирование",
    login: "Войти",
    logout: "Выйти",
    login_title: "Авторизация",
    username: "Имя пользователя",
    password: "Пароль",
    bad_login: "Некорректное имя пользователя или пароль!",
    too_many: "Слишком много попыток. Подождите минуту.",
    other_lang: "English",
    pair_screen: "Это экран заведения? Подключите его по коду",
};

const SHELL_EN: ShellTexts = ShellTexts {
    admin: "Administration",
    login: "Sign in",
    logout: "Sign out",
    login_title: "Sign in",
    username: "Username",
    password: "Password",
    bad_login: "Wrong username or password!",
    too_many: "Too many attempts. Wait a minute.",
    other_lang: "Русский",
    pair_screen: "A shop's screen? Pair it with a code",
};

/// What the layout (`base.html`) needs on every page.
pub struct PageContext {
    pub title: String,
    pub lang: Lang,
    pub user: Option<CurrentUser>,
    pub t: &'static ShellTexts,
}

impl PageContext {
    pub fn new(title: impl Into<String>, lang: Lang, user: Option<CurrentUser>) -> Self {
        PageContext {
            title: title.into(),
            lang,
            user,
            t: shell_texts(lang),
        }
    }
    pub fn csrf(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.csrf.as_str())
    }
    /// A paired screen shows its page only: no navigation (kiosk).
    pub fn is_screen(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.screen.is_some())
    }
    pub fn is_admin(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.role == crate::Role::Admin)
    }
    /// The admin area's navigation: every area's entries.
    pub fn admin_links(&self) -> Vec<&'static NavLink> {
        NAVIGATION
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .admin
            .clone()
    }
    /// The top bar's entries.
    pub fn main_links(&self) -> Vec<&'static NavLink> {
        NAVIGATION
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .main
            .clone()
    }
    pub fn other_lang_code(&self) -> &'static str {
        self.lang.pick("en", "ru")
    }
}

/// An entry of a navigation bar, in both languages.
#[derive(Debug, PartialEq, Eq)]
pub struct NavLink {
    pub href: &'static str,
    pub ru: &'static str,
    pub en: &'static str,
    /// Opens in a new tab (the customer board belongs on its own screen).
    pub new_tab: bool,
}

impl NavLink {
    /// An entry that opens in the same tab.
    pub const fn to(href: &'static str, ru: &'static str, en: &'static str) -> Self {
        NavLink {
            href,
            ru,
            en,
            new_tab: false,
        }
    }
}

/// The navigation of every page: the entries of the areas the binary was assembled with. Pages are rendered in
/// many places that hold no app state, and which areas a binary runs is fixed for the process, so the
/// navigation is process-wide, set by `area::assemble`.
struct Navigation {
    main: Vec<&'static NavLink>,
    admin: Vec<&'static NavLink>,
}

static NAVIGATION: std::sync::RwLock<Navigation> = std::sync::RwLock::new(Navigation {
    main: Vec::new(),
    admin: Vec::new(),
});

/// Sets the navigation to these entries, each href once.
pub fn install_navigation(
    main: impl Iterator<Item = &'static NavLink>,
    admin: impl Iterator<Item = &'static NavLink>,
) {
    fn unique(links: impl Iterator<Item = &'static NavLink>) -> Vec<&'static NavLink> {
        let mut seen: Vec<&'static NavLink> = Vec::new();
        for link in links {
            if !seen.iter().any(|s| s.href == link.href) {
                seen.push(link);
            }
        }
        seen
    }
    *NAVIGATION.write().unwrap_or_else(|e| e.into_inner()) = Navigation {
        main: unique(main),
        admin: unique(admin),
    };
}

/// The platform's own admin entries.
pub const PLATFORM_ADMIN_NAV: &[NavLink] = &[
    NavLink::to("/admin/users/", "Пользователи", "Users"),
    NavLink::to("/admin/jobs/", "Задания", "Jobs"),
    NavLink::to("/admin/tokens/", "Токены API", "API tokens"),
];

impl NavLink {
    pub fn label(&self, lang: &Lang) -> &'static str {
        lang.pick(self.ru, self.en)
    }
}

/// Renders a template into a response; a template error is a bug, logged and answered with 500.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A file compiled into the binary.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

pub const SHELL_ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/app.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../assets/favicon.svg"),
    },
];

pub const DOCS_ASSETS: &[Asset] = &[
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/swagger/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/swagger/swagger-ui.css"),
    },
    Asset {
        name: "swagger-init.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/swagger-init.js"),
    },
];

/// `/api/openapi.json` and the vendored Swagger UI at `/api/docs` (no CDN: shops are often offline).
pub fn docs_router(openapi_json: String) -> Router {
    let page = Html(include_str!("../templates/api_docs.html"));
    Router::new()
        .route(
            "/api/openapi.json",
            get(
                move || async move { ([(header::CONTENT_TYPE, "application/json")], openapi_json) },
            ),
        )
        .route("/api/docs", get(move || async move { page }))
        .route(
            "/api/docs/",
            get(|| async { Redirect::permanent("/api/docs") }),
        )
}

/// Serves the given embedded assets under `/static/`.
pub fn assets_router(assets: Vec<&'static [Asset]>) -> Router {
    let assets: std::sync::Arc<[&'static [Asset]]> = assets.into();
    Router::new().route(
        "/static/{name}",
        get(
            move |axum::extract::Path(name): axum::extract::Path<String>| {
                let found = assets
                    .iter()
                    .flat_map(|group| group.iter())
                    .find(|asset| asset.name == name);
                let response = match found {
                    Some(asset) => (
                        [
                            (
                                header::CONTENT_TYPE,
                                HeaderValue::from_static(asset.content_type),
                            ),
                            (
                                header::CACHE_CONTROL,
                                HeaderValue::from_static("public, max-age=3600"),
                            ),
                        ],
                        asset.bytes,
                    )
                        .into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                };
                std::future::ready(response)
            },
        ),
    )
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    page: PageContext,
    next: String,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// `text` when it is a path of this site that a browser will not read as another site: it starts with one `/`,
/// and holds no backslash (browsers read `/\evil` as `//evil`), whitespace or control character (browsers drop a
/// tab, so `/\t/evil` is `//evil`; a control character in a header was a 500).
pub fn same_site_path(text: &str) -> Option<&str> {
    let mut chars = text.chars();
    let rooted = chars.next() == Some('/') && !matches!(chars.next(), Some('/'));
    let plain = !text
        .chars()
        .any(|c| c == '\\' || c.is_whitespace() || c.is_control());
    (rooted && plain).then_some(text)
}

/// The text fields of a multipart form body (`content_type` carries its boundary), in order; files are skipped.
pub async fn multipart_fields(
    content_type: &str,
    body: bytes::Bytes,
) -> Result<Vec<(String, String)>, String> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
    let chunks = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut parts = multer::Multipart::new(chunks, boundary);
    let mut fields = Vec::new();
    while let Some(field) = parts.next_field().await.map_err(|e| e.to_string())? {
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        if field.file_name().is_some() {
            continue;
        }
        fields.push((name, field.text().await.map_err(|e| e.to_string())?));
    }
    Ok(fields)
}

/// A `Set-Cookie` value for a credential: whole site, not readable by scripts, not sent on cross-site requests,
/// `Secure` behind HTTPS (`secure_cookies`); `max_age_secs` 0 expires it.
pub fn http_only_cookie(
    settings: &crate::Settings,
    name: &str,
    value: &str,
    max_age_secs: u64,
) -> String {
    let secure = if settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

/// The words of the shell (layout, sign-in) in `lang`.
pub fn shell_texts(lang: Lang) -> &'static ShellTexts {
    lang.pick(&SHELL_RU, &SHELL_EN)
}

/// Only same-site paths are followed after login, so the form cannot be used as an open redirect.
fn safe_next(next: Option<String>) -> String {
    next.as_deref()
        .and_then(same_site_path)
        .unwrap_or("/")
        .to_owned()
}

async fn login_form(
    State(platform): State<Platform>,
    lang: Lang,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    // A screen whose pairing ended (its script sent it here) is asked for a new code, not a password.
    if crate::screens::has_screen_cookie(&headers)
        && matches!(auth::identify(&platform.store, &headers).await, Ok(None))
    {
        return Redirect::to("/pair/").into_response();
    }
    let t = shell_texts(lang);
    render(&LoginPage {
        page: PageContext::new(t.login_title, lang, None),
        next: safe_next(query.next),
        error: None,
    })
}

async fn login_submit(
    State(platform): State<Platform>,
    lang: Lang,
    ClientAddr(address): ClientAddr,
    Form(form): Form<LoginForm>,
) -> Response {
    let t = shell_texts(lang);
    let next = safe_next(form.next);
    let failed = |error, status| {
        let page = LoginPage {
            page: PageContext::new(t.login_title, lang, None),
            next: next.clone(),
            error: Some(error),
        };
        (status, render(&page)).into_response()
    };
    if let Err(wait_secs) = platform.login_limiter.check(&form.username, address) {
        tracing::warn!(%address, "login attempts throttled");
        let mut refused = failed(t.too_many, StatusCode::TOO_MANY_REQUESTS);
        refused
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait_secs.max(1)));
        return refused;
    }
    let user_id = match Users(&platform.store)
        .verify(&form.username, &form.password)
        .await
    {
        Ok(Some(id)) => id,
        Ok(None) => {
            tracing::info!(%address, "failed login");
            return failed(t.bad_login, StatusCode::UNAUTHORIZED);
        }
        Err(error) => return error.into_response(),
    };
    match Sessions(&platform.store)
        .start(user_id, platform.settings.session_idle)
        .await
    {
        Ok(token) => {
            // The server ends an idle session; the cookie itself lasts as long as any session can.
            let cookie = http_only_cookie(
                &platform.settings,
                SESSION_COOKIE,
                &token,
                auth::SESSION_LIFETIME.as_secs(),
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
        }
        Err(error) => error.into_response(),
    }
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    page: PageContext,
}

/// A link to the sign-out address asks first: signing out changes state, so it takes a POST with the CSRF token,
/// which another site cannot send.
async fn logout_page(State(platform): State<Platform>, lang: Lang, headers: HeaderMap) -> Response {
    match auth::identify(&platform.store, &headers)
        .await
        .ok()
        .flatten()
    {
        Some(user) => {
            let t = shell_texts(lang);
            render(&LogoutPage {
                page: PageContext::new(t.logout, lang, Some(user)),
            })
        }
        None => Redirect::to("/").into_response(),
    }
}

async fn logout(State(platform): State<Platform>, headers: HeaderMap) -> Response {
    if let Some(token) = auth::cookie_value(&headers, SESSION_COOKIE) {
        let _ = Sessions(&platform.store).end(token).await;
    }
    // A paired screen signed out forgets its credential too (an admin can pair it again).
    let mut response = Redirect::to("/").into_response();
    for name in [SESSION_COOKIE, crate::screens::SCREEN_COOKIE] {
        let expired = http_only_cookie(&platform.settings, name, "", 0);
        if let Ok(value) = HeaderValue::from_str(&expired) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

async fn switch_language(
    axum::extract::Path(code): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let code = if code == "en" { "en" } else { "ru" };
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| {
            r.find("://")
                .and_then(|i| r[i + 3..].find('/').map(|j| &r[i + 3 + j..]))
        })
        .and_then(same_site_path)
        .unwrap_or("/")
        .to_owned();
    (
        [(
            header::SET_COOKIE,
            format!("lang={code}; Path=/; SameSite=Lax; Max-Age=31536000"),
        )],
        Redirect::to(&back),
    )
        .into_response()
}

async fn healthz(State(platform): State<Platform>) -> Response {
    let probe =
        crate::read!(&platform.store, db => sqlx::query("SELECT 1").execute(db).await.map(|_| ()));
    match probe {
        Ok(_) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "database unavailable"})),
        )
            .into_response(),
    }
}

async fn metrics_page(State(platform): State<Platform>) -> Response {
    if let Ok(counts) = platform.jobs.counts().await {
        for (state, count) in counts {
            metrics::gauge!("tillwire_jobs", "state" => state).set(count as f64);
        }
    }
    crate::telemetry::metrics_reply()
}

/// Login, logout, language switch, `/healthz` and `/metrics`.
pub fn shell_router(platform: Platform) -> Router {
    Router::new()
        .route(
            "/users/",
            get(|| async { Redirect::permanent("/users/login/") }),
        )
        .route(
            "/users/login",
            get(|| async { Redirect::permanent("/users/login/") }),
        )
        .route("/users/login/", get(login_form).post(login_submit))
        .route("/users/logout/", get(logout_page).post(logout))
        .route("/lang/{code}", get(switch_language))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/static/favicon.svg") }),
        )
        .with_state(platform)
}

/// Scripts, styles, images and connections from this site only: no inline script, no `eval`, no plugin, no
/// framing. Style attributes stay allowed (a status's colour is one); they cannot run code.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    style-src-attr 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; report-uri /csp-report";

/// A browser's report of something the policy blocked: logged (a page of ours that breaks the policy is a bug to
/// see) and counted.
async fn csp_report(body: axum::body::Bytes) -> StatusCode {
    let report: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let detail = report.get("csp-report").unwrap_or(&report);
    let field = |name: &str| {
        detail
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    tracing::warn!(
        directive = ?field("violated-directive"),
        blocked = ?field("blocked-uri"),
        page = ?field("document-uri"),
        "content security policy violation"
    );
    metrics::counter!("tillwire_csp_violations_total").increment(1);
    StatusCode::NO_CONTENT
}

/// Where browsers report what the content security policy blocked. Public: a report carries no session's CSRF
/// token.
pub fn report_router() -> Router {
    Router::new().route(
        "/csp-report",
        axum::routing::post(csp_report).layer(axum::extract::DefaultBodyLimit::max(16 * 1024)),
    )
}

/// Security headers for every response.
pub async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

/// A page that shows a secret once (a token, a key, an access code) must not be kept by the browser or a proxy:
/// `Cache-Control: no-store` when `secret` is shown.
pub fn shown_once(mut page: Response, secret: bool) -> Response {
    if secret {
        page.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
    }
    page
}

/// How long a screen waits before it reconnects to a stream that ended because the server is restarting.
const RECONNECT_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// A live event stream (SSE) that lasts until the process begins to stop: then it tells the browser to reconnect
/// (a `reconnect` event, retry in a second) and ends, so a restart is not held up by open screens.
pub fn live<S>(stream: S, mut stopping: crate::area::Shutdown) -> Response
where
    S: futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>
        + Send
        + 'static,
{
    use futures::StreamExt;
    let farewell = futures::stream::once(async {
        Ok(axum::response::sse::Event::default()
            .event("reconnect")
            .retry(RECONNECT_AFTER)
            .data("the server is restarting"))
    });
    let stream = stream
        .take_until(Box::pin(async move { stopping.wait().await }))
        .chain(farewell);
    axum::response::sse::Sse::new(stream)
        .keep_alive(
            axum::response::sse::KeepAlive::new().interval(std::time::Duration::from_secs(15)),
        )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::same_site_path;

    #[test]
    fn only_paths_of_this_site_are_followed() {
        for kept in ["/", "/kitchen/", "/admin/wares/?page=2", "/a%2Fb"] {
            assert_eq!(same_site_path(kept), Some(kept));
        }
        for refused in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/x\u{7}",
            "https://evil.example/",
            "evil.example",
            "",
        ] {
            assert_eq!(same_site_path(refused), None, "{refused:?}");
        }
    }
}
