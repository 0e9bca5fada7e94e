//! The admin area's own pages (the index, users, jobs) and what every area's admin pages share: the [`Admin`]
//! extractor and local time formatting ([`local_time`]).

use anyhow::Context;
use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::auth::{AuthError, NewPassword, UserRow, Username, Users};
use crate::error::{HttpError, Text};
use crate::jobs::{JobRow, JobState};
use crate::tokens::{AuditRow, Scope, TokenName, TokenRow, Tokens};
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

/// A Unix-ms instant as wall-clock time in the configured zone (else the machine's), e.g. `%Y-%m-%d %H:%M:%S`.
/// How long something lasted, as people say it: `40 с`, `12 мин`, `1 ч 5 мин` (in `lang`).
pub fn human_duration(ms: i64, lang: Lang) -> String {
    let seconds = ms.max(0) / 1000;
    let (minutes, hours) = (seconds / 60, seconds / 3600);
    match (hours, minutes) {
        (0, 0) => format!("{seconds} {}", lang.pick("с", "s")),
        (0, m) => format!("{m} {}", lang.pick("мин", "min")),
        (h, m) => format!(
            "{h} {} {} {}",
            lang.pick("ч", "h"),
            m % 60,
            lang.pick("мин", "min")
        ),
    }
}

pub fn local_time(settings: &Settings, ms: i64, format: &str) -> String {
    let Some(at) = chrono::DateTime::from_timestamp_millis(ms) else {
        return String::new();
    };
    match settings.timezone {
        Some(zone) => at.with_timezone(&zone).format(format).to_string(),
        None => at.with_timezone(&chrono::Local).format(format).to_string(),
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
        .route("/admin/tokens/", get(tokens_page).post(issue_token))
        .route("/admin/tokens/{id}/revoke", post(revoke_token))
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

async fn index_page(State(platform): State<Platform>, admin: Admin) -> Result<Response, HttpError> {
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

async fn users_page(State(platform): State<Platform>, admin: Admin) -> Result<Response, HttpError> {
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
) -> Result<Redirect, HttpError> {
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
) -> Result<Redirect, HttpError> {
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
        .ok_or_else(|| {
            HttpError::not_found(Text::new("Пользователь не найден.", "User not found."))
        })?;
    // Nobody could sign in to fix it, so the last active admin keeps both the role and the access.
    let was_admin = target.active && target.role == Role::Admin.as_str();
    let stays_admin = active && role == Role::Admin;
    if was_admin && !stays_admin && users.count_admins().await? <= 1 {
        return Err(HttpError::conflict(Text::new(
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
) -> Result<Response, HttpError> {
    let state = JOB_STATES
        .iter()
        .map(|s| s.as_str())
        .find(|s| *s == query.state);
    if state.is_none() && !query.state.is_empty() {
        return Err(HttpError::field(
            "state",
            Text::new(
                "состояние: pending, running, dead или done",
                "state: pending, running, dead or done",
            ),
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
) -> Result<Redirect, HttpError> {
    if !platform.jobs.retry(id).await? {
        return Err(HttpError::conflict(Text::new(
            "Повторить можно только «мёртвое» задание.",
            "Only a dead job can be retried.",
        )));
    }
    tracing::info!(job = id, by = admin.username(), "dead job put back in line");
    Ok(Redirect::to("/admin/jobs/?state=dead"))
}

#[derive(Template)]
#[template(path = "admin_tokens.html")]
struct TokensPage {
    page: PageContext,
    section: &'static str,
    tokens: Vec<TokenRow>,
    scopes: Vec<&'static str>,
    audit: Vec<AuditRow>,
    issued: Option<String>,
    settings: Arc<Settings>,
}

impl TokensPage {
    fn time(&self, ms: &i64) -> String {
        local_time(&self.settings, *ms, "%Y-%m-%d %H:%M")
    }
    fn action(&self, action: &str) -> &'static str {
        match action {
            "issue" => self.page.lang.pick("выдан", "issued"),
            _ => self.page.lang.pick("отозван", "revoked"),
        }
    }
}

const AUDIT_SHOWN: i64 = 100;

/// The scopes an admin can issue here: `admin` and each area with an API (device keys come from the units page).
fn issuable_scopes(platform: &Platform) -> Vec<&'static str> {
    std::iter::once(Scope::ADMIN.as_str())
        .chain(
            platform
                .token_scopes()
                .into_iter()
                .filter(|name| *name != crate::AREA.name),
        )
        .collect()
}

async fn render_tokens(
    platform: &Platform,
    admin: &Admin,
    issued: Option<String>,
) -> Result<Response, HttpError> {
    let tokens = Tokens(&platform.store);
    let secret = issued.is_some();
    let page = render(&TokensPage {
        page: admin.page("Токены API", "API tokens"),
        section: "/admin/tokens/",
        tokens: tokens.list(None).await?,
        scopes: issuable_scopes(platform),
        audit: tokens.audit(AUDIT_SHOWN).await?,
        issued,
        settings: platform.settings.clone(),
    });
    Ok(crate::web::shown_once(page, secret))
}

async fn tokens_page(
    State(platform): State<Platform>,
    admin: Admin,
) -> Result<Response, HttpError> {
    render_tokens(&platform, &admin, None).await
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
}

/// Shows the new token in the answer to this POST only; it is never retrievable again.
async fn issue_token(
    State(platform): State<Platform>,
    admin: Admin,
    Form(form): Form<TokenForm>,
) -> Result<Response, HttpError> {
    let name = TokenName::parse(&form.name)?;
    let scope = Scope::parse(&form.scope, &platform.token_scopes())?;
    if scope == Scope::DEVICE {
        return Err(HttpError::field(
            "scope",
            Text::new(
                "ключи устройств выдаются на странице API-ключей, с подразделением",
                "device keys are issued on the API keys page, with their unit",
            ),
        ));
    }
    let issued = Tokens(&platform.store)
        .issue(&name, &scope, None, admin.username())
        .await?;
    tracing::info!(
        token = issued.id,
        scope = scope.as_str(),
        by = admin.username(),
        "API token issued"
    );
    render_tokens(&platform, &admin, Some(issued.plain)).await
}

async fn revoke_token(
    State(platform): State<Platform>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, HttpError> {
    Tokens(&platform.store).revoke(id, admin.username()).await?;
    tracing::info!(token = id, by = admin.username(), "API token revoked");
    Ok(Redirect::to("/admin/tokens/"))
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
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        println!(
            "First admin created. Username: {name}  Password: {}  (shown once; sign in at /users/login/)",
            password.expose()
        );
    } else {
        // Not a terminal: standard output is a service's log, which is kept and read by others.
        let dir = &platform.settings.data_dir;
        let file = std::fs::canonicalize(dir)
            .unwrap_or_else(|_| dir.clone())
            .join(FIRST_ADMIN_PASSWORD_FILE);
        write_private(&file, password.expose())?;
        println!(
            "First admin created. Username: {name}  Its password is in {} (readable by this user only; delete the file after signing in at /users/login/)",
            file.display()
        );
    }
    Ok(())
}

/// Where the first admin's password goes when standard output is not a terminal.
pub const FIRST_ADMIN_PASSWORD_FILE: &str = "first-admin-password";

/// Writes `text` to a new file only its owner may read (0600), replacing one left from before.
fn write_private(file: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = file.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(file);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("writing {}", file.display()))?;
    writeln!(out, "{text}").with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_said_as_people_say_them() {
        assert_eq!(human_duration(40_000, Lang::Ru), "40 с");
        assert_eq!(human_duration(12 * 60_000, Lang::Ru), "12 мин");
        assert_eq!(human_duration(3_900_000, Lang::Ru), "1 ч 5 мин");
        assert_eq!(human_duration(3_900_000, Lang::En), "1 h 5 min");
    }
}
