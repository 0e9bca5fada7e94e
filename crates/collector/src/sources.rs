//! Registers added on `/admin/collector/sources/`, next to those of `tillwire.toml`: stored in `collector_sources`
//! with the password sealed by the platform's [`SecretBox`], and picked up by the running collector without a
//! restart (see [`supervise`]).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

use tillwire_kitchen::Kitchen;
use tillwire_platform::config::Secret;
use tillwire_platform::secretbox::SecretBox;
use tillwire_platform::{Store, now_ms, read, write};
use tillwire_units::{UnitId, Units};
use tokio::sync::watch;

use crate::config::{CashSource, Lookback, Overlap, Timer, register_name};
use crate::run::{Collectors, DEFAULT_BATCH, Options, Task};
use crate::{Alerts, Cursors, KitchenSink, Parked, status};

/// Changes made by another instance sharing the database are seen within this.
const RELOAD_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SourceRow {
    pub id: i64,
    pub unit_id: i64,
    pub host: String,
    pub port: i64,
    pub database_name: String,
    pub login: String,
    pub password_sealed: String,
    pub custom_sql: Option<String>,
    pub timer_ms: i64,
    pub revision: i64,
}

impl SourceRow {
    pub fn name(&self) -> String {
        register_name(&self.host, self.port, &self.database_name)
    }

    /// The cursor's key, the same as for the register listed under the unit in `tillwire.toml`.
    fn key(&self) -> String {
        task_key(self.unit_id, &self.name())
    }

    fn source(&self, password: Secret) -> CashSource {
        CashSource {
            host: self.host.clone(),
            port: u16::try_from(self.port).unwrap_or_default(),
            database: self.database_name.clone(),
            login: self.login.clone(),
            password,
            sql: self.custom_sql.clone(),
        }
    }
}

/// How a register's cursor and task are named in process: by unit and register.
pub(crate) fn task_key(unit: i64, name: &str) -> String {
    format!("unit {unit}: {name}")
}

/// A register as a form gives it, checked with main.json's rules and defaults.
pub(crate) struct NewSource {
    pub source: CashSource,
    pub timer: Timer,
}

pub(crate) struct Sources<'a>(pub &'a Store);

const COLUMNS: &str = "id, unit_id, host, port, database_name, login, password_sealed, custom_sql, timer_ms, revision";

impl Sources<'_> {
    pub async fn list(&self) -> Result<Vec<SourceRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM collector_sources ORDER BY unit_id, host, port, database_name"
        );
        read!(self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await)
    }

    pub async fn create(
        &self,
        unit: i64,
        new: &NewSource,
        password_sealed: &str,
    ) -> Result<i64, sqlx::Error> {
        let source = &new.source;
        let (id,): (i64,) = write!(self.0, db => sqlx::query_as(
            "INSERT INTO collector_sources (unit_id, host, port, database_name, login, password_sealed, custom_sql,
                 timer_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(unit)
        .bind(&source.host)
        .bind(i64::from(source.port))
        .bind(&source.database)
        .bind(&source.login)
        .bind(password_sealed)
        .bind(source.sql.as_deref())
        .bind(new.timer.millis())
        .bind(now_ms())
        .fetch_one(db)
        .await)?;
        announce_change();
        Ok(id)
    }

    /// `password_sealed: None` keeps the stored password. False when there is no such source.
    pub async fn update(
        &self,
        id: i64,
        new: &NewSource,
        password_sealed: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let source = &new.source;
        let updated = write!(self.0, db => sqlx::query(
            "UPDATE collector_sources SET host = $2, port = $3, database_name = $4, login = $5,
                 password_sealed = COALESCE($6, password_sealed), custom_sql = $7, timer_ms = $8,
                 revision = revision + 1, updated_ms = $9
             WHERE id = $1",
        )
        .bind(id)
        .bind(&source.host)
        .bind(i64::from(source.port))
        .bind(&source.database)
        .bind(&source.login)
        .bind(password_sealed)
        .bind(source.sql.as_deref())
        .bind(new.timer.millis())
        .bind(now_ms())
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        announce_change();
        Ok(updated > 0)
    }

    pub async fn delete(&self, id: i64) -> Result<bool, sqlx::Error> {
        let deleted = write!(self.0, db => sqlx::query("DELETE FROM collector_sources WHERE id = $1")
            .bind(id)
            .execute(db)
            .await
            .map(|r| r.rows_affected()))?;
        announce_change();
        Ok(deleted > 0)
    }
}

/// Bumped after every change, so this process's collector reloads at once.
fn changes() -> &'static watch::Sender<u64> {
    static CHANGES: OnceLock<watch::Sender<u64>> = OnceLock::new();
    CHANGES.get_or_init(|| watch::Sender::new(0))
}

