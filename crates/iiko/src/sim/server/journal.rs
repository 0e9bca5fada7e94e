//! The events journal (spec B.12, B.13): what iikoFront did with open orders, as `/resto/api/events` answers it.
//!
//! # Requests
//!
//! - `GET /resto/api/events?key=&from_rev=N`: events with a revision above N.
//! - `GET /resto/api/events?key=&from_time=yyyy-MM-ddTHH:mm:ss.SSS&to_time=…`: events from `from_time`
//!   (included) to `to_time` (excluded), both in the server's local time; either may be left out.
//! - With none of the three: today's events (local day), as a public client notes the real journal does.
//! - `POST /resto/api/events?key=` with
//!   `<eventsRequestData><events><event>orderPaid</event></events><orderNums><orderNum>175</orderNum></orderNums></eventsRequestData>`:
//!   only those types and order numbers (a list left out does not filter), within the query's window as above.
//! - `GET /resto/api/events/metadata?key=`: the event type tree, the `orders` and `dishes` groups.
//!
//! # Answer
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <eventsList>
//!   <event>
//!     <id>3f0c2a4e-8d1b-4c55-9a57-0d8f5b8b1e20</id>
//!     <date>2024-05-01T12:30:00.000+03:00</date>
//!     <type>addItemToOrder</type>
//!     <departmentId>DEPT_ID</departmentId>
//!     <attribute><name>orderId</name><value>6b1f…</value><type>resto.db.Guid</type></attribute>
//!     <attribute><name>orderNum</name><value>175.000000000</value><type>java.math.BigDecimal</type></attribute>
//!     <attribute><name>tableNum</name><value>4.000000000</value><type>java.math.BigDecimal</type></attribute>
//!     <attribute><name>waiter</name><value>Анна</value><type>User</type></attribute>
//!     <attribute><name>openTime</name><value>2024-05-01T12:29:00.000</value><type>java.util.Date</type></attribute>
//!     <attribute><name>sum</name><value>1180.000000000</value><type>java.math.BigDecimal</type></attribute>
//!     <attribute><name>orderSumAfterDiscount</name><value>1180.000000000</value><type>java.math.BigDecimal</type></attribute>
//!     <attribute><name>isBanquet</name><value>false</value><type>java.lang.Boolean</type></attribute>
//!     <attribute><name>dishes</name><value>Маргарита</value><type>java.lang.String</type></attribute>
//!     <attribute><name>rowCount</name><value>2.000000000</value><type>java.math.BigDecimal</type></attribute>
//!     <attribute><name>productId</name><value>PRODUCT_ID</value><type>resto.db.Guid</type></attribute>
//!     <attribute><name>productCode</name><value>PIZZA-MARG</value><type>java.lang.String</type></attribute>
//!     <attribute><name>positionId</name><value>POSITION_ID</value><type>resto.db.Guid</type></attribute>
//!   </event>
//!   <revision>2</revision>
//! </eventsList>
//! ```
//!
//! Every order and dish event carries the order attributes (`orderId` … `isBanquet`); dish events
//! (`addItemToOrder`, `deletedNewItems`) add the item's. One dish event is written per item, so adding three items
//! writes three events. `sum` is the order's sum after the event. `<revision>` is the journal's last revision,
//! whatever the filter, so a client continues with `from_rev=` it. Revisions count up from 1 (0: empty journal).
//!
//! # What is verified, and from where
//!
//! - The element names `eventsList`, `event`, `id`, `date`, `type`, `departmentId`, `attribute` with `name` and
//!   `value`, and the trailing `revision`: xsd-generated classes in a public C# iikoServer client (its file
//!   declares `eventsList { event[], int revision }`, `event { attribute[], date, departmentId, id, type }`,
//!   `eventAttribute { name, value }`), the DTOs of the Rust crate `iiko-server-api-sdk`
//!   (`xml/response/events.rs`), and two Python clients that read `revision`, `event/type` and
//!   `attribute/name|value` from real answers. The metadata's `groupsList`, `group`, `type` (`id`, `name`,
//!   `severity`, `attribute` with `id`, `name`) come from the same C# client and Rust crate.
//! - Event type ids, their groups (`orders`, `dishes`), their English names and their attribute names:
//!   `xeops/iikoExchangeBundle: src/library/iiko/Model/EventType.php`, a copy of the server's metadata.
//! - `orderId` on order and dish events, `dishes` holding an item's name and `rowCount` its amount on
//!   `addItemToOrder`, and `openTime` as `yyyy-MM-ddTHH:mm:ss.SSS` without an offset: a public Python client that
//!   rebuilds open tables from the journal reads them so.
//! - Guessed: the attribute `type` element and its values (the Rust crate names such types; the C# classes have no
//!   such element); `productId`, `productCode` and `positionId` on dish events; numbers written with nine
//!   decimals (a public test fixture does so, and the Python client cuts `orderNum` and `tableNum` at the point);
//!   `date` with milliseconds and the zone offset (a test fixture's form); `waiter` is written as given (real
//!   servers probably send the employee's id); the metadata's `severity` values.

