//! iikoCloud connections (one per organization) with their sealed credentials, their state (the deliveries'
//! revision cursor, last poll, webhook and error), the organization's terminal groups with their time zones and
//! units, and the products seen on orders with their mapping to ware codes. Connections come from the settings
//! file or from the admin pages, whose forms are checked here, every wrong field named at once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tillwire_platform::config::Secret;
use tillwire_platform::error::{Constraint, ResultExt};
use tillwire_platform::secretbox::SecretBox;
use tillwire_platform::{HttpError, Store, Text, now_ms, read, write, write_tx};
use tillwire_units::{UnitId, Units};

use crate::cloud::DEFAULT_API_URL;
use crate::config::{CloudConfig, Credentials};
use crate::model::IikoId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[sqlx(transparent)]
pub struct ConnectionId(pub i64);

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// A connection, its secrets opened.
#[derive(Clone)]
pub struct Connection {
    pub id: ConnectionId,
    pub organization: IikoId,
    pub name: String,
    pub api_url: String,
    pub unit: Option<UnitId>,
    pub credentials: Credentials,
    pub webhook_token: Option<Secret>,
    pub tables: Vec<IikoId>,
    /// Product id or code → ware code, from the settings file.
    pub products: BTreeMap<String, String>,
    pub active: bool,
    /// Written by the settings file, which refreshes it at every start.
    pub from_config: bool,
}

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    id: i64,
    organization_id: String,
    name: String,
    api_url: String,
    unit_id: Option<i64>,
    credentials_sealed: String,
    webhook_token_sealed: Option<String>,
    tables: String,
    products: String,
    active: bool,
    from_config: bool,
}

/// An organization's product codes (see [`Connections::product_codes`]).
#[derive(Debug, Default)]
pub struct ProductCodes {
    /// Product id → the ware code the mapping page gave it.
    pub mapped: BTreeMap<String, String>,
    /// Product id → its code in the menu.
    pub menu: BTreeMap<String, String>,
}

/// What the state page shows of a connection.
#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow)]
pub struct ConnectionState {
    pub delivery_revision: Option<i64>,
    pub revision_ms: Option<i64>,
    pub last_poll_ms: Option<i64>,
    pub last_webhook_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
}

/// A terminal group: its zone, and the unit its orders join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TerminalGroup {
    pub id: String,
    pub name: String,
    pub time_zone: String,
    pub unit_id: Option<i64>,
}

const COLUMNS: &str = "id, organization_id, name, api_url, unit_id, credentials_sealed, webhook_token_sealed, tables, products, active, from_config";

/// A webhook token is all that keeps strangers from posting orders into a queue: the form asks for a long one.
const TOKEN_MIN_CHARS: usize = 16;
const NAME_MAX_CHARS: usize = 200;

/// A connection as typed on its form. Secrets are write-only: left empty on an edit, the stored ones stay.
/// (No `Debug`: it holds secrets.)
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ConnectionInput {
    pub name: String,
    pub api_url: String,
    pub organization_id: String,
    /// A unit's id; empty: the default unit.
    pub unit_id: String,
    /// `api_login` (v1) or `api_key` (v2, with `app_id` and `client_secret`).
    pub auth: String,
    pub api_login: String,
    pub api_key: String,
    pub app_id: String,
    pub client_secret: String,
    pub webhook_token: String,
    /// Checked: the stored webhook token goes (the connection then takes no webhooks).
    pub clear_webhook_token: Option<String>,
    /// Table ids, one a line.
    pub tables: String,
    pub active: Option<String>,
}

/// A connection's input, checked.
struct Checked {
    name: String,
    api_url: String,
    organization: IikoId,
    unit: Option<UnitId>,
    credentials: Credentials,
    webhook_token: Option<Secret>,
    tables: Vec<IikoId>,
    active: bool,
}

/// Field errors gathered while a form is checked, so that every wrong field is named at once.
#[derive(Default)]
pub(crate) struct Problems(Option<HttpError>);

