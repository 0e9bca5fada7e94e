//! The reconciliation poll (spec B.9: webhooks are not a guaranteed feed). Per connection, one instance at a
//! time (a platform lease, taken over when its holder dies): deliveries changed since the kept revision
//! (`by_revision`, whose window is 3 hours; past it, or without a revision, `by_delivery_date_and_status` over
//! the last day, which also gives the revision to continue from), and the configured tables' orders
//! (`order/by_table`). An order newer than the version applied goes to the inbox as if its webhook had come;
//! the rest cost nothing more.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use tillwire_platform::area::Shutdown;
use tillwire_platform::{HttpError, read};

use crate::Iiko;
use crate::cloud::{CloudClient, CloudError};
use crate::connections::Connection;
use crate::intake::{Failure, Placement, Received, Source};
use crate::journal;
use crate::model::{IikoId, OrderKind};
use crate::server::ServerClient;
use crate::servers::Server;
use crate::timezone;

/// How often the loop wakes to hold its leases and see whether a poll is due.
const TICK: Duration = Duration::from_secs(2);
/// A lease outlives a few ticks, so a holder that died is replaced within it.
const LEASE_TTL: Duration = Duration::from_secs(20);
/// How long settled inbox rows are kept (for the inbox page), and how often they are swept.
const INBOX_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// by_revision answers for changes within 3 hours; keep a margin.
const REVISION_WINDOW_MS: i64 = 2 * 3600 * 1000 + 45 * 60 * 1000;

/// What one poll found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    /// Orders iikoCloud returned.
    pub seen: usize,
    /// Of those, newer than what was applied: sent to the inbox.
    pub queued: usize,
}

/// Polls every active connection when due, for as long as the process runs.
pub async fn run(iiko: Iiko, mut shutdown: Shutdown) -> anyhow::Result<()> {
    let mut clients: std::collections::HashMap<IikoId, (String, CloudClient)> = Default::default();
    let mut journal_clients: std::collections::HashMap<i64, (String, ServerClient)> =
        Default::default();
    let mut swept: Option<std::time::Instant> = None;
    // When each organization's menu was read last.
    let mut menus: std::collections::HashMap<IikoId, std::time::Instant> = Default::default();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = tokio::time::sleep(TICK) => {}
        }
        if swept.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
            swept = Some(std::time::Instant::now());
            if let Err(error) = iiko.intake.sweep(INBOX_KEPT_MS).await {
                tracing::warn!(%error, "iiko: could not sweep the inbox");
            }
        }
        let connections = match iiko.connections.list().await {
            Ok(connections) => connections,
            Err(error) => {
                tracing::warn!(%error, "iiko: could not read the connections");
                continue;
            }
        };
        for connection in connections.iter().filter(|c| c.active) {
            let lease = format!("iiko:poll:{}", connection.organization);
            match iiko.platform.leases.hold(&lease, LEASE_TTL).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    tracing::warn!(%error, "iiko: could not take the poll's lease");
                    continue;
                }
            }
            let state = match iiko.connections.state(connection.id).await {
                Ok(state) => state,
                Err(_) => continue,
            };
            let due = state.last_poll_ms.is_none_or(|last| {
                tillwire_platform::now_ms() - last >= iiko.settings.poll_every.as_millis() as i64
            });
            if !due {
                continue;
            }
            // One client per connection and its settings, so its token is reused between polls.
            let fingerprint = format!("{}|{:?}", connection.api_url, connection.credentials);
            let client = match clients.get(&connection.organization) {
                Some((kept, client)) if *kept == fingerprint => client.clone(),
                _ => {
                    let client =
                        CloudClient::new(&connection.api_url, connection.credentials.auth());
                    clients.insert(
                        connection.organization.clone(),
                        (fingerprint, client.clone()),
                    );
                    client
                }
            };
            if menus
                .get(&connection.organization)
                .is_none_or(|at| at.elapsed() >= MENU_EVERY)
            {
                match refresh_menu(&iiko, connection, &client).await {
                    Ok(_) => {
                        menus.insert(connection.organization.clone(), std::time::Instant::now());
                    }
                    Err(error) => {
                        tracing::warn!(organization = %connection.organization, %error, "iiko: the menu could not be read")
                    }
                }
            }
            if let Err(error) = poll(&iiko, connection, &client).await {
                tracing::warn!(organization = %connection.organization, %error, "iiko: poll failed");
            }
        }
        let servers = match iiko.servers.list().await {
            Ok(servers) => servers,
            Err(error) => {
                tracing::warn!(%error, "iiko: could not read the servers");
                continue;
            }
        };
        for server in servers.iter().filter(|s| s.active) {
            let due = server.state.last_poll_ms.is_none_or(|last| {
                tillwire_platform::now_ms() - last >= iiko.settings.poll_every.as_millis() as i64
            });
            let lease = format!("iiko:journal:{}", server.id);
            if !due
                || !iiko
                    .platform
                    .leases
                    .hold(&lease, LEASE_TTL)
                    .await
                    .unwrap_or(false)
            {
                continue;
            }
            let fingerprint = format!(
                "{}|{}|{}",
                server.url,
                server.login,
                server.password.expose()
            );
            let client = match journal_clients.get(&server.id) {
                Some((kept, client)) if *kept == fingerprint => client.clone(),
                _ => match iiko.server_client(server) {
                    Ok(client) => {
                        journal_clients.insert(server.id, (fingerprint, client.clone()));
                        client
                    }
                    Err(_) => continue,
                },
            };
            if let Err(error) = poll_journal(&iiko, server, &client).await {
                tracing::warn!(server = %server.url, %error, "iiko: reading the events journal failed");
            }
            if let Err(error) = fetch_sales(&iiko, server, &client).await {
                tracing::warn!(server = %server.url, %error, "iiko: the sales report failed");
            }
        }
    }
    for connection in iiko.connections.list().await.unwrap_or_default() {
        let _ = iiko
            .platform
            .leases
            .release(&format!("iiko:poll:{}", connection.organization))
            .await;
    }
    for server in iiko.servers.list().await.unwrap_or_default() {
        let _ = iiko
            .platform
            .leases
            .release(&format!("iiko:journal:{}", server.id))
            .await;
    }
    Ok(())
}