use std::collections::HashMap;
use std::fmt::Write;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use quick_xml::Reader;
use quick_xml::escape::{escape, unescape};
use quick_xml::events::Event;
use rust_decimal::Decimal;
use serde::Serialize;

use super::{Dish, Inner, OpenOrder, SaleLine, decimal};
use crate::sim::uuid;

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalEvent {
    pub revision: i64,
    pub id: String,
    pub date: DateTime<Utc>,
    /// `orderOpened`, `addItemToOrder`, `deletedNewItems`, `orderDeleted`, `orderPaid`.
    pub event_type: String,
    /// The department's id (`departmentId`).
    pub department: String,
    /// Name and value, in the order the XML gives them.
    pub attributes: Vec<(String, String)>,
}

impl JournalEvent {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// iiko's form of a number in the journal: nine decimals.
fn number(value: Decimal) -> String {
    let mut value = value;
    value.rescale(9);
    value.to_string()
}

/// `yyyy-MM-ddTHH:mm:ss.SSS`, the server's local time as iiko writes it.
const LOCAL_TIME: &str = "%Y-%m-%dT%H:%M:%S%.3f";

impl OpenOrder {
    fn sum(&self) -> Decimal {
        self.dishes
            .iter()
            .map(|dish| line_sum(dish).unwrap_or_default())
            .sum()
    }
}

fn line_sum(dish: &Dish) -> Result<Decimal, String> {
    Ok(decimal("amount", &dish.amount)? * decimal("price", &dish.price)?)
}

impl Inner {
    fn open(&self, order_id: &str) -> Result<&OpenOrder, String> {
        self.orders
            .get(order_id)
            .ok_or_else(|| format!("order {order_id} is not open"))
    }

    /// Writes an event about an open order (and one of its items): the order's attributes, then the item's.
    fn write_event(&mut self, event_type: &str, order_id: &str, dish: Option<&Dish>) {
        let order = &self.orders[order_id];
        let sum = number(order.sum());
        let mut attributes = vec![
            ("orderId", order_id.to_owned()),
            ("orderNum", number(order.order_num.into())),
            ("tableNum", number(order.table_num.into())),
            ("waiter", order.waiter.clone()),
            (
                "openTime",
                self.local(order.opened_at).format(LOCAL_TIME).to_string(),
            ),
            ("sum", sum.clone()),
            ("orderSumAfterDiscount", sum),
            ("isBanquet", "false".to_owned()),
        ];
        if let Some(dish) = dish {
            attributes.extend([
                ("dishes", dish.name.clone()),
                (
                    "rowCount",
                    number(decimal("amount", &dish.amount).unwrap_or_default()),
                ),
                ("productId", dish.product_id.clone()),
                ("productCode", dish.code.clone()),
                ("positionId", dish.position_id.clone()),
            ]);
        }
        let event = JournalEvent {
            revision: self.journal.last().map_or(0, |last| last.revision) + 1,
            id: uuid(),
            date: self.now(),
            event_type: event_type.to_owned(),
            department: order.department.clone(),
            attributes: attributes
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        };
        self.journal.push(event);
    }

    pub(super) fn open_order(
        &mut self,
        department: &str,
        order_id: &str,
        order_num: i64,
        table_num: i64,
        waiter: &str,
    ) -> Result<(), String> {
        if self.orders.contains_key(order_id) {
            return Err(format!("order {order_id} is already open"));
        }
        let order = OpenOrder {
            department: department.to_owned(),
            order_num,
            table_num,
            waiter: waiter.to_owned(),
            opened_at: self.now(),
            dishes: Vec::new(),
        };
        self.orders.insert(order_id.to_owned(), order);
        self.write_event("orderOpened", order_id, None);
        Ok(())
    }

