//! From a received iiko event to a production order.
//!
//! Whatever brings an order (a webhook, a reconciliation poll), its version is first written to the inbox
//! together with a job keyed by the order, in one transaction, and acknowledged; the job then applies it. Keyed
//! jobs run one at a time per order across every instance, so two versions of one order never race: each is
//! compared with the newest version applied (`iiko_orders.applied_timestamp`) and applied only if newer, which
//! makes a duplicate or a late, older webhook a no-op. Applying is a whole-order sync with the kitchen
//! ([`Kitchen::sync_external_order`]), so doing it twice after a crash changes nothing.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tillwire_kitchen::Kitchen;
use tillwire_kitchen::external::{ExternalOrder, ExternalRef, Synced};
use tillwire_kitchen::model::Quantity;
use tillwire_platform::jobs::{Attempt, BackgroundJob, EnqueueJob, JobFailure, NewJob};
use tillwire_platform::{HttpError, Store, now_ms, read, write, write_tx};
use tillwire_units::{UnitId, Units};

use crate::cloud::CloudClient;
use crate::connections::{Connection, Connections, ProductCodes};
use crate::model::{IikoId, IikoOrder, Item, OrderKind};
use crate::timezone;

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Webhook,
    Poll,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Poll => "poll",
        }
    }
}

/// The job applying one inbox row; keyed by its order, so one order's versions go one at a time, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyJob {
    pub inbox: i64,
    pub organization: String,
    pub order: String,
}

impl BackgroundJob for ApplyJob {
    const QUEUE: &'static str = "iiko.apply";
    const MAX_ATTEMPTS: i64 = 12;

    fn key(&self) -> String {
        format!("iiko:{}:{}", self.organization, self.order)
    }
}

/// An event as received: its type, the order it is about (when it is an order event) and its body.
#[derive(Debug, Clone)]
pub struct Received {
    pub organization: IikoId,
    pub event_type: String,
    /// The order's kind, when it is an order event this intake applies.
    pub kind: Option<OrderKind>,
    pub order_key: Option<IikoId>,
    pub timestamp: Option<i64>,
    pub body: Value,
}

impl Received {
    /// Reads one element of a webhook's array. Unknown event types are kept (and skipped): iiko adds new ones.
    pub fn from_webhook(organization: &IikoId, event: &Value) -> Received {
        let event_type = event
            .get("eventType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let kind = match event_type.as_str() {
            "TableOrderUpdate" | "TableOrderError" => Some(OrderKind::Table),
            "DeliveryOrderUpdate" | "DeliveryOrderError" => Some(OrderKind::Delivery),
            _ => None,
        };
        let info = event.get("eventInfo");
        let id = |field: &str| {
            info.and_then(|i| i.get(field))
                .and_then(Value::as_str)
                .and_then(IikoId::parse)
        };
        Received {
            organization: organization.clone(),
            event_type,
            kind,
            order_key: kind.and(id("posId").or_else(|| id("id"))),
            timestamp: info
                .and_then(|i| i.get("timestamp"))
                .and_then(Value::as_i64),
            body: event.clone(),
        }
    }

    /// An order a poll returned, as if it had come as its webhook.
    pub fn from_poll(organization: &IikoId, kind: OrderKind, order: &Value) -> Received {
        let event_type = match kind {
            OrderKind::Table => "TableOrderUpdate",
            OrderKind::Delivery => "DeliveryOrderUpdate",
        };
        let event = serde_json::json!({
            "eventType": event_type,
            "organizationId": organization.as_str(),
            "eventInfo": order,
        });
        Received::from_webhook(organization, &event)
    }
}

/// The inbox and the orders it made.
#[derive(Clone)]
pub struct Intake {
    store: Store,
    kitchen: Kitchen,
    connections: Connections,
}

/// An inbox row as the job reads it.
#[derive(sqlx::FromRow)]
struct InboxRow {
    organization_id: String,
    event_type: String,
    body: String,
    state: String,
}

impl Intake {
    pub fn new(store: Store, kitchen: Kitchen, connections: Connections) -> Self {
        Intake {
            store,
            kitchen,
            connections,
        }
    }

