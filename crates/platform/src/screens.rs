//! Paired screens: a board TV, a kitchen tablet or an operator terminal that an admin pairs once, so it needs no
//! daily sign-in.
//!
//! The admin names the screen, its unit, its role (viewer or operator) and the page it opens, and gets a short
//! code (and a link with it) valid for 30 minutes. Typed on the screen at `/pair/`, the code gives the screen's
//! browser a service token (scope `screen`) in a cookie; from then on the screen is signed in as itself, with its
//! own CSRF token, until an admin revokes it. Its last-seen time shows on the admin page.

use std::fmt;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::{Deserialize, Serialize};

use crate::auth::{CurrentUser, Role, cookie_value};
use crate::error::{HttpError, Text};
use crate::store::Store;
use crate::tokens::{Scope, TokenError, TokenName, Tokens};
use crate::web::{
    ClientAddr, Lang, PageContext, http_only_cookie, render, same_site_path, shell_texts,
};
use crate::{Platform, now_ms, read, sha256_hex, write};

pub const SCREEN_COOKIE: &str = "tw_screen";
/// How long a pairing code can be used.
const PAIRING_VALID_MS: i64 = 30 * 60 * 1000;
/// Browsers keep a cookie 400 days at most; a screen in use renews it on every page.
const COOKIE_MAX_AGE_SECS: u64 = 400 * 24 * 3600;
/// A screen's last-seen time is written at most this often.
const SEEN_EVERY_MS: i64 = 60 * 1000;
/// Letters of a pairing code: no 0/O or 1/I to mistake on a TV remote.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_LENGTH: usize = 8;
/// The sign-in throttle's name for pairing attempts (no username has a colon).
const PAIRING_ATTEMPTS: &str = "pairing:";

/// What a paired screen is, for the pages it opens.
#[derive(Debug, Clone)]
pub struct PairedScreen {
    pub id: i64,
    pub unit_id: i64,
    pub opens: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ScreenRow {
    pub id: i64,
    pub name: String,
    pub unit_id: i64,
    pub role: String,
    pub opens: String,
    pub pairing_expires_ms: Option<i64>,
    pub paired_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

impl ScreenRow {
    /// Whether the screen waits for its code to be typed (and the code is still valid).
    pub fn awaiting_pairing(&self) -> bool {
        self.revoked_ms.is_none()
            && self
                .pairing_expires_ms
                .is_some_and(|until| until > now_ms())
    }
}

/// A code that pairs one screen, shown once to the admin.
pub struct PairingCode(String);

impl PairingCode {
    fn generate() -> Self {
        use rand::Rng;
        let mut rng = rand::rng();
        PairingCode(
            (0..CODE_LENGTH)
                .map(|_| char::from(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())]))
                .collect(),
        )
    }

    /// What a person typed: case, spaces and dashes do not matter.
    fn normalise(typed: &str) -> String {
        typed
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_uppercase())
            .collect()
    }

    fn hash(&self) -> String {
        sha256_hex(&self.0)
    }

    /// The code as a link's query value (`ABCD2345`).
    pub fn plain(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PairingCode {
    /// `ABCD-2345`: easier to read off a screen and type.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (first, second) = self.0.split_at(CODE_LENGTH / 2);
        f.write_str(first)?;
        f.write_str("-")?;
        f.write_str(second)
    }
}

/// A screen to pair, as an admin describes it.
pub struct NewScreen {
    pub name: TokenName,
    pub unit_id: i64,
    pub role: Role,
    pub opens: String,
}

impl NewScreen {
    /// A screen is a viewer or an operator, never an admin, and opens a page of this site.
    pub fn parse(name: &str, unit_id: i64, role: &str, opens: &str) -> Result<Self, TokenError> {
        let role = match role {
            "viewer" => Role::Viewer,
            "operator" => Role::Operator,
            _ => {
                return Err(TokenError::Invalid {
                    field: "role",
                    message: Text::new(
                        "роль экрана: оператор или зритель",
                        "a screen's role is operator or viewer",
                    ),
                });
            }
        };
        let opens = same_site_path(opens.trim()).ok_or_else(|| TokenError::Invalid {
            field: "opens",
            message: Text::new(
                "страница экрана: путь на этом сайте, например /dashboard/",
                "the screen's page: a path of this site, such as /dashboard/",
            ),
        })?;
        Ok(NewScreen {
            name: TokenName::parse(name)?,
            unit_id,
            role,
            opens: opens.to_owned(),
        })
    }
}

pub struct Screens<'a>(pub &'a Store);

