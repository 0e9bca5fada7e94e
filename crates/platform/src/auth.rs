//! Users, passwords, sessions, roles and CSRF.
//!
//! Passwords are argon2id hashes. A session cookie carries a random token; the database keeps only its SHA-256,
//! so a stolen database cannot be replayed as sessions. Each session has its own CSRF token that every unsafe
//! request on a page route must return (header `x-csrf-token`, or
//! form field `csrf`, in a URL-encoded or a multipart body; never the query string, which logs and `Referer`s keep).

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::Rng;
use serde::Serialize;

use crate::error::{HttpError, Text};
use crate::store::Store;
use crate::{Platform, now_ms, read, sha256_hex, write, write_tx};

pub const SESSION_COOKIE: &str = "tw_session";
/// However busy a session is, it ends this long after sign-in (the cookie's lifetime too).
pub const SESSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// A session in use is renewed at most this often, so a busy screen does not write on every request.
const RENEW_EVERY_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = AuthError;
    fn from_str(text: &str) -> Result<Self, AuthError> {
        match text {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(AuthError::Invalid(
                "role",
                Text::new(
                    "роль: администратор, оператор или зритель",
                    "role must be admin, operator or viewer",
                ),
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A login name: 1–64 letters, digits, `.`, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        let text = text.trim();
        let valid = !text.is_empty()
            && text.len() <= 64
            && text
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if valid {
            Ok(Username(text.to_owned()))
        } else {
            Err(AuthError::Invalid(
                "username",
                Text::new(
                    "имя: от 1 до 64 букв, цифр и знаков . _ -",
                    "username: 1–64 letters, digits, . _ -",
                ),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: at least 10 characters. Never `Debug`-printed.
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        if text.chars().count() >= 10 {
            Ok(NewPassword(text.to_owned()))
        } else {
            Err(AuthError::Invalid(
                "password",
                Text::new(
                    "пароль: не короче 10 символов",
                    "password: at least 10 characters",
                ),
            ))
        }
    }
    /// A random password for the first admin; shown once.
    pub fn generate() -> Self {
        NewPassword(crate::random_token(20))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A field that does not fit (the field's name, and why).
    #[error("{0}: {1}")]
    Invalid(&'static str, Text),
    #[error("login required")]
    LoginRequired,
    #[error("not allowed for your role")]
    Forbidden,
    #[error("missing or wrong CSRF token")]
    Csrf,
    #[error("that username is taken")]
    UsernameTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<AuthError> for HttpError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Invalid(field, message) => HttpError::field(field, message),
            AuthError::LoginRequired => HttpError::login_required(),
            AuthError::Forbidden => HttpError::forbidden(),
            AuthError::Csrf => HttpError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                Text::new(
                    "Страница устарела: обновите её и повторите.",
                    "The page is out of date: reload it and try again.",
                ),
            ),
            AuthError::UsernameTaken => HttpError::new(
                StatusCode::CONFLICT,
                "username_taken",
                Text::new("Это имя пользователя занято.", "That username is taken."),
            ),
            AuthError::Database(error) => HttpError::internal(error),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        HttpError::from(self).into_response()
    }
}

/// Each Argon2id hash takes about 19 MiB for its run. Hashes run on as many dedicated threads as there are cores,
/// and the others wait their turn, so a burst of wrong passwords from many addresses cannot take the memory of a
/// thousand hashes. Dedicated threads, not the blocking pool: the allocator keeps a freed 19 MiB block in the
/// arena of the thread that used it, and a burst spread over dozens of pool threads kept hundreds of MiB.
type HashJob = Box<dyn FnOnce() + Send>;

fn hash_threads() -> &'static std::sync::Mutex<std::sync::mpsc::Sender<HashJob>> {
    static JOBS: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<HashJob>>> =
        std::sync::OnceLock::new();
    JOBS.get_or_init(|| {
        let (jobs, queue) = std::sync::mpsc::channel::<HashJob>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        for n in 0..cores {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || {
                    loop {
                        let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            // A job that panics fails its own request only; the thread goes on.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                })
                .expect("start a password hashing thread");
        }
        std::sync::Mutex::new(jobs)
    })
}

/// Runs `work` on a password hashing thread.
async fn on_hash_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        let _ = done.send(work());
    });
    hash_threads()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(job)
        .expect("the password hashing threads run for the whole process");
    result
        .await
        .expect("a password hashing thread finished its job")
}

pub async fn hash_password(password: &NewPassword) -> String {
    let password = password.0.clone();
    on_hash_thread(move || {
        let salt_bytes: [u8; 16] = rand::rng().random();
        let salt = SaltString::encode_b64(&salt_bytes).expect("16-byte salt");
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2id hashing")
            .to_string()
    })
    .await
}

async fn verify_password(password: String, hash: String) -> bool {
    on_hash_thread(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub active: bool,
    pub created_ms: i64,
}

/// The signed-in user of a request: a person's session, or a paired screen (then `screen` says which; `id` is 0
/// and `username` is the screen's name).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub csrf: String,
    pub screen: Option<crate::screens::PairedScreen>,
}

impl CurrentUser {
    pub fn require(&self, role: Role) -> Result<(), AuthError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(AuthError::Forbidden)
        }
    }
}

pub struct Users<'a>(pub &'a Store);

impl Users<'_> {
    pub async fn create(
        &self,
        username: &Username,
        password: &NewPassword,
        role: Role,
    ) -> Result<i64, AuthError> {
        let hash = hash_password(password).await;
        let inserted: Result<Option<(i64,)>, sqlx::Error> = write!(self.0, db => sqlx::query_as(
            "INSERT INTO users (username, password_hash, role, active, created_ms) VALUES ($1, $2, $3, TRUE, $4)
             ON CONFLICT (username) DO NOTHING RETURNING id",
        )
        .bind(username.as_str())
        .bind(&hash)
        .bind(role.as_str())
        .bind(now_ms())
        .fetch_optional(db)
        .await);
        inserted?.map(|(id,)| id).ok_or(AuthError::UsernameTaken)
    }

    pub async fn list(&self) -> Result<Vec<UserRow>, AuthError> {
        Ok(
            read!(self.0, db => sqlx::query_as("SELECT id, username, role, active, created_ms FROM users ORDER BY username")
            .fetch_all(db)
            .await)?,
        )
    }

    pub async fn count_admins(&self) -> Result<i64, AuthError> {
        let (count,): (i64,) = read!(self.0, db => sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin' AND active")
            .fetch_one(db)
            .await)?;
        Ok(count)
    }

    /// Changes role, activity and optionally the password, and ends the user's sessions so the change applies at once.
    pub async fn update(
        &self,
        id: i64,
        role: Role,
        active: bool,
        password: Option<&NewPassword>,
    ) -> Result<bool, AuthError> {
        let hash = match password {
            Some(password) => Some(hash_password(password).await),
            None => None,
        };
        let changed: Result<bool, AuthError> = write_tx!(self.0, tx => {
            let updated = sqlx::query(
                "UPDATE users SET role = $2, active = $3, password_hash = COALESCE($4, password_hash) WHERE id = $1",
            )
            .bind(id)
            .bind(role.as_str())
            .bind(active)
            .bind(hash.as_deref())
            .execute(&mut **tx)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut **tx).await?;
            Ok(updated == 1)
        });
        changed
    }

    /// Checks credentials; returns the user id when they are right and the user is active.
    pub async fn verify(&self, username: &str, password: &str) -> Result<Option<i64>, AuthError> {
        let found: Option<(i64, String, bool)> = read!(self.0, db => sqlx::query_as(
            "SELECT id, password_hash, active FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(db)
        .await)?;
        // Verify against a fixed hash when the user is unknown so timing does not reveal which usernames exist.
        let (id, hash, active) = found.unwrap_or((0, DUMMY_HASH.to_owned(), false));
        let matches = verify_password(password.to_owned(), hash).await;
        Ok((matches && active && id != 0).then_some(id))
    }
}