impl Problems {
    pub(crate) fn add(&mut self, field: &'static str, text: Text) {
        self.0 = Some(match self.0.take() {
            None => HttpError::field(field, text),
            Some(error) => error.with_field(field, text),
        });
    }

    pub(crate) fn into_result(self) -> Result<(), HttpError> {
        self.0.map_or(Ok(()), Err)
    }
}

/// A form's text, trimmed, or `None` when blank.
pub(crate) fn present(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

pub(crate) fn required() -> Text {
    Text::new("Обязательное поле.", "Required.")
}

/// An http(s) address as typed, trimmed.
pub(crate) fn http_address(text: &str) -> Result<String, Text> {
    let text = text.trim();
    match reqwest::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(text.to_owned())
        }
        _ => Err(Text::new(
            "Нужен адрес http:// или https://.",
            "An http:// or https:// address is needed.",
        )),
    }
}

/// An organization id as typed: a UUID.
pub(crate) fn organization_id(text: &str) -> Result<IikoId, Text> {
    IikoId::parse(text).ok_or_else(|| {
        Text::new(
            "Id организации — UUID вида 7bc05553-4b68-44e8-b7bc-37be63c6d9e9.",
            "The organization id is a UUID such as 7bc05553-4b68-44e8-b7bc-37be63c6d9e9.",
        )
    })
}

/// The unit chosen on a form (empty: none, the default unit's), which must exist.
pub(crate) async fn chosen_unit(
    store: &Store,
    text: &str,
    problems: &mut Problems,
) -> Result<Option<UnitId>, HttpError> {
    let Some(text) = present(text) else {
        return Ok(None);
    };
    let units = Units(store).list().await?;
    let found = text
        .parse::<i64>()
        .ok()
        .filter(|id| units.iter().any(|unit| unit.id == *id));
    if found.is_none() {
        problems.add(
            "unit_id",
            Text::new("Нет такого подразделения.", "No such unit."),
        );
    }
    Ok(found.map(UnitId))
}

impl ConnectionInput {
    /// The credentials the form sets; a secret left empty keeps the stored one of the same kind.
    fn credentials(&self, current: Option<&Credentials>, problems: &mut Problems) -> Credentials {
        let secret = |problems: &mut Problems, field, typed: &str, kept: Option<&String>| match (
            present(typed),
            kept,
        ) {
            (Some(typed), _) => typed.to_owned(),
            (None, Some(kept)) => kept.clone(),
            (None, None) => {
                problems.add(field, required());
                String::new()
            }
        };
        match self.auth.as_str() {
            "api_key" => {
                let (kept_key, kept_secret) = match current {
                    Some(Credentials::ApiKey {
                        api_key,
                        client_secret,
                        ..
                    }) => (Some(api_key), Some(client_secret)),
                    _ => (None, None),
                };
                let api_key = secret(problems, "api_key", &self.api_key, kept_key);
                let client_secret =
                    secret(problems, "client_secret", &self.client_secret, kept_secret);
                let app_id = present(&self.app_id).unwrap_or_default().to_owned();
                if app_id.is_empty() {
                    problems.add("app_id", required());
                }
                Credentials::ApiKey {
                    api_key,
                    app_id,
                    client_secret,
                }
            }
            auth => {
                if !matches!(auth, "api_login" | "") {
                    problems.add(
                        "auth",
                        Text::new(
                            "Выберите API-логин или ключ API.",
                            "Choose an API login or an API key.",
                        ),
                    );
                }
                let kept = match current {
                    Some(Credentials::ApiLogin { api_login }) => Some(api_login),
                    _ => None,
                };
                Credentials::ApiLogin {
                    api_login: secret(problems, "api_login", &self.api_login, kept),
                }
            }
        }
    }
}

#[derive(Clone)]
pub struct Connections {
    store: Store,
    data_dir: PathBuf,
    secrets: Arc<OnceLock<SecretBox>>,
}

impl Connections {
    pub fn new(store: Store, data_dir: PathBuf) -> Self {
        Connections {
            store,
            data_dir,
            secrets: Arc::default(),
        }
    }

