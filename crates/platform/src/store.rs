//! Storage: one handle over SQLite (embedded default) or PostgreSQL (scale-out).
//!
//! sqlx's `Any` driver is avoided (no dates, panics on some types), so every query is written once in SQL that
//! both engines accept (`$1` placeholders, `ON CONFLICT`, `RETURNING`) and run through the [`read!`] and
//! [`write_tx!`] macros, which expand the same code once per backend. Timestamps are stored as Unix
//! milliseconds (`BIGINT`) and calendar days as `YYYY-MM-DD` text, so values look the same on both engines.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Which engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection to the database. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Store {
    /// SQLite allows one writer at a time, so writes go through a single connection (no busy-retry storms)
    /// while reads use a pool of their own.
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
    },
    Postgres(PgPool),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL (expected sqlite://… or postgres://…)")]
    UnsupportedUrl,
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("migration {area}/{version} failed: {source}")]
    Migration {
        area: &'static str,
        version: i64,
        source: sqlx::Error,
    },
}

impl Store {
    /// Opens `sqlite://path` (created when missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL survives process crashes (kill -9) without an fsync per commit.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            // No ping before every acquire: it doubles the round trips of the hot path, and a broken
            // connection surfaces as an error on first use anyway.
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .after_connect(|conn, _| Box::pin(keep_plans(conn)))
                .connect_with(options.clone())
                .await?;
            let reader = SqlitePoolOptions::new()
                .max_connections(8)
                .test_before_acquire(false)
                .after_connect(|conn, _| Box::pin(keep_plans(conn)))
                .connect_with(options.read_only(false))
                .await?;
            Ok(Store::Sqlite { writer, reader })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(32)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Ok(Store::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite { .. } => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every migration not applied yet, area by area, each in its own transaction.
    pub async fn migrate(&self, areas: &[&[Migration]]) -> Result<usize, StoreError> {
        crate::write!(self, db => sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                area TEXT NOT NULL, version BIGINT NOT NULL, applied_ms BIGINT NOT NULL, PRIMARY KEY (area, version))",
        )
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        let backend = self.backend();
        // One transaction for every pending migration: an upgrade applies whole or not at all, and a fresh
        // SQLite database pays one commit, not one per migration.
        let applied: Result<usize, StoreError> = crate::write_tx!(self, tx => {
            if backend == Backend::Postgres {
                // Two instances starting together must not both apply the same migration.
                sqlx::query("SELECT pg_advisory_xact_lock(7317001)").execute(&mut **tx).await?;
            }
            let done: Vec<(String, i64)> = sqlx::query_as("SELECT area, version FROM schema_migrations")
                .fetch_all(&mut **tx)
                .await?;
            let mut applied = 0;
            for migration in areas.iter().flat_map(|area| area.iter()) {
                if done.iter().any(|(area, version)| area == migration.area && *version == migration.version) {
                    continue;
                }
                let script = match backend {
                    Backend::Sqlite => migration.sqlite,
                    Backend::Postgres => migration.postgres,
                };
                sqlx::raw_sql(script).execute(&mut **tx).await.map_err(|source| StoreError::Migration {
                    area: migration.area,
                    version: migration.version,
                    source,
                })?;
                sqlx::query("INSERT INTO schema_migrations (area, version, applied_ms) VALUES ($1, $2, $3)")
                    .bind(migration.area)
                    .bind(migration.version)
                    .bind(crate::now_ms())
                    .execute(&mut **tx)
                    .await?;
                applied += 1;
            }
            Ok(applied)
        });
        let applied = applied?;
        Ok(applied)
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Store::Postgres(pool) => pool.close().await,
        }
    }
}

/// One schema step of one area, written for each engine.
#[derive(Debug)]
pub struct Migration {
    pub area: &'static str,
    pub version: i64,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Runs `$body` against a read pool, once written, compiled per backend: `read!(store, db => query.fetch_all(db).await)`.
#[macro_export]
macro_rules! read {
    ($store:expr, $db:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite { reader: $db, .. } => $body,
            $crate::store::Store::Postgres($db) => $body,
        }
    };
}

/// Runs `$body` (which yields a `Result`) inside one write transaction, committed only on `Ok`.
/// `$tx` is a `&mut` connection: `write_tx!(store, tx => { q.execute(&mut **tx).await?; Ok(x) })`.
/// On SQLite the transaction starts with `BEGIN IMMEDIATE` so it never has to upgrade a read lock.
#[macro_export]
macro_rules! write_tx {
    ($store:expr, $tx:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite { writer, .. } => {
                let mut transaction = writer.begin_with("BEGIN IMMEDIATE").await?;
                let $tx = &mut transaction;
                let outcome = $body;
                if outcome.is_ok() {
                    transaction.commit().await?;
                }
                outcome
            }
            $crate::store::Store::Postgres(pool) => {
                let mut transaction = pool.begin().await?;
                let $tx = &mut transaction;
                let outcome = $body;
                if outcome.is_ok() {
                    transaction.commit().await?;
                }
                outcome
            }
        }
    };
}

/// Runs `$body` against the write side without an explicit transaction (single statements).
#[macro_export]
macro_rules! write {
    ($store:expr, $db:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite { writer: $db, .. } => $body,
            $crate::store::Store::Postgres($db) => $body,
        }
    };
}

/// Turns on SQLite's query planner stability guarantee for a new connection. Without it SQLite plans a statement
/// with the value bound to its `LIMIT` and so compiles the statement again whenever that value is bound anew:
/// every paged list (`LIMIT $n`) was parsed and planned on every call, which cut directory reads to a third.
/// With it a prepared statement keeps its plan, as the statement cache intends.
async fn keep_plans(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    use std::ffi::c_int;
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is this connection's open handle, held locked for the call; SQLITE_DBCONFIG_ENABLE_QPSG takes
    // an int (1 = on) and an optional `int*` for the new setting, here none.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db,
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as c_int,
            std::ptr::null_mut::<c_int>(),
        )
    };
    if rc == libsqlite3_sys::SQLITE_OK {
        Ok(())
    } else {
        Err(sqlx::Error::Configuration(
            format!("SQLite refused the query planner stability setting (code {rc})").into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::c_int;

    use super::Store;

    #[tokio::test]
    async fn sqlite_connections_keep_their_plans() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/plans.sqlite3", dir.path().display());
        let store = Store::connect(&url).await.unwrap();
        let Store::Sqlite { writer, reader } = &store else {
            unreachable!("a sqlite:// URL opens SQLite")
        };
        for pool in [writer, reader] {
            let mut conn = pool.acquire().await.unwrap();
            let mut handle = conn.lock_handle().await.unwrap();
            let mut setting: c_int = -1;
            // SAFETY: a locked, open handle; -1 reads the setting into `setting` without changing it.
            let rc = unsafe {
                libsqlite3_sys::sqlite3_db_config(
                    handle.as_raw_handle().as_ptr(),
                    libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
                    -1 as c_int,
                    &mut setting as *mut c_int,
                )
            };
            assert_eq!((rc, setting), (libsqlite3_sys::SQLITE_OK, 1));
        }
    }
}