    pub(super) fn add_items(&mut self, order_id: &str, dishes: &[Dish]) -> Result<(), String> {
        let order = self.open(order_id)?;
        for (index, dish) in dishes.iter().enumerate() {
            let taken = order
                .dishes
                .iter()
                .chain(&dishes[..index])
                .any(|other| other.position_id == dish.position_id);
            if taken {
                return Err(format!(
                    "position {} is already in order {order_id}",
                    dish.position_id
                ));
            }
            if decimal("amount", &dish.amount)? <= Decimal::ZERO {
                return Err(format!("amount {:?} is not above zero", dish.amount));
            }
            line_sum(dish)?;
        }
        for dish in dishes {
            if let Some(order) = self.orders.get_mut(order_id) {
                order.dishes.push(dish.clone());
            }
            self.write_event("addItemToOrder", order_id, Some(dish));
        }
        Ok(())
    }

    pub(super) fn delete_new_items(
        &mut self,
        order_id: &str,
        position_ids: &[&str],
    ) -> Result<(), String> {
        let order = self.open(order_id)?;
        if let Some(missing) = position_ids
            .iter()
            .find(|id| !order.dishes.iter().any(|dish| dish.position_id == **id))
        {
            return Err(format!("position {missing} is not in order {order_id}"));
        }
        for position_id in position_ids {
            let Some(order) = self.orders.get_mut(order_id) else {
                continue;
            };
            let Some(index) = order
                .dishes
                .iter()
                .position(|dish| dish.position_id == *position_id)
            else {
                // The same position named twice: it went the first time.
                continue;
            };
            let dish = order.dishes.remove(index);
            self.write_event("deletedNewItems", order_id, Some(&dish));
        }
        Ok(())
    }

    pub(super) fn delete_order(&mut self, order_id: &str) -> Result<(), String> {
        self.open(order_id)?;
        self.write_event("orderDeleted", order_id, None);
        self.orders.remove(order_id);
        Ok(())
    }

    pub(super) fn pay_order(&mut self, order_id: &str) -> Result<(), String> {
        self.open(order_id)?;
        self.write_event("orderPaid", order_id, None);
        let Some(order) = self.orders.remove(order_id) else {
            return Ok(());
        };
        let close_time = self.local(self.now());
        let open_date = self.local(order.opened_at).date();
        for dish in &order.dishes {
            let sum = line_sum(dish).unwrap_or_default().round_dp(2).to_string();
            self.sales.push(SaleLine {
                open_date,
                department: order.department.clone(),
                order_id: order_id.to_owned(),
                order_num: order.order_num,
                dish_id: dish.product_id.clone(),
                dish_code: dish.code.clone(),
                dish_name: dish.name.clone(),
                dish_category: String::new(),
                amount: dish.amount.clone(),
                discount_sum: sum.clone(),
                sum,
                order_deleted: false,
                deleted_with_writeoff: false,
                storned: false,
                service_type: None,
                waiter: order.waiter.clone(),
                close_time,
            });
        }
        Ok(())
    }
}

/// Which part of the journal a request asks for.
#[derive(Debug, Default)]
pub(super) struct Window {
    from_rev: Option<i64>,
    from_time: Option<NaiveDateTime>,
    to_time: Option<NaiveDateTime>,
}

/// The window from the query's `from_rev`, `from_time` and `to_time`.
pub(super) fn window(query: &HashMap<String, String>) -> Result<Window, String> {
    let time = |name: &str| {
        query
            .get(name)
            .map(|text| {
                NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| {
                    format!("{name} {text:?} is not a time of the form yyyy-MM-ddTHH:mm:ss.SSS")
                })
            })
            .transpose()
    };
    let from_rev = query
        .get("from_rev")
        .map(|text| {
            text.trim()
                .parse::<i64>()
                .map_err(|_| format!("from_rev {text:?} is not a revision number"))
        })
        .transpose()?;
    Ok(Window {
        from_rev,
        from_time: time("from_time")?,
        to_time: time("to_time")?,
    })
}

/// The event types and order numbers a `POST` asks for; an empty list does not filter.
#[derive(Debug, Default)]
pub(super) struct Filter {
    types: Vec<String>,
    order_nums: Vec<Decimal>,
}

