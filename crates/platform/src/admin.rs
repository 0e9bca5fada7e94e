//! The admin area's own pages (the index, users, jobs) and what every area's admin pages share: the [`Admin`]
//! extractor, refusals shown as pages ([`html_errors`]) and local time formatting ([`local_time`]).

use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRef, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;

use crate::auth::{AuthError, NewPassword, UserRow, Username, Users};
use crate::jobs::{JobRow, JobState};
use crate::web::{Lang, PageContext, render};
use crate::{CurrentUser, Platform, Role, Settings};

/// A signed-in admin. Taking it as an extractor is the permission check, so an admin handler cannot forget it:
/// visitors without a session go to the login form, other roles get 403.
pub struct Admin {
    pub user: CurrentUser,
    pub lang: Lang,
}

impl Admin {
    /// The layout context of a page titled in both languages.
    pub fn page(&self, title_ru: &str, title_en: &str) -> PageContext {
        PageContext::new(
            self.lang.pick(title_ru, title_en),
            self.lang,
            Some(self.user.clone()),
        )
    }

    pub fn username(&self) -> &str {
        &self.user.username
    }
}

impl<S> FromRequestParts<S> for Admin
where
    Platform: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        user.require(Role::Admin)
            .map_err(IntoResponse::into_response)?;
        Ok(Admin {
            user,
            lang: Lang::from_headers(&parts.headers),
        })
    }
}

#[derive(Template)]
#[template(path = "admin_error.html")]
struct RefusalPage {
    page: PageContext,
    status: u16,
    message: String,
    back: String,
}

/// Largest error body turned into a page; error bodies are one short message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Middleware for admin routers. The areas' error types answer `{"error": "…"}` (right for the API); an admin works
/// in a browser, so a refusal (bad input, conflict, missing right, failed extractor) becomes a page with the same
/// status, the message and a link back to where the form was.
pub async fn html_errors(request: Request, next: Next) -> Response {
    let lang = Lang::from_headers(request.headers());
    let back = back_link(request.headers(), request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let is_json = content_type.starts_with("application/json");
    let is_text = content_type.starts_with("text/plain");
    if !(status.is_client_error() || status.is_server_error()) || !(is_json || is_text) {
        return response;
    }
    let Ok(body) = axum::body::to_bytes(response.into_body(), ERROR_BODY_LIMIT).await else {
        return status.into_response();
    };
    let json_message = is_json
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .flatten()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned));
    let message = json_message.unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    error_page(lang, status, message, back)
}

/// A page saying a request was refused or failed, with its status, the message and a link back.
pub(crate) fn error_page(
    lang: Lang,
    status: StatusCode,
    message: String,
    back: String,
) -> Response {
    let title = if status.is_server_error() {
        lang.pick("Ошибка сервера", "Server error")
    } else {
        lang.pick("Действие отклонено", "Refused")
    };
    let page = RefusalPage {
        page: PageContext::new(title, lang, None),
        status: status.as_u16(),
        message,
        back,
    };
    (status, render(&page)).into_response()
}

/// Where "back" leads from a refusal: the admin page the form was on (from `Referer`), else the section's list.
fn back_link(headers: &HeaderMap, path: &str) -> String {
    let from_referer = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.split_once("://"))
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
        .filter(|p| p.starts_with("/admin/"));
    from_referer.unwrap_or_else(|| {
        // "/admin/wares/12/delete" → "/admin/wares/"
        let section: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).take(2).collect();
        format!("/{}/", section.join("/"))
    })
}

/// A Unix-ms instant as wall-clock time in the configured zone (else the machine's), e.g. `%Y-%m-%d %H:%M:%S`.
pub fn local_time(settings: &Settings, ms: i64, format: &str) -> String {
    let Some(at) = chrono::DateTime::from_timestamp_millis(ms) else {
        return String::new();
    };
    match settings.timezone {
        Some(zone) => at.with_timezone(&zone).format(format).to_string(),
        None => at.with_timezone(&chrono::Local).format(format).to_string(),
    }
}

/// A refusal of the platform's own pages, answered in the shared `{"error": …}` shape (shown as a page by
/// [`html_errors`]).
struct Refusal(StatusCode, String);

