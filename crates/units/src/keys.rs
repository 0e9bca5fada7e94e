//! Device API keys. A key is 40 random characters; only its SHA-256 is stored (a fast hash is enough for
//! high-entropy keys and keeps the import hot path cheap), plus an 8-character prefix to recognise it by.

use serde::Serialize;
use tillwire_platform::{Store, Text, now_ms, random_token, read, sha256_hex, write};

use crate::{UnitError, UnitId, changed};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: i64,
    pub unit_id: i64,
    pub name: String,
    pub prefix: String,
    pub revoked: bool,
    pub created_ms: i64,
}

/// A freshly made key: the only time its plain text exists on our side.
pub struct IssuedKey {
    pub id: i64,
    pub plain: String,
}

pub struct ApiKeys<'a>(pub &'a Store);

impl ApiKeys<'_> {
    pub async fn issue(&self, unit: UnitId, name: &str) -> Result<IssuedKey, UnitError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 128 {
            return Err(UnitError::Invalid {
                field: "name",
                message: Text::new("название: от 1 до 128 символов", "name: 1–128 characters"),
            });
        }
        let plain = format!("tw_{}", random_token(40));
        let (id,): (i64,) = write!(self.0, db => sqlx::query_as(
            "INSERT INTO api_keys (unit_id, name, key_hash, prefix, revoked, created_ms) VALUES ($1, $2, $3, $4, FALSE, $5) RETURNING id",
        )
        .bind(unit.0)
        .bind(name)
        .bind(sha256_hex(&plain))
        .bind(&plain[..11])
        .bind(now_ms())
        .fetch_one(db)
        .await)?;
        changed();
        Ok(IssuedKey { id, plain })
    }

    /// The unit a presented key belongs to, if the key is known and not revoked.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<UnitId>, UnitError> {
        let found: Option<(i64,)> = read!(self.0, db => sqlx::query_as(
            "SELECT unit_id FROM api_keys WHERE key_hash = $1 AND NOT revoked",
        )
        .bind(sha256_hex(presented))
        .fetch_optional(db)
        .await)?;
        Ok(found.map(|(id,)| UnitId(id)))
    }

    pub async fn list(&self) -> Result<Vec<ApiKeyRow>, UnitError> {
        Ok(read!(self.0, db => sqlx::query_as(
            "SELECT id, unit_id, name, prefix, revoked, created_ms FROM api_keys ORDER BY unit_id, id",
        )
        .fetch_all(db)
        .await)?)
    }

    pub async fn revoke(&self, id: i64) -> Result<(), UnitError> {
        let revoked = write!(self.0, db => sqlx::query("UPDATE api_keys SET revoked = TRUE WHERE id = $1")
            .bind(id)
            .execute(db)
            .await
            .map(|r| r.rows_affected()))?;
        changed();
        if revoked == 1 {
            Ok(())
        } else {
            Err(UnitError::NotFound)
        }
    }
}