    pub(crate) fn secret_box(&self) -> Result<&SecretBox, HttpError> {
        if let Some(secrets) = self.secrets.get() {
            return Ok(secrets);
        }
        let loaded = SecretBox::load(&self.data_dir).map_err(HttpError::internal)?;
        Ok(self.secrets.get_or_init(|| loaded))
    }

    /// Adds or refreshes the connection of a `[[iiko.cloud]]` entry (matched by organization).
    pub async fn upsert_from_config(
        &self,
        config: &CloudConfig,
        unit: Option<UnitId>,
    ) -> Result<ConnectionId, HttpError> {
        let secrets = self.secret_box()?;
        let credentials =
            serde_json::to_string(&config.credentials).map_err(HttpError::internal)?;
        let sealed = secrets.seal(&credentials);
        let token = config
            .webhook_token
            .as_ref()
            .map(|t| secrets.seal(t.expose()));
        let tables = serde_json::to_string(&config.tables).map_err(HttpError::internal)?;
        let products = serde_json::to_string(&config.products).map_err(HttpError::internal)?;
        let now = now_ms();
        let (id,): (i64,) = write!(&self.store, db => sqlx::query_as(
            "INSERT INTO iiko_connections (organization_id, name, api_url, unit_id, credentials_sealed, webhook_token_sealed,
                                           tables, products, from_config, active, created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, TRUE, $9, $9)
             ON CONFLICT (organization_id) DO UPDATE SET name = excluded.name, api_url = excluded.api_url,
                 unit_id = excluded.unit_id, credentials_sealed = excluded.credentials_sealed,
                 webhook_token_sealed = excluded.webhook_token_sealed, tables = excluded.tables,
                 products = excluded.products, from_config = TRUE, updated_ms = excluded.updated_ms
             RETURNING id",
        )
        .bind(config.organization.as_str())
        .bind(&config.name)
        .bind(&config.api_url)
        .bind(unit.map(|u| u.0))
        .bind(&sealed)
        .bind(&token)
        .bind(&tables)
        .bind(&products)
        .bind(now)
        .fetch_one(db)
        .await)?;
        Ok(ConnectionId(id))
    }

    pub async fn list(&self) -> Result<Vec<Connection>, HttpError> {
        let rows: Vec<ConnectionRow> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(
            format!("SELECT {COLUMNS} FROM iiko_connections ORDER BY name, id")))
            .fetch_all(db)
            .await)?;
        rows.into_iter().map(|row| self.open(row)).collect()
    }

    pub async fn by_organization(
        &self,
        organization: &IikoId,
    ) -> Result<Option<Connection>, HttpError> {
        let row: Option<ConnectionRow> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(
            format!("SELECT {COLUMNS} FROM iiko_connections WHERE organization_id = $1")))
            .bind(organization.as_str())
            .fetch_optional(db)
            .await)?;
        row.map(|row| self.open(row)).transpose()
    }

    fn open(&self, row: ConnectionRow) -> Result<Connection, HttpError> {
        let secrets = self.secret_box()?;
        let unreadable = || {
            HttpError::internal(anyhow::anyhow!(
                "iiko connection {}: its sealed secrets do not open with this installation's key",
                row.id
            ))
        };
        let credentials = secrets
            .open(&row.credentials_sealed)
            .map_err(|_| unreadable())?;
        let credentials: Credentials =
            serde_json::from_str(credentials.expose()).map_err(|_| unreadable())?;
        let webhook_token = match &row.webhook_token_sealed {
            Some(sealed) => Some(secrets.open(sealed).map_err(|_| unreadable())?),
            None => None,
        };
        Ok(Connection {
            id: ConnectionId(row.id),
            organization: IikoId::parse(&row.organization_id).ok_or_else(unreadable)?,
            name: row.name,
            api_url: row.api_url,
            unit: row.unit_id.map(UnitId),
            credentials,
            webhook_token,
            tables: serde_json::from_str(&row.tables).unwrap_or_default(),
            products: serde_json::from_str(&row.products).unwrap_or_default(),
            active: row.active,
            from_config: row.from_config,
        })
    }

    pub async fn get(&self, id: ConnectionId) -> Result<Connection, HttpError> {
        let row: Option<ConnectionRow> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(
            format!("SELECT {COLUMNS} FROM iiko_connections WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(db)
            .await)?;
        self.open(row.ok_or_else(no_such_connection)?)
    }

    /// Checks a form's input against the connection it changes (`None`: a new one).
    async fn check(
        &self,
        input: &ConnectionInput,
        current: Option<&Connection>,
    ) -> Result<Checked, HttpError> {
        let mut problems = Problems::default();
        let organization = organization_id(&input.organization_id).unwrap_or_else(|text| {
            problems.add("organization_id", text);
            IikoId::derived("")
        });
        let holder: Option<(i64,)> = read!(&self.store, db => sqlx::query_as(
            "SELECT id FROM iiko_connections WHERE organization_id = $1",
        )
        .bind(organization.as_str())
        .fetch_optional(db)
        .await)?;
        if holder.is_some_and(|(holder,)| Some(holder) != current.map(|c| c.id.0)) {
            problems.add("organization_id", organization_taken());
        }
        let api_url = match present(&input.api_url) {
            None => DEFAULT_API_URL.to_owned(),
            Some(url) => http_address(url).unwrap_or_else(|text| {
                problems.add("api_url", text);
                String::new()
            }),
        };
        let name = match present(&input.name) {
            None => format!("iikoCloud {organization}"),
            Some(name) if name.chars().count() > NAME_MAX_CHARS => {
                problems.add(
                    "name",
                    Text::new(
                        format!("Не длиннее {NAME_MAX_CHARS} символов."),
                        format!("At most {NAME_MAX_CHARS} characters."),
                    ),
                );
                String::new()
            }
            Some(name) => name.to_owned(),
        };
        let unit = chosen_unit(&self.store, &input.unit_id, &mut problems).await?;
        let credentials = input.credentials(current.map(|c| &c.credentials), &mut problems);
        let webhook_token = match present(&input.webhook_token) {
            _ if input.clear_webhook_token.is_some() => None,
            Some(token) if token.chars().count() < TOKEN_MIN_CHARS => {
                problems.add(
                    "webhook_token",
                    Text::new(
                        format!("Не короче {TOKEN_MIN_CHARS} символов."),
                        format!("At least {TOKEN_MIN_CHARS} characters."),
                    ),
                );
                None
            }
            Some(token) => Some(Secret::new(token)),
            None => current.and_then(|c| c.webhook_token.clone()),
        };
        let mut tables: Vec<IikoId> = Vec::new();
        for line in input.tables.lines().filter_map(present) {
            match IikoId::parse(line) {
                Some(table) if tables.contains(&table) => {}
                Some(table) => tables.push(table),
                None => {
                    let shown: String = line.chars().take(60).collect();
                    problems.add(
                        "tables",
                        Text::new(
                            format!("«{shown}» — не id стола (UUID)."),
                            format!("{shown:?} is not a table id (a UUID)."),
                        ),
                    );
                    break;
                }
            }
        }
        problems.into_result()?;
        Ok(Checked {
            name,
            api_url,
            organization,
            unit,
            credentials,
            webhook_token,
            tables,
            active: input.active.is_some(),
        })
    }

    /// The checked input's secrets sealed, and its tables as stored.
    fn sealed(&self, checked: &Checked) -> Result<(String, Option<String>, String), HttpError> {
        let secrets = self.secret_box()?;
        let credentials =
            serde_json::to_string(&checked.credentials).map_err(HttpError::internal)?;
        let tables = serde_json::to_string(&checked.tables).map_err(HttpError::internal)?;
        Ok((
            secrets.seal(&credentials),
            checked
                .webhook_token
                .as_ref()
                .map(|t| secrets.seal(t.expose())),
            tables,
        ))
    }

    /// Adds a connection from the admin pages.
    pub async fn create(&self, input: &ConnectionInput) -> Result<ConnectionId, HttpError> {
        let checked = self.check(input, None).await?;
        let (credentials, token, tables) = self.sealed(&checked)?;
        let now = now_ms();
        let (id,): (i64,) = write!(&self.store, db => sqlx::query_as(
            "INSERT INTO iiko_connections (organization_id, name, api_url, unit_id, credentials_sealed, webhook_token_sealed,
                                           tables, active, created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
             RETURNING id",
        )
        .bind(checked.organization.as_str())
        .bind(&checked.name)
        .bind(&checked.api_url)
        .bind(checked.unit.map(|u| u.0))
        .bind(&credentials)
        .bind(&token)
        .bind(&tables)
        .bind(checked.active)
        .bind(now)
        .fetch_one(db)
        .await)
        .on_constraint(Constraint::Unique, || HttpError::field("organization_id", organization_taken()))?;
        Ok(ConnectionId(id))
    }

    /// Changes a connection from the admin pages (its settings-file products stay). Another organization's
    /// state is not this one's: a changed organization starts with none.
    pub async fn update(&self, id: ConnectionId, input: &ConnectionInput) -> Result<(), HttpError> {
        let current = self.get(id).await?;
        let checked = self.check(input, Some(&current)).await?;
        let (credentials, token, tables) = self.sealed(&checked)?;
        let moved = checked.organization != current.organization;
        write_tx!(&self.store, tx => async {
            sqlx::query(
                "UPDATE iiko_connections SET organization_id = $2, name = $3, api_url = $4, unit_id = $5,
                     credentials_sealed = $6, webhook_token_sealed = $7, tables = $8, active = $9, updated_ms = $10
                 WHERE id = $1",
            )
            .bind(id.0)
            .bind(checked.organization.as_str())
            .bind(&checked.name)
            .bind(&checked.api_url)
            .bind(checked.unit.map(|u| u.0))
            .bind(&credentials)
            .bind(&token)
            .bind(&tables)
            .bind(checked.active)
            .bind(now_ms())
            .execute(&mut **tx)
            .await?;
            if moved {
                sqlx::query("DELETE FROM iiko_connection_state WHERE connection_id = $1")
                    .bind(id.0)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok::<_, sqlx::Error>(())
        }
        .await)
        .on_constraint(Constraint::Unique, || HttpError::field("organization_id", organization_taken()))?;
        Ok(())
    }

    /// Deletes a connection and its state. What its orders made stays, and so does the organization's product
    /// mapping (an iikoServer may file under the same organization, and a connection added again finds it).
    pub async fn delete(&self, id: ConnectionId) -> Result<(), HttpError> {
        // Its state goes with it (ON DELETE CASCADE).
        let deleted = write!(&self.store, db => sqlx::query("DELETE FROM iiko_connections WHERE id = $1")
            .bind(id.0)
            .execute(db)
            .await
            .map(|done| done.rows_affected()))?;
        if deleted == 0 {
            return Err(no_such_connection());
        }
        Ok(())
    }

    pub async fn state(&self, id: ConnectionId) -> Result<ConnectionState, HttpError> {
        let state: Option<ConnectionState> = read!(&self.store, db => sqlx::query_as(
            "SELECT delivery_revision, revision_ms, last_poll_ms, last_webhook_ms, last_error, last_error_ms
             FROM iiko_connection_state WHERE connection_id = $1",
        )
        .bind(id.0)
        .fetch_optional(db)
        .await)?;
        Ok(state.unwrap_or_default())
    }

    /// A poll ended: the deliveries' cursor it reached (when it read one), and its error if it failed.
    pub async fn record_poll(
        &self,
        id: ConnectionId,
        revision: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), HttpError> {
        let now = now_ms();
        write!(&self.store, db => sqlx::query(
            "INSERT INTO iiko_connection_state (connection_id, delivery_revision, revision_ms, last_poll_ms, last_error, last_error_ms)
             VALUES ($1, $2, CASE WHEN $2 IS NULL THEN NULL ELSE $3 END, $3, $4, CASE WHEN $4 IS NULL THEN NULL ELSE $3 END)
             ON CONFLICT (connection_id) DO UPDATE SET
                 delivery_revision = COALESCE(excluded.delivery_revision, iiko_connection_state.delivery_revision),
                 revision_ms = COALESCE(excluded.revision_ms, iiko_connection_state.revision_ms),
                 last_poll_ms = excluded.last_poll_ms,
                 last_error = COALESCE(excluded.last_error, iiko_connection_state.last_error),
                 last_error_ms = COALESCE(excluded.last_error_ms, iiko_connection_state.last_error_ms)",
        )
        .bind(id.0)
        .bind(revision)
        .bind(now)
        .bind(error)
        .execute(db)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Forgets the deliveries' cursor (it fell out of iiko's 3-hour window): the next poll starts over by date.
    pub async fn reset_revision(&self, id: ConnectionId) -> Result<(), HttpError> {
        write!(&self.store, db => sqlx::query(
            "UPDATE iiko_connection_state SET delivery_revision = NULL, revision_ms = NULL WHERE connection_id = $1",
        )
        .bind(id.0)
        .execute(db)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    pub async fn record_webhook(&self, organization: &IikoId) -> Result<(), HttpError> {
        write!(&self.store, db => sqlx::query(
            "INSERT INTO iiko_connection_state (connection_id, last_webhook_ms)
             SELECT id, $2 FROM iiko_connections WHERE organization_id = $1
             ON CONFLICT (connection_id) DO UPDATE SET last_webhook_ms = excluded.last_webhook_ms",
        )
        .bind(organization.as_str())
        .bind(now_ms())
        .execute(db)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    pub async fn terminal_group(
        &self,
        organization: &IikoId,
        id: &IikoId,
    ) -> Result<Option<TerminalGroup>, HttpError> {
        Ok(read!(&self.store, db => sqlx::query_as(
            "SELECT id, name, time_zone, unit_id FROM iiko_terminal_groups WHERE organization_id = $1 AND id = $2",
        )
        .bind(organization.as_str())
        .bind(id.as_str())
        .fetch_optional(db)
        .await)?)
    }

    /// The organization's terminal groups, by name.
    pub async fn terminal_groups(
        &self,
        organization: &IikoId,
    ) -> Result<Vec<TerminalGroup>, HttpError> {
        Ok(read!(&self.store, db => sqlx::query_as(
            "SELECT id, name, time_zone, unit_id FROM iiko_terminal_groups WHERE organization_id = $1 ORDER BY name, id",
        )
        .bind(organization.as_str())
        .fetch_all(db)
        .await)?)
    }

    /// Sets the unit a terminal group's orders join (`None`: the connection's).
    pub async fn set_terminal_group_unit(
        &self,
        organization: &IikoId,
        group: &IikoId,
        unit: Option<UnitId>,
    ) -> Result<(), HttpError> {
        let changed = write!(&self.store, db => sqlx::query(
            "UPDATE iiko_terminal_groups SET unit_id = $3 WHERE organization_id = $1 AND id = $2",
        )
        .bind(organization.as_str())
        .bind(group.as_str())
        .bind(unit.map(|u| u.0))
        .execute(db)
        .await
        .map(|done| done.rows_affected()))?;
        if changed == 0 {
            return Err(HttpError::not_found(Text::new(
                "Нет такой группы терминалов.",
                "No such terminal group.",
            )));
        }
        Ok(())
    }

    /// Stores the terminal groups iikoCloud listed; a group's unit, set here, is kept.
    pub async fn store_terminal_groups(
        &self,
        organization: &IikoId,
        groups: &[(IikoId, String, String)],
    ) -> Result<(), HttpError> {
        let now = now_ms();
        for (id, name, zone) in groups {
            write!(&self.store, db => sqlx::query(
                "INSERT INTO iiko_terminal_groups (organization_id, id, name, time_zone, updated_ms) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (organization_id, id) DO UPDATE SET name = excluded.name, time_zone = excluded.time_zone,
                     updated_ms = excluded.updated_ms",
            )
            .bind(organization.as_str())
            .bind(id.as_str())
            .bind(name)
            .bind(zone)
            .bind(now)
            .execute(db)
            .await
            .map(|_| ()))?;
        }
        Ok(())
    }

    /// The codes the organization's products go by, in one read: the ware code each is mapped to on the mapping
    /// page, and its code in the menu (iikoCloud's nomenclature), by product id.
    pub async fn product_codes(&self, organization: &IikoId) -> Result<ProductCodes, HttpError> {
        let rows: Vec<(String, Option<String>, Option<String>)> = read!(&self.store, db => sqlx::query_as(
            "SELECT product_id, ware_code, code FROM iiko_products
             WHERE organization_id = $1 AND (ware_code IS NOT NULL OR (code IS NOT NULL AND code <> ''))",
        )
        .bind(organization.as_str())
        .fetch_all(db)
        .await)?;
        let mut codes = ProductCodes::default();
        for (product, ware_code, code) in rows {
            if let Some(ware_code) = ware_code {
                codes.mapped.insert(product.clone(), ware_code);
            }
            if let Some(code) = code.filter(|c| !c.is_empty()) {
                codes.menu.insert(product, code);
            }
        }
        Ok(codes)
    }

    /// Stores the menu's products (id, code, name), keeping their counts and mappings.
    pub async fn store_menu(
        &self,
        organization: &IikoId,
        products: &[(IikoId, String, String)],
    ) -> Result<(), HttpError> {
        let now = now_ms();
        write_tx!(&self.store, tx => async {
            for (product, code, name) in products {
                sqlx::query(
                    "INSERT INTO iiko_products (organization_id, product_id, name, code, last_seen_ms) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (organization_id, product_id) DO UPDATE SET name = excluded.name, code = excluded.code",
                )
                .bind(organization.as_str())
                .bind(product.as_str())
                .bind(name)
                .bind(code)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            Ok::<_, sqlx::Error>(())
        }
        .await)?;
        Ok(())
    }

    /// Counts the products an order brought, marking whether each made something.
    pub async fn count_products(
        &self,
        organization: &IikoId,
        seen: &[(IikoId, String, bool)],
    ) -> Result<(), HttpError> {
        let now = now_ms();
        for (product, name, mapped) in seen {
            write!(&self.store, db => sqlx::query(
                "INSERT INTO iiko_products (organization_id, product_id, name, mapped, seen, last_seen_ms) VALUES ($1, $2, $3, $4, 1, $5)
                 ON CONFLICT (organization_id, product_id) DO UPDATE SET name = excluded.name, mapped = excluded.mapped,
                     seen = iiko_products.seen + 1, last_seen_ms = excluded.last_seen_ms",
            )
            .bind(organization.as_str())
            .bind(product.as_str())
            .bind(name)
            .bind(*mapped)
            .bind(now)
            .execute(db)
            .await
            .map(|_| ()))?;
        }
        Ok(())
    }

    /// Maps a product to a ware code (`None` takes the mapping away); applies to orders processed from now on.
    pub async fn map_product(
        &self,
        organization: &IikoId,
        product: &IikoId,
        ware_code: Option<&str>,
    ) -> Result<(), HttpError> {
        let ware_code = ware_code.map(str::trim).filter(|c| !c.is_empty());
        if ware_code.is_some_and(|c| c.len() > 100) {
            return Err(HttpError::field(
                "ware_code",
                Text::new(
                    "Код товара длиннее 100 символов.",
                    "The ware code is longer than 100 characters.",
                ),
            ));
        }
        write!(&self.store, db => sqlx::query(
            "INSERT INTO iiko_products (organization_id, product_id, name, ware_code, last_seen_ms) VALUES ($1, $2, '', $3, $4)
             ON CONFLICT (organization_id, product_id) DO UPDATE SET ware_code = excluded.ware_code",
        )
        .bind(organization.as_str())
        .bind(product.as_str())
        .bind(ware_code)
        .bind(now_ms())
        .execute(db)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}

fn no_such_connection() -> HttpError {
    HttpError::not_found(Text::new(
        "Нет такого подключения iikoCloud.",
        "No such iikoCloud connection.",
    ))
}

fn organization_taken() -> Text {
    Text::new(
        "Для этой организации подключение уже есть.",
        "This organization already has a connection.",
    )
}
