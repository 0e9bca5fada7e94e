//! What the simulated iikoCloud knows: logins and tokens, the world (organizations, terminal groups, tables,
//! products), orders with their revisions, the webhook outbox, faults and request counts. Every change of an
//! order goes through [`Inner::changed`], which stamps it and queues its webhook event.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{Fault, WebhookAttempt, WebhookBehaviour, zones};
use crate::sim::uuid;

/// Table order statuses (B.7).
pub(super) const TABLE_STATUSES: [&str; 4] = ["New", "Bill", "Closed", "Deleted"];
/// Delivery statuses (B.7).
pub(super) const DELIVERY_STATUSES: [&str; 10] = [
    "Unconfirmed",
    "WaitCooking",
    "ReadyForCooking",
    "CookingStarted",
    "CookingCompleted",
    "Waiting",
    "OnWay",
    "Delivered",
    "Closed",
    "Cancelled",
];
/// Order item statuses (B.7).
pub(super) const ITEM_STATUSES: [&str; 5] = [
    "Added",
    "PrintedNotCooking",
    "CookingStarted",
    "CookingCompleted",
    "Served",
];

/// `by_revision` refuses a start older than this (B.5).
const REVISION_WINDOW: TimeDelta = TimeDelta::hours(3);
/// How long `commands/status` knows a correlationId, and how many it keeps.
const CORRELATION_LIFETIME: TimeDelta = TimeDelta::hours(1);
const CORRELATIONS_KEPT: usize = 10_000;

/// The sim's idea of now: the real clock (pushed on by `advance`), or a frozen instant set by a test.
enum Clock {
    Real { offset: TimeDelta },
    Fixed(DateTime<Utc>),
}

pub(super) struct Token {
    /// The apiLogin (v1) or appId (v2) it was issued to, for `webhooks/settings`' `apiLoginName`.
    pub login: String,
    /// On the monotonic clock plus `Inner::skew`; None: a TTL too long to count.
    deadline: Option<Instant>,
}

pub(super) struct ApiKey {
    pub api_key: String,
    pub app_id: String,
    pub client_secret: String,
}

pub(super) struct Organization {
    pub id: String,
    pub name: String,
}

pub(super) struct TerminalGroup {
    pub id: String,
    pub organization: String,
    pub name: String,
    pub time_zone: String,
    /// The one restaurant section (hall) of the group, which holds the organization's tables.
    pub section: String,
}

pub(super) struct Table {
    pub id: String,
    pub organization: String,
    pub number: i64,
}

pub(super) struct Product {
    pub id: String,
    pub organization: String,
    pub code: String,
    pub name: String,
    pub price: Decimal,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Table,
    Delivery,
}

pub(super) struct Order {
    pub id: String,
    pub pos_id: String,
    pub kind: Kind,
    pub organization: String,
    pub terminal_group: String,
    /// Table orders only.
    pub tables: Vec<String>,
    /// Deliveries only: the regular customer's id.
    pub customer: String,
    pub number: i64,
    pub status: String,
    pub created: DateTime<Utc>,
    /// When the order reached a status, by the field that shows it (`whenClosed`, `whenSended`, …).
    pub times: BTreeMap<&'static str, DateTime<Utc>>,
    pub items: Vec<Item>,
    /// Milliseconds, strictly increasing over all changes.
    pub timestamp: i64,
    pub revision: i64,
}

pub(super) struct Item {
    pub position_id: String,
    pub product_id: String,
    pub product_name: String,
    pub price: Decimal,
    pub amount: Decimal,
    pub status: String,
    pub printed: Option<DateTime<Utc>>,
    /// The deletion method's id once the item is deleted.
    pub deleted: Option<String>,
}

pub(super) struct WebhookSettings {
    pub uri: String,
    pub auth_token: Option<String>,
    pub filter: Value,
    pub login: String,
    /// The `update_settings` body as received.
    pub stored: Value,
}

/// A webhook event waiting in the outbox.
pub(super) struct Event {
    pub organization: String,
    pub body: Value,
}

/// Events taken from the outbox for one POST.
pub(super) struct Batch {
    pub organization: String,
    pub uri: String,
    pub auth_token: Option<String>,
    pub events: Vec<Value>,
}

