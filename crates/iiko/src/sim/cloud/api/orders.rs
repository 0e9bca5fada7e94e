//! Reading orders: deliveries (B.5) and table orders (B.6), with their filters.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, check_organizations, parse};
use crate::sim::cloud::state::{DELIVERY_STATUSES, Inner, Kind, Order, TABLE_STATUSES};
use crate::sim::cloud::zones;

/// `by_id` takes at most this many ids.
const MAX_IDS: usize = 200;

fn check_statuses(statuses: Option<&[String]>, known: &[&str]) -> Result<(), ApiError> {
    match statuses
        .unwrap_or_default()
        .iter()
        .find(|status| !known.contains(&status.as_str()))
    {
        Some(unknown) => Err(ApiError::bad(format!("Unknown status {unknown:?}"))),
        None => Ok(()),
    }
}

fn local_time(text: &str, field: &str) -> Result<NaiveDateTime, ApiError> {
    zones::parse(text).ok_or_else(|| {
        ApiError::bad(format!(
            "{field}: {text:?} is not a date-time yyyy-MM-dd HH:mm:ss.fff"
        ))
    })
}

/// `orderIds` XOR `posOrderIds`, at most [`MAX_IDS`].
fn wanted_ids(
    order_ids: Option<Vec<String>>,
    pos_order_ids: Option<Vec<String>>,
) -> Result<(HashSet<String>, bool), ApiError> {
    let (ids, by_pos) = match (order_ids, pos_order_ids) {
        (Some(ids), None) => (ids, false),
        (None, Some(ids)) => (ids, true),
        _ => return Err(ApiError::bad("Give either orderIds or posOrderIds")),
    };
    if ids.len() > MAX_IDS {
        return Err(ApiError::bad(format!("At most {MAX_IDS} ids")));
    }
    Ok((ids.into_iter().collect(), by_pos))
}

/// Deliveries grouped by the organizations asked for, with the current revision.
fn by_organizations(
    inner: &Inner,
    organizations: &[String],
    keep: impl Fn(&Order) -> bool,
) -> Value {
    let groups: Vec<Value> = organizations
        .iter()
        .map(|org| {
            let orders: Vec<Value> = inner
                .orders
                .iter()
                .filter(|order| order.kind == Kind::Delivery && &order.organization == org)
                .filter(|order| keep(order))
                .map(|order| inner.snapshot(order))
                .collect();
            json!({"organizationId": org, "orders": orders})
        })
        .collect();
    json!({"maxRevision": inner.revision, "ordersByOrganizations": groups})
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveriesByIdRequest {
    organization_id: String,
    order_ids: Option<Vec<String>>,
    pos_order_ids: Option<Vec<String>>,
}

pub(super) fn deliveries_by_id(inner: &mut Inner, _: &str, body: &[u8]) -> Result<Value, ApiError> {
    let request: DeliveriesByIdRequest = parse(body)?;
    check_organizations(inner, std::slice::from_ref(&request.organization_id))?;
    let (ids, by_pos) = wanted_ids(request.order_ids, request.pos_order_ids)?;
    let orders: Vec<Value> = inner
        .orders
        .iter()
        .filter(|order| {
            order.kind == Kind::Delivery
                && order.organization == request.organization_id
                && ids.contains(if by_pos { &order.pos_id } else { &order.id })
        })
        .map(|order| inner.snapshot(order))
        .collect();
    Ok(json!({"orders": orders}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveriesByDateRequest {
    organization_ids: Vec<String>,
    delivery_date_from: String,
    delivery_date_to: Option<String>,
    statuses: Option<Vec<String>>,
}

/// Deliveries whose `completeBefore`, in their terminal group's time, falls within the dates.
pub(super) fn deliveries_by_date(
    inner: &mut Inner,
    _: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let request: DeliveriesByDateRequest = parse(body)?;
    check_organizations(inner, &request.organization_ids)?;
    check_statuses(request.statuses.as_deref(), &DELIVERY_STATUSES)?;
    let from = local_time(&request.delivery_date_from, "deliveryDateFrom")?;
    let to = match &request.delivery_date_to {
        Some(to) => Some(local_time(to, "deliveryDateTo")?),
        None => None,
    };
    Ok(by_organizations(
        inner,
        &request.organization_ids,
        |order| {
            let date = inner.local(&order.terminal_group, Inner::complete_before(order));
            date >= from
                && to.is_none_or(|to| date <= to)
                && request
                    .statuses
                    .as_ref()
                    .is_none_or(|statuses| statuses.contains(&order.status))
        },
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveriesByRevisionRequest {
    start_revision: Option<i64>,
    organization_ids: Vec<String>,
}

pub(super) fn deliveries_by_revision(
    inner: &mut Inner,
    _: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let request: DeliveriesByRevisionRequest = parse(body)?;
    check_organizations(inner, &request.organization_ids)?;
    let start = request.start_revision.unwrap_or(0);
    if inner.revision_too_old(start) {
        return Err(ApiError::bad(format!(
            "Revision {start} is older than the maximum revision offset of 3 hours"
        )));
    }
    Ok(by_organizations(
        inner,
        &request.organization_ids,
        |order| order.revision > start,
    ))
}

// Table orders (B.6).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrdersByIdRequest {
    organization_ids: Vec<String>,
    order_ids: Option<Vec<String>>,
    pos_order_ids: Option<Vec<String>>,
}

pub(super) fn orders_by_id(inner: &mut Inner, _: &str, body: &[u8]) -> Result<Value, ApiError> {
    let request: OrdersByIdRequest = parse(body)?;
    check_organizations(inner, &request.organization_ids)?;
    let (ids, by_pos) = wanted_ids(request.order_ids, request.pos_order_ids)?;
    let orders: Vec<Value> = inner
        .orders
        .iter()
        .filter(|order| {
            order.kind == Kind::Table
                && request.organization_ids.contains(&order.organization)
                && ids.contains(if by_pos { &order.pos_id } else { &order.id })
        })
        .map(|order| inner.snapshot(order))
        .collect();
    Ok(json!({"orders": orders}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrdersByTableRequest {
    organization_ids: Vec<String>,
    table_ids: Vec<String>,
    statuses: Option<Vec<String>>,
    date_from: Option<String>,
    date_to: Option<String>,
}

/// Table orders on the tables, by status and by creation in their terminal group's time.
pub(super) fn orders_by_table(inner: &mut Inner, _: &str, body: &[u8]) -> Result<Value, ApiError> {
    let request: OrdersByTableRequest = parse(body)?;
    check_organizations(inner, &request.organization_ids)?;
    check_statuses(request.statuses.as_deref(), &TABLE_STATUSES)?;
    let from = match &request.date_from {
        Some(from) => Some(local_time(from, "dateFrom")?),
        None => None,
    };
    let to = match &request.date_to {
        Some(to) => Some(local_time(to, "dateTo")?),
        None => None,
    };
    let orders: Vec<Value> = inner
        .orders
        .iter()
        .filter(|order| {
            let created = inner.local(&order.terminal_group, order.created);
            order.kind == Kind::Table
                && request.organization_ids.contains(&order.organization)
                && order
                    .tables
                    .iter()
                    .any(|table| request.table_ids.contains(table))
                && request
                    .statuses
                    .as_ref()
                    .is_none_or(|statuses| statuses.contains(&order.status))
                && from.is_none_or(|from| created >= from)
                && to.is_none_or(|to| created <= to)
        })
        .map(|order| inner.snapshot(order))
        .collect();
    Ok(json!({"orders": orders}))
}