/// One poll of one connection; its outcome (cursor, error) is recorded on the connection's state.
#[tracing::instrument(skip_all, fields(organization = %connection.organization))]
pub async fn poll(
    iiko: &Iiko,
    connection: &Connection,
    client: &CloudClient,
) -> Result<Polled, HttpError> {
    match poll_orders(iiko, connection, client).await {
        Ok((polled, revision)) => {
            iiko.connections
                .record_poll(connection.id, revision, None)
                .await?;
            Ok(polled)
        }
        Err(error) => {
            let message = error.to_string();
            iiko.connections
                .record_poll(connection.id, None, Some(&message))
                .await?;
            Err(HttpError::internal(anyhow::anyhow!(message)))
        }
    }
}

async fn poll_orders(
    iiko: &Iiko,
    connection: &Connection,
    client: &CloudClient,
) -> Result<(Polled, Option<i64>), PollError> {
    let organization = connection.organization.as_str();
    let state = iiko.connections.state(connection.id).await?;
    let fresh_revision = state
        .delivery_revision
        .zip(state.revision_ms)
        .filter(|(_, at)| tillwire_platform::now_ms() - at < REVISION_WINDOW_MS)
        .map(|(revision, _)| revision);
    let deliveries: Value = match fresh_revision {
        Some(revision) => {
            let answer = client
                .call(
                    "/api/1/deliveries/by_revision",
                    &json!({"startRevision": revision, "organizationIds": [organization], "sourceKeys": null}),
                )
                .await;
            match answer {
                Ok(answer) => answer,
                // The revision fell out of iiko's window after all: start over by date.
                Err(CloudError::Refused { status: 400, .. }) => {
                    iiko.connections.reset_revision(connection.id).await?;
                    by_date(client, connection).await?
                }
                Err(error) => return Err(error.into()),
            }
        }
        None => by_date(client, connection).await?,
    };
    let revision = deliveries.get("maxRevision").and_then(Value::as_i64);
    let mut found: Vec<(OrderKind, Value)> =
        crate::cloud::grouped(&deliveries, "ordersByOrganizations", "orders")
            .map(|order| (OrderKind::Delivery, order.clone()))
            .collect();
    if !connection.tables.is_empty() {
        let tables: Value = client
            .call(
                "/api/1/order/by_table",
                &json!({
                    "organizationIds": [organization],
                    "tableIds": connection.tables,
                    "sourceKeys": null,
                    "statuses": ["New", "Bill", "Closed", "Deleted"],
                    "dateFrom": day_ago(iiko, connection).await,
                    "dateTo": null,
                }),
            )
            .await?;
        for order in tables
            .get("orders")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            found.push((OrderKind::Table, order.clone()));
        }
    }
    let seen = found.len();
    let received: Vec<Received> = found
        .iter()
        .map(|(kind, order)| Received::from_poll(&connection.organization, *kind, order))
        .collect();
    let newer = newer_than_applied(iiko, &connection.organization, received).await?;
    let queued = iiko.intake.receive(Source::Poll, &newer).await?;
    if queued > 0 {
        iiko.platform.jobs.notify();
    }
    Ok((Polled { seen, queued }, revision))
}

