use serde::Serialize;
use tillwire_platform::error::{Constraint, ResultExt};
use tillwire_platform::tokens::Tokens;
use tillwire_platform::{Store, Text, now_ms, read, write};

use crate::{UnitError, UnitId, changed};

/// A unit's display name: trimmed, 1–128 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitName(String);

impl UnitName {
    pub fn parse(text: &str) -> Result<Self, UnitError> {
        let text = text.trim();
        match text.chars().count() {
            1..=128 => Ok(UnitName(text.to_owned())),
            _ => Err(UnitError::Invalid {
                field: "name",
                message: Text::new("название: от 1 до 128 символов", "name: 1–128 characters"),
            }),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Unit {
    pub id: i64,
    pub name: String,
    pub is_default: bool,
    pub created_ms: i64,
}

impl Unit {
    pub fn unit_id(&self) -> UnitId {
        UnitId(self.id)
    }
}

pub struct Units<'a>(pub &'a Store);

impl Units<'_> {
    /// Creates the default unit, but only in a database that holds no unit at all: a chain that imported its
    /// units first must not get a stray one.
    pub async fn ensure_default(&self, name: &str) -> Result<Option<UnitId>, UnitError> {
        let created: Option<(i64,)> = write!(self.0, db => sqlx::query_as(
            "INSERT INTO units (name, is_default, created_ms) SELECT $1, TRUE, $2
             WHERE NOT EXISTS (SELECT 1 FROM units) RETURNING id",
        )
        .bind(name)
        .bind(now_ms())
        .fetch_optional(db)
        .await)?;
        changed();
        Ok(created.map(|(id,)| UnitId(id)))
    }

    /// The unit a single-shop install means when it names none: the default one, or the only one.
    pub async fn default_unit(&self) -> Result<Option<Unit>, UnitError> {
        let units: Vec<Unit> = read!(self.0, db => sqlx::query_as(
            "SELECT id, name, is_default, created_ms FROM units ORDER BY is_default DESC, id LIMIT 2",
        )
        .fetch_all(db)
        .await)?;
        Ok(match units.as_slice() {
            [only] => Some(only.clone()),
            [first, ..] if first.is_default => Some(first.clone()),
            _ => None,
        })
    }

    pub async fn list(&self) -> Result<Vec<Unit>, UnitError> {
        Ok(
            read!(self.0, db => sqlx::query_as("SELECT id, name, is_default, created_ms FROM units ORDER BY name, id")
            .fetch_all(db)
            .await)?,
        )
    }

    pub async fn get(&self, id: UnitId) -> Result<Unit, UnitError> {
        let found: Option<Unit> = read!(self.0, db => sqlx::query_as("SELECT id, name, is_default, created_ms FROM units WHERE id = $1")
            .bind(id.0)
            .fetch_optional(db)
            .await)?;
        found.ok_or(UnitError::NotFound)
    }

    pub async fn create(&self, name: &UnitName) -> Result<UnitId, UnitError> {
        let created: Option<(i64,)> = write!(self.0, db => sqlx::query_as(
            "INSERT INTO units (name, is_default, created_ms) VALUES ($1, FALSE, $2) ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name.as_str())
        .bind(now_ms())
        .fetch_optional(db)
        .await)?;
        changed();
        created.map(|(id,)| UnitId(id)).ok_or(UnitError::Duplicate)
    }

    pub async fn rename(&self, id: UnitId, name: &UnitName) -> Result<(), UnitError> {
        let result = write!(self.0, db => sqlx::query("UPDATE units SET name = $2 WHERE id = $1")
            .bind(id.0)
            .bind(name.as_str())
            .execute(db)
            .await
            .map(|r| r.rows_affected()));
        changed();
        match result.on_constraint(Constraint::Unique, || UnitError::Duplicate)? {
            1 => Ok(()),
            _ => Err(UnitError::NotFound),
        }
    }

    /// Deletes a unit that nothing refers to any more (other areas' rows block it through their foreign keys).
    /// Deletes a unit that nothing refers to any more, and revokes its device keys.
    pub async fn delete(&self, id: UnitId, actor: &str) -> Result<(), UnitError> {
        let result = write!(self.0, db => sqlx::query("DELETE FROM units WHERE id = $1")
            .bind(id.0)
            .execute(db)
            .await
            .map(|r| r.rows_affected()));
        changed();
        match result.on_constraint(Constraint::ForeignKey, || UnitError::InUse)? {
            1 => Ok(Tokens(self.0).revoke_unit(id.0, actor).await?),
            _ => Err(UnitError::NotFound),
        }
    }
}