impl Refusal {
    fn conflict(message: &str) -> Self {
        Refusal(StatusCode::CONFLICT, message.to_owned())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Self {
        let status = match error {
            AuthError::Database(error) => return error.into(),
            AuthError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AuthError::UsernameTaken => StatusCode::CONFLICT,
            AuthError::LoginRequired => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden | AuthError::Csrf => StatusCode::FORBIDDEN,
            AuthError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        };
        Refusal(status, error.to_string())
    }
}

impl From<sqlx::Error> for Refusal {
    fn from(error: sqlx::Error) -> Self {
        tracing::error!(%error, "admin storage failed");
        Refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error".to_owned(),
        )
    }
}

pub fn router(platform: Platform) -> Router {
    Router::new()
        .route("/admin", get(|| async { Redirect::permanent("/admin/") }))
        .route("/admin/", get(index_page))
        .route("/admin/users/", get(users_page).post(create_user))
        .route("/admin/users/{id}", post(update_user))
        .route("/admin/jobs/", get(jobs_page))
        .route("/admin/jobs/{id}/retry", post(retry_job))
        .layer(middleware::from_fn(html_errors))
        .with_state(platform)
}

#[derive(Template)]
#[template(path = "admin_index.html")]
struct IndexPage {
    page: PageContext,
    section: &'static str,
    users: usize,
    active_users: usize,
    active_admins: usize,
    jobs: Vec<(String, i64)>,
}

async fn index_page(State(platform): State<Platform>, admin: Admin) -> Result<Response, Refusal> {
    let users = Users(&platform.store).list().await?;
    let jobs = platform.jobs.counts().await?;
    Ok(render(&IndexPage {
        page: admin.page("Администрирование", "Administration"),
        section: "/admin/",
        active_users: users.iter().filter(|u| u.active).count(),
        active_admins: users
            .iter()
            .filter(|u| u.active && u.role == Role::Admin.as_str())
            .count(),
        users: users.len(),
        jobs,
    }))
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    page: PageContext,
    section: &'static str,
    users: Vec<UserRow>,
    roles: [Role; 3],
    settings: Arc<Settings>,
}

impl UsersPage {
    fn role_label(&self, role: &str) -> &'static str {
        let lang = self.page.lang;
        match role {
            "admin" => lang.pick("администратор", "admin"),
            "operator" => lang.pick("оператор", "operator"),
            _ => lang.pick("наблюдатель", "viewer"),
        }
    }
    fn time(&self, ms: &i64) -> String {
        local_time(&self.settings, *ms, "%Y-%m-%d %H:%M")
    }
}

#[derive(Deserialize)]
struct NewUserForm {
    username: String,
    role: String,
    password: String,
}

#[derive(Deserialize)]
struct UserForm {
    role: String,
    /// A checkbox: present when ticked.
    active: Option<String>,
    /// Empty keeps the current password.
    #[serde(default)]
    password: String,
}

async fn users_page(State(platform): State<Platform>, admin: Admin) -> Result<Response, Refusal> {
    let users = Users(&platform.store).list().await?;
    Ok(render(&UsersPage {
        page: admin.page("Пользователи", "Users"),
        section: "/admin/users/",
        users,
        roles: Role::ALL,
        settings: platform.settings.clone(),
    }))
}

async fn create_user(
    State(platform): State<Platform>,
    admin: Admin,
    Form(form): Form<NewUserForm>,
) -> Result<Redirect, Refusal> {
    let username = Username::parse(&form.username)?;
    let role: Role = form.role.parse()?;
    let password = NewPassword::parse(&form.password)?;
    let id = Users(&platform.store)
        .create(&username, &password, role)
        .await?;
    tracing::info!(user = id, username = username.as_str(), %role, by = admin.username(), "user created");
    Ok(Redirect::to("/admin/users/"))
}

