//! iikoServers whose events journal tillwire reads, and what it has rebuilt from it: the journal's revision
//! read so far and each open order's state. Reading a page of the journal changes the kitchen first and then
//! stores the orders' states and the revision in one transaction, so a crash in between reads the same page
//! again from the same states, and the kitchen's whole-order syncs make the repeat change nothing. Servers come
//! from the settings file or from the admin pages, whose forms are checked here.

use std::collections::HashMap;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use tillwire_platform::config::Secret;
use tillwire_platform::error::{Constraint, ResultExt};
use tillwire_platform::{HttpError, Store, Text, now_ms, read, write, write_tx};
use tillwire_units::UnitId;

use crate::config::ServerConfig;
use crate::connections::{
    Connections, Problems, chosen_unit, http_address, organization_id, present, required,
};
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
    /// Written by the settings file, which refreshes it at every start.
    pub from_config: bool,
    pub state: ServerState,
}

/// A server as typed on its form. The password is write-only: left empty on an edit, the stored one stays.
/// (No `Debug`: it holds the password.)
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ServerInput {
    pub url: String,
    pub login: String,
    pub password: String,
    /// A unit's id; empty: the default unit.
    pub unit_id: String,
    /// A Windows or IANA name; empty: the installation's zone.
    pub time_zone: String,
    /// Empty: one derived from the address.
    pub organization_id: String,
    pub active: Option<String>,
}

/// A server's input, checked.
struct Checked {
    url: String,
    login: String,
    password: Secret,
    unit: Option<UnitId>,
    organization: IikoId,
    zone: Option<Tz>,
    active: bool,
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
    from_config: bool,
    revision: Option<i64>,
    last_poll_ms: Option<i64>,
    last_error: Option<String>,
    last_error_ms: Option<i64>,
}