    /// Writes events to the inbox, each order event with its job, in one transaction; unknown types and
    /// events that name no order are stored as skipped.
    pub async fn receive(&self, source: Source, events: &[Received]) -> Result<usize, HttpError> {
        if events.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let queued = write_tx!(&self.store, tx => async {
            let mut queued = 0;
            for event in events {
                let applies = event.kind.is_some() && event.order_key.is_some() && event.timestamp.is_some();
                let (state, outcome) = if applies {
                    ("received", None)
                } else if event.kind.is_some() {
                    ("failed", Some("the event names no order id or timestamp"))
                } else {
                    ("skipped", Some("an event type the intake does not apply"))
                };
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO iiko_inbox (organization_id, source, event_type, order_key, event_timestamp, received_ms, body, state, outcome)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                )
                .bind(event.organization.as_str())
                .bind(source.as_str())
                .bind(&event.event_type)
                .bind(event.order_key.as_ref().map(IikoId::as_str))
                .bind(event.timestamp)
                .bind(now)
                .bind(event.body.to_string())
                .bind(state)
                .bind(outcome)
                .fetch_one(&mut **tx)
                .await?;
                if let (true, Some(order)) = (applies, &event.order_key) {
                    let job = ApplyJob {
                        inbox: id,
                        organization: event.organization.to_string(),
                        order: order.to_string(),
                    };
                    (**tx).enqueue_job(&job.to_job()).await?;
                    queued += 1;
                }
            }
            Ok::<_, sqlx::Error>(queued)
        }
        .await)?;
        Ok(queued)
    }

    /// Deletes settled inbox rows older than `kept_ms` (failed ones stay until retried or looked at).
    pub async fn sweep(&self, kept_ms: i64) -> Result<u64, HttpError> {
        let deleted = write!(&self.store, db => sqlx::query(
            "DELETE FROM iiko_inbox WHERE state IN ('processed', 'skipped') AND received_ms < $1",
        )
        .bind(now_ms() - kept_ms)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(deleted)
    }

    /// Re-queues a failed inbox row (the inbox page's retry).
    pub async fn retry(&self, inbox: i64) -> Result<bool, HttpError> {
        let retried = write_tx!(&self.store, tx => async {
            let row: Option<(String, Option<String>)> = sqlx::query_as(
                "UPDATE iiko_inbox SET state = 'received', outcome = NULL, processed_ms = NULL
                 WHERE id = $1 AND state = 'failed' AND order_key IS NOT NULL RETURNING organization_id, order_key",
            )
            .bind(inbox)
            .fetch_optional(&mut **tx)
            .await?;
            let Some((organization, Some(order))) = row else {
                return Ok::<_, sqlx::Error>(false);
            };
            let job: NewJob = ApplyJob { inbox, organization, order }.to_job();
            (**tx).enqueue_job(&job).await?;
            Ok(true)
        }
        .await)?;
        Ok(retried)
    }

    /// The job: applies one inbox row (see the module's notes).
    #[tracing::instrument(skip_all, fields(inbox = job.inbox, order = %job.order))]
    pub async fn apply(&self, job: ApplyJob, attempt: Attempt) -> Result<(), JobFailure> {
        let row: Option<InboxRow> = read!(&self.store, db => sqlx::query_as(
            "SELECT organization_id, event_type, body, state FROM iiko_inbox WHERE id = $1",
        )
        .bind(job.inbox)
        .fetch_optional(db)
        .await)
        .map_err(retry)?;
        let Some(row) = row.filter(|row| row.state == "received") else {
            return Ok(());
        };
        match self.apply_row(&row).await {
            Ok(outcome) => self.finish(job.inbox, "processed", &outcome).await,
            Err(Failure::Skip(reason)) => self.finish(job.inbox, "skipped", &reason).await,
            Err(Failure::Fail(reason)) => {
                tracing::warn!(%reason, "iiko: an event could not be applied");
                self.finish(job.inbox, "failed", &reason).await
            }
            Err(Failure::Transient(reason)) if attempt.is_last() => {
                self.finish(job.inbox, "failed", &reason).await
            }
            Err(Failure::Transient(reason)) => Err(JobFailure::Retry(reason)),
        }
    }

    async fn finish(&self, inbox: i64, state: &str, outcome: &str) -> Result<(), JobFailure> {
        write!(&self.store, db => sqlx::query(
            "UPDATE iiko_inbox SET state = $2, outcome = $3, processed_ms = $4 WHERE id = $1 AND state = 'received'",
        )
        .bind(inbox)
        .bind(state)
        .bind(outcome)
        .bind(now_ms())
        .execute(db)
        .await
        .map(|_| ()))
        .map_err(retry)?;
        Ok(())
    }

    async fn apply_row(&self, row: &InboxRow) -> Result<String, Failure> {
        let organization = IikoId::parse(&row.organization_id)
            .ok_or_else(|| Failure::Fail("the event's organization is not an id".into()))?;
        let event: Value = serde_json::from_str(&row.body)
            .map_err(|e| Failure::Fail(format!("the stored event is not JSON: {e}")))?;
        let received = Received::from_webhook(&organization, &event);
        let kind = received.kind.ok_or_else(|| {
            Failure::Skip(format!("event type {:?} is not applied", row.event_type))
        })?;
        let info = event.get("eventInfo").unwrap_or(&Value::Null);
        let order = IikoOrder::from_json(kind, info)
            .map_err(|e| Failure::Fail(format!("the order could not be read: {e}")))?;
        // Old news costs one read: no connection, terminal group or mapping is looked up for it.
        if !self.newer(&order).await? {
            return Err(not_newer(&order));
        }
        if order.failed {
            self.record(&order, None, None).await?;
            return Err(Failure::Skip("iiko could not create this order".into()));
        }
        let connection = self
            .connections
            .by_organization(&organization)
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?
            .ok_or_else(|| {
                Failure::Fail(format!(
                    "no iikoCloud connection for organization {organization}"
                ))
            })?;
        let (unit, zone) = self.place(&connection, &order).await?;
        let placement = Placement {
            unit,
            zone,
            products: connection.products.clone(),
        };
        self.apply_placed(&order, &placement).await
    }

    /// Whether `order` is newer than the version of it applied last.
    async fn newer(&self, order: &IikoOrder) -> Result<bool, Failure> {
        let applied: Option<(i64,)> = read!(&self.store, db => sqlx::query_as(
            "SELECT applied_timestamp FROM iiko_orders WHERE organization_id = $1 AND order_key = $2",
        )
        .bind(order.organization.as_str())
        .bind(order.key().as_str())
        .fetch_optional(db)
        .await)
        .map_err(transient)?;
        Ok(applied.is_none_or(|(applied,)| order.timestamp > applied))
    }

    /// Applies an order to the queue of `placement`'s unit, if it is newer than the version applied last.
    pub(crate) async fn apply_order(
        &self,
        order: &IikoOrder,
        placement: &Placement,
    ) -> Result<String, Failure> {
        if !self.newer(order).await? {
            return Err(not_newer(order));
        }
        self.apply_placed(order, placement).await
    }

    /// Applies an order known to be newer than the version applied last.
    async fn apply_placed(
        &self,
        order: &IikoOrder,
        placement: &Placement,
    ) -> Result<String, Failure> {
        let lines = self.lines(placement, order).await?;
        let created = order
            .created_local
            .map(|local| timezone::to_utc(local, placement.zone))
            .unwrap_or_else(chrono::Utc::now);
        let reference = ExternalRef::parse("iiko", order.key().as_str())
            .ok_or_else(|| Failure::Fail("the order id does not fit".into()))?;
        let synced = self
            .kitchen
            .sync_external_order(&ExternalOrder {
                unit: placement.unit,
                reference,
                number: order.number.clone(),
                business_day: self.kitchen.business_day(created),
                lines,
                cancelled: order.cancelled,
                actor: "iiko",
            })
            .await
            .map_err(|e| Failure::Transient(format!("the queue refused it: {e}")))?;
        self.record(order, Some(placement.unit), synced.order())
            .await?;
        Ok(describe(order, synced))
    }

    /// The unit the order's queue is, and the zone its local times are in.
    async fn place(
        &self,
        connection: &Connection,
        order: &IikoOrder,
    ) -> Result<(UnitId, chrono_tz::Tz), Failure> {
        let mut group = None;
        if let Some(id) = &order.terminal_group {
            group = self
                .connections
                .terminal_group(&connection.organization, id)
                .await
                .map_err(|e| Failure::Transient(e.to_string()))?;
            if group.is_none() {
                // A group not seen yet: ask iikoCloud for the organization's groups once.
                refresh_terminal_groups(&self.connections, connection)
                    .await
                    .map_err(|e| Failure::Transient(e.to_string()))?;
                group = self
                    .connections
                    .terminal_group(&connection.organization, id)
                    .await
                    .map_err(|e| Failure::Transient(e.to_string()))?;
            }
        }
        let zone = group
            .as_ref()
            .and_then(|g| timezone::zone(&g.time_zone))
            .or(self.kitchen.platform.settings.timezone)
            .unwrap_or(chrono_tz::Tz::UTC);
        let unit = match group
            .and_then(|g| g.unit_id)
            .map(UnitId)
            .or(connection.unit)
        {
            Some(unit) => unit,
            None => Units(&self.store)
                .default_unit()
                .await
                .map_err(|e| Failure::Transient(e.to_string()))?
                .map(|u| u.unit_id())
                .ok_or_else(|| {
                    Failure::Fail("no unit for this organization, and no default unit".into())
                })?,
        };
        Ok((unit, zone))
    }

    /// The order's live items as ware codes: the mapping page's choice, the settings file's, the product's code
    /// (the item's, else the menu's), or the product's own id, whichever the catalogue has a ware of. Each product is counted, mapped or not, for the
    /// mapping page.
    async fn lines(
        &self,
        placement: &Placement,
        order: &IikoOrder,
    ) -> Result<Vec<(String, Quantity)>, Failure> {
        let ProductCodes {
            mapped,
            menu: menu_codes,
        } = self
            .connections
            .product_codes(&order.organization)
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?;
        let candidates = |item: &Item| -> Vec<String> {
            let id = item.product.as_str().to_owned();
            // The item's own code (the journal gives it), else the menu's.
            let code = item.code.as_ref().or_else(|| menu_codes.get(&id));
            [
                mapped.get(&id),
                placement.products.get(&id),
                code.and_then(|c| placement.products.get(c)),
            ]
            .into_iter()
            .flatten()
            .cloned()
            .chain(code.cloned())
            .chain(std::iter::once(id))
            .collect()
        };
        let mut codes: Vec<String> = order.live_items().flat_map(candidates).collect();
        codes.sort();
        codes.dedup();
        let wanted: Vec<&str> = codes.iter().map(String::as_str).collect();
        let wares = self
            .kitchen
            .wares_by_codes(placement.unit, &wanted)
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?;
        let mut lines = Vec::new();
        let mut seen: Vec<(IikoId, String, bool)> = Vec::new();
        for item in order.live_items() {
            let code = candidates(item)
                .into_iter()
                .find(|code| wares.iter().any(|w| &w.code == code));
            let amount =
                rust_decimal::prelude::ToPrimitive::to_f64(&item.amount).and_then(Quantity::parse);
            if let (Some(code), Some(amount)) = (&code, amount) {
                lines.push((code.clone(), amount));
            }
            if !seen.iter().any(|(p, _, _)| p == &item.product) {
                seen.push((
                    item.product.clone(),
                    item.product_name.clone(),
                    code.is_some(),
                ));
            }
        }
        self.connections
            .count_products(&order.organization, &seen)
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?;
        Ok(lines)
    }

    async fn record(
        &self,
        order: &IikoOrder,
        unit: Option<UnitId>,
        made: Option<(i64, i64)>,
    ) -> Result<(), Failure> {
        write!(&self.store, db => sqlx::query(
            "INSERT INTO iiko_orders (organization_id, order_key, kind, cloud_id, applied_timestamp, number, status, unit_id,
                                      kitchen_order_id, queue_number, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (organization_id, order_key) DO UPDATE SET
                 cloud_id = excluded.cloud_id, number = excluded.number, status = excluded.status,
                 unit_id = COALESCE(excluded.unit_id, iiko_orders.unit_id),
                 kitchen_order_id = COALESCE(excluded.kitchen_order_id, iiko_orders.kitchen_order_id),
                 queue_number = COALESCE(excluded.queue_number, iiko_orders.queue_number),
                 applied_timestamp = excluded.applied_timestamp, updated_ms = excluded.updated_ms
             WHERE iiko_orders.applied_timestamp < excluded.applied_timestamp",
        )
        .bind(order.organization.as_str())
        .bind(order.key().as_str())
        .bind(order.kind.as_str())
        .bind(order.id.as_str())
        .bind(order.timestamp)
        .bind(&order.number)
        .bind(&order.status)
        .bind(unit.map(|u| u.0))
        .bind(made.map(|(id, _)| id))
        .bind(made.map(|(_, number)| number))
        .bind(now_ms())
        .execute(db)
        .await
        .map(|_| ()))
        .map_err(transient)?;
        Ok(())
    }
}

