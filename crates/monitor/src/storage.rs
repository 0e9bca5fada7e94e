//! The monitor's tables: registers, their stored state, incidents (with the domain events they cause, in the same
//! transaction), maintenance windows and the per-minute samples. One struct per table's operations, each call
//! one database boundary.

use std::collections::HashMap;
use std::time::Duration;

use chrono_tz::Tz;
use serde_json::json;
use tillwire_platform::error::{Constraint, violates};
use tillwire_platform::outbox::{NewEvent, RecordEvent};
use tillwire_platform::{HttpError, Store, Text, now_ms, read, write, write_tx};

use crate::health::{Change, Health};
use crate::model::{BaseUrl, Kind, Overrides, RegisterId, RegisterName};

/// Domain events the monitor records (the notification area delivers them).
pub const INCIDENT_OPENED: &str = "monitor.incident_opened";
pub const INCIDENT_CLOSED: &str = "monitor.incident_closed";
pub const INCIDENT_ACKNOWLEDGED: &str = "monitor.incident_acknowledged";
/// An incident still open and unacknowledged, told again (`remind_every_minutes`).
pub const INCIDENT_REMINDED: &str = "monitor.incident_reminded";

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("a register named {0:?} exists in this unit already")]
    Duplicate(String),
    #[error("register {0:?} is declared in tillwire.toml")]
    Declared(String),
    #[error("no such register")]
    NoRegister,
    #[error("no such unit")]
    NoUnit,
    #[error("no such incident")]
    NoIncident,
    #[error("no such maintenance window")]
    NoWindow,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<MonitorError> for HttpError {
    fn from(error: MonitorError) -> Self {
        match error {
            MonitorError::Duplicate(name) => HttpError::conflict(Text::new(
                format!("Касса «{name}» в этом подразделении уже есть."),
                format!("This unit has a register named “{name}” already."),
            )),
            MonitorError::Declared(name) => HttpError::conflict(Text::new(
                format!(
                    "Касса «{name}» описана в tillwire.toml: её название, адрес, подразделение, часовой пояс и регион меняют там."
                ),
                format!(
                    "Register “{name}” is declared in tillwire.toml: its name, address, unit, time zone and region are changed there."
                ),
            ))
            .with_code("declared"),
            MonitorError::NoRegister => {
                HttpError::not_found(Text::new("Такой кассы нет.", "No such register."))
            }
            MonitorError::NoUnit => HttpError::field(
                "unit",
                Text::new("Такого подразделения нет.", "No such unit."),
            ),
            MonitorError::NoIncident => {
                HttpError::not_found(Text::new("Такого инцидента нет.", "No such incident."))
            }
            MonitorError::NoWindow => HttpError::not_found(Text::new(
                "Такого окна обслуживания нет.",
                "No such maintenance window.",
            )),
            MonitorError::Database(error) => HttpError::internal(error),
        }
    }
}

/// A register as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Register {
    pub id: i64,
    pub unit_id: i64,
    pub name: String,
    /// The base URL; the status paths are appended as `api/v1/status/<name>`.
    pub url: String,
    /// IANA time zone of the register's clock; null means the install's.
    pub timezone: Option<String>,
    pub region: String,
    pub enabled: bool,
    /// Declared in `tillwire.toml` (changed there, not on the pages).
    pub declared: bool,
    /// The register's threshold overrides (JSON object).
    pub thresholds: String,
    pub updated_ms: i64,
}

impl Register {
    pub fn register_id(&self) -> RegisterId {
        RegisterId(self.id)
    }

    pub fn base_url(&self) -> Option<BaseUrl> {
        BaseUrl::parse(&self.url).ok()
    }

    /// The register's clock: its own zone, else `fallback` (the install's).
    pub fn zone(&self, fallback: Tz) -> Tz {
        self.timezone
            .as_deref()
            .and_then(|zone| zone.parse().ok())
            .unwrap_or(fallback)
    }

    pub fn overrides(&self) -> Overrides {
        serde_json::from_str(&self.thresholds).unwrap_or_default()
    }
}