fn announce_change() {
    changes().send_modify(|generation| *generation += 1);
}

/// A running task started from a row: which revision of which row, and the register's name on the status board.
struct Started {
    version: (i64, i64),
    name: String,
}

/// What `[collector]` says about every register of the admin pages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub overlap: Overlap,
    pub alert_after: Option<Duration>,
}

/// Keeps one task per row of `collector_sources` running, until `stop`. After a change, only the tasks whose row
/// was added, changed or removed are (re)started or stopped; a restarted task keeps its cursor (same unit and
/// register). A register `tillwire.toml` already lists for the unit (`configured`) is left to that entry.
pub(crate) async fn supervise(
    kitchen: Kitchen,
    configured: HashSet<String>,
    policy: Policy,
    mut stop: watch::Receiver<bool>,
) {
    let mut changed = changes().subscribe();
    let mut collectors = Collectors::default();
    let mut started = HashMap::new();
    let mut shadowed = HashSet::new();
    loop {
        let reloaded = reload(
            &kitchen,
            &configured,
            policy,
            &mut collectors,
            &mut started,
            &mut shadowed,
        );
        if let Err(error) = reloaded.await {
            tracing::warn!(%error, "reading the collector sources failed");
        }
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep(RELOAD_EVERY) => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
    collectors.stop().await;
}

async fn reload(
    kitchen: &Kitchen,
    configured: &HashSet<String>,
    policy: Policy,
    collectors: &mut Collectors,
    started: &mut HashMap<String, Started>,
    shadowed: &mut HashSet<(i64, i64)>,
) -> Result<(), String> {
    let platform = &kitchen.platform;
    let rows = Sources(&platform.store)
        .list()
        .await
        .map_err(|e| e.to_string())?;
    let mut wanted = HashMap::new();
    for row in rows {
        let key = row.key();
        if configured.contains(&key) {
            if shadowed.insert((row.id, row.revision)) {
                tracing::warn!(register = %row.name(), unit = row.unit_id, "listed in tillwire.toml too; that entry is used");
            }
        } else {
            wanted.insert(key, row);
        }
    }
    let stale: Vec<String> = started
        .iter()
        .filter(|(key, run)| {
            wanted.get(*key).map(|row| (row.id, row.revision)) != Some(run.version)
        })
        .map(|(key, _)| key.clone())
        .collect();
    collectors.stop_keys(&stale).await;
    for key in &stale {
        if let Some(run) = started.remove(key)
            && !wanted.contains_key(key)
        {
            status::forget(&run.name);
        }
    }
    let new: Vec<SourceRow> = wanted
        .into_iter()
        .filter(|(key, _)| !started.contains_key(key))
        .map(|(_, row)| row)
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let secret_box = SecretBox::load(&platform.settings.data_dir).map_err(|e| e.to_string())?;
    let units: HashMap<i64, String> = Units(&platform.store)
        .list()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|unit| (unit.id, unit.name))
        .collect();
    for row in new {
        let name = row.name();
        let reporter =
            status::Reporter::new(&name, units.get(&row.unit_id).map_or("", String::as_str));
        let password = match secret_box.open(&row.password_sealed) {
            Ok(password) => password,
            Err(error) => {
                reporter.failed(&error.to_string());
                continue;
            }
        };
        let timer = match Timer::from_millis(row.timer_ms) {
            Ok(timer) => timer,
            Err(error) => {
                reporter.failed(&error);
                continue;
            }
        };
        let options = Options {
            timer,
            lookback: Lookback::default(),
            batch: DEFAULT_BATCH,
            zone: platform.settings.timezone,
            overlap: policy.overlap,
        };
        collectors.spawn(Task {
            key: row.key(),
            reporter,
            sink: KitchenSink {
                kitchen: kitchen.clone(),
                unit: UnitId(row.unit_id),
            },
            cursors: Cursors(platform.store.clone()),
            parked: Parked(platform.store.clone()),
            leases: platform.leases.clone(),
            options,
            source: row.source(password),
            alerts: policy.alert_after.map(|after| Alerts {
                store: platform.store.clone(),
                unit_id: row.unit_id,
                after,
            }),
        });
        started.insert(
            row.key(),
            Started {
                version: (row.id, row.revision),
                name,
            },
        );
    }
    Ok(())
}
