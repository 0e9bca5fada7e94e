//! The area's words: iiko's ids, money read as decimals, and an iiko order as the intake needs it, read from
//! iikoCloud's `OrderInfo` (deliveries) and `TableOrderInfo` (table orders), B.5–B.6 of the spec.
//!
//! Everything iiko sends is read leniently: enums are open (a status this code does not know is kept as its
//! text), fields the intake does not use are ignored, and a missing optional field is `None`. What the intake
//! needs (the order's id, its change timestamp, its items' ids and amounts) must be there and well formed.

use std::fmt;

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

/// An iiko id (a UUID as text), lower-cased so the same id compares equal however it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct IikoId(String);

impl IikoId {
    /// A UUID in its 36-character form.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let shaped = text.len() == 36
            && text.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            });
        shaped.then(|| IikoId(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl IikoId {
    /// A stable id made from `text`, for something iiko gives no id of its own (an iikoServer known by its
    /// address): the first 16 bytes of its SHA-1, shaped as a UUID.
    pub fn derived(text: &str) -> Self {
        use sha1::Digest;
        let hash = hex::encode(&sha1::Sha1::digest(text.as_bytes())[..16]);
        IikoId(format!(
            "{}-{}-{}-{}-{}",
            &hash[0..8],
            &hash[8..12],
            &hash[12..16],
            &hash[16..20],
            &hash[20..32]
        ))
    }
}

impl fmt::Display for IikoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for IikoId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        IikoId::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an iiko id (a UUID)")))
    }
}

/// Money and amounts come as JSON numbers (`double`). Each is read through its shortest decimal text, so
/// `280.1` is 280.1 exactly, never 280.09999….
pub fn decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let value = f64::deserialize(deserializer)?;
    to_decimal(value).ok_or_else(|| serde::de::Error::custom(format!("{value} is not an amount")))
}

pub fn optional_decimal<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    match Option::<f64>::deserialize(deserializer)? {
        None => Ok(None),
        Some(value) => to_decimal(value)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{value} is not an amount"))),
    }
}

fn to_decimal(value: f64) -> Option<Decimal> {
    if !value.is_finite() {
        return None;
    }
    value.to_string().parse().ok()
}

/// Which kind of iiko order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// A dine-in order on a table (`TableOrderInfo`).
    Table,
    /// A delivery or pick-up order (`OrderInfo`).
    Delivery,
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Table => "table",
            OrderKind::Delivery => "delivery",
        }
    }
}

/// An order item: a position on the order with the product it is, how much, and whether it was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Stable within the order; absent on some old answers.
    pub position_id: Option<String>,
    pub product: IikoId,
    pub product_name: String,
    /// The product's code, when the source gives it (the events journal does; iikoCloud's orders do not).
    pub code: Option<String>,
    pub amount: Decimal,
    pub deleted: bool,
}

/// An iiko order as it stands at `timestamp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IikoOrder {
    pub kind: OrderKind,
    pub organization: IikoId,
    /// The order's id in iikoCloud.
    pub id: IikoId,
    /// The order's id on the POS, when iikoCloud knows it: the events journal names orders by it.
    pub pos_id: Option<IikoId>,
    /// When this version was made (ms); a later one replaces it, an earlier or equal one is old news.
    pub timestamp: i64,
    /// iiko's number for it, shown beside the queue number.
    pub number: Option<String>,
    /// iiko's status, as sent (`New`, `CookingStarted`, …; the enums are open).
    pub status: String,
    /// When it was made, on the terminal's wall clock.
    pub created_local: Option<NaiveDateTime>,
    pub terminal_group: Option<IikoId>,
    pub items: Vec<Item>,
    /// Cancelled or deleted in iiko: nothing more is to be made.
    pub cancelled: bool,
    /// iiko could not create it (`creationStatus: Error`): it holds nothing.
    pub failed: bool,
}

impl IikoOrder {
    /// The key orders are known by, whichever door they come through: the POS id when there is one (the journal
    /// knows only it), else the cloud id.
    pub fn key(&self) -> &IikoId {
        self.pos_id.as_ref().unwrap_or(&self.id)
    }

