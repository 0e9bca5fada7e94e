//! What the admin pages read and nothing writes here: the inbox with its filters, page by page; the orders
//! applied; the products seen with their mapping; and a unit's wares, offered when a product is mapped.

use tillwire_platform::{HttpError, Store, read};
use tillwire_units::UnitId;

use crate::model::IikoId;

/// Inbox rows on one page.
pub const INBOX_PAGE: i64 = 50;

/// Where an inbox row stands (`iiko_inbox.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxState {
    Received,
    Processed,
    Skipped,
    Failed,
}

impl InboxState {
    pub const ALL: [InboxState; 4] = [
        InboxState::Received,
        InboxState::Processed,
        InboxState::Skipped,
        InboxState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InboxState::Received => "received",
            InboxState::Processed => "processed",
            InboxState::Skipped => "skipped",
            InboxState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }
}

/// Which inbox rows a page shows.
#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    pub state: Option<InboxState>,
    pub organization: Option<IikoId>,
    /// From 0, newest first.
    pub page: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InboxRow {
    pub id: i64,
    pub organization_id: String,
    pub source: String,
    pub event_type: String,
    pub order_key: Option<String>,
    pub received_ms: i64,
    pub state: String,
    pub outcome: Option<String>,
    pub body: String,
}

/// One page of the inbox, newest first, and whether an older page follows.
pub async fn inbox(
    store: &Store,
    filter: &InboxFilter,
) -> Result<(Vec<InboxRow>, bool), HttpError> {
    let mut rows: Vec<InboxRow> = read!(store, db => sqlx::query_as(
        "SELECT id, organization_id, source, event_type, order_key, received_ms, state, outcome, body FROM iiko_inbox
         WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR organization_id = $2)
         ORDER BY id DESC LIMIT $3 OFFSET $4",
    )
    .bind(filter.state.map(InboxState::as_str))
    .bind(filter.organization.as_ref().map(IikoId::as_str))
    .bind(INBOX_PAGE + 1)
    .bind(filter.page.max(0) * INBOX_PAGE)
    .fetch_all(db)
    .await)?;
    let more = rows.len() as i64 > INBOX_PAGE;
    rows.truncate(INBOX_PAGE as usize);
    Ok((rows, more))
}

/// An iiko order as last applied to the queue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppliedOrder {
    pub order_key: String,
    pub kind: String,
    pub number: Option<String>,
    pub status: String,
    pub unit_id: Option<i64>,
    pub queue_number: Option<i64>,
    pub updated_ms: i64,
}

/// The organization's orders applied most recently.
pub async fn orders(
    store: &Store,
    organization: &IikoId,
    limit: i64,
) -> Result<Vec<AppliedOrder>, HttpError> {
    Ok(read!(store, db => sqlx::query_as(
        "SELECT order_key, kind, number, status, unit_id, queue_number, updated_ms FROM iiko_orders
         WHERE organization_id = $1 ORDER BY updated_ms DESC, order_key LIMIT $2",
    )
    .bind(organization.as_str())
    .bind(limit)
    .fetch_all(db)
    .await)?)
}

/// A product seen on the organization's orders.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SeenProduct {
    pub product_id: String,
    pub name: String,
    pub seen: i64,
    /// Whether it made something the last time it came (by any route: the mapping, the settings file, its code).
    pub mapped: bool,
    /// The mapping page's choice.
    pub ware_code: Option<String>,
    pub last_seen_ms: i64,
}

/// The organization's products: those that make nothing first (they need a mapping), the most frequent first.
pub async fn products(store: &Store, organization: &IikoId) -> Result<Vec<SeenProduct>, HttpError> {
    Ok(read!(store, db => sqlx::query_as(
        // Products seen on orders, and those mapped: the menu's others would bury them.
        "SELECT product_id, name, seen, mapped, ware_code, last_seen_ms FROM iiko_products
         WHERE organization_id = $1 AND (seen > 0 OR ware_code IS NOT NULL)
         ORDER BY CASE WHEN mapped OR ware_code IS NOT NULL THEN 1 ELSE 0 END, seen DESC, name, product_id",
    )
    .bind(organization.as_str())
    .fetch_all(db)
    .await)?)
}

/// Organizations with products seen (an iikoServer's may have no cloud connection).
pub async fn product_organizations(store: &Store) -> Result<Vec<String>, HttpError> {
    let rows: Vec<(String,)> = read!(store, db => sqlx::query_as(
        "SELECT DISTINCT organization_id FROM iiko_products ORDER BY organization_id",
    )
    .fetch_all(db)
    .await)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// A unit's wares (code, name), by code: what a product can be mapped to.
pub async fn wares(store: &Store, unit: UnitId) -> Result<Vec<(String, String)>, HttpError> {
    Ok(read!(store, db => sqlx::query_as(
        "SELECT code, full_name FROM wares WHERE unit_id = $1 ORDER BY code",
    )
    .bind(unit.0)
    .fetch_all(db)
    .await)?)
}