const COLUMNS: &str = "SELECT id, name, unit_id, role, opens, pairing_expires_ms, paired_ms, last_seen_ms, revoked_ms FROM screens";

impl Screens<'_> {
    /// Records a screen to pair and returns it with its pairing code.
    pub async fn create(
        &self,
        new: &NewScreen,
        actor: &str,
    ) -> Result<(i64, PairingCode), TokenError> {
        let code = PairingCode::generate();
        let now = now_ms();
        let (id,): (i64,) = write!(self.0, db => sqlx::query_as(
            "INSERT INTO screens (name, unit_id, role, opens, csrf_token, pairing_hash, pairing_expires_ms, created_ms, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(new.name.as_str())
        .bind(new.unit_id)
        .bind(new.role.as_str())
        .bind(&new.opens)
        .bind(crate::random_token(24))
        .bind(code.hash())
        .bind(now + PAIRING_VALID_MS)
        .bind(now)
        .bind(actor)
        .fetch_one(db)
        .await)?;
        tracing::info!(
            screen = id,
            by = actor,
            "screen created; waiting for pairing"
        );
        Ok((id, code))
    }

    /// A fresh code for a screen (a new device, a reset browser); its current credential keeps working until the
    /// new code is used.
    pub async fn new_code(&self, id: i64, actor: &str) -> Result<PairingCode, TokenError> {
        let code = PairingCode::generate();
        let updated = write!(self.0, db => sqlx::query(
            "UPDATE screens SET pairing_hash = $2, pairing_expires_ms = $3 WHERE id = $1 AND revoked_ms IS NULL",
        )
        .bind(id)
        .bind(code.hash())
        .bind(now_ms() + PAIRING_VALID_MS)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(TokenError::NotFound);
        }
        tracing::info!(screen = id, by = actor, "new pairing code");
        Ok(code)
    }

    /// Uses a pairing code: the screen gets a new credential (its previous one, if any, is revoked) and the page
    /// it opens. `None` for a code that is wrong, used or expired.
    pub async fn pair(&self, typed: &str) -> Result<Option<(String, String)>, TokenError> {
        let hash = sha256_hex(&PairingCode::normalise(typed));
        let found: Option<(i64, String, i64, String, Option<i64>)> = read!(self.0, db => sqlx::query_as(
            "SELECT id, name, unit_id, opens, token_id FROM screens
             WHERE pairing_hash = $1 AND pairing_expires_ms > $2 AND revoked_ms IS NULL",
        )
        .bind(&hash)
        .bind(now_ms())
        .fetch_optional(db)
        .await)?;
        let Some((id, name, unit_id, opens, previous)) = found else {
            return Ok(None);
        };
        let tokens = Tokens(self.0);
        let actor = format!("pairing:{id}");
        let issued = tokens
            .issue(
                &TokenName::parse(&name)?,
                &Scope::SCREEN,
                Some(unit_id),
                &actor,
            )
            .await?;
        // Two screens typing one code at once: only one takes it; the other's new credential is withdrawn.
        let taken = write!(self.0, db => sqlx::query(
            "UPDATE screens SET token_id = $3, pairing_hash = NULL, pairing_expires_ms = NULL, paired_ms = $4
             WHERE id = $1 AND pairing_hash = $2",
        )
        .bind(id)
        .bind(&hash)
        .bind(issued.id)
        .bind(now_ms())
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        if taken == 0 {
            tokens.revoke(issued.id, &actor).await?;
            return Ok(None);
        }
        if let Some(previous) = previous {
            tokens.revoke(previous, &actor).await?;
        }
        tracing::info!(screen = id, "screen paired");
        Ok(Some((issued.plain, opens)))
    }

    /// The screen a credential belongs to, as the signed-in identity of its requests.
    pub async fn identify(&self, token: &str) -> Result<Option<CurrentUser>, TokenError> {
        let Some(identity) = Tokens(self.0).authenticate(token).await? else {
            return Ok(None);
        };
        if identity.scope != Scope::SCREEN.as_str() {
            return Ok(None);
        }
        #[derive(sqlx::FromRow)]
        struct Found {
            id: i64,
            name: String,
            unit_id: i64,
            role: String,
            opens: String,
            csrf_token: String,
            last_seen_ms: Option<i64>,
        }
        let found: Option<Found> = read!(self.0, db => sqlx::query_as(
            "SELECT id, name, unit_id, role, opens, csrf_token, last_seen_ms FROM screens
             WHERE token_id = $1 AND revoked_ms IS NULL",
        )
        .bind(identity.id)
        .fetch_optional(db)
        .await)?;
        let Some(found) = found else {
            return Ok(None);
        };
        let now = now_ms();
        if found
            .last_seen_ms
            .is_none_or(|seen| seen < now - SEEN_EVERY_MS)
        {
            write!(self.0, db => sqlx::query("UPDATE screens SET last_seen_ms = $2 WHERE id = $1")
                .bind(found.id)
                .bind(now)
                .execute(db)
                .await
                .map(|r| r.rows_affected()))?;
        }
        Ok(found.role.parse().ok().map(|role| CurrentUser {
            id: 0,
            username: found.name,
            role,
            csrf: found.csrf_token,
            screen: Some(PairedScreen {
                id: found.id,
                unit_id: found.unit_id,
                opens: found.opens,
            }),
        }))
    }

    /// Every screen, newest last.
    pub async fn list(&self) -> Result<Vec<ScreenRow>, TokenError> {
        Ok(
            read!(self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(format!("{COLUMNS} ORDER BY id")))
            .fetch_all(db)
            .await)?,
        )
    }

    /// Unpairs a screen for good: its credential and any pending code stop working at once.
    pub async fn revoke(&self, id: i64, actor: &str) -> Result<(), TokenError> {
        let found: Option<(Option<i64>,)> = read!(self.0, db => sqlx::query_as(
            "SELECT token_id FROM screens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(db)
        .await)?;
        let (token,) = found.ok_or(TokenError::NotFound)?;
        write!(self.0, db => sqlx::query(
            "UPDATE screens SET revoked_ms = COALESCE(revoked_ms, $2), pairing_hash = NULL, pairing_expires_ms = NULL
             WHERE id = $1",
        )
        .bind(id)
        .bind(now_ms())
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        if let Some(token) = token {
            Tokens(self.0).revoke(token, actor).await?;
        }
        tracing::info!(screen = id, by = actor, "screen revoked");
        Ok(())
    }
}

/// Whether the request carries a screen credential (valid or not): an ended pairing is answered with the pairing
/// form rather than the staff sign-in.
pub fn has_screen_cookie(headers: &HeaderMap) -> bool {
    cookie_value(headers, SCREEN_COOKIE).is_some_and(|v| !v.is_empty())
}

#[derive(Template)]
#[template(path = "pair.html")]
struct PairPage {
    page: PageContext,
    code: String,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
struct PairQuery {
    code: Option<String>,
}

#[derive(Deserialize)]
struct PairForm {
    code: String,
}

fn pair_page(lang: Lang, code: String, error: Option<&'static str>) -> Response {
    render(&PairPage {
        page: PageContext::new(
            lang.pick("Подключение экрана", "Pair this screen"),
            lang,
            None,
        ),
        code,
        error,
    })
}

async fn pair_form(lang: Lang, Query(query): Query<PairQuery>) -> Response {
    pair_page(lang, query.code.unwrap_or_default(), None)
}

#[tracing::instrument(skip_all, fields(%address))]
async fn pair_submit(
    State(platform): State<Platform>,
    lang: Lang,
    ClientAddr(address): ClientAddr,
    Form(form): Form<PairForm>,
) -> Response {
    // Codes are throttled like passwords, under a name no account can have.
    if let Err(wait_secs) = platform.login_limiter.check(PAIRING_ATTEMPTS, address) {
        let mut page = pair_page(lang, form.code, Some(shell_texts(lang).too_many));
        *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait_secs.max(1)));
        return page;
    }
    match Screens(&platform.store).pair(&form.code).await {
        Ok(Some((token, opens))) => (
            [(
                header::SET_COOKIE,
                http_only_cookie(
                    &platform.settings,
                    SCREEN_COOKIE,
                    &token,
                    COOKIE_MAX_AGE_SECS,
                ),
            )],
            Redirect::to(&opens),
        )
            .into_response(),
        Ok(None) => {
            tracing::info!("a wrong or expired pairing code");
            let mut page = pair_page(
                lang,
                form.code,
                Some(lang.pick(
                    "Код неверный или устарел. Попросите администратора выдать новый.",
                    "The code is wrong or has expired. Ask an admin for a new one.",
                )),
            );
            *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            page
        }
        Err(error) => HttpError::from(error).into_response(),
    }
}

/// `/pair/`: where a screen types its code. Public: the screen has no credential yet.
pub fn router(platform: Platform) -> Router {
    Router::new()
        .route("/pair/", get(pair_form).post(pair_submit))
        .route("/pair", get(|| async { Redirect::permanent("/pair/") }))
        .with_state(platform)
}
