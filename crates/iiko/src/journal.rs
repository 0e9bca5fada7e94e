//! iikoServer's events journal (spec B.12–B.13): how tillwire sees table orders made by hand in iikoFront, which
//! iikoCloud never sees. Everything that depends on the journal's XML is in this module, because its element
//! names are not verified against a real server (spec Part D, item 5): the parser is built on the simulator's
//! answers (`sim::server`, whose notes say which names come from public clients and which are guesses). When a
//! real answer is captured, this module is what changes.
//!
//! An open order is rebuilt from its events: `orderOpened` starts it, `addItemToOrder` adds an item (one event per
//! item: `positionId`, `productId`, `productCode`, `dishes` the name, `rowCount` the amount), `deletedNewItems`
//! removes one, `orderDeleted` cancels it, `orderPaid` closes it (nothing changes for the kitchen). Other types
//! are ignored. The rebuilt order becomes an [`IikoOrder`], applied like a webhook's.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use quick_xml::Reader;
use quick_xml::events::Event;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{IikoId, IikoOrder, Item, OrderKind};

/// One event as the journal gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEvent {
    pub id: String,
    pub date: DateTime<Utc>,
    pub kind: String,
    pub department: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

/// An answer of `/resto/api/events`: its events, in order, and the revision to continue from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalPage {
    pub events: Vec<JournalEvent>,
    pub revision: i64,
}

