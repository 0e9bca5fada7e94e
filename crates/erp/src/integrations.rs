//! Integrations, one per workshop: which ERP and where, its login (the password sealed, never read back out of
//! this module except to log in), whether it is active, starts its worker by itself, listens on its own port,
//! how it retries, and its connector script, each change of which is a new version.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tillwire_platform::error::{Constraint, ResultExt};
use tillwire_platform::secretbox::SecretBox;
use tillwire_platform::{HttpError, Store, Text, now_ms, read, write, write_tx};

use crate::connector::Script;
use crate::model::{Credentials, ErpType};

/// Published when an integration is added, changed or removed, so listeners and workers follow at once.
pub const TOPIC_INTEGRATIONS: &str = "erp.integrations";

/// An integration's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IntegrationId(pub i64);

impl fmt::Display for IntegrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A workshop's name as OilMat starts its integration (`python app.py 5000 hosses admanager`) and as it appears in
/// `/erp/{workshop}/`: 1 to 64 letters, digits, spaces, `.`, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Workshop(String);

impl Workshop {
    pub fn parse(text: &str) -> Result<Self, Text> {
        let text = text.trim();
        let fine = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-');
        if text.is_empty() || text.chars().count() > 64 || !text.chars().all(fine) {
            return Err(Text::new(
                "Название мастерской: от 1 до 64 букв, цифр, пробелов, «.», «_» или «-».",
                "A workshop's name is 1 to 64 letters, digits, spaces, '.', '_' or '-'.",
            ));
        }
        Ok(Workshop(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Workshop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Workshop {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Workshop::parse(&value)
            .map_err(|text| text.get(tillwire_platform::web::Lang::En).to_owned())
    }
}

impl From<Workshop> for String {
    fn from(value: Workshop) -> String {
        value.0
    }
}

/// Where the ERP is: an `http` or `https` URL, kept without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ErpUrl(String);

impl ErpUrl {
    pub fn parse(text: &str) -> Result<Self, Text> {
        let text = text.trim().trim_end_matches('/');
        let host = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
            .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
        match host {
            Some(host) if !host.is_empty() && !text.contains(char::is_whitespace) => {
                Ok(ErpUrl(text.to_owned()))
            }
            _ => Err(Text::new(
                "Адрес ERP — ссылка http:// или https://, например https://manager.addanmark.dk.",
                "The ERP's address is an http:// or https:// URL, such as https://manager.addanmark.dk.",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ErpUrl {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        ErpUrl::parse(&value).map_err(|text| text.get(tillwire_platform::web::Lang::En).to_owned())
    }
}

impl From<ErpUrl> for String {
    fn from(value: ErpUrl) -> String {
        value.0
    }
}

/// Attempts an order gets before it is `failed`, when its errors are worth another try.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 3;
/// How long one attempt may take in all.
pub const DEFAULT_TASK_TIMEOUT_SECS: i64 = 40;
/// An attempt must end well within the job lease (60 s), or another instance would start it a second time.
pub const MAX_TASK_TIMEOUT_SECS: i64 = 50;

/// An integration as stored. The password itself is not here: only whether there is one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Integration {
    pub id: IntegrationId,
    pub workshop: Workshop,
    pub erp_type: ErpType,
    pub base_url: ErpUrl,
    pub unit_id: Option<i64>,
    pub username: Option<String>,
    pub has_password: bool,
    pub active: bool,
    pub autostart: bool,
    pub worker_running: bool,
    pub port: Option<u16>,
    pub max_attempts: i64,
    pub task_timeout_secs: i64,
    pub script: Script,
    pub script_version: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl Integration {
    /// Whether it has its own ERP login (then an order's is not needed).
    pub fn has_login(&self) -> bool {
        self.username.is_some() && self.has_password
    }
}

/// The key of an integration's jobs: one at a time, in order.
pub fn job_key(id: IntegrationId) -> String {
    format!("erp:{id}")
}

/// What an admin (or `tillwire erp run`) sets. `password: None` keeps the stored one; `Some("")` removes it.
#[derive(Debug, Clone)]
pub struct IntegrationSpec {
    pub workshop: Workshop,
    pub erp_type: ErpType,
    pub base_url: ErpUrl,
    pub unit_id: Option<i64>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub active: bool,
    pub autostart: bool,
    pub port: Option<u16>,
    pub max_attempts: i64,
    pub task_timeout_secs: i64,
    pub script: Script,
}

impl IntegrationSpec {
    /// A workshop's integration with the defaults: the real ERP, no login, active, parked, no own port.
    pub fn new(workshop: Workshop, erp_type: ErpType) -> Self {
        IntegrationSpec {
            workshop,
            erp_type,
            base_url: ErpUrl(erp_type.default_url().to_owned()),
            unit_id: None,
            username: None,
            password: None,
            active: true,
            autostart: false,
            port: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            task_timeout_secs: DEFAULT_TASK_TIMEOUT_SECS,
            script: Script::default_for(erp_type),
        }
    }

    /// Every setting out of range, each named.
    pub fn check(&self) -> Result<(), HttpError> {
        let mut problems = Problems::default();
        if !(1..=10).contains(&self.max_attempts) {
            problems.add(
                "max_attempts",
                Text::new("Попыток: от 1 до 10.", "Attempts: 1 to 10."),
            );
        }
        if !(5..=MAX_TASK_TIMEOUT_SECS).contains(&self.task_timeout_secs) {
            problems.add(
                "task_timeout_secs",
                Text::new(
                    format!("Время на строку: от 5 до {MAX_TASK_TIMEOUT_SECS} с."),
                    format!("Time per line: 5 to {MAX_TASK_TIMEOUT_SECS} s."),
                ),
            );
        }
        if self.port == Some(0) {
            problems.add("port", port_range());
        }
        if let Err(found) = self.script.validate() {
            problems.add("script", script_problems(&found));
        }
        problems.into_result()
    }
}

/// "Port: 1 to 65535."
pub fn port_range() -> Text {
    Text::new("Порт: от 1 до 65535.", "Port: 1 to 65535.")
}

/// What is wrong with a connector script, introduced in the reader's language (the details name JSON keys).
pub fn script_problems(found: &[String]) -> Text {
    let details = found.join("; ");
    Text::new(
        format!("Сценарий не принят: {details}"),
        format!("The script was not accepted: {details}"),
    )
}

/// Field errors gathered while reading a form or a body, so every wrong field is named at once.
#[derive(Debug, Default)]
pub struct Problems(Option<HttpError>);

impl Problems {
    pub fn add(&mut self, field: impl Into<std::borrow::Cow<'static, str>>, text: Text) {
        self.0 = Some(match self.0.take() {
            None => HttpError::field(field, text),
            Some(error) => error.with_field(field, text),
        });
    }

    /// Takes in the field errors of a check that failed (a field already named keeps its first message).
    pub fn absorb(&mut self, checked: Result<(), HttpError>) {
        let Err(error) = checked else { return };
        let named: Vec<String> = self
            .0
            .as_ref()
            .map(|own| {
                own.reply()
                    .fields
                    .iter()
                    .map(|f| f.field.to_string())
                    .collect()
            })
            .unwrap_or_default();
        for field in &error.reply().fields {
            if !named.contains(&field.field.to_string()) {
                self.add(field.field.clone(), field.message.clone());
            }
        }
    }

    pub fn into_result(self) -> Result<(), HttpError> {
        self.0.map_or(Ok(()), Err)
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    workshop: String,
    erp_type: String,
    base_url: String,
    unit_id: Option<i64>,
    username: Option<String>,
    has_password: bool,
    active: bool,
    autostart: bool,
    worker_running: bool,
    port: Option<i64>,
    max_attempts: i64,
    task_timeout_secs: i64,
    script: String,
    script_version: i64,
    created_ms: i64,
    updated_ms: i64,
}

const COLUMNS: &str = "id, workshop, erp_type, base_url, unit_id, username, password_sealed IS NOT NULL AS has_password, active, \
                       autostart, worker_running, port, max_attempts, task_timeout_secs, script, script_version, \
                       created_ms, updated_ms";

fn from_row(row: Row) -> Result<Integration, HttpError> {
    let erp_type: ErpType = row.erp_type.parse().map_err(|_| {
        HttpError::internal(anyhow::anyhow!(
            "erp_integrations {}: erp_type {:?}",
            row.id,
            row.erp_type
        ))
    })?;
    Ok(Integration {
        id: IntegrationId(row.id),
        workshop: Workshop(row.workshop),
        erp_type,
        base_url: ErpUrl(row.base_url),
        unit_id: row.unit_id,
        username: row.username,
        has_password: row.has_password,
        active: row.active,
        autostart: row.autostart,
        worker_running: row.worker_running,
        port: row.port.and_then(|port| u16::try_from(port).ok()),
        max_attempts: row.max_attempts,
        task_timeout_secs: row.task_timeout_secs,
        // A script stored by an older version that no longer reads is replaced by the defaults rather than
        // stopping the integration; its text stays in the version history.
        script: Script::from_json(&row.script).unwrap_or_else(|_| Script::default_for(erp_type)),
        script_version: row.script_version,
        created_ms: row.created_ms,
        updated_ms: row.updated_ms,
    })
}

/// A version of an integration's script.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptVersion {
    pub version: i64,
    pub script: String,
    pub changed_by: String,
    pub changed_ms: i64,
}

/// Records version `$version` of integration `$id`'s script, inside the transaction `$tx` (either backend).
macro_rules! insert_version {
    ($tx:expr, $id:expr, $version:expr, $script:expr, $by:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO erp_script_versions (integration_id, version, script, changed_by, changed_ms)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($id)
        .bind($version)
        .bind($script)
        .bind($by)
        .bind($now)
        .execute(&mut **$tx)
        .await
    };
}

/// The integrations, with the secret box that seals their passwords.
#[derive(Clone)]
pub struct Integrations {
    pub store: Store,
    pub data_dir: PathBuf,
    /// Counts this process's writes, so what is kept from a read ([`crate::cache`]) is dropped at once.
    generation: Arc<AtomicU64>,
    /// The installation's secret box, read once (an order's login is sealed on the `/create` path).
    secrets: Arc<std::sync::OnceLock<SecretBox>>,
}

fn workshop_text() -> Text {
    Text::new(
        "У этой мастерской уже есть интеграция.",
        "This workshop already has an integration.",
    )
}

fn port_text() -> Text {
    Text::new(
        "Этот порт уже занят другой интеграцией.",
        "Another integration already listens on this port.",
    )
}

/// Two writers raced past [`Integrations::check_unique`].
fn taken() -> HttpError {
    HttpError::conflict(Text::new(
        "Мастерская или порт только что заняты другой интеграцией.",
        "The workshop or port was just taken by another integration.",
    ))
}

pub fn not_found() -> HttpError {
    HttpError::not_found(Text::new("Нет такой интеграции.", "No such integration."))
}

impl Integrations {
    pub fn new(store: Store, data_dir: PathBuf) -> Self {
        Integrations {
            store,
            data_dir,
            generation: Arc::default(),
            secrets: Arc::default(),
        }
    }

    /// Changes with every write of this process.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    fn touched(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    fn secret_box(&self) -> Result<&SecretBox, HttpError> {
        if let Some(secrets) = self.secrets.get() {
            return Ok(secrets);
        }
        let loaded = SecretBox::load(&self.data_dir).map_err(HttpError::internal)?;
        Ok(self.secrets.get_or_init(|| loaded))
    }

    /// Seals a password with the installation's key.
    pub fn seal(&self, password: &str) -> Result<String, HttpError> {
        Ok(self.secret_box()?.seal(password))
    }

    /// Opens what [`Integrations::seal`] sealed.
    pub fn open(&self, sealed: &str) -> Result<String, HttpError> {
        Ok(self
            .secret_box()?
            .open(sealed)
            .map_err(HttpError::internal)?
            .expose()
            .to_owned())
    }

    pub async fn list(&self) -> Result<Vec<Integration>, HttpError> {
        let rows: Vec<Row> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM erp_integrations ORDER BY workshop"
        )))
        .fetch_all(db)
        .await)?;
        rows.into_iter().map(from_row).collect()
    }

    pub async fn get(&self, id: IntegrationId) -> Result<Integration, HttpError> {
        let row: Option<Row> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM erp_integrations WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(db)
        .await)?;
        row.map(from_row).transpose()?.ok_or_else(not_found)
    }

    pub async fn by_workshop(&self, workshop: &str) -> Result<Integration, HttpError> {
        let row: Option<Row> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM erp_integrations WHERE workshop = $1"
        )))
        .bind(workshop)
        .fetch_optional(db)
        .await)?;
        row.map(from_row).transpose()?.ok_or_else(not_found)
    }

    /// Adds an integration; its script is version 1.
    #[tracing::instrument(skip_all, fields(workshop = %spec.workshop))]
    pub async fn create(&self, spec: &IntegrationSpec, by: &str) -> Result<Integration, HttpError> {
        spec.check()?;
        self.check_unique(spec, None).await?;
        let sealed = match spec.password.as_deref() {
            None | Some("") => None,
            Some(password) => Some(self.seal(password)?),
        };
        let now = now_ms();
        let script = spec.script.to_json_pretty();
        let id: Result<i64, sqlx::Error> = write_tx!(&self.store, tx => async {
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO erp_integrations (workshop, erp_type, base_url, unit_id, username, password_sealed,
                     active, autostart, port, max_attempts, task_timeout_secs, script, script_version,
                     created_ms, updated_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $13) RETURNING id",
            )
            .bind(spec.workshop.as_str())
            .bind(spec.erp_type.name())
            .bind(spec.base_url.as_str())
            .bind(spec.unit_id)
            .bind(spec.username.as_deref().filter(|u| !u.is_empty()))
            .bind(sealed.as_deref())
            .bind(spec.active)
            .bind(spec.autostart)
            .bind(spec.port.map(i64::from))
            .bind(spec.max_attempts)
            .bind(spec.task_timeout_secs)
            .bind(&script)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
            insert_version!(tx, id, 1_i64, &script, by, now)?;
            Ok::<_, sqlx::Error>(id)
        }
        .await);
        let id = id.on_constraint(Constraint::Unique, taken)?;
        tracing::info!(integration = id, by, "erp: integration added");
        self.touched();
        self.get(IntegrationId(id)).await
    }

    /// Refuses a workshop or a port another integration has, naming the field.
    async fn check_unique(
        &self,
        spec: &IntegrationSpec,
        except: Option<IntegrationId>,
    ) -> Result<(), HttpError> {
        let others: Vec<(i64, String, Option<i64>)> = read!(&self.store, db => sqlx::query_as(
            "SELECT id, workshop, port FROM erp_integrations WHERE workshop = $1 OR port = $2",
        )
        .bind(spec.workshop.as_str())
        .bind(spec.port.map(i64::from))
        .fetch_all(db)
        .await)?;
        let others = others
            .into_iter()
            .filter(|(id, _, _)| Some(IntegrationId(*id)) != except);
        let mut problems = Problems::default();
        for (_, workshop, port) in others {
            if workshop == spec.workshop.as_str() {
                problems.add("workshop", workshop_text());
            }
            if port.is_some() && port == spec.port.map(i64::from) {
                problems.add("port", port_text());
            }
        }
        problems.into_result()
    }

    /// Changes an integration. A script that differs from the current one becomes the next version.
    #[tracing::instrument(skip_all, fields(integration = %id))]
    pub async fn update(
        &self,
        id: IntegrationId,
        spec: &IntegrationSpec,
        by: &str,
    ) -> Result<Integration, HttpError> {
        spec.check()?;
        let current = self.get(id).await?;
        self.check_unique(spec, Some(id)).await?;
        let sealed = match spec.password.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(password) => Some(Some(self.seal(password)?)),
        };
        let now = now_ms();
        let script_changed = spec.script != current.script;
        let version = current.script_version + i64::from(script_changed);
        let script = spec.script.to_json_pretty();
        let updated: Result<(), sqlx::Error> = write_tx!(&self.store, tx => async {
            sqlx::query(
                "UPDATE erp_integrations SET workshop = $2, erp_type = $3, base_url = $4, unit_id = $5, username = $6,
                     password_sealed = CASE WHEN $7 THEN $8 ELSE password_sealed END,
                     active = $9, autostart = $10, port = $11, max_attempts = $12, task_timeout_secs = $13,
                     script = $14, script_version = $15, updated_ms = $16
                 WHERE id = $1",
            )
            .bind(id.0)
            .bind(spec.workshop.as_str())
            .bind(spec.erp_type.name())
            .bind(spec.base_url.as_str())
            .bind(spec.unit_id)
            .bind(spec.username.as_deref().filter(|u| !u.is_empty()))
            .bind(sealed.is_some())
            .bind(sealed.flatten())
            .bind(spec.active)
            .bind(spec.autostart)
            .bind(spec.port.map(i64::from))
            .bind(spec.max_attempts)
            .bind(spec.task_timeout_secs)
            .bind(&script)
            .bind(version)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            if script_changed {
                insert_version!(tx, id.0, version, &script, by, now)?;
            }
            Ok::<_, sqlx::Error>(())
        }
        .await);
        updated.on_constraint(Constraint::Unique, taken)?;
        tracing::info!(by, script_version = version, "erp: integration changed");
        self.touched();
        self.get(id).await
    }

    /// Removes an integration with its orders.
    pub async fn delete(&self, id: IntegrationId, by: &str) -> Result<(), HttpError> {
        let deleted = write!(&self.store, db => sqlx::query("DELETE FROM erp_integrations WHERE id = $1")
            .bind(id.0)
            .execute(db)
            .await
            .map(|r| r.rows_affected()))?;
        if deleted == 0 {
            return Err(not_found());
        }
        tracing::info!(integration = %id, by, "erp: integration removed");
        self.touched();
        Ok(())
    }

    /// Turns the worker on or off (`/start_worker`, `/stop_worker`): it takes effect between tasks.
    pub async fn set_worker(&self, id: IntegrationId, running: bool) -> Result<(), HttpError> {
        self.set_flags(id, "worker_running = $2", running).await
    }

    /// Activates or deactivates an integration: an inactive one neither listens nor works.
    pub async fn set_active(&self, id: IntegrationId, active: bool) -> Result<(), HttpError> {
        self.set_flags(id, "active = $2", active).await
    }

    async fn set_flags(&self, id: IntegrationId, set: &str, value: bool) -> Result<(), HttpError> {
        let changed = write!(&self.store, db => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE erp_integrations SET {set}, updated_ms = $3 WHERE id = $1"
        )))
        .bind(id.0)
        .bind(value)
        .bind(now_ms())
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        if changed == 0 {
            return Err(not_found());
        }
        self.touched();
        Ok(())
    }

    /// At boot: every active integration with autostart has its worker on.
    pub async fn autostart(&self) -> Result<u64, HttpError> {
        let started = write!(&self.store, db => sqlx::query(
            "UPDATE erp_integrations SET worker_running = TRUE, updated_ms = $1
             WHERE active AND autostart AND NOT worker_running",
        )
        .bind(now_ms())
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        self.touched();
        Ok(started)
    }

    /// The integration's own ERP login, when one is configured.
    pub async fn credentials(&self, id: IntegrationId) -> Result<Option<Credentials>, HttpError> {
        let row: Option<(Option<String>, Option<String>)> = read!(&self.store, db => sqlx::query_as(
            "SELECT username, password_sealed FROM erp_integrations WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(db)
        .await)?;
        match row.ok_or_else(not_found)? {
            (Some(username), Some(sealed)) => Ok(Some(Credentials {
                username,
                password: self.open(&sealed)?,
            })),
            _ => Ok(None),
        }
    }

    pub async fn script_versions(
        &self,
        id: IntegrationId,
    ) -> Result<Vec<ScriptVersion>, HttpError> {
        let rows: Vec<(i64, String, String, i64)> = read!(&self.store, db => sqlx::query_as(
            "SELECT version, script, changed_by, changed_ms FROM erp_script_versions
             WHERE integration_id = $1 ORDER BY version DESC",
        )
        .bind(id.0)
        .fetch_all(db)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(version, script, changed_by, changed_ms)| ScriptVersion {
                version,
                script,
                changed_by,
                changed_ms,
            })
            .collect())
    }
}