/// A register to create or change.
#[derive(Debug, Clone)]
pub struct NewRegister {
    pub unit_id: i64,
    pub name: RegisterName,
    pub url: BaseUrl,
    pub zone: Option<Tz>,
    pub region: String,
    pub enabled: bool,
    pub overrides: Overrides,
}

const REGISTER_COLUMNS: &str =
    "id, unit_id, name, url, timezone, region, enabled, declared, thresholds, updated_ms";

#[derive(Clone)]
pub struct Registers(pub Store);

impl Registers {
    /// Every register, by unit and name.
    pub async fn list(&self) -> Result<Vec<Register>, MonitorError> {
        let sql =
            format!("SELECT {REGISTER_COLUMNS} FROM monitor_registers ORDER BY unit_id, name");
        Ok(read!(&self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(db).await)?)
    }

    pub async fn get(&self, id: RegisterId) -> Result<Register, MonitorError> {
        let sql = format!("SELECT {REGISTER_COLUMNS} FROM monitor_registers WHERE id = $1");
        read!(&self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id.0).fetch_optional(db).await)?
            .ok_or(MonitorError::NoRegister)
    }

    pub async fn create(&self, register: &NewRegister) -> Result<RegisterId, MonitorError> {
        let duplicate = || MonitorError::Duplicate(register.name.as_str().to_owned());
        let (id,): (i64,) = write!(&self.0, db => sqlx::query_as(
            "INSERT INTO monitor_registers (unit_id, name, url, timezone, region, enabled, thresholds, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(register.unit_id)
        .bind(register.name.as_str())
        .bind(register.url.as_str())
        .bind(register.zone.map(|zone| zone.name()))
        .bind(&register.region)
        .bind(register.enabled)
        .bind(overrides_json(&register.overrides))
        .bind(now_ms())
        .fetch_one(db)
        .await)
        .map_err(|error| refused(error, duplicate))?;
        Ok(RegisterId(id))
    }

    pub async fn update(&self, id: RegisterId, register: &NewRegister) -> Result<(), MonitorError> {
        let duplicate = || MonitorError::Duplicate(register.name.as_str().to_owned());
        let changed = write!(&self.0, db => sqlx::query(
            "UPDATE monitor_registers SET unit_id = $2, name = $3, url = $4, timezone = $5, region = $6,
                 enabled = $7, thresholds = $8, updated_ms = $9
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(register.unit_id)
        .bind(register.name.as_str())
        .bind(register.url.as_str())
        .bind(register.zone.map(|zone| zone.name()))
        .bind(&register.region)
        .bind(register.enabled)
        .bind(overrides_json(&register.overrides))
        .bind(now_ms())
        .execute(db)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|error| refused(error, duplicate))?;
        if changed == 0 {
            return Err(MonitorError::NoRegister);
        }
        Ok(())
    }

    /// Creates the register or brings the one of that unit and name in line (CSV import, `tillwire.toml`); its
    /// enabled flag and thresholds are left as they are. True when something changed.
    pub async fn upsert(
        &self,
        register: &NewRegister,
        declared: bool,
    ) -> Result<bool, MonitorError> {
        let changed = write!(&self.0, db => sqlx::query(
            "INSERT INTO monitor_registers (unit_id, name, url, timezone, region, declared, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (unit_id, name) DO UPDATE SET url = excluded.url, timezone = excluded.timezone,
                 region = excluded.region, declared = excluded.declared, updated_ms = excluded.updated_ms
             WHERE monitor_registers.url <> excluded.url
                OR monitor_registers.timezone IS DISTINCT FROM excluded.timezone
                OR monitor_registers.region <> excluded.region
                OR monitor_registers.declared <> excluded.declared",
        )
        .bind(register.unit_id)
        .bind(register.name.as_str())
        .bind(register.url.as_str())
        .bind(register.zone.map(|zone| zone.name()))
        .bind(&register.region)
        .bind(declared)
        .bind(now_ms())
        .execute(db)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|error| refused(error, || MonitorError::NoRegister))?;
        Ok(changed > 0)
    }

    /// Brings many registers in line at once (`tillwire monitor import`), all in one transaction: each one of that
    /// unit and name gets the URL, zone and region given; one not there yet is added. Its enabled flag, thresholds
    /// and whether it is declared are left as they are. How many were added, updated and left unchanged.
    pub async fn import(&self, registers: &[NewRegister]) -> Result<ImportCounts, MonitorError> {
        let now = now_ms();
        let counts: Result<ImportCounts, MonitorError> = write_tx!(&self.0, tx => {
            let mut counts = ImportCounts::default();
            for register in registers {
                let zone = register.zone.map(|zone| zone.name().to_owned());
                let existing: Option<(String, Option<String>, String)> = sqlx::query_as(
                    "SELECT url, timezone, region FROM monitor_registers WHERE unit_id = $1 AND name = $2",
                )
                .bind(register.unit_id)
                .bind(register.name.as_str())
                .fetch_optional(&mut **tx)
                .await?;
                let wanted = (register.url.as_str().to_owned(), zone.clone(), register.region.clone());
                match existing {
                    Some(stored) if stored == wanted => {
                        counts.unchanged += 1;
                        continue;
                    }
                    Some(_) => counts.updated += 1,
                    None => counts.added += 1,
                }
                sqlx::query(
                    "INSERT INTO monitor_registers (unit_id, name, url, timezone, region, updated_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (unit_id, name) DO UPDATE SET url = excluded.url, timezone = excluded.timezone,
                         region = excluded.region, updated_ms = excluded.updated_ms",
                )
                .bind(register.unit_id)
                .bind(register.name.as_str())
                .bind(register.url.as_str())
                .bind(zone)
                .bind(&register.region)
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(|error| refused(error, || MonitorError::Duplicate(register.name.as_str().to_owned())))?;
            }
            Ok(counts)
        });
        counts
    }

    pub async fn delete(&self, id: RegisterId) -> Result<(), MonitorError> {
        let deleted = write!(&self.0, db => sqlx::query("DELETE FROM monitor_registers WHERE id = $1")
            .bind(id.0)
            .execute(db)
            .await
            .map(|r| r.rows_affected()))?;
        if deleted == 0 {
            return Err(MonitorError::NoRegister);
        }
        Ok(())
    }

    /// Each unit's threshold overrides.
    pub async fn unit_overrides(&self) -> Result<HashMap<i64, Overrides>, MonitorError> {
        let rows: Vec<(i64, String)> = read!(&self.0, db => sqlx::query_as(
            "SELECT unit_id, thresholds FROM monitor_unit_thresholds",
        )
        .fetch_all(db)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(unit, text)| (unit, serde_json::from_str(&text).unwrap_or_default()))
            .collect())
    }

    pub async fn set_unit_overrides(
        &self,
        unit_id: i64,
        overrides: &Overrides,
    ) -> Result<(), MonitorError> {
        write!(&self.0, db => sqlx::query(
            "INSERT INTO monitor_unit_thresholds (unit_id, thresholds) VALUES ($1, $2)
             ON CONFLICT (unit_id) DO UPDATE SET thresholds = excluded.thresholds",
        )
        .bind(unit_id)
        .bind(overrides_json(overrides))
        .execute(db)
        .await
        .map(|_| ()))
        .map_err(|error| refused(error, || MonitorError::NoRegister))?;
        Ok(())
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// A write the database refused: a duplicate name as `duplicate` says, a unit (or register) that is not there.
fn refused(error: sqlx::Error, duplicate: impl FnOnce() -> MonitorError) -> MonitorError {
    if violates(&error, Constraint::Unique) {
        duplicate()
    } else if violates(&error, Constraint::ForeignKey) {
        MonitorError::NoUnit
    } else {
        MonitorError::Database(error)
    }
}

fn overrides_json(overrides: &Overrides) -> String {
    serde_json::to_string(overrides).unwrap_or_else(|_| "{}".into())
}

/// An incident as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Incident {
    pub id: i64,
    pub register_id: i64,
    pub unit_id: i64,
    /// `offline`, `no_paper`, `ofd_backlog`, `vision_offline` or `receipt_stuck`.
    pub kind: String,
    /// What tripped it: the OFD backlog, or the stuck receipt's last activity (Unix ms); else empty.
    pub detail: String,
    pub opened_ms: i64,
    pub acknowledged_ms: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub reminded_ms: Option<i64>,
    pub closed_ms: Option<i64>,
}

impl Incident {
    pub fn kind(&self) -> Option<Kind> {
        Kind::parse(&self.kind)
    }

    /// How long it lasted (so far, while open).
    pub fn duration_ms(&self, now: i64) -> i64 {
        self.closed_ms.unwrap_or(now) - self.opened_ms
    }
}

const INCIDENT_COLUMNS: &str = "id, register_id, unit_id, kind, detail, opened_ms, acknowledged_ms, \
                                acknowledged_by, reminded_ms, closed_ms";

/// Which incidents to list.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub register: Option<RegisterId>,
    pub unit: Option<i64>,
    pub kind: Option<Kind>,
    /// Only open ones.
    pub open: bool,
    /// Opened at or after.
    pub since_ms: Option<i64>,
    pub limit: i64,
}