async fn update_user(
    State(platform): State<Platform>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<UserForm>,
) -> Result<Redirect, Refusal> {
    let role: Role = form.role.parse()?;
    let active = form.active.is_some();
    let password = match form.password.as_str() {
        "" => None,
        text => Some(NewPassword::parse(text)?),
    };
    let users = Users(&platform.store);
    let target = users
        .list()
        .await?
        .into_iter()
        .find(|u| u.id == id)
        .ok_or_else(|| Refusal(StatusCode::NOT_FOUND, "user not found".into()))?;
    // Nobody could sign in to fix it, so the last active admin keeps both the role and the access.
    let was_admin = target.active && target.role == Role::Admin.as_str();
    let stays_admin = active && role == Role::Admin;
    if was_admin && !stays_admin && users.count_admins().await? <= 1 {
        return Err(Refusal::conflict(admin.lang.pick(
            "Это последний активный администратор: его нельзя понизить или отключить.",
            "This is the last active admin: it cannot be demoted or deactivated.",
        )));
    }
    users.update(id, role, active, password.as_ref()).await?;
    tracing::info!(
        user = id,
        username = %target.username,
        %role,
        active,
        password_reset = password.is_some(),
        by = admin.username(),
        "user updated"
    );
    Ok(Redirect::to("/admin/users/"))
}

#[derive(Template)]
#[template(path = "admin_jobs.html")]
struct JobsPage {
    page: PageContext,
    section: &'static str,
    state: String,
    counts: Vec<(String, i64)>,
    jobs: Vec<JobRow>,
    settings: Arc<Settings>,
}

impl JobsPage {
    fn time(&self, ms: &i64) -> String {
        local_time(&self.settings, *ms, "%Y-%m-%d %H:%M:%S")
    }
    fn states(&self) -> [&'static str; 4] {
        JOB_STATES.map(JobState::as_str)
    }
    fn count(&self, state: &str) -> i64 {
        self.counts
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n)
    }
}

const JOB_STATES: [JobState; 4] = [
    JobState::Pending,
    JobState::Running,
    JobState::Dead,
    JobState::Done,
];
const JOBS_SHOWN: i64 = 200;

#[derive(Deserialize)]
struct JobsQuery {
    #[serde(default)]
    state: String,
}

async fn jobs_page(
    State(platform): State<Platform>,
    admin: Admin,
    Query(query): Query<JobsQuery>,
) -> Result<Response, Refusal> {
    let state = JOB_STATES
        .iter()
        .map(|s| s.as_str())
        .find(|s| *s == query.state);
    if state.is_none() && !query.state.is_empty() {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "state: pending, running, dead or done".into(),
        ));
    }
    let jobs = platform.jobs.list(state, JOBS_SHOWN).await?;
    let counts = platform.jobs.counts().await?;
    Ok(render(&JobsPage {
        page: admin.page("Задания", "Jobs"),
        section: "/admin/jobs/",
        state: query.state,
        counts,
        jobs,
        settings: platform.settings.clone(),
    }))
}

async fn retry_job(
    State(platform): State<Platform>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, Refusal> {
    if !platform.jobs.retry(id).await? {
        return Err(Refusal::conflict(admin.lang.pick(
            "Повторить можно только «мёртвое» задание.",
            "Only a dead job can be retried.",
        )));
    }
    tracing::info!(job = id, by = admin.username(), "dead job put back in line");
    Ok(Redirect::to("/admin/jobs/?state=dead"))
}

/// Makes sure someone can sign in: with no active admin, creates one with a generated password, printed to the
/// console once and never logged (it is the only copy).
pub async fn ensure_admin(platform: &Platform) -> anyhow::Result<()> {
    let users = Users(&platform.store);
    if users.count_admins().await? > 0 {
        return Ok(());
    }
    let password = NewPassword::generate();
    let mut name = "admin".to_owned();
    let id = loop {
        match users
            .create(&Username::parse(&name)?, &password, Role::Admin)
            .await
        {
            Ok(id) => break id,
            Err(AuthError::UsernameTaken) => {
                name = format!("admin-{}", crate::random_token(4));
            }
            Err(error) => return Err(error.into()),
        }
    };
    tracing::info!(user = id, "created the first admin");
    println!(
        "First admin created. Username: {name}  Password: {}  (shown once; sign in at /users/login/)",
        password.expose()
    );
    Ok(())
}