pub(super) struct Inner {
    pub logins: HashSet<String>,
    pub api_keys: Vec<ApiKey>,
    pub token_ttl: Duration,
    pub tokens: HashMap<String, Token>,
    pub tokens_issued: usize,
    clock: Clock,
    /// How far `advance` has pushed the tokens' lifetimes, which run on the real clock.
    skew: Duration,
    pub organizations: Vec<Organization>,
    pub terminal_groups: Vec<TerminalGroup>,
    pub tables: Vec<Table>,
    pub products: Vec<Product>,
    pub menu_revision: i64,
    pub orders: Vec<Order>,
    pub revision: i64,
    /// When each revision happened: index `r - 1` for revision `r`.
    revision_times: Vec<DateTime<Utc>>,
    last_timestamp: i64,
    pub webhooks: BTreeMap<String, WebhookSettings>,
    pub behaviour: WebhookBehaviour,
    outbox: VecDeque<Event>,
    pub webhook_log: Vec<WebhookAttempt>,
    faults: HashMap<String, VecDeque<Fault>>,
    pub requests: BTreeMap<String, usize>,
    correlations: HashMap<String, DateTime<Utc>>,
    correlation_order: VecDeque<String>,
    /// What the page's script box starts with (the demo's orders).
    pub suggested_script: String,
}

impl Inner {
    pub fn new(login: &str) -> Self {
        Inner {
            logins: HashSet::from([login.to_owned()]),
            api_keys: Vec::new(),
            token_ttl: Duration::from_secs(3600),
            tokens: HashMap::new(),
            tokens_issued: 0,
            clock: Clock::Real {
                offset: TimeDelta::zero(),
            },
            skew: Duration::ZERO,
            organizations: Vec::new(),
            terminal_groups: Vec::new(),
            tables: Vec::new(),
            products: Vec::new(),
            menu_revision: 0,
            orders: Vec::new(),
            revision: 0,
            revision_times: Vec::new(),
            last_timestamp: 0,
            webhooks: BTreeMap::new(),
            behaviour: WebhookBehaviour::default(),
            outbox: VecDeque::new(),
            webhook_log: Vec::new(),
            faults: HashMap::new(),
            requests: BTreeMap::new(),
            correlations: HashMap::new(),
            correlation_order: VecDeque::new(),
            suggested_script: String::new(),
        }
    }

    // The clock.

    pub fn now(&self) -> DateTime<Utc> {
        match self.clock {
            Clock::Real { offset } => Utc::now() + offset,
            Clock::Fixed(at) => at,
        }
    }

    pub fn set_now(&mut self, at: DateTime<Utc>) {
        self.clock = Clock::Fixed(at);
    }

    pub fn advance(&mut self, by: Duration) {
        let delta = TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
        self.clock = match self.clock {
            Clock::Real { offset } => Clock::Real {
                offset: offset + delta,
            },
            Clock::Fixed(at) => Clock::Fixed(at + delta),
        };
        self.skew += by;
    }

    // Tokens and correlation ids.

    pub fn issue_token(&mut self, login: &str) -> String {
        let token = format!("{}{}", uuid().replace('-', ""), uuid().replace('-', ""));
        self.remember_token(token.clone(), login);
        token
    }

    /// Keeps `token` valid for the TTL from now.
    pub fn remember_token(&mut self, token: String, login: &str) {
        self.tokens_issued += 1;
        let deadline = Instant::now().checked_add(self.skew.saturating_add(self.token_ttl));
        self.tokens.insert(
            token,
            Token {
                login: login.to_owned(),
                deadline,
            },
        );
    }

    /// The live token's holder, or None for an unknown, revoked or expired one.
    pub fn token_login(&self, token: &str) -> Option<String> {
        let token = self.tokens.get(token)?;
        let alive = token
            .deadline
            .is_none_or(|deadline| Instant::now().checked_add(self.skew) < Some(deadline));
        alive.then(|| token.login.clone())
    }

    /// A fresh correlationId, remembered for `commands/status`.
    pub fn correlation(&mut self) -> String {
        let id = uuid();
        let now = self.now();
        self.correlations.insert(id.clone(), now);
        self.correlation_order.push_back(id.clone());
        while self.correlation_order.len() > CORRELATIONS_KEPT {
            if let Some(old) = self.correlation_order.pop_front() {
                self.correlations.remove(&old);
            }
        }
        id
    }