/// One read of an iikoServer's events journal from the revision read last: the orders its events concern are
/// rebuilt and applied, then their states and the new revision are stored together (see `servers`). Returns how
/// many orders the page changed.
#[tracing::instrument(skip_all, fields(server = %server.url))]
pub async fn poll_journal(
    iiko: &Iiko,
    server: &Server,
    client: &ServerClient,
) -> Result<usize, String> {
    let outcome = read_journal(iiko, server, client).await;
    if let Err(error) = &outcome {
        let _ = iiko.servers.record_error(server.id, error).await;
    }
    outcome
}

async fn read_journal(
    iiko: &Iiko,
    server: &Server,
    client: &ServerClient,
) -> Result<usize, String> {
    let zone = server
        .zone
        .or(iiko.platform.settings.timezone)
        .unwrap_or(chrono_tz::Tz::UTC);
    let xml = client
        .journal(server.state.revision)
        .await
        .map_err(|e| e.to_string())?;
    let page = journal::parse(&xml, zone)?;
    let mut orders: Vec<IikoId> = Vec::new();
    for event in &page.events {
        if let Some(order) = journal::order_of(event)
            && !orders.contains(&order)
        {
            orders.push(order);
        }
    }
    let mut states = iiko
        .servers
        .states(server.id, &orders)
        .await
        .map_err(|e| e.to_string())?;
    let unit = match server.unit {
        Some(unit) => unit,
        None => tillwire_units::Units(&iiko.platform.store)
            .default_unit()
            .await
            .map_err(|e| e.to_string())?
            .map(|u| u.unit_id())
            .ok_or("no unit for this iikoServer, and no default unit")?,
    };
    let placement = Placement {
        unit,
        zone,
        products: Default::default(),
    };
    let mut changed = 0;
    for order in &orders {
        let state = states.entry(order.clone()).or_default();
        let before = state.timestamp;
        for event in page
            .events
            .iter()
            .filter(|e| journal::order_of(e).as_ref() == Some(order))
        {
            state.apply(event)?;
        }
        if state.timestamp == before {
            continue;
        }
        match iiko
            .intake
            .apply_order(&state.order(order, &server.organization, zone), &placement)
            .await
        {
            Ok(_) => changed += 1,
            Err(Failure::Skip(_)) => {}
            // An order that cannot be applied must not hold the journal up; the log says why.
            Err(Failure::Fail(reason)) => {
                tracing::warn!(order = %order, %reason, "iiko: a journal order could not be applied");
            }
            Err(Failure::Transient(reason)) => return Err(reason),
        }
    }
    iiko.servers
        .save(server.id, &states, page.revision)
        .await
        .map_err(|e| e.to_string())?;
    Ok(changed)
}

/// How often today's running sales figures are fetched again.
const SALES_EVERY_MS: i64 = 15 * 60 * 1000;
/// How many past days are kept up to date.
const SALES_BACKFILL_DAYS: i64 = 7;

