//! Service tokens: the one credential programs present. A till's device key (scope `device`, acting for one
//! unit), a service's API token (scope: one area), and an automation token (scope `admin`: every area) are the
//! same thing here: 40 random characters after `tw_`, of which only the SHA-256 is stored with a prefix to
//! recognise it by. Issued on `/admin/tokens/` (device keys on the units' page) or by `tillwire token issue`,
//! shown once, revocable; every issue and revocation is in the token audit.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::error::{HttpError, Text};
use crate::store::Store;
use crate::{now_ms, random_token, read, sha256_hex, write_tx};

/// One audit line, written in the transaction of the change it records (a macro: the transaction's type is
/// each backend's own).
macro_rules! record {
    ($tx:expr, $actor:expr, $action:expr, $token:expr, $detail:expr) => {
        sqlx::query(
            "INSERT INTO token_audit (at_ms, actor, action, token_id, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(now_ms())
        .bind($actor)
        .bind($action)
        .bind($token)
        .bind($detail.to_string())
        .execute(&mut **$tx)
        .await
    };
}

/// What a token may do: `admin` (everything), `device` (act as a device of its unit), or an area's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(&'static str);

impl Scope {
    pub const ADMIN: Scope = Scope("admin");
    pub const DEVICE: Scope = Scope("device");
    /// A paired screen's credential, kept in its browser (see `screens`).
    pub const SCREEN: Scope = Scope("screen");

    /// The scope of one area's API (an area names its own).
    pub const fn area(name: &'static str) -> Scope {
        Scope(name)
    }

    /// `admin`, `device` or one of `areas` (the assembled areas' names).
    pub fn parse(text: &str, areas: &[&'static str]) -> Result<Self, TokenError> {
        let text = text.trim();
        let areas: Vec<&'static str> = areas
            .iter()
            .copied()
            .filter(|area| *area != crate::AREA.name)
            .collect();
        match text {
            "admin" => Ok(Scope::ADMIN),
            "device" => Ok(Scope::DEVICE),
            _ => areas
                .iter()
                .find(|area| **area == text)
                .map(|area| Scope(area))
                .ok_or_else(|| TokenError::Invalid {
                    field: "scope",
                    message: Text::new(
                        format!("область: admin, device или одна из: {}", areas.join(", ")),
                        format!("scope: admin, device or one of: {}", areas.join(", ")),
                    ),
                }),
        }
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

/// A token's label: trimmed, 1–128 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenName(String);

impl TokenName {
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let text = text.trim();
        match text.chars().count() {
            1..=128 => Ok(TokenName(text.to_owned())),
            _ => Err(TokenError::Invalid {
                field: "name",
                message: Text::new("название: от 1 до 128 символов", "name: 1–128 characters"),
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: Text },
    #[error("token not found")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<TokenError> for HttpError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Invalid { field, message } => HttpError::field(field, message),
            TokenError::NotFound => {
                HttpError::not_found(Text::new("Токен не найден.", "Token not found."))
            }
            TokenError::Database(error) => HttpError::internal(error),
        }
    }
}

/// The credential of `Authorization: <scheme> <credential>` when its scheme is one of `schemes` (any case).
pub fn presented<'a>(headers: &'a axum::http::HeaderMap, schemes: &[&str]) -> Option<&'a str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, credential) = value.trim().split_once(' ')?;
    schemes
        .iter()
        .any(|known| scheme.eq_ignore_ascii_case(known))
        .then_some(credential.trim())
}

/// Who presented a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: i64,
    pub name: String,
    pub scope: String,
    pub unit: Option<i64>,
}

impl Identity {
    /// Whether the token may call `area`'s API.
    pub fn allows(&self, area: &str) -> bool {
        self.scope == Scope::ADMIN.as_str() || self.scope == area
    }

    /// The unit a device key acts for.
    pub fn device_unit(&self) -> Option<i64> {
        (self.scope == Scope::DEVICE.as_str())
            .then_some(self.unit)
            .flatten()
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub scope: String,
    pub unit_id: Option<i64>,
    pub prefix: String,
    pub created_ms: i64,
    pub created_by: String,
    pub revoked_ms: Option<i64>,
}

impl TokenRow {
    pub fn revoked(&self) -> bool {
        self.revoked_ms.is_some()
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub token_id: i64,
    pub detail: String,
}

/// A freshly made token: the only time its plain text exists on our side.
pub struct IssuedToken {
    pub id: i64,
    pub plain: String,
}

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Bumped by every token write in this process, so a cache of "whom does this token mean" can tell it may be
/// stale (other instances' writes are seen through the cache's time limit).
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

fn changed() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

pub struct Tokens<'a>(pub &'a Store);

impl Tokens<'_> {
    /// Makes a token. A device key and a screen's credential need the unit they act for; no other scope takes
    /// one.
    pub async fn issue(
        &self,
        name: &TokenName,
        scope: &Scope,
        unit: Option<i64>,
        actor: &str,
    ) -> Result<IssuedToken, TokenError> {
        if (*scope == Scope::DEVICE || *scope == Scope::SCREEN) != unit.is_some() {
            return Err(TokenError::Invalid {
                field: "unit",
                message: Text::new(
                    "подразделение указывается только у ключа устройства и экрана, и у них обязательно",
                    "a unit goes with a device key or a screen, and only with them",
                ),
            });
        }
        let plain = format!("tw_{}", random_token(40));
        let detail =
            serde_json::json!({"name": name.as_str(), "scope": scope.as_str(), "unit": unit});
        let id: Result<i64, TokenError> = write_tx!(self.0, tx => {
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO service_tokens (name, scope, unit_id, token_hash, prefix, created_ms, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(name.as_str())
            .bind(scope.as_str())
            .bind(unit)
            .bind(sha256_hex(&plain))
            .bind(&plain[..11])
            .bind(now_ms())
            .bind(actor)
            .fetch_one(&mut **tx)
            .await?;
            record!(tx, actor, "issue", id, detail)?;
            Ok(id)
        });
        changed();
        Ok(IssuedToken { id: id?, plain })
    }

    /// Whose token this is, if it is known and not revoked.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Identity>, TokenError> {
        if presented.is_empty() {
            return Ok(None);
        }
        let found: Option<(i64, String, String, Option<i64>)> = read!(self.0, db => sqlx::query_as(
            "SELECT id, name, scope, unit_id FROM service_tokens WHERE token_hash = $1 AND revoked_ms IS NULL",
        )
        .bind(sha256_hex(presented))
        .fetch_optional(db)
        .await)?;
        Ok(found.map(|(id, name, scope, unit)| Identity {
            id,
            name,
            scope,
            unit,
        }))
    }

    /// Every token, or those of one scope, newest last.
    pub async fn list(&self, scope: Option<&Scope>) -> Result<Vec<TokenRow>, TokenError> {
        const COLUMNS: &str = "SELECT id, name, scope, unit_id, prefix, created_ms, created_by, revoked_ms FROM service_tokens";
        Ok(match scope {
            Some(scope) => {
                read!(self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(format!("{COLUMNS} WHERE scope = $1 ORDER BY id")))
                .bind(scope.as_str())
                .fetch_all(db)
                .await)?
            }
            None => {
                read!(self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(format!("{COLUMNS} ORDER BY id")))
                .fetch_all(db)
                .await)?
            }
        })
    }

    /// Revokes a token (again is fine: it stays revoked from the first time).
    pub async fn revoke(&self, id: i64, actor: &str) -> Result<(), TokenError> {
        self.revoke_where(id, None, actor).await
    }

    /// Revokes a token of `scope` only: a page that manages one kind of token cannot revoke another kind.
    pub async fn revoke_of(&self, scope: &Scope, id: i64, actor: &str) -> Result<(), TokenError> {
        self.revoke_where(id, Some(scope), actor).await
    }

    async fn revoke_where(
        &self,
        id: i64,
        scope: Option<&Scope>,
        actor: &str,
    ) -> Result<(), TokenError> {
        let outcome: Result<(), TokenError> = write_tx!(self.0, tx => {
            let found: Option<(String, String, Option<i64>)> =
                sqlx::query_as("SELECT name, scope, revoked_ms FROM service_tokens WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?;
            match found {
                None => Err(TokenError::NotFound),
                Some((_, found_scope, _)) if scope.is_some_and(|s| s.as_str() != found_scope) => {
                    Err(TokenError::NotFound)
                }
                Some((_, _, Some(_))) => Ok(()),
                Some((name, _, None)) => {
                    sqlx::query("UPDATE service_tokens SET revoked_ms = $2 WHERE id = $1")
                        .bind(id)
                        .bind(now_ms())
                        .execute(&mut **tx)
                        .await?;
                    record!(tx, actor, "revoke", id, serde_json::json!({"name": name}))?;
                    Ok(())
                }
            }
        });
        changed();
        outcome
    }

    /// Revokes the device keys and screens of a unit that is gone.
    pub async fn revoke_unit(&self, unit: i64, actor: &str) -> Result<(), TokenError> {
        let keys: Vec<(i64,)> = read!(self.0, db => sqlx::query_as(
            "SELECT id FROM service_tokens WHERE unit_id = $1 AND revoked_ms IS NULL",
        )
        .bind(unit)
        .fetch_all(db)
        .await)?;
        for (id,) in keys {
            self.revoke(id, actor).await?;
        }
        Ok(())
    }

    /// The latest issues and revocations, newest first.
    pub async fn audit(&self, limit: i64) -> Result<Vec<AuditRow>, TokenError> {
        Ok(read!(self.0, db => sqlx::query_as(
            "SELECT at_ms, actor, action, token_id, detail FROM token_audit ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(db)
        .await)?)
    }
}

/// An area whose JSON API takes service tokens of its scope (or `admin`): its name, and what it is called on an
/// error page ("the register monitor").
pub trait TokenScope {
    const SCOPE: &'static str;
    const NAME_RU: &'static str;
    const NAME_EN: &'static str;
}

/// Who called an area's API: a service token allowed it (`Authorization: Bearer <token>`), else 401 without one
/// and 403 with a token of another scope.
pub struct ScopedCaller<A>(pub Identity, std::marker::PhantomData<A>);

impl<A: TokenScope, S: Send + Sync> axum::extract::FromRequestParts<S> for ScopedCaller<A>
where
    crate::Platform: axum::extract::FromRef<S>,
{
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, HttpError> {
        let platform = <crate::Platform as axum::extract::FromRef<S>>::from_ref(state);
        let presented = presented(&parts.headers, &["bearer"]).unwrap_or("");
        match Tokens(&platform.store).authenticate(presented).await? {
            None => Err(HttpError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "login_required",
                Text::new(
                    "Нужен действующий токен: Authorization: Bearer <токен>.",
                    "A valid token is required: Authorization: Bearer <token>.",
                ),
            )),
            Some(identity) if identity.allows(A::SCOPE) => {
                Ok(ScopedCaller(identity, std::marker::PhantomData))
            }
            Some(identity) => {
                tracing::warn!(token = identity.id, scope = %identity.scope, wanted = A::SCOPE, "API call with a token of another scope");
                Err(HttpError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "forbidden",
                    Text::new(
                        format!(
                            "Этот токен не даёт доступа к {} (нужна область {} или admin).",
                            A::NAME_RU,
                            A::SCOPE
                        ),
                        format!(
                            "This token does not allow {} (scope {} or admin needed).",
                            A::NAME_EN,
                            A::SCOPE
                        ),
                    ),
                ))
            }
        }
    }
}