/// Who a register belongs to, as the events name it.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub register: RegisterId,
    pub register_name: String,
    pub unit_id: i64,
}

#[derive(Clone)]
pub struct Incidents(pub Store);

impl Incidents {
    /// Stores a register's new state with the incidents it opens and closes, and their events, in one
    /// transaction. An incident another instance opened already is kept, not duplicated; one closed already is
    /// not closed twice. The incidents actually opened or closed.
    pub async fn apply(
        &self,
        subject: &Subject,
        health: &Health,
        changes: &[Change],
    ) -> Result<Vec<Incident>, MonitorError> {
        let state = serde_json::to_string(health).unwrap_or_else(|_| "{}".into());
        let now = now_ms();
        let open_sql = format!(
            "INSERT INTO monitor_incidents (register_id, unit_id, kind, detail, opened_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (register_id, kind) WHERE closed_ms IS NULL DO NOTHING
             RETURNING {INCIDENT_COLUMNS}"
        );
        let close_sql = format!(
            "UPDATE monitor_incidents SET closed_ms = $3
             WHERE register_id = $1 AND kind = $2 AND closed_ms IS NULL
             RETURNING {INCIDENT_COLUMNS}"
        );
        let done: Result<Vec<Incident>, MonitorError> = write_tx!(&self.0, tx => {
            let mut done = Vec::new();
            sqlx::query(
                "INSERT INTO monitor_state (register_id, health, up, updated_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (register_id) DO UPDATE SET health = excluded.health, up = excluded.up,
                     updated_ms = excluded.updated_ms",
            )
            .bind(subject.register.0)
            .bind(&state)
            .bind(health.up)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            for change in changes {
                let (row, event): (Option<Incident>, &'static str) = match change {
                    Change::Open(kind, detail) => (
                        sqlx::query_as(sqlx::AssertSqlSafe(open_sql.clone()))
                            .bind(subject.register.0)
                            .bind(subject.unit_id)
                            .bind(kind.as_str())
                            .bind(detail)
                            .bind(now)
                            .fetch_optional(&mut **tx)
                            .await?,
                        INCIDENT_OPENED,
                    ),
                    Change::Close(kind) => (
                        sqlx::query_as(sqlx::AssertSqlSafe(close_sql.clone()))
                            .bind(subject.register.0)
                            .bind(kind.as_str())
                            .bind(now)
                            .fetch_optional(&mut **tx)
                            .await?,
                        INCIDENT_CLOSED,
                    ),
                };
                if let Some(incident) = row {
                    (**tx).record_event(&incident_event(event, subject, &incident)).await?;
                    done.push(incident);
                }
            }
            Ok(done)
        });
        done
    }