/// Asks iikoCloud for the organization's terminal groups and stores them with their zones.
pub async fn refresh_terminal_groups(
    connections: &Connections,
    connection: &Connection,
) -> Result<(), HttpError> {
    let client = CloudClient::new(&connection.api_url, connection.credentials.auth());
    let answer: Value = client
        .call(
            "/api/1/terminal_groups",
            &serde_json::json!({"organizationIds": [connection.organization.as_str()], "includeDisabled": true}),
        )
        .await
        .map_err(|e| HttpError::internal(anyhow::anyhow!(e)))?;
    let mut groups = Vec::new();
    for list in ["terminalGroups", "terminalGroupsInSleep"] {
        for group in crate::cloud::grouped(&answer, list, "items") {
            let id = group
                .get("id")
                .and_then(Value::as_str)
                .and_then(IikoId::parse);
            let zone = group.get("timeZone").and_then(Value::as_str).unwrap_or("");
            let name = group.get("name").and_then(Value::as_str).unwrap_or("");
            if let Some(id) = id {
                groups.push((id, name.to_owned(), zone.to_owned()));
            }
        }
    }
    connections
        .store_terminal_groups(&connection.organization, &groups)
        .await
}

/// Where an order goes: the unit whose queue it joins, the zone its local times are in, and the settings
/// file's product mapping of its connection.
pub(crate) struct Placement {
    pub unit: UnitId,
    pub zone: chrono_tz::Tz,
    pub products: std::collections::BTreeMap<String, String>,
}