/// Reads an `eventsRequestData` body.
pub(super) fn filter(body: &str) -> Result<Filter, String> {
    let mut reader = Reader::from_str(body);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut filter = Filter::default();
    let mut seen_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|error| format!("the body is not XML: {error}"))?;
        match event {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                if path.is_empty() {
                    if name != "eventsRequestData" {
                        return Err(format!("the body is <{name}>, not <eventsRequestData>"));
                    }
                    seen_root = true;
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(empty) if path.is_empty() => {
                if empty.name().as_ref() != b"eventsRequestData" {
                    return Err("the body is not an eventsRequestData".to_owned());
                }
                seen_root = true;
            }
            Event::Text(part) => text.push_str(&part.decode().map_err(|error| error.to_string())?),
            Event::GeneralRef(reference) => {
                let name = reference.decode().map_err(|error| error.to_string())?;
                let reference = format!("&{name};");
                let resolved = unescape(&reference)
                    .map_err(|error| format!("the body is not XML: {error}"))?;
                text.push_str(&resolved);
            }
            Event::End(_) => {
                let joined = path.join("/");
                let value = text.trim();
                match joined.as_str() {
                    "eventsRequestData/events/event" => filter.types.push(value.to_owned()),
                    "eventsRequestData/orderNums/orderNum" => {
                        filter.order_nums.push(decimal("orderNum", value)?)
                    }
                    _ => {}
                }
                path.pop();
                text.clear();
            }
            Event::Eof if path.is_empty() && seen_root => break,
            Event::Eof => return Err("the body is not a whole eventsRequestData".to_owned()),
            _ => {}
        }
    }
    Ok(filter)
}

impl Inner {
    /// The `eventsList` answer for a window and a filter.
    pub(super) fn events_xml(&self, window: &Window, filter: &Filter) -> String {
        let (from_time, to_time) = if window.from_rev.is_none()
            && window.from_time.is_none()
            && window.to_time.is_none()
        {
            let today = self.local(self.now()).date().and_hms_opt(0, 0, 0);
            let tomorrow = today.and_then(|start| start.checked_add_signed(TimeDelta::days(1)));
            (today, tomorrow)
        } else {
            (window.from_time, window.to_time)
        };
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<eventsList>\n");
        let chosen = self.journal.iter().filter(|event| {
            let local = self.local(event.date);
            window.from_rev.is_none_or(|rev| event.revision > rev)
                && from_time.is_none_or(|from| local >= from)
                && to_time.is_none_or(|to| local < to)
                && (filter.types.is_empty() || filter.types.contains(&event.event_type))
                && (filter.order_nums.is_empty()
                    || event
                        .attribute("orderNum")
                        .and_then(|num| decimal("orderNum", num).ok())
                        .is_some_and(|num| filter.order_nums.contains(&num)))
        });
        for event in chosen {
            let date = event
                .date
                .with_timezone(&self.timezone)
                .format("%Y-%m-%dT%H:%M:%S%.3f%:z");
            let _ = write!(
                xml,
                "  <event>\n    <id>{}</id>\n    <date>{date}</date>\n    <type>{}</type>\n    \
                 <departmentId>{}</departmentId>\n",
                escape(&event.id),
                escape(&event.event_type),
                escape(&event.department)
            );
            for (name, value) in &event.attributes {
                let _ = writeln!(
                    xml,
                    "    <attribute><name>{}</name><value>{}</value><type>{}</type></attribute>",
                    escape(name),
                    escape(value),
                    java_type(name)
                );
            }
            xml.push_str("  </event>\n");
        }
        let revision = self.journal.last().map_or(0, |last| last.revision);
        let _ = write!(xml, "  <revision>{revision}</revision>\n</eventsList>\n");
        xml
    }
}

/// The attribute's value type as the server would name it (a guess, see the module doc).
fn java_type(attribute: &str) -> &'static str {
    match attribute {
        "orderId" | "productId" | "positionId" => "resto.db.Guid",
        "waiter" => "User",
        "openTime" => "java.util.Date",
        "isBanquet" => "java.lang.Boolean",
        "orderNum" | "tableNum" | "sum" | "orderSumAfterDiscount" | "rowCount" => {
            "java.math.BigDecimal"
        }
        _ => "java.lang.String",
    }
}

/// The attributes every order event has, with their names in the server's metadata.
const ORDER_ATTRIBUTES: &[(&str, &str)] = &[
    ("waiter", "Waiter"),
    ("newWaiter", "New responsible person"),
    ("isBanquet", "Banquet order"),
    ("sum", "Amount"),
    ("tableNum", "Table number"),
    ("orderNum", "Order No."),
    ("numGuests", "Number of guests"),
    ("orderSumAfterDiscount", "Amount with discount"),
    ("auth", "Add. authorisation"),
    ("openTime", "Open order"),
];

const DISHES: (&str, &str) = ("dishes", "List of order items");

/// A metadata group: id, name, and its types with their names and extra attributes.
type Group = (
    &'static str,
    &'static str,
    &'static [(
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    )],
);