/// Reads an `eventsList`. An event without an id, type or readable date is an error: skipping it could lose an
/// order's item for good.
pub fn parse(xml: &str, zone: chrono_tz::Tz) -> Result<JournalPage, String> {
    // Not trimmed piece by piece: the spaces around an entity reference belong to the text.
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut events = Vec::new();
    let mut revision = None;
    let mut event: Option<Partial> = None;
    let mut attribute: (Option<String>, Option<String>) = (None, None);
    // An element's text arrives in pieces around entity references (`&amp;`): gathered until it closes.
    let mut text = String::new();
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("the journal is not XML: {e}"))?
        {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                if name == "event" && path.last().map(String::as_str) == Some("eventsList") {
                    event = Some(Partial::default());
                }
                if name == "attribute" {
                    attribute = (None, None);
                }
                path.push(name);
                text.clear();
            }
            Event::Text(piece) => {
                text.push_str(
                    &piece
                        .decode()
                        .map_err(|e| format!("the journal's text: {e}"))?,
                );
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => {
                        let name = reference
                            .decode()
                            .map_err(|e| format!("the journal's text: {e}"))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("an unknown entity &{name};"))?
                            .to_owned()
                    }
                };
                text.push_str(&resolved);
            }
            Event::End(_) => {
                let here: Vec<&str> = path.iter().map(String::as_str).collect();
                let value = std::mem::take(&mut text).trim().to_owned();
                match here.as_slice() {
                    [.., "eventsList", "revision"] => {
                        revision = Some(
                            value
                                .trim()
                                .parse::<i64>()
                                .map_err(|_| format!("revision {value:?}"))?,
                        );
                    }
                    [.., "event", "attribute", "name"] => attribute.0 = Some(value),
                    [.., "event", "attribute", "value"] => attribute.1 = Some(value),
                    [.., "event", field] => {
                        if let Some(event) = &mut event {
                            match *field {
                                "id" => event.id = Some(value),
                                "date" => event.date = Some(value),
                                "type" => event.kind = Some(value),
                                "departmentId" => event.department = Some(value),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
                let closed = path.pop().unwrap_or_default();
                if closed == "attribute"
                    && let (Some(event), (Some(name), value)) = (&mut event, &attribute)
                {
                    event
                        .attributes
                        .insert(name.clone(), value.clone().unwrap_or_default());
                }
                if closed == "event"
                    && path.last().map(String::as_str) == Some("eventsList")
                    && let Some(done) = event.take()
                {
                    events.push(done.finish(zone)?);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(JournalPage {
        revision: revision.ok_or("the journal has no revision")?,
        events,
    })
}

#[derive(Default)]
struct Partial {
    id: Option<String>,
    date: Option<String>,
    kind: Option<String>,
    department: Option<String>,
    attributes: BTreeMap<String, String>,
}

impl Partial {
    fn finish(self, zone: chrono_tz::Tz) -> Result<JournalEvent, String> {
        let id = self.id.ok_or("an event without an id")?;
        let date = self.date.ok_or_else(|| format!("event {id} has no date"))?;
        let date = read_date(&date, zone).ok_or_else(|| format!("event {id}: date {date:?}"))?;
        Ok(JournalEvent {
            kind: self.kind.ok_or_else(|| format!("event {id} has no type"))?,
            id,
            date,
            department: self.department,
            attributes: self.attributes,
        })
    }
}

/// A date with its offset, or the server's wall clock without one.
fn read_date(text: &str, zone: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.to_utc());
    }
    if let Ok(at) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(at.to_utc());
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|local| crate::timezone::to_utc(local, zone))
}

/// A number as the journal writes it (`175.000000000`), as text without trailing zeros.
fn plain_number(text: &str) -> String {
    match text.trim().parse::<Decimal>() {
        Ok(value) => value.normalize().to_string(),
        Err(_) => text.trim().to_owned(),
    }
}

/// An open order as its events so far describe it; kept between polls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rebuilt {
    pub number: Option<String>,
    pub opened_ms: Option<i64>,
    /// Items by position.
    pub items: BTreeMap<String, RebuiltItem>,
    pub cancelled: bool,
    pub paid: bool,
    /// The version applied last (ms; strictly increasing).
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuiltItem {
    pub product: String,
    pub code: Option<String>,
    pub name: String,
    /// Decimal text, checked when the event was read.
    pub amount: String,
}

/// The order an event is about, when it is an order or dish event.
pub fn order_of(event: &JournalEvent) -> Option<IikoId> {
    event
        .attributes
        .get("orderId")
        .and_then(|id| IikoId::parse(id))
}

impl Rebuilt {
    /// Applies one event of this order. Unknown types change nothing.
    pub fn apply(&mut self, event: &JournalEvent) -> Result<(), String> {
        if self.number.is_none() {
            self.number = event.attributes.get("orderNum").map(|n| plain_number(n));
        }
        match event.kind.as_str() {
            "orderOpened" => {
                self.opened_ms.get_or_insert(event.date.timestamp_millis());
            }
            "addItemToOrder" => {
                let field = |name: &str| {
                    event
                        .attributes
                        .get(name)
                        .map(|v| v.trim().to_owned())
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| format!("event {}: {name} missing", event.id))
                };
                let amount: Decimal = field("rowCount")?
                    .parse()
                    .map_err(|_| format!("event {}: rowCount is not a number", event.id))?;
                self.items.insert(
                    field("positionId")?,
                    RebuiltItem {
                        product: field("productId")?,
                        code: field("productCode").ok(),
                        name: field("dishes").unwrap_or_default(),
                        amount: amount.normalize().to_string(),
                    },
                );
            }
            "deletedNewItems" | "deletedPrintedItems" | "emergencyItemsDeletion" => {
                if let Some(position) = event.attributes.get("positionId") {
                    self.items.remove(position.trim());
                }
            }
            "orderDeleted" => self.cancelled = true,
            "orderPaid" | "orderPaidCredit" | "orderPaidNoCash" => self.paid = true,
            _ => return Ok(()),
        }
        self.timestamp = self.timestamp.max(event.date.timestamp_millis());
        Ok(())
    }

    /// The order as the intake applies it; `zone` is the server's, for the time it was opened.
    pub fn order(&self, id: &IikoId, organization: &IikoId, zone: chrono_tz::Tz) -> IikoOrder {
        IikoOrder {
            kind: OrderKind::Table,
            organization: organization.clone(),
            id: id.clone(),
            pos_id: Some(id.clone()),
            timestamp: self.timestamp,
            number: self.number.clone(),
            status: if self.cancelled {
                "Deleted".into()
            } else if self.paid {
                "Closed".into()
            } else {
                "New".into()
            },
            created_local: self
                .opened_ms
                .and_then(DateTime::from_timestamp_millis)
                .map(|at| at.with_timezone(&zone).naive_local()),
            terminal_group: None,
            items: self
                .items
                .iter()
                .filter_map(|(position, item)| {
                    Some(Item {
                        position_id: Some(position.clone()),
                        product: IikoId::parse(&item.product)?,
                        product_name: item.name.clone(),
                        code: item.code.clone(),
                        amount: item.amount.parse().ok()?,
                        deleted: false,
                    })
                })
                .collect(),
            cancelled: self.cancelled,
            failed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = "6b1f0000-0000-4000-8000-000000000001";
    const PRODUCT: &str = "9a000000-0000-4000-8000-000000000002";

    fn event(kind: &str, date: &str, extra: &str) -> String {
        format!(
            "<event><id>{kind}-{date}</id><date>{date}</date><type>{kind}</type><departmentId>D</departmentId>\
             <attribute><name>orderId</name><value>{ORDER}</value><type>resto.db.Guid</type></attribute>\
             <attribute><name>orderNum</name><value>175.000000000</value></attribute>{extra}</event>"
        )
    }

    fn item(position: &str, amount: &str) -> String {
        format!(
            "<attribute><name>dishes</name><value>Маргарита &amp; Ко</value></attribute>\
             <attribute><name>rowCount</name><value>{amount}</value></attribute>\
             <attribute><name>productId</name><value>{PRODUCT}</value></attribute>\
             <attribute><name>productCode</name><value>PIZZA-MARG</value></attribute>\
             <attribute><name>positionId</name><value>{position}</value></attribute>"
        )
    }

    #[test]
    fn an_order_is_rebuilt_from_its_events() {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><eventsList>{}{}{}{}{}<revision>5</revision></eventsList>",
            event("orderOpened", "2024-05-01T12:29:00.000+03:00", ""),
            event(
                "addItemToOrder",
                "2024-05-01T12:30:00.000+03:00",
                &item("p1", "2.000000000")
            ),
            event(
                "addItemToOrder",
                "2024-05-01T12:30:00.500+03:00",
                &item("p2", "0.500000000")
            ),
            event(
                "deletedNewItems",
                "2024-05-01T12:31:00.000+03:00",
                "<attribute><name>positionId</name><value>p1</value></attribute>"
            ),
            event("sessionOpened", "2024-05-01T12:32:00", ""),
        );
        let page = parse(&xml, chrono_tz::Europe::Moscow).unwrap();
        assert_eq!(page.revision, 5);
        assert_eq!(page.events.len(), 5);
        // Without an offset, the server's wall clock.
        assert_eq!(
            page.events[4].date.to_rfc3339(),
            "2024-05-01T09:32:00+00:00"
        );
        let mut rebuilt = Rebuilt::default();
        for event in &page.events {
            rebuilt.apply(event).unwrap();
        }
        assert_eq!(rebuilt.number.as_deref(), Some("175"));
        assert_eq!(rebuilt.items.len(), 1);
        let item = &rebuilt.items["p2"];
        assert_eq!(
            (item.amount.as_str(), item.name.as_str()),
            ("0.5", "Маргарита & Ко")
        );
        let id = IikoId::parse(ORDER).unwrap();
        let order = rebuilt.order(&id, &id, chrono_tz::Europe::Moscow);
        assert_eq!(
            order.timestamp, 1714555860000,
            "the last order event's time, not the session's"
        );
        assert_eq!(order.items[0].code.as_deref(), Some("PIZZA-MARG"));
        assert!(!order.cancelled);
        rebuilt
            .apply(
                &parse(
                    &format!(
                        "<eventsList>{}<revision>6</revision></eventsList>",
                        event("orderDeleted", "2024-05-01T12:40:00.000+03:00", "")
                    ),
                    chrono_tz::Europe::Moscow,
                )
                .unwrap()
                .events[0],
            )
            .unwrap();
        assert!(rebuilt.order(&id, &id, chrono_tz::UTC).cancelled);
    }

    #[test]
    fn an_unreadable_journal_is_an_error_not_an_empty_page() {
        assert!(parse("<eventsList><event><id>x</id><type>orderOpened</type></event><revision>1</revision></eventsList>", chrono_tz::UTC).is_err());
        assert!(parse("<eventsList></eventsList>", chrono_tz::UTC).is_err());
        assert!(parse("not xml <", chrono_tz::UTC).is_err());
        let empty = parse(
            "<eventsList><revision>0</revision></eventsList>",
            chrono_tz::UTC,
        )
        .unwrap();
        assert!(empty.events.is_empty());
    }
}