/// Why an event was not applied.
pub(crate) enum Failure {
    /// Nothing to do: an older or repeated version, a type not applied.
    Skip(String),
    /// It cannot be applied as it is; a person must look (the inbox page's retry).
    Fail(String),
    /// Worth another attempt (the database or iikoCloud for a moment).
    Transient(String),
}

fn not_newer(order: &IikoOrder) -> Failure {
    Failure::Skip(format!(
        "version {} is not newer than the one applied",
        order.timestamp
    ))
}

fn transient(error: sqlx::Error) -> Failure {
    Failure::Transient(error.to_string())
}

fn retry(error: sqlx::Error) -> JobFailure {
    JobFailure::Retry(error.to_string())
}

/// What the inbox page says an applied event did.
fn describe(order: &IikoOrder, synced: Synced) -> String {
    let iiko = order
        .number
        .as_deref()
        .map(|n| format!("iiko № {n}: "))
        .unwrap_or_default();
    match synced {
        Synced::Registered(r) => format!("{iiko}queue number {}", r.number),
        Synced::Updated { number, .. } => format!("{iiko}queue number {number} updated"),
        Synced::Cancelled { number, .. } => format!("{iiko}queue number {number} cancelled"),
        Synced::Unchanged { number, .. } => format!("{iiko}queue number {number} unchanged"),
        Synced::NothingToRegister => format!("{iiko}nothing to make"),
    }
}