/// Today's sales figures when they are older than a quarter of an hour, and the past week's days not kept for
/// good: yesterday's is final once the business day's rollover hour has passed on the server's clock (orders
/// opened late are paid after midnight).
pub async fn fetch_sales(
    iiko: &Iiko,
    server: &Server,
    client: &ServerClient,
) -> Result<(), String> {
    let zone = server
        .zone
        .or(iiko.platform.settings.timezone)
        .unwrap_or(chrono_tz::Tz::UTC);
    let unit = match server.unit {
        Some(unit) => unit,
        None => match tillwire_units::Units(&iiko.platform.store)
            .default_unit()
            .await
            .map_err(|e| e.to_string())?
        {
            Some(unit) => unit.unit_id(),
            None => return Ok(()),
        },
    };
    let local = Utc::now().with_timezone(&zone).naive_local();
    let today = local.date();
    let yesterday = today - chrono::TimeDelta::days(1);
    let settled = chrono::Timelike::hour(&local) >= iiko.kitchen.settings.day_rollover_hour;
    // The past week's days not kept for good (all of them the first time a server is read, so the pages and the
    // summary have a history at once); yesterday counts as final only after the rollover hour.
    let past = iiko
        .reports
        .days(
            unit,
            today - chrono::TimeDelta::days(SALES_BACKFILL_DAYS),
            yesterday,
        )
        .await
        .map_err(|e| e.to_string())?;
    for back in (1..=SALES_BACKFILL_DAYS).rev() {
        let day = today - chrono::TimeDelta::days(back);
        let complete = day < yesterday || settled;
        let kept = past.iter().find(|d| d.day == day.to_string());
        if kept.is_none() || (complete && kept.is_some_and(|d| !d.complete)) {
            iiko.reports
                .fetch(client, unit, day, complete)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let kept = iiko
        .reports
        .day(unit, today)
        .await
        .map_err(|e| e.to_string())?;
    if kept.is_none_or(|day| tillwire_platform::now_ms() - day.fetched_ms >= SALES_EVERY_MS) {
        iiko.reports
            .fetch(client, unit, today, false)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// How often an organization's menu (product codes) is read again.
const MENU_EVERY: Duration = Duration::from_secs(3600);

/// Reads the organization's menu (iikoCloud's nomenclature) and keeps each product's code, so a product whose code
/// is a ware's makes it without a mapping.
pub async fn refresh_menu(
    iiko: &Iiko,
    connection: &Connection,
    client: &CloudClient,
) -> Result<usize, String> {
    let menu: Value = client
        .call(
            "/api/1/nomenclature",
            &json!({"organizationId": connection.organization.as_str()}),
        )
        .await
        .map_err(|e| e.to_string())?;
    let products: Vec<(IikoId, String, String)> = menu
        .get("products")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|product| {
            let id = product
                .get("id")
                .and_then(Value::as_str)
                .and_then(IikoId::parse)?;
            let code = product
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_owned();
            let name = product
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            Some((id, code, name))
        })
        .collect();
    iiko.connections
        .store_menu(&connection.organization, &products)
        .await
        .map_err(|e| e.to_string())?;
    Ok(products.len())
}

/// Deliveries made or due within the last day, in every status.
async fn by_date(client: &CloudClient, connection: &Connection) -> Result<Value, CloudError> {
    let now = Utc::now();
    let from = (now - chrono::TimeDelta::days(1)).naive_utc();
    let to = (now + chrono::TimeDelta::days(1)).naive_utc();
    client
        .call(
            "/api/1/deliveries/by_delivery_date_and_status",
            &json!({
                "organizationIds": [connection.organization.as_str()],
                "deliveryDateFrom": from.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                "deliveryDateTo": to.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                "statuses": ["Unconfirmed", "WaitCooking", "ReadyForCooking", "CookingStarted", "CookingCompleted",
                             "Waiting", "OnWay", "Delivered", "Closed", "Cancelled"],
                "sourceKeys": null,
            }),
        )
        .await
}

/// A day ago on the terminals' wall clock (the organization's first terminal group's zone; the wider of the
/// possible windows is harmless, an order seen twice is skipped).
async fn day_ago(iiko: &Iiko, connection: &Connection) -> String {
    let zone = read!(&iiko.platform.store, db => sqlx::query_as::<_, (String,)>(
        "SELECT time_zone FROM iiko_terminal_groups WHERE organization_id = $1 ORDER BY id LIMIT 1",
    )
    .bind(connection.organization.as_str())
    .fetch_optional(db)
    .await)
    .ok()
    .flatten()
    .and_then(|(zone,)| timezone::zone(&zone))
    .unwrap_or(chrono_tz::Tz::UTC);
    (Utc::now() - chrono::TimeDelta::days(1))
        .with_timezone(&zone)
        .naive_local()
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// Keeps the orders whose version is newer than the one applied (one read for them all).
async fn newer_than_applied(
    iiko: &Iiko,
    organization: &IikoId,
    received: Vec<Received>,
) -> Result<Vec<Received>, PollError> {
    if received.is_empty() {
        return Ok(received);
    }
    let keys: Vec<&str> = received
        .iter()
        .filter_map(|event| event.order_key.as_ref().map(IikoId::as_str))
        .collect();
    let mut applied: Vec<(String, i64)> = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT order_key, applied_timestamp FROM iiko_orders WHERE organization_id = $1 AND order_key IN ({})",
            placeholders.join(", ")
        );
        let rows: Vec<(String, i64)> = read!(&iiko.platform.store, db => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(organization.as_str());
            for key in chunk {
                query = query.bind(*key);
            }
            query.fetch_all(db).await
        })?;
        applied.extend(rows);
    }
    let applied: std::collections::HashMap<String, i64> = applied.into_iter().collect();
    Ok(received
        .into_iter()
        .filter(|event| match (&event.order_key, event.timestamp) {
            (Some(key), Some(timestamp)) => {
                applied.get(key.as_str()).is_none_or(|at| timestamp > *at)
            }
            _ => true,
        })
        .collect())
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("{0}")]
    Store(String),
}

impl From<HttpError> for PollError {
    fn from(error: HttpError) -> Self {
        PollError::Store(error.to_string())
    }
}

impl From<sqlx::Error> for PollError {
    fn from(error: sqlx::Error) -> Self {
        PollError::Store(error.to_string())
    }
}