const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0b8XvJSR9k3V2QYnJb0bwq4Bxe6QJZrxXH3ZQx3QJ0Y";

pub struct Sessions<'a>(pub &'a Store);

impl Sessions<'_> {
    /// Starts a session that ends after `idle` without use, and returns the cookie token (kept only as a hash on
    /// our side).
    pub async fn start(
        &self,
        user_id: i64,
        idle: std::time::Duration,
    ) -> Result<String, AuthError> {
        let token = crate::random_token(32);
        let now = now_ms();
        let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        write!(self.0, db => sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_ms, expires_ms, idle_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(sha256_hex(&token))
        .bind(user_id)
        .bind(crate::random_token(24))
        .bind(now)
        .bind(now.saturating_add(idle_ms))
        .bind(idle_ms)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(token)
    }

    /// The signed-in user of a live session; a session in use slides its end forward by its idle period.
    pub async fn find(&self, token: &str) -> Result<Option<CurrentUser>, AuthError> {
        let now = now_ms();
        let lifetime_ms = i64::try_from(SESSION_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        let hash = sha256_hex(token);
        let row: Option<(i64, String, String, String, i64, i64)> = read!(self.0, db => sqlx::query_as(
            "SELECT u.id, u.username, u.role, s.csrf_token, s.expires_ms, s.idle_ms
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_ms > $2 AND s.created_ms > $3 AND u.active",
        )
        .bind(&hash)
        .bind(now)
        .bind(now - lifetime_ms)
        .fetch_optional(db)
        .await)?;
        let Some((id, username, role, csrf, expires_ms, idle_ms)) = row else {
            return Ok(None);
        };
        if expires_ms < now.saturating_add(idle_ms) - RENEW_EVERY_MS {
            write!(self.0, db => sqlx::query("UPDATE sessions SET expires_ms = $2 WHERE token_hash = $1")
                .bind(&hash)
                .bind(now.saturating_add(idle_ms))
                .execute(db)
                .await
                .map(|r| r.rows_affected()))?;
        }
        Ok(role.parse().ok().map(|role| CurrentUser {
            id,
            username,
            role,
            csrf,
            screen: None,
        }))
    }

    pub async fn end(&self, token: &str) -> Result<(), AuthError> {
        write!(self.0, db => sqlx::query("DELETE FROM sessions WHERE token_hash = $1 OR expires_ms < $2")
            .bind(sha256_hex(token))
            .bind(now_ms())
            .execute(db)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}

/// Throttles sign-in attempts twice: per client address, generously, since a shop's staff may share one address;
/// and per account *and* address, strictly, so guessing one account's password is slow while the same account's
/// right password from another address is never refused because of someone else's attempts.
#[derive(Clone)]
pub struct LoginLimiter {
    by_address: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    by_account: Arc<DefaultKeyedRateLimiter<(String, IpAddr)>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        let quota = |burst: u32, every: std::time::Duration| {
            Quota::with_period(every)
                .expect("a non-zero period")
                .allow_burst(NonZeroU32::new(burst).expect("non-zero"))
        };
        LoginLimiter {
            // 30 at once, then one every 2 seconds.
            by_address: Arc::new(RateLimiter::keyed(quota(
                30,
                std::time::Duration::from_secs(2),
            ))),
            // 10 at once, then one every 6 seconds.
            by_account: Arc::new(RateLimiter::keyed(quota(
                10,
                std::time::Duration::from_secs(6),
            ))),
        }
    }
}

impl LoginLimiter {
    /// Counts an attempt to sign in as `username` from `address`; when either allowance is spent, the whole
    /// seconds until the next attempt may be made (for `Retry-After`).
    pub fn check(&self, username: &str, address: IpAddr) -> Result<(), u64> {
        use governor::clock::{Clock, DefaultClock};
        let wait = |not_until: governor::NotUntil<_>| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        };
        self.by_address.check_key(&address).map_err(wait)?;
        self.by_account
            .check_key(&(username.trim().to_lowercase(), address))
            .map_err(wait)
    }
}

pub fn cookie_value<'a>(parts: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    parts
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// What a page does for a visitor who is not signed in: go to the login form and come back.
pub struct LoginRedirect(String);

impl IntoResponse for LoginRedirect {
    fn into_response(self) -> Response {
        let query = serde_urlencoded::to_string([("next", &self.0)]).unwrap_or_default();
        Redirect::to(&format!("/users/login/?{query}")).into_response()
    }
}

/// Who sent a request: a person's session first, else a paired screen's credential.
pub async fn identify(
    store: &Store,
    headers: &axum::http::HeaderMap,
) -> Result<Option<CurrentUser>, HttpError> {
    if let Some(token) = cookie_value(headers, SESSION_COOKIE)
        && let Some(user) = Sessions(store).find(token).await?
    {
        return Ok(Some(user));
    }
    match cookie_value(headers, crate::screens::SCREEN_COOKIE) {
        Some(token) => Ok(crate::screens::Screens(store).identify(token).await?),
        None => Ok(None),
    }
}

impl<S> FromRequestParts<S> for CurrentUser
where
    Platform: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match <Self as OptionalFromRequestParts<S>>::from_request_parts(parts, state).await? {
            Some(user) => Ok(user),
            // A screen whose pairing ended is asked for a new code, a person to sign in.
            None if is_navigation(parts) && crate::screens::has_screen_cookie(&parts.headers) => {
                Err(Redirect::to("/pair/").into_response())
            }
            None if is_navigation(parts) => {
                Err(LoginRedirect(parts.uri.path().to_owned()).into_response())
            }
            None => Err(AuthError::LoginRequired.into_response()),
        }
    }
}