    pub async fn list(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, MonitorError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM monitor_incidents
             WHERE ($1 IS NULL OR register_id = $1) AND ($2 IS NULL OR unit_id = $2)
               AND ($3 IS NULL OR kind = $3) AND (NOT $4 OR closed_ms IS NULL)
               AND ($5 IS NULL OR opened_ms >= $5)
             ORDER BY opened_ms DESC, id DESC LIMIT $6"
        );
        Ok(
            read!(&self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(filter.register.map(|id| id.0))
            .bind(filter.unit)
            .bind(filter.kind.map(Kind::as_str))
            .bind(filter.open)
            .bind(filter.since_ms)
            .bind(filter.limit.clamp(1, 1000))
            .fetch_all(db)
            .await)?,
        )
    }

    /// Marks an open incident as seen by `by` (once; acknowledging again changes nothing). Records the event.
    pub async fn acknowledge(
        &self,
        id: i64,
        by: &str,
        register_name: &str,
    ) -> Result<Incident, MonitorError> {
        let sql = format!(
            "UPDATE monitor_incidents SET acknowledged_ms = $2, acknowledged_by = $3
             WHERE id = $1 AND acknowledged_ms IS NULL RETURNING {INCIDENT_COLUMNS}"
        );
        let acknowledged: Option<Incident> = write_tx!(&self.0, tx => {
            let row: Option<Incident> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .bind(now_ms())
                .bind(by)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(incident) = &row {
                let subject = Subject {
                    register: RegisterId(incident.register_id),
                    register_name: register_name.to_owned(),
                    unit_id: incident.unit_id,
                };
                (**tx).record_event(&incident_event(INCIDENT_ACKNOWLEDGED, &subject, incident)).await?;
            }
            Ok::<_, sqlx::Error>(row)
        })?;
        match acknowledged {
            Some(incident) => Ok(incident),
            None => self.get(id).await,
        }
    }

    /// Reminds of the open, unacknowledged incidents last told about (opened or reminded) `every` ago or more:
    /// each one's reminder time and its event in one transaction. The condition is in the update, so of several
    /// instances doing this at once, one reminds.
    pub async fn remind(&self, every: Duration) -> Result<Vec<Incident>, MonitorError> {
        let now = now_ms();
        let due_before = now - every.as_millis() as i64;
        let due: Vec<(i64, String)> = read!(&self.0, db => sqlx::query_as(
            "SELECT i.id, r.name FROM monitor_incidents i JOIN monitor_registers r ON r.id = i.register_id
             WHERE i.closed_ms IS NULL AND i.acknowledged_ms IS NULL
               AND COALESCE(i.reminded_ms, i.opened_ms) <= $1
             ORDER BY i.id LIMIT 1000",
        )
        .bind(due_before)
        .fetch_all(db)
        .await)?;
        let sql = format!(
            "UPDATE monitor_incidents SET reminded_ms = $2
             WHERE id = $1 AND closed_ms IS NULL AND acknowledged_ms IS NULL
               AND COALESCE(reminded_ms, opened_ms) <= $3
             RETURNING {INCIDENT_COLUMNS}"
        );
        let mut reminded = Vec::new();
        for (id, register_name) in due {
            let row: Option<Incident> = write_tx!(&self.0, tx => {
                let row: Option<Incident> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(id)
                    .bind(now)
                    .bind(due_before)
                    .fetch_optional(&mut **tx)
                    .await?;
                if let Some(incident) = &row {
                    let subject = Subject {
                        register: RegisterId(incident.register_id),
                        register_name: register_name.clone(),
                        unit_id: incident.unit_id,
                    };
                    (**tx).record_event(&incident_event(INCIDENT_REMINDED, &subject, incident)).await?;
                }
                Ok::<_, sqlx::Error>(row)
            })?;
            reminded.extend(row);
        }
        Ok(reminded)
    }

    /// A unit's incidents open at some time from `from_ms` up to `to_ms`, and how long they were open within it.
    pub async fn in_window(
        &self,
        unit_id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<(i64, i64), MonitorError> {
        let spans: Vec<(i64, Option<i64>)> = read!(&self.0, db => sqlx::query_as(
            "SELECT opened_ms, closed_ms FROM monitor_incidents
             WHERE unit_id = $1 AND opened_ms < $3 AND (closed_ms IS NULL OR closed_ms > $2)",
        )
        .bind(unit_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(db)
        .await)?;
        let now = now_ms();
        let total = spans
            .iter()
            .map(|(opened, closed)| closed.unwrap_or(now).min(to_ms) - (*opened).max(from_ms))
            .filter(|ms| *ms > 0)
            .sum();
        Ok((spans.len() as i64, total))
    }

    pub async fn get(&self, id: i64) -> Result<Incident, MonitorError> {
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM monitor_incidents WHERE id = $1");
        read!(&self.0, db => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(db).await)?
            .ok_or(MonitorError::NoIncident)
    }
}

fn incident_event(kind: &'static str, subject: &Subject, incident: &Incident) -> NewEvent {
    NewEvent {
        kind,
        unit_id: Some(subject.unit_id),
        payload: json!({
            "incident": incident.id,
            "register": subject.register.0,
            "register_name": subject.register_name,
            "kind": incident.kind,
            "detail": incident.detail,
            "opened_ms": incident.opened_ms,
            "acknowledged_by": incident.acknowledged_by,
            "closed_ms": incident.closed_ms,
            "duration_ms": incident.closed_ms.map(|closed| closed - incident.opened_ms),
        }),
    }
}

/// Stored states, read and written in batches.
#[derive(Clone)]
pub struct States(pub Store);

impl States {
    /// Every stored state (one row per register that has been polled).
    pub async fn all(&self) -> Result<HashMap<RegisterId, Health>, MonitorError> {
        let rows: Vec<(i64, String)> = read!(&self.0, db => sqlx::query_as(
            "SELECT register_id, health FROM monitor_state",
        )
        .fetch_all(db)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, text)| {
                (
                    RegisterId(id),
                    serde_json::from_str(&text).unwrap_or_default(),
                )
            })
            .collect())
    }

    pub async fn get(&self, id: RegisterId) -> Result<Option<Health>, MonitorError> {
        let row: Option<(String,)> = read!(&self.0, db => sqlx::query_as(
            "SELECT health FROM monitor_state WHERE register_id = $1",
        )
        .bind(id.0)
        .fetch_optional(db)
        .await)?;
        Ok(row.and_then(|(text,)| serde_json::from_str(&text).ok()))
    }

    /// Stores many states in one transaction (the poller's periodic flush), with their samples.
    pub async fn save(
        &self,
        states: &[(RegisterId, Health)],
        samples: &[Sample],
    ) -> Result<(), MonitorError> {
        let now = now_ms();
        let saved: Result<(), sqlx::Error> = write_tx!(&self.0, tx => {
            for (id, health) in states {
                sqlx::query(
                    "INSERT INTO monitor_state (register_id, health, up, updated_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (register_id) DO UPDATE SET health = excluded.health, up = excluded.up,
                         updated_ms = excluded.updated_ms",
                )
                .bind(id.0)
                .bind(serde_json::to_string(health).unwrap_or_else(|_| "{}".into()))
                .bind(health.up)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            for sample in samples {
                sqlx::query(
                    "INSERT INTO monitor_samples (register_id, at_ms, up, busy, ofd, latency_ms)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (register_id, at_ms) DO NOTHING",
                )
                .bind(sample.register.0)
                .bind(sample.at_ms)
                .bind(sample.up)
                .bind(sample.busy)
                .bind(sample.ofd)
                .bind(sample.latency_ms)
                .execute(&mut **tx)
                .await?;
            }
            Ok(())
        });
        match saved {
            // A register deleted meanwhile: its rows are gone with it, which is what the flush would have wanted.
            Err(error) if violates(&error, Constraint::ForeignKey) => Ok(()),
            other => Ok(other?),
        }
    }

    /// A register's samples since `since_ms`, oldest first.
    pub async fn samples(
        &self,
        id: RegisterId,
        since_ms: i64,
    ) -> Result<Vec<Sample>, MonitorError> {
        let rows: Vec<SampleRow> = read!(&self.0, db => sqlx::query_as(
            "SELECT at_ms, up, busy, ofd, latency_ms FROM monitor_samples
             WHERE register_id = $1 AND at_ms >= $2 ORDER BY at_ms",
        )
        .bind(id.0)
        .bind(since_ms)
        .fetch_all(db)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(at_ms, up, busy, ofd, latency_ms)| Sample {
                register: id,
                at_ms,
                up,
                busy,
                ofd,
                latency_ms,
            })
            .collect())
    }

    /// Drops samples older than `before_ms`.
    pub async fn prune(&self, before_ms: i64) -> Result<u64, MonitorError> {
        Ok(
            write!(&self.0, db => sqlx::query("DELETE FROM monitor_samples WHERE at_ms < $1")
            .bind(before_ms)
            .execute(db)
            .await
            .map(|r| r.rows_affected()))?,
        )
    }
}