const COLUMNS: &str = "id, url, login, password_sealed, unit_id, organization_id, time_zone, active, from_config, revision,
     last_poll_ms, last_error, last_error_ms";

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
        let rows: Vec<ServerRow> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(
            format!("SELECT {COLUMNS} FROM iiko_servers ORDER BY url")))
            .fetch_all(db)
            .await)?;
        rows.into_iter().map(|row| self.open(row)).collect()
    }

    pub async fn get(&self, id: i64) -> Result<Server, HttpError> {
        let row: Option<ServerRow> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(
            format!("SELECT {COLUMNS} FROM iiko_servers WHERE id = $1")))
            .bind(id)
            .fetch_optional(db)
            .await)?;
        self.open(row.ok_or_else(no_such_server)?)
    }

    fn open(&self, row: ServerRow) -> Result<Server, HttpError> {
        let secrets = self.connections.secret_box()?;
        let unreadable = || {
            HttpError::internal(anyhow::anyhow!(
                "iikoServer {}: its sealed password does not open with this installation's key",
                row.url
            ))
        };
        Ok(Server {
            id: row.id,
            password: secrets
                .open(&row.password_sealed)
                .map_err(|_| unreadable())?,
            organization: IikoId::parse(&row.organization_id).ok_or_else(unreadable)?,
            zone: row.time_zone.as_deref().and_then(crate::timezone::zone),
            unit: row.unit_id.map(UnitId),
            url: row.url,
            login: row.login,
            active: row.active,
            from_config: row.from_config,
            state: ServerState {
                revision: row.revision,
                last_poll_ms: row.last_poll_ms,
                last_error: row.last_error,
                last_error_ms: row.last_error_ms,
            },
        })
    }

    /// Checks a form's input against the server it changes (`None`: a new one).
    async fn check(
        &self,
        input: &ServerInput,
        current: Option<&Server>,
    ) -> Result<Checked, HttpError> {
        let mut problems = Problems::default();
        let url = http_address(&input.url).unwrap_or_else(|text| {
            problems.add("url", text);
            String::new()
        });
        let holder: Option<(i64,)> = read!(&self.store, db => sqlx::query_as(
            "SELECT id FROM iiko_servers WHERE url = $1",
        )
        .bind(&url)
        .fetch_optional(db)
        .await)?;
        if holder.is_some_and(|(holder,)| Some(holder) != current.map(|s| s.id)) {
            problems.add("url", url_taken());
        }
        let login = present(&input.login).unwrap_or_default().to_owned();
        if login.is_empty() {
            problems.add("login", required());
        }
        // The password as typed, untrimmed: a space may be part of it.
        let password = match (input.password.as_str(), current) {
            ("", Some(current)) => current.password.clone(),
            ("", None) => {
                problems.add("password", required());
                Secret::new("")
            }
            (typed, _) => Secret::new(typed),
        };
        let unit = chosen_unit(&self.store, &input.unit_id, &mut problems).await?;
        let zone = present(&input.time_zone).and_then(|name| {
            let zone = crate::timezone::zone(name);
            if zone.is_none() {
                problems.add(
                    "time_zone",
                    Text::new(
                        "Неизвестный часовой пояс: нужно имя Windows (Russian Standard Time) или IANA (Europe/Moscow).",
                        "Unknown time zone: a Windows name (Russian Standard Time) or an IANA one (Europe/Moscow) is needed.",
                    ),
                );
            }
            zone
        });
        let organization = match present(&input.organization_id) {
            None => IikoId::derived(&url),
            Some(text) => organization_id(text).unwrap_or_else(|text| {
                problems.add("organization_id", text);
                IikoId::derived("")
            }),
        };
        problems.into_result()?;
        Ok(Checked {
            url,
            login,
            password,
            unit,
            organization,
            zone,
            active: input.active.is_some(),
        })
    }

    /// Adds a server from the admin pages.
    pub async fn create(&self, input: &ServerInput) -> Result<i64, HttpError> {
        let checked = self.check(input, None).await?;
        let sealed = self
            .connections
            .secret_box()?
            .seal(checked.password.expose());
        let (id,): (i64,) = write!(&self.store, db => sqlx::query_as(
            "INSERT INTO iiko_servers (url, login, password_sealed, unit_id, organization_id, time_zone, active,
                                       created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
             RETURNING id",
        )
        .bind(&checked.url)
        .bind(&checked.login)
        .bind(&sealed)
        .bind(checked.unit.map(|u| u.0))
        .bind(checked.organization.as_str())
        .bind(checked.zone.map(|z| z.name().to_owned()))
        .bind(checked.active)
        .bind(now_ms())
        .fetch_one(db)
        .await)
        .on_constraint(Constraint::Unique, || HttpError::field("url", url_taken()))?;
        Ok(id)
    }

    /// Changes a server from the admin pages; the journal's revision and open orders stay.
    pub async fn update(&self, id: i64, input: &ServerInput) -> Result<(), HttpError> {
        let current = self.get(id).await?;
        let checked = self.check(input, Some(&current)).await?;
        let sealed = self
            .connections
            .secret_box()?
            .seal(checked.password.expose());
        write!(&self.store, db => sqlx::query(
            "UPDATE iiko_servers SET url = $2, login = $3, password_sealed = $4, unit_id = $5, organization_id = $6,
                 time_zone = $7, active = $8, updated_ms = $9
             WHERE id = $1",
        )
        .bind(id)
        .bind(&checked.url)
        .bind(&checked.login)
        .bind(&sealed)
        .bind(checked.unit.map(|u| u.0))
        .bind(checked.organization.as_str())
        .bind(checked.zone.map(|z| z.name().to_owned()))
        .bind(checked.active)
        .bind(now_ms())
        .execute(db)
        .await
        .map(|_| ()))
        .on_constraint(Constraint::Unique, || HttpError::field("url", url_taken()))?;
        Ok(())
    }

    /// Deletes a server and the open orders rebuilt from its journal; what they made stays.
    pub async fn delete(&self, id: i64) -> Result<(), HttpError> {
        // Its rebuilt orders go with it (ON DELETE CASCADE).
        let deleted = write!(&self.store, db => sqlx::query("DELETE FROM iiko_servers WHERE id = $1")
            .bind(id)
            .execute(db)
            .await
            .map(|done| done.rows_affected()))?;
        if deleted == 0 {
            return Err(no_such_server());
        }
        Ok(())
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

fn no_such_server() -> HttpError {
    HttpError::not_found(Text::new("Нет такого iikoServer.", "No such iikoServer."))
}

fn url_taken() -> Text {
    Text::new(
        "iikoServer с этим адресом уже есть.",
        "An iikoServer with this address is already there.",
    )
}