    /// Items still on the order.
    pub fn live_items(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|item| !item.deleted)
    }
}

/// Why an order snapshot could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

/// `OrderInfo` / `TableOrderInfo`, as far as the intake reads them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOrderInfo {
    id: IikoId,
    pos_id: Option<IikoId>,
    organization_id: IikoId,
    timestamp: i64,
    creation_status: Option<String>,
    order: Option<RawOrder>,
    is_deleted: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOrder {
    status: Option<String>,
    when_created: Option<String>,
    number: Option<serde_json::Value>,
    terminal_group_id: Option<IikoId>,
    #[serde(default)]
    items: Vec<serde_json::Value>,
    is_deleted: Option<bool>,
    cancel_info: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProductRef {
    id: IikoId,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawItem {
    #[serde(rename = "type")]
    kind: Option<String>,
    product: Option<RawProductRef>,
    primary_component: Option<RawComponent>,
    #[serde(deserialize_with = "optional_decimal", default)]
    amount: Option<Decimal>,
    position_id: Option<String>,
    deleted: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawComponent {
    product: RawProductRef,
    position_id: Option<String>,
}

impl IikoOrder {
    /// Reads an order snapshot of `kind` (a webhook's `eventInfo`, or an element of a poll's `orders`).
    pub fn from_json(kind: OrderKind, value: &serde_json::Value) -> Result<IikoOrder, Unreadable> {
        let raw = RawOrderInfo::deserialize(value).map_err(|e| Unreadable(e.to_string()))?;
        let failed = raw
            .creation_status
            .as_deref()
            .is_some_and(|status| status.eq_ignore_ascii_case("Error"));
        let order = raw.order;
        let status = order
            .as_ref()
            .and_then(|o| o.status.clone())
            .unwrap_or_default();
        let cancelled_status = match kind {
            OrderKind::Table => status == "Deleted",
            OrderKind::Delivery => status == "Cancelled",
        };
        let deleted = raw.is_deleted == Some(true)
            || order.as_ref().is_some_and(|o| {
                o.is_deleted == Some(true) || o.cancel_info.as_ref().is_some_and(|c| !c.is_null())
            });
        let mut items = Vec::new();
        if let Some(order) = &order {
            for value in &order.items {
                if let Some(item) = read_item(value)? {
                    items.push(item);
                }
            }
        }
        Ok(IikoOrder {
            kind,
            organization: raw.organization_id,
            id: raw.id,
            pos_id: raw.pos_id,
            timestamp: raw.timestamp,
            number: order.as_ref().and_then(|o| match &o.number {
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
                    Some(s.trim().to_owned())
                }
                _ => None,
            }),
            created_local: order
                .as_ref()
                .and_then(|o| o.when_created.as_deref())
                .and_then(crate::timezone::parse_local),
            terminal_group: order.as_ref().and_then(|o| o.terminal_group_id.clone()),
            status,
            items,
            cancelled: cancelled_status || deleted,
            failed,
        })
    }
}

/// A `Product` item, or a `Compound` one (a half-and-half pizza: its primary component is what is made).
/// Services and kinds this code does not know make nothing.
fn read_item(value: &serde_json::Value) -> Result<Option<Item>, Unreadable> {
    let raw = RawItem::deserialize(value).map_err(|e| Unreadable(format!("an item: {e}")))?;
    let (product, position) = match (raw.kind.as_deref(), raw.product, raw.primary_component) {
        (Some("Product") | None, Some(product), _) => (product, raw.position_id),
        (Some("Compound"), _, Some(component)) => {
            (component.product, raw.position_id.or(component.position_id))
        }
        _ => return Ok(None),
    };
    let amount = raw
        .amount
        .ok_or_else(|| Unreadable(format!("item {} has no amount", product.id)))?;
    Ok(Some(Item {
        position_id: position,
        product_name: product.name.unwrap_or_default(),
        product: product.id,
        code: None,
        amount,
        deleted: raw.deleted.is_some_and(|d| !d.is_null()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ORG: &str = "7bc05553-4b68-44e8-b7bc-37be63c6d9e9";

    fn table_order(status: &str, items: serde_json::Value) -> serde_json::Value {
        json!({
            "id": "497F6ECA-6276-4993-BFEB-53CBBBBA6F08", "posId": null, "externalNumber": null,
            "organizationId": ORG, "timestamp": 1714560000000_i64,
            "creationStatus": "Success", "errorInfo": null,
            "order": {"tableIds": [], "status": status, "whenCreated": "2024-05-01 12:00:00.123",
                      "number": 42, "sum": 560.0, "items": items,
                      "terminalGroupId": "4fab19a5-203c-4bf5-94eb-f572aa8b117b", "someNewField": {"x": 1}}
        })
    }

    #[test]
    fn a_table_order_is_read_with_its_items_and_fractional_amounts() {
        let order = IikoOrder::from_json(
            OrderKind::Table,
            &table_order(
                "New",
                json!([
                    {"type": "Product", "product": {"id": "11111111-1111-1111-1111-111111111111", "name": "Борщ"},
                     "amount": 0.1, "price": 280.1, "positionId": "p1", "deleted": null, "status": "Added"},
                    {"type": "Product", "product": {"id": "22222222-2222-2222-2222-222222222222", "name": "Чай"},
                     "amount": 2, "positionId": "p2",
                     "deleted": {"deletionMethod": {"id": "x", "comment": "", "removalType": null}}},
                    {"type": "Service", "service": {"id": "33333333-3333-3333-3333-333333333333", "name": "Доставка"}, "cost": 100},
                    {"type": "Compound", "amount": 1, "primaryComponent": {"product": {"id": "44444444-4444-4444-4444-444444444444", "name": "Пицца ½"}, "positionId": "p4"}},
                    {"type": "SomethingNew", "amount": 1}
                ]),
            ),
        )
        .unwrap();
        assert_eq!(order.id.as_str(), "497f6eca-6276-4993-bfeb-53cbbbba6f08");
        assert_eq!(order.number.as_deref(), Some("42"));
        assert_eq!(order.status, "New");
        assert!(!order.cancelled);
        assert_eq!(order.items.len(), 3);
        assert_eq!(order.items[0].amount.to_string(), "0.1");
        assert!(order.items[1].deleted);
        assert_eq!(order.items[2].position_id.as_deref(), Some("p4"));
        assert_eq!(order.live_items().count(), 2);
        assert_eq!(
            order.created_local.unwrap().to_string(),
            "2024-05-01 12:00:00.123"
        );
    }

    #[test]
    fn deleted_table_orders_and_cancelled_deliveries_are_cancelled() {
        let deleted =
            IikoOrder::from_json(OrderKind::Table, &table_order("Deleted", json!([]))).unwrap();
        assert!(deleted.cancelled);
        let mut delivery = table_order("Cancelled", json!([]));
        delivery["order"]["cancelInfo"] = json!({"whenCancelled": "2024-05-01 13:00:00.000"});
        assert!(
            IikoOrder::from_json(OrderKind::Delivery, &delivery)
                .unwrap()
                .cancelled
        );
        // A table order has no "Cancelled" status; it would be an unknown one, kept as text.
        let odd =
            IikoOrder::from_json(OrderKind::Table, &table_order("Cancelled", json!([]))).unwrap();
        assert!(!odd.cancelled);
        assert_eq!(odd.status, "Cancelled");
    }

    #[test]
    fn what_the_intake_needs_must_be_there() {
        let mut no_id = table_order("New", json!([]));
        no_id["id"] = json!("not-a-uuid");
        assert!(IikoOrder::from_json(OrderKind::Table, &no_id).is_err());
        let no_amount = table_order(
            "New",
            json!([{"type": "Product", "product": {"id": "11111111-1111-1111-1111-111111111111"}}]),
        );
        assert!(IikoOrder::from_json(OrderKind::Table, &no_amount).is_err());
        let mut failed = table_order("New", json!([]));
        failed["creationStatus"] = json!("Error");
        failed["order"] = serde_json::Value::Null;
        assert!(
            IikoOrder::from_json(OrderKind::Table, &failed)
                .unwrap()
                .failed
        );
    }
}