    pub fn knows_correlation(&self, id: &str) -> bool {
        self.correlations
            .get(id)
            .is_some_and(|at| self.now() - *at <= CORRELATION_LIFETIME)
    }

    // Faults and counts.

    pub fn add_fault(&mut self, path: &str, fault: Fault, times: usize) {
        let queue = self.faults.entry(path.to_owned()).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    /// Counts a request to `path` and takes the next fault waiting for it.
    pub fn arrive(&mut self, path: &str) -> Option<Fault> {
        *self.requests.entry(path.to_owned()).or_default() += 1;
        self.faults.get_mut(path)?.pop_front()
    }

    // The world.

    pub fn organization(&self, id: &str) -> Option<&Organization> {
        self.organizations.iter().find(|org| org.id == id)
    }

    pub fn terminal_group(&self, id: &str) -> Option<&TerminalGroup> {
        self.terminal_groups.iter().find(|group| group.id == id)
    }

    fn check_organization(&self, id: &str) -> Result<(), String> {
        match self.organization(id) {
            Some(_) => Ok(()),
            None => Err(format!("unknown organization {id}")),
        }
    }

    pub fn add_organization(&mut self, id: &str, name: &str) {
        match self.organizations.iter_mut().find(|org| org.id == id) {
            Some(org) => org.name = name.to_owned(),
            None => self.organizations.push(Organization {
                id: id.to_owned(),
                name: name.to_owned(),
            }),
        }
    }

    pub fn add_terminal_group(
        &mut self,
        organization: &str,
        id: &str,
        name: &str,
        time_zone: &str,
    ) -> Result<(), String> {
        self.check_organization(organization)?;
        self.terminal_groups.retain(|group| group.id != id);
        self.terminal_groups.push(TerminalGroup {
            id: id.to_owned(),
            organization: organization.to_owned(),
            name: name.to_owned(),
            time_zone: time_zone.to_owned(),
            section: uuid(),
        });
        Ok(())
    }

    pub fn add_table(&mut self, organization: &str, id: &str, number: i64) -> Result<(), String> {
        self.check_organization(organization)?;
        self.tables.retain(|table| table.id != id);
        self.tables.push(Table {
            id: id.to_owned(),
            organization: organization.to_owned(),
            number,
        });
        Ok(())
    }

    pub fn add_product(
        &mut self,
        organization: &str,
        id: &str,
        code: &str,
        name: &str,
        price: &str,
    ) -> Result<(), String> {
        self.check_organization(organization)?;
        let price = decimal(price).ok_or_else(|| format!("price {price:?} is not a number"))?;
        self.products.retain(|product| product.id != id);
        self.products.push(Product {
            id: id.to_owned(),
            organization: organization.to_owned(),
            code: code.to_owned(),
            name: name.to_owned(),
            price,
        });
        self.menu_revision += 1;
        Ok(())
    }

    // Orders. Each change returns whether it queued a webhook event.

    pub fn order(&self, id: &str) -> Option<&Order> {
        self.orders.iter().find(|order| order.id == id)
    }

    fn order_index(&self, id: &str) -> Result<usize, String> {
        self.orders
            .iter()
            .position(|order| order.id == id)
            .ok_or_else(|| format!("unknown order {id}"))
    }

    /// A new order of `kind` after the checks both kinds share.
    fn new_order(
        &mut self,
        kind: Kind,
        organization: &str,
        terminal_group: &str,
        id: &str,
        number: i64,
    ) -> Result<Order, String> {
        self.check_organization(organization)?;
        match self.terminal_group(terminal_group) {
            Some(group) if group.organization == organization => {}
            Some(_) => {
                return Err(format!(
                    "terminal group {terminal_group} is not in organization {organization}"
                ));
            }
            None => return Err(format!("unknown terminal group {terminal_group}")),
        }
        if self.order(id).is_some() {
            return Err(format!("order {id} exists already"));
        }
        Ok(Order {
            id: id.to_owned(),
            pos_id: uuid(),
            kind,
            organization: organization.to_owned(),
            terminal_group: terminal_group.to_owned(),
            tables: Vec::new(),
            customer: uuid(),
            number,
            status: match kind {
                Kind::Table => "New",
                Kind::Delivery => "Unconfirmed",
            }
            .to_owned(),
            created: self.now(),
            times: BTreeMap::new(),
            items: Vec::new(),
            timestamp: 0,
            revision: 0,
        })
    }

    pub fn open_table_order(
        &mut self,
        organization: &str,
        terminal_group: &str,
        table: &str,
        id: &str,
        number: i64,
    ) -> Result<bool, String> {
        match self.tables.iter().find(|known| known.id == table) {
            Some(known) if known.organization == organization => {}
            Some(_) => {
                return Err(format!(
                    "table {table} is not in organization {organization}"
                ));
            }
            None => return Err(format!("unknown table {table}")),
        }
        let mut order = self.new_order(Kind::Table, organization, terminal_group, id, number)?;
        order.tables.push(table.to_owned());
        self.orders.push(order);
        Ok(self.changed(self.orders.len() - 1))
    }

    pub fn create_delivery(
        &mut self,
        organization: &str,
        terminal_group: &str,
        id: &str,
        number: i64,
    ) -> Result<bool, String> {
        let order = self.new_order(Kind::Delivery, organization, terminal_group, id, number)?;
        self.orders.push(order);
        Ok(self.changed(self.orders.len() - 1))
    }

    pub fn add_item(
        &mut self,
        order_id: &str,
        position_id: &str,
        product_id: &str,
        amount: &str,
    ) -> Result<bool, String> {
        let index = self.order_index(order_id)?;
        let amount = decimal(amount)
            .filter(|amount| *amount > Decimal::ZERO)
            .ok_or_else(|| format!("amount {amount:?} is not a positive number"))?;
        let organization = &self.orders[index].organization;
        let product = self
            .products
            .iter()
            .find(|product| product.id == product_id && &product.organization == organization)
            .ok_or_else(|| {
                format!("unknown product {product_id} in organization {organization}")
            })?;
        let item = Item {
            position_id: position_id.to_owned(),
            product_id: product.id.clone(),
            product_name: product.name.clone(),
            price: product.price,
            amount,
            status: "Added".to_owned(),
            printed: None,
            deleted: None,
        };
        let order = &mut self.orders[index];
        if order
            .items
            .iter()
            .any(|known| known.position_id == position_id)
        {
            return Err(format!(
                "order {order_id} has position {position_id} already"
            ));
        }
        order.items.push(item);
        Ok(self.changed(index))
    }

    fn item_mut(
        &mut self,
        order_id: &str,
        position_id: &str,
    ) -> Result<(usize, &mut Item), String> {
        let index = self.order_index(order_id)?;
        let item = self.orders[index]
            .items
            .iter_mut()
            .find(|item| item.position_id == position_id)
            .ok_or_else(|| format!("order {order_id} has no position {position_id}"))?;
        Ok((index, item))
    }

    pub fn delete_item(&mut self, order_id: &str, position_id: &str) -> Result<bool, String> {
        let (index, item) = self.item_mut(order_id, position_id)?;
        if item.deleted.is_some() {
            return Err(format!("position {position_id} is deleted already"));
        }
        item.deleted = Some(uuid());
        Ok(self.changed(index))
    }

    pub fn set_item_status(
        &mut self,
        order_id: &str,
        position_id: &str,
        status: &str,
    ) -> Result<bool, String> {
        let status = known(&ITEM_STATUSES, status, "item status")?;
        let now = self.now();
        let (index, item) = self.item_mut(order_id, position_id)?;
        item.status = status.to_owned();
        if status != "Added" && item.printed.is_none() {
            item.printed = Some(now);
        }
        Ok(self.changed(index))
    }

    /// Sets the status of an order of either kind (`kind` None) or of the one kind given.
    pub fn set_status(
        &mut self,
        order_id: &str,
        status: &str,
        kind: Option<Kind>,
    ) -> Result<bool, String> {
        let index = self.order_index(order_id)?;
        let order_kind = self.orders[index].kind;
        if kind.is_some_and(|kind| kind != order_kind) {
            return Err(format!(
                "order {order_id} is a {}",
                match order_kind {
                    Kind::Table => "table order",
                    Kind::Delivery => "delivery",
                }
            ));
        }
        let (statuses, what): (&[&'static str], _) = match order_kind {
            Kind::Table => (&TABLE_STATUSES, "table order status"),
            Kind::Delivery => (&DELIVERY_STATUSES, "delivery status"),
        };
        let status = known(statuses, status, what)?;
        let field = match status {
            "Bill" => Some("whenBillPrinted"),
            "WaitCooking" | "ReadyForCooking" | "CookingStarted" => Some("whenConfirmed"),
            "CookingCompleted" => Some("whenCookingCompleted"),
            "Waiting" => Some("whenPacked"),
            "OnWay" => Some("whenSended"),
            "Delivered" => Some("whenDelivered"),
            "Closed" => Some("whenClosed"),
            "Cancelled" => Some("whenCancelled"),
            _ => None,
        };
        let now = self.now();
        let order = &mut self.orders[index];
        order.status = status.to_owned();
        if let Some(field) = field {
            order.times.entry(field).or_insert(now);
        }
        Ok(self.changed(index))
    }

    /// Stamps order `index` as changed now (timestamp, revision and its time) and queues its webhook event when
    /// the organization has a webhook and webhooks are on; true if one was queued.
    fn changed(&mut self, index: usize) -> bool {
        let now = self.now();
        let timestamp = now.timestamp_millis().max(self.last_timestamp + 1);
        self.last_timestamp = timestamp;
        self.revision += 1;
        self.revision_times.push(now);
        let order = &mut self.orders[index];
        order.timestamp = timestamp;
        order.revision = self.revision;
        let organization = order.organization.clone();
        let kind = order.kind;
        if !self.behaviour.enabled || !self.webhooks.contains_key(&organization) {
            return false;
        }
        let event_type = match kind {
            Kind::Table => "TableOrderUpdate",
            Kind::Delivery => "DeliveryOrderUpdate",
        };
        let body = json!({
            "eventType": event_type,
            "eventTime": zones::format(now.naive_utc()),
            "organizationId": organization,
            "correlationId": self.correlation(),
            "eventInfo": self.snapshot(&self.orders[index]),
        });
        self.outbox.push_back(Event { organization, body });
        true
    }

    /// True when a `by_revision` start is older than the 3-hour window: its change (or, for a start before
    /// every change, the first change) happened more than 3 hours ago by the sim's clock.
    pub fn revision_too_old(&self, start: i64) -> bool {
        let index = usize::try_from(start.max(1) - 1).unwrap_or(0);
        self.revision_times
            .get(index)
            .is_some_and(|at| self.now() - *at > REVISION_WINDOW)
    }

    // Webhook outbox.

    pub fn outbox_is_empty(&self) -> bool {
        self.outbox.is_empty()
    }

    /// The next POST: the oldest event and up to `batch - 1` later ones of the same organization, reversed when
    /// the behaviour says so; events of an organization that has no webhook any more are dropped.
    pub fn take_batch(&mut self) -> Option<Batch> {
        loop {
            let first = self.outbox.pop_front()?;
            let Some(settings) = self.webhooks.get(&first.organization) else {
                continue;
            };
            let (uri, auth_token) = (settings.uri.clone(), settings.auth_token.clone());
            let mut events = vec![first.body];
            let mut position = 0;
            while events.len() < self.behaviour.batch.max(1) && position < self.outbox.len() {
                if self.outbox[position].organization == first.organization {
                    events.extend(self.outbox.remove(position).map(|event| event.body));
                } else {
                    position += 1;
                }
            }
            if self.behaviour.reorder {
                events.reverse();
            }
            return Some(Batch {
                organization: first.organization,
                uri,
                auth_token,
                events,
            });
        }
    }
}

/// `status` if it is one of `statuses`, as the static text.
fn known<'a>(statuses: &[&'a str], status: &str, what: &str) -> Result<&'a str, String> {
    statuses
        .iter()
        .find(|known| **known == status)
        .copied()
        .ok_or_else(|| format!("{status:?} is not a {what} ({})", statuses.join(", ")))
}

/// Decimal text such as `280.50` or `0.5`.
pub(super) fn decimal(text: &str) -> Option<Decimal> {
    Decimal::from_str(text.trim()).ok()
}
