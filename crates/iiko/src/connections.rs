//! iikoCloud connections (one per organization) with their sealed credentials, their state (the deliveries'
//! revision cursor, last poll, webhook and error), the organization's terminal groups with their time zones and
//! units, and the products seen on orders with their mapping to ware codes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use tillwire_platform::config::Secret;
use tillwire_platform::secretbox::SecretBox;
use tillwire_platform::{HttpError, Store, Text, now_ms, read, write};
use tillwire_units::UnitId;

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

const COLUMNS: &str = "id, organization_id, name, api_url, unit_id, credentials_sealed, webhook_token_sealed, tables, products, active";

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
        })
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

    /// Which ware code each product is mapped to on the mapping page.
    pub async fn mapped_products(
        &self,
        organization: &IikoId,
    ) -> Result<BTreeMap<String, String>, HttpError> {
        let rows: Vec<(String, String)> = read!(&self.store, db => sqlx::query_as(
            "SELECT product_id, ware_code FROM iiko_products WHERE organization_id = $1 AND ware_code IS NOT NULL",
        )
        .bind(organization.as_str())
        .fetch_all(db)
        .await)?;
        Ok(rows.into_iter().collect())
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
            return Err(HttpError::invalid(Text::new(
                "Код товара длиннее 100 символов.",
                "The ware code is longer than 100 characters.",
            )));
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