/// A sample's columns: at_ms, up, busy, ofd, latency_ms.
type SampleRow = (i64, bool, Option<bool>, Option<i64>, Option<i64>);

/// One minute of a register's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub register: RegisterId,
    pub at_ms: i64,
    pub up: bool,
    pub busy: Option<bool>,
    pub ofd: Option<i64>,
    pub latency_ms: Option<i64>,
}

/// A maintenance window as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Window {
    pub id: i64,
    pub unit_id: i64,
    /// Null: the whole unit.
    pub register_id: Option<i64>,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub reason: String,
    pub created_by: String,
    pub created_ms: i64,
}

impl Window {
    pub fn covers(&self, unit_id: i64, register: RegisterId, at_ms: i64) -> bool {
        self.unit_id == unit_id
            && self.register_id.is_none_or(|id| id == register.0)
            && (self.starts_ms..self.ends_ms).contains(&at_ms)
    }
}

#[derive(Clone)]
pub struct Maintenance(pub Store);

impl Maintenance {
    pub async fn add(
        &self,
        unit_id: i64,
        register: Option<RegisterId>,
        starts_ms: i64,
        ends_ms: i64,
        reason: &str,
        by: &str,
    ) -> Result<i64, MonitorError> {
        let (id,): (i64,) = write!(&self.0, db => sqlx::query_as(
            "INSERT INTO monitor_maintenance (unit_id, register_id, starts_ms, ends_ms, reason, created_by, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(unit_id)
        .bind(register.map(|id| id.0))
        .bind(starts_ms)
        .bind(ends_ms)
        .bind(reason)
        .bind(by)
        .bind(now_ms())
        .fetch_one(db)
        .await)
        .map_err(|error| refused(error, || MonitorError::NoRegister))?;
        Ok(id)
    }

    /// Windows that have not ended by `now_ms`, soonest first.
    pub async fn current(&self, now_ms: i64) -> Result<Vec<Window>, MonitorError> {
        Ok(read!(&self.0, db => sqlx::query_as(
            "SELECT id, unit_id, register_id, starts_ms, ends_ms, reason, created_by, created_ms
             FROM monitor_maintenance WHERE ends_ms > $1 ORDER BY starts_ms, id",
        )
        .bind(now_ms)
        .fetch_all(db)
        .await)?)
    }

    /// Ends a window now (or drops it, if it has not begun).
    pub async fn end(&self, id: i64) -> Result<(), MonitorError> {
        let now = now_ms();
        let changed = write!(&self.0, db => sqlx::query(
            "UPDATE monitor_maintenance SET ends_ms = CASE WHEN starts_ms > $2 THEN starts_ms ELSE $2 END
             WHERE id = $1 AND ends_ms > $2",
        )
        .bind(id)
        .bind(now)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        if changed == 0 {
            return Err(MonitorError::NoWindow);
        }
        Ok(())
    }
}