/// `Option<CurrentUser>`: pages anyone may see that show more to someone signed in (a paired board opens its unit).
impl<S> OptionalFromRequestParts<S> for CurrentUser
where
    Platform: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<CurrentUser>() {
            return Ok(Some(user.clone()));
        }
        let platform = Platform::from_ref(state);
        let found = identify(&platform.store, &parts.headers)
            .await
            .map_err(IntoResponse::into_response)?;
        if let Some(user) = &found {
            parts.extensions.insert(user.clone());
        }
        Ok(found)
    }
}

/// Whether a request without a session is a person opening a page (sent to the sign-in form) rather than a
/// script's call, an event stream or an API client (told 401 `login_required`, which a script can act on; a
/// redirect would hand it the sign-in page's HTML instead of its JSON).
fn is_navigation(parts: &Parts) -> bool {
    if parts.uri.path().starts_with("/api/") {
        return false;
    }
    if let Some(mode) = parts.headers.get("sec-fetch-mode") {
        return mode == "navigate";
    }
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    !(accept.contains("application/json") || accept.contains("text/event-stream"))
}

/// Middleware for page routes: every unsafe request from a signed-in browser must carry the session's CSRF token.
/// Requests without a session pass through here and are refused by the handler's `CurrentUser`.
pub async fn require_csrf(
    State(platform): State<Platform>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let user = match identify(&platform.store, request.headers()).await {
        Ok(Some(user)) => user,
        Ok(None) => return next.run(request).await,
        Err(error) => return error.into_response(),
    };
    let (parts, body) = request.into_parts();
    let from_header = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(FormKind::of);
    let (presented, body) = match (from_header, form) {
        (Some(found), _) => (Some(found), body),
        (None, Some(kind)) => {
            let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
                return HttpError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    Text::new(
                        "Форма слишком большая или пришла не вся.",
                        "The form is too large or did not arrive whole.",
                    ),
                )
                .into_response();
            };
            (
                kind.field(bytes.clone(), "csrf").await,
                axum::body::Body::from(bytes),
            )
        }
        (None, None) => (None, body),
    };
    let valid = presented
        .is_some_and(|p| subtle::ConstantTimeEq::ct_eq(p.as_bytes(), user.csrf.as_bytes()).into());
    if !valid {
        return AuthError::Csrf.into_response();
    }
    let mut request = Request::from_parts(parts, body);
    request.extensions_mut().insert(user);
    next.run(request).await
}

/// The largest form body read to find its CSRF token (an uploaded file included).
const FORM_LIMIT: usize = 16 * 1024 * 1024;

/// A body a browser's form sends.
enum FormKind {
    UrlEncoded,
    Multipart { content_type: String },
}

impl FormKind {
    fn of(content_type: &str) -> Option<FormKind> {
        if content_type.starts_with("application/x-www-form-urlencoded") {
            return Some(FormKind::UrlEncoded);
        }
        multer::parse_boundary(content_type).ok()?;
        Some(FormKind::Multipart {
            content_type: content_type.to_owned(),
        })
    }

    /// The text of field `name`, if the body has one.
    async fn field(&self, body: bytes::Bytes, name: &str) -> Option<String> {
        match self {
            FormKind::UrlEncoded => serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
                .unwrap_or_default()
                .into_iter()
                .find_map(|(k, v)| (k == name).then_some(v)),
            FormKind::Multipart { content_type } => {
                crate::web::multipart_fields(content_type, body)
                    .await
                    .ok()?
                    .into_iter()
                    .find_map(|(k, v)| (k == name).then_some(v))
            }
        }
    }
}
