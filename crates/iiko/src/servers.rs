//! iikoServers whose events journal tillwire reads, and what it has rebuilt from it: the journal's revision
//! read so far and each open order's state. Reading a page of the journal changes the kitchen first and then
//! stores the orders' states and the revision in one transaction, so a crash in between reads the same page
//! again from the same states, and the kitchen's whole-order syncs make the repeat change nothing.

use std::collections::HashMap;

use chrono_tz::Tz;
use serde::Serialize;
use tillwire_platform::config::Secret;
use tillwire_platform::{HttpError, Store, now_ms, read, write, write_tx};
use tillwire_units::UnitId;

use crate::config::ServerConfig;
use crate::connections::Connections;
use crate::journal::Rebuilt;
use crate::model::IikoId;

/// An iikoServer, its password opened.
#[derive(Clone)]
pub struct Server {
    pub id: i64,
    pub url: String,
    pub login: String,
    pub password: Secret,
    pub unit: Option<UnitId>,
    pub organization: IikoId,
    pub zone: Option<Tz>,
    pub active: bool,
    pub state: ServerState,
}

/// What the state page shows of a server.
#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow)]
pub struct ServerState {
    pub revision: Option<i64>,
    pub last_poll_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ServerRow {
    id: i64,
    url: String,
    login: String,
    password_sealed: String,
    unit_id: Option<i64>,
    organization_id: String,
    time_zone: Option<String>,
    active: bool,
    revision: Option<i64>,
    last_poll_ms: Option<i64>,
    last_error: Option<String>,
    last_error_ms: Option<i64>,
}

#[derive(Clone)]
pub struct Servers {
    store: Store,
    connections: Connections,
}

impl Servers {
    pub fn new(store: Store, connections: Connections) -> Self {
        Servers { store, connections }
    }

    pub async fn upsert_from_config(
        &self,
        config: &ServerConfig,
        unit: Option<UnitId>,
    ) -> Result<i64, HttpError> {
        let sealed = self
            .connections
            .secret_box()?
            .seal(config.password.expose());
        let now = now_ms();
        let (id,): (i64,) = write!(&self.store, db => sqlx::query_as(
            "INSERT INTO iiko_servers (url, login, password_sealed, unit_id, organization_id, time_zone, from_config, active,
                                       created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, TRUE, TRUE, $7, $7)
             ON CONFLICT (url) DO UPDATE SET login = excluded.login, password_sealed = excluded.password_sealed,
                 unit_id = excluded.unit_id, organization_id = excluded.organization_id, time_zone = excluded.time_zone,
                 from_config = TRUE, updated_ms = excluded.updated_ms
             RETURNING id",
        )
        .bind(&config.url)
        .bind(&config.login)
        .bind(&sealed)
        .bind(unit.map(|u| u.0))
        .bind(config.organization.as_str())
        .bind(config.time_zone.map(|z| z.name().to_owned()))
        .bind(now)
        .fetch_one(db)
        .await)?;
        Ok(id)
    }

    pub async fn list(&self) -> Result<Vec<Server>, HttpError> {
        let rows: Vec<ServerRow> = read!(&self.store, db => sqlx::query_as(
            "SELECT id, url, login, password_sealed, unit_id, organization_id, time_zone, active, revision, last_poll_ms,
                    last_error, last_error_ms
             FROM iiko_servers ORDER BY url",
        )
        .fetch_all(db)
        .await)?;
        let secrets = self.connections.secret_box()?;
        rows.into_iter()
            .map(|row| {
                let unreadable = || {
                    HttpError::internal(anyhow::anyhow!(
                        "iikoServer {}: its sealed password does not open with this installation's key",
                        row.url
                    ))
                };
                Ok(Server {
                    id: row.id,
                    password: secrets.open(&row.password_sealed).map_err(|_| unreadable())?,
                    organization: IikoId::parse(&row.organization_id).ok_or_else(unreadable)?,
                    zone: row.time_zone.as_deref().and_then(crate::timezone::zone),
                    unit: row.unit_id.map(UnitId),
                    url: row.url,
                    login: row.login,
                    active: row.active,
                    state: ServerState {
                        revision: row.revision,
                        last_poll_ms: row.last_poll_ms,
                        last_error: row.last_error,
                        last_error_ms: row.last_error_ms,
                    },
                })
            })
            .collect()
    }

    /// The rebuilt states of `orders` on `server` (an order not seen yet is absent).
    pub async fn states(
        &self,
        server: i64,
        orders: &[IikoId],
    ) -> Result<HashMap<IikoId, Rebuilt>, HttpError> {
        let mut states = HashMap::new();
        for order in orders {
            let row: Option<(String,)> = read!(&self.store, db => sqlx::query_as(
                "SELECT state FROM iiko_journal_orders WHERE server_id = $1 AND order_id = $2",
            )
            .bind(server)
            .bind(order.as_str())
            .fetch_optional(db)
            .await)?;
            if let Some((state,)) = row
                && let Ok(rebuilt) = serde_json::from_str(&state)
            {
                states.insert(order.clone(), rebuilt);
            }
        }
        Ok(states)
    }

    /// Stores the orders' states and the revision read, together; paid and cancelled orders are forgotten.
    pub async fn save(
        &self,
        server: i64,
        states: &HashMap<IikoId, Rebuilt>,
        revision: i64,
    ) -> Result<(), HttpError> {
        let now = now_ms();
        write_tx!(&self.store, tx => async {
            for (order, state) in states {
                if state.paid || state.cancelled {
                    sqlx::query("DELETE FROM iiko_journal_orders WHERE server_id = $1 AND order_id = $2")
                        .bind(server)
                        .bind(order.as_str())
                        .execute(&mut **tx)
                        .await?;
                    continue;
                }
                let json = serde_json::to_string(state).unwrap_or_default();
                sqlx::query(
                    "INSERT INTO iiko_journal_orders (server_id, order_id, state, updated_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (server_id, order_id) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
                )
                .bind(server)
                .bind(order.as_str())
                .bind(json)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            sqlx::query("UPDATE iiko_servers SET revision = $2, last_poll_ms = $3, last_error = NULL, last_error_ms = NULL WHERE id = $1")
                .bind(server)
                .bind(revision)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            Ok::<_, sqlx::Error>(())
        }
        .await)?;
        Ok(())
    }

    /// A read of the journal failed: said on the page, the revision kept.
    pub async fn record_error(&self, server: i64, error: &str) -> Result<(), HttpError> {
        let now = now_ms();
        write!(&self.store, db => sqlx::query(
            "UPDATE iiko_servers SET last_poll_ms = $2, last_error = $3, last_error_ms = $2 WHERE id = $1",
        )
        .bind(server)
        .bind(now)
        .bind(error)
        .execute(db)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}