/// The `orders` and `dishes` groups of spec B.13, named as `EventType.php` (a copy of the metadata) names them.
const GROUPS: &[Group] = &[
    (
        "orders",
        "Work with orders",
        &[
            ("orderOpened", "Open order", &[]),
            ("orderDeleted", "Delete order", &[]),
            ("orderMoved", "Order transfer", &[]),
            ("orderPrechequed", "Guest bill printout", &[]),
            ("orderCancelPrecheque", "Cancellation of guest bill", &[]),
            ("orderCashMemoPrinted", "Print sales receipt", &[]),
            ("orderClosedAtWaiterExpense", "Forced order close", &[]),
            ("orderPrepaid", "Enter prepayment", &[]),
            ("orderPrepayReturned", "Refund of Prepayment", &[]),
            ("orderDeposited", "Enter cash deposit", &[]),
            ("orderDepositReturned", "Refund cash deposit", &[]),
            ("orderReturned", "Void receipt", &[]),
            ("orderPaid", "Order payment", &[]),
            (
                "orderPaidCredit",
                "Payment of order on credit",
                &[("counterAgent", "Contractor")],
            ),
            ("orderPaidNoCash", "Order payment without revenue", &[]),
            (
                "emergencyMoveToPrecheque",
                "Emergency order transfer to guest bill",
                &[],
            ),
            (
                "emergencyPaymentCancel",
                "Emergency deletion of payment",
                &[("paymentType", "Payment type")],
            ),
            ("exceedLimit", "Bill amount limit exceeded", &[]),
            ("lessThanLimit", "Bill amount is less than minimum", &[]),
            (
                "orderBoundToClientCard",
                "Bind order to customer's card",
                &[("cardNumber", "Card number")],
            ),
            (
                "orderUnboundFromClientCard",
                "Unbind order from customer's card",
                &[],
            ),
        ],
    ),
    (
        "dishes",
        "Work with order items",
        &[
            ("deletedNewItems", "Delete unprinted order items", &[DISHES]),
            (
                "deletedPrintedItems",
                "Delete printed order items",
                &[
                    ("employee", "Employee"),
                    ("operationWithWriteoff", "With write-off"),
                ],
            ),
            ("rePrintedBarcode", "Reweighing", &[DISHES]),
            (
                "dishesMoved",
                "Transfer order items to another responsible person",
                &[DISHES],
            ),
            ("dishesMovedTo", "Transfer items to order", &[DISHES]),
            ("dishesMovedFrom", "Transfer items from order", &[DISHES]),
            (
                "dishesMovedAfterCheque",
                "Transfer items to new order after guest bill",
                &[DISHES],
            ),
            (
                "emergencyItemsDeletion",
                "Emergency deletion of order items",
                &[DISHES],
            ),
            ("addItemToOrder", "Add item to order", &[DISHES]),
            (
                "changedItemSize",
                "Changing the size of the position",
                &[DISHES],
            ),
            (
                "serviceChequeForDishesPrinted",
                "Print to kitchen",
                &[DISHES],
            ),
            ("serviceChequeRePrinted", "Reprint for kitchen", &[DISHES]),
            (
                "cookingStatusChangedToNext",
                "Move to next preparation status",
                &[("cookingStatus", "Preparation status")],
            ),
            (
                "cookingStatusChangedToPrevious",
                "Return to previous preparation status",
                &[("cookingStatus", "Preparation status")],
            ),
            ("dishServed", "Serve item", &[DISHES]),
            ("dishServedCancelled", "Cancel serving item", &[DISHES]),
            ("splitOrderItem", "Order item split", &[DISHES]),
            (
                "openPriceApplied",
                "Apply free price",
                &[("openPrice", "Free price")],
            ),
        ],
    ),
];

/// The `groupsList` answer of `events/metadata`.
pub(super) fn metadata_xml() -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<groupsList>\n");
    for (group, group_name, types) in GROUPS {
        let _ = writeln!(
            xml,
            "  <group>\n    <id>{group}</id>\n    <name>{}</name>",
            escape(*group_name)
        );
        for (id, name, extra) in *types {
            let _ = writeln!(
                xml,
                "    <type>\n      <id>{id}</id>\n      <name>{}</name>\n      <severity>0</severity>",
                escape(*name)
            );
            let order_attributes = if *group == "orders" {
                ORDER_ATTRIBUTES
            } else {
                &[]
            };
            for (attribute, label) in order_attributes.iter().chain(extra.iter()) {
                let _ = writeln!(
                    xml,
                    "      <attribute><id>{attribute}</id><name>{}</name></attribute>",
                    escape(*label)
                );
            }
            xml.push_str("    </type>\n");
        }
        xml.push_str("  </group>\n");
    }
    xml.push_str("</groupsList>\n");
    xml
}
