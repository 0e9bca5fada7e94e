//! iikoServer (iikoRMS) REST API simulator, built from spec `pos_protocols.md` B.12 and B.13, not from tillwire's
//! client. Everything is served under `/resto/`:
//!
//! - `GET /resto/api/auth?login=&pass=<sha1 hex>[&client-type=]` → `200 text/plain` session key. A wrong login or
//!   hash is `401`. With every licence slot held it is `403`, with a text that says the licence is exhausted.
//! - `GET /resto/api/logout?key=` frees the key's slot.
//! - `GET /resto/get_server_info.jsp?encoding=UTF-8` → a small XML, no key needed.
//! - `POST /resto/api/v2/reports/olap?key=` and `GET /resto/api/v2/reports/olap/columns?key=&reportType=SALES`: the
//!   SALES OLAP over closed order lines ([`olap`] lists the fields).
//! - `GET|POST /resto/api/events?key=` and `GET /resto/api/events/metadata?key=`: the events journal ([`journal`]).
//! - The simulator's own door, outside the key check and the counts: `GET /resto/sim/` (a page of keys, requests,
//!   open orders, the journal and the sales), `GET /resto/sim/state` (the same as JSON), `POST /resto/sim/script`.
//!
//! Any other call under `/resto/api/` with a missing, unknown or expired key is `401 text/plain`. The key is read
//! from the `key` query parameter or from a `key` cookie (one public client sends it as a cookie).
//!
//! # What the simulator watches
//!
//! iikoServer lends every live key one slot of the iikoAPIServer licence (default here: one slot), and its docs ask
//! for one request at a time. So the simulator counts:
//! - [`ServerSim::slots_in_use`]: live keys. A client that forgets `logout` keeps the slot until the key expires.
//!   A key lives [`ServerSim::set_token_ttl`] (1 h by default) from its `auth`, *fixed*: using it does not extend it.
//!   An expired key frees its slot.
//! - [`ServerSim::overlaps`]: requests under `/resto/` (the `/resto/sim/` door excluded) that started while another
//!   was still being answered, whatever their keys. [`ServerSim::set_request_delay`] makes every keyed request take
//!   at least that long, so that overlaps show.
//! - [`ServerSim::requests`]: the last 1000 requests, with `key` and `pass` values masked.
//!
//! [`ServerSim::fail_next`] makes the next requests to a path fail with a given status.
//!
//! # Clock and time zone
//!
//! The server's clock is the real one until [`ServerSim::set_now`] fixes it. [`ServerSim::advance`] moves it on
//! either way. Key expiry, event dates and the dates of paid orders all follow it. The server's local time (event
//! dates, `from_time`/`to_time`, OLAP dates) is in Europe/Moscow unless [`ServerSim::set_timezone`] says otherwise.
//!
//! # Script
//!
//! [`ServerSim::run_script`], `POST /resto/sim/script` and the page `/resto/sim/` take one command a line. `#`
//! starts a comment and values with spaces go in double quotes (`\"` inside). Arguments written `key=value` may
//! come in any order:
//!
//! ```text
//! department DEPT_ID "Демо-пиццерия"
//! open ORDER_ID dept=DEPT_ID num=175 table=4 waiter="Анна"        # orderOpened; table, waiter optional
//! add ORDER_ID POSITION_ID PRODUCT_ID code=PIZZA-MARG name="Маргарита" amount=2 price=590.00   # addItemToOrder
//! delete ORDER_ID POSITION_ID [POSITION_ID …]                     # deletedNewItems
//! pay ORDER_ID                                                     # orderPaid: its dishes become closed sales
//! remove ORDER_ID                                                  # orderDeleted
//! sale date=2024-05-01 dept=DEPT_ID order=ORDER_ID num=42 dish=DISH_ID code=101 name="Борщ" category="Супы" amount=2 sum=560 discount_sum=504
//! wait 500ms                                                       # moves the clock on (ms, s, m, h); nothing sleeps
//! ```
//!
//! `sale` also takes `waiter=`, `service=COURIER|PICKUP`, `storned=true`, `order_deleted=true`,
//! `deleted_with_writeoff=true` and `close=2024-05-01T13:45:00` (default: noon of `date`); `code`, `category` and
//! `discount_sum` (default: `sum`) are optional. A script runs whole or not at all: the first bad line is reported
//! by number ([`ScriptError`]) and nothing of the script is kept. [`demo_script`] is the demo's.
//!
//! A department that was never declared is its own name. The setters tests call (`open_order`, `add_items`, …)
//! panic on a mistake such as an unknown order, so that a wrong test fails where it is wrong.

mod dsl;
mod http;
mod inspect;
pub mod journal;
pub mod olap;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::sim::uuid;
use sha1::{Digest, Sha1};

pub use dsl::{ScriptError, demo_script};
pub use journal::JournalEvent;

/// How long a key lives after its `auth` unless [`ServerSim::set_token_ttl`] says otherwise.
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Requests kept for [`ServerSim::requests`]: enough for any test, bounded for a long demo.
const KEPT_REQUESTS: usize = 1000;

/// An item as iikoFront adds it to an open order. `amount` and `price` are decimal text (`"2"`, `"590.00"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dish {
    /// The order item's own id: `delete_new_items` names it.
    pub position_id: String,
    pub product_id: String,
    pub code: String,
    pub name: String,
    pub amount: String,
    pub price: String,
}

impl Dish {
    pub fn new(
        position_id: &str,
        product_id: &str,
        code: &str,
        name: &str,
        amount: &str,
        price: &str,
    ) -> Self {
        Dish {
            position_id: position_id.to_owned(),
            product_id: product_id.to_owned(),
            code: code.to_owned(),
            name: name.to_owned(),
            amount: amount.to_owned(),
            price: price.to_owned(),
        }
    }
}

/// A closed order's dish line, the unit the SALES OLAP groups and sums. Amounts are decimal text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SaleLine {
    /// The order's accounting day (`OpenDate.Typed`).
    pub open_date: NaiveDate,
    /// A department id given to [`ServerSim::add_department`] (the OLAP answers its name), or a name.
    pub department: String,
    pub order_id: String,
    pub order_num: i64,
    pub dish_id: String,
    pub dish_code: String,
    pub dish_name: String,
    pub dish_category: String,
    pub amount: String,
    /// The sum before discount (`DishSumInt`).
    pub sum: String,
    /// The sum after discount (`DishDiscountSumInt`); empty means no discount.
    pub discount_sum: String,
    pub order_deleted: bool,
    /// `DeletedWithWriteoff`: `DELETED_WITH_WRITEOFF` when set, else `DELETED_WITHOUT_WRITEOFF` for a deleted
    /// order, else `NOT_DELETED`.
    pub deleted_with_writeoff: bool,
    pub storned: bool,
    /// `"COURIER"` or `"PICKUP"`; `None` for a dine-in order.
    pub service_type: Option<String>,
    pub waiter: String,
    /// Local (server) time.
    pub close_time: NaiveDateTime,
}

/// One request the server answered. `query` has the values of `key` and `pass` masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
}

/// The server's clock: the real one shifted by what [`ServerSim::advance`] added, or a fixed instant.
#[derive(Debug, Clone, Copy)]
enum Clock {
    Real(TimeDelta),
    Fixed(DateTime<Utc>),
}

/// An order open on iikoFront: what the journal's order events describe.
#[derive(Debug, Clone)]
struct OpenOrder {
    department: String,
    order_num: i64,
    table_num: i64,
    waiter: String,
    opened_at: DateTime<Utc>,
    dishes: Vec<Dish>,
}

/// A fault armed by [`ServerSim::fail_next`].
#[derive(Debug, Clone)]
struct Failure {
    path: String,
    status: StatusCode,
    remaining: usize,
}

#[derive(Debug, Clone)]
struct Inner {
    login: String,
    /// SHA-1 of the password, lowercase hex.
    pass_hash: String,
    slots: usize,
    token_ttl: Duration,
    request_delay: Duration,
    /// Live keys and when each expires.
    tokens: BTreeMap<String, DateTime<Utc>>,
    in_flight: usize,
    overlaps: usize,
    auth_count: usize,
    logout_count: usize,
    requests: VecDeque<RequestRecord>,
    failures: Vec<Failure>,
    departments: BTreeMap<String, String>,
    sales: Vec<SaleLine>,
    orders: BTreeMap<String, OpenOrder>,
    journal: Vec<JournalEvent>,
    clock: Clock,
    timezone: Tz,
}

/// Why `auth` refused.
enum Refusal {
    Credentials,
    Licence,
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        match self.clock {
            Clock::Real(offset) => Utc::now()
                .checked_add_signed(offset)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            Clock::Fixed(at) => at,
        }
    }

    fn advance(&mut self, by: Duration) -> Result<(), String> {
        let overflow = || format!("moving the clock on by {by:?} overflows it");
        let by = TimeDelta::from_std(by).map_err(|_| overflow())?;
        self.clock = match self.clock {
            Clock::Real(offset) => Clock::Real(offset.checked_add(&by).ok_or_else(overflow)?),
            Clock::Fixed(at) => Clock::Fixed(at.checked_add_signed(by).ok_or_else(overflow)?),
        };
        Ok(())
    }

    fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.timezone).naive_local()
    }

    /// Forgets expired keys, which frees their slots.
    fn expire_tokens(&mut self) {
        let now = self.now();
        self.tokens.retain(|_, expires| *expires > now);
    }

    fn authenticate(&mut self, login: &str, pass: &str) -> Result<String, Refusal> {
        if login != self.login || !pass.eq_ignore_ascii_case(&self.pass_hash) {
            return Err(Refusal::Credentials);
        }
        self.expire_tokens();
        if self.tokens.len() >= self.slots {
            return Err(Refusal::Licence);
        }
        let token = uuid();
        let expires = TimeDelta::from_std(self.token_ttl)
            .ok()
            .and_then(|ttl| self.now().checked_add_signed(ttl))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.tokens.insert(token.clone(), expires);
        self.auth_count += 1;
        Ok(token)
    }

    fn key_is_live(&mut self, key: Option<&str>) -> bool {
        self.expire_tokens();
        key.is_some_and(|key| self.tokens.contains_key(key))
    }

    fn department_name(&self, department: &str) -> String {
        self.departments
            .get(department)
            .cloned()
            .unwrap_or_else(|| department.to_owned())
    }

    fn add_sale(&mut self, mut sale: SaleLine) -> Result<(), String> {
        decimal("amount", &sale.amount)?;
        decimal("sum", &sale.sum)?;
        if sale.discount_sum.trim().is_empty() {
            sale.discount_sum = sale.sum.clone();
        }
        decimal("discount_sum", &sale.discount_sum)?;
        if let Some(service) = &sale.service_type
            && service != "COURIER"
            && service != "PICKUP"
        {
            return Err(format!(
                "service type {service:?} is neither COURIER nor PICKUP"
            ));
        }
        self.sales.push(sale);
        Ok(())
    }
}

/// Decimal text, or a message naming what it was meant to be.
fn decimal(what: &str, text: &str) -> Result<Decimal, String> {
    text.trim()
        .parse::<Decimal>()
        .map_err(|_| format!("{what} {text:?} is not a number"))
}

/// One simulated iikoServer, shared by its HTTP side and the test driving it.
#[derive(Clone)]
pub struct ServerSim {
    inner: Arc<Mutex<Inner>>,
}

impl ServerSim {
    /// A server that accepts `login` with the SHA-1 of `password`: one licence slot, keys that live 1 h, no
    /// request delay, no data, the real clock.
    pub fn new(login: &str, password: &str) -> Self {
        ServerSim {
            inner: Arc::new(Mutex::new(Inner {
                login: login.to_owned(),
                pass_hash: hex::encode(Sha1::digest(password.as_bytes())),
                slots: 1,
                token_ttl: DEFAULT_TOKEN_TTL,
                request_delay: Duration::ZERO,
                tokens: BTreeMap::new(),
                in_flight: 0,
                overlaps: 0,
                auth_count: 0,
                logout_count: 0,
                requests: VecDeque::new(),
                failures: Vec::new(),
                departments: BTreeMap::new(),
                sales: Vec::new(),
                orders: BTreeMap::new(),
                journal: Vec::new(),
                clock: Clock::Real(TimeDelta::zero()),
                timezone: chrono_tz::Europe::Moscow,
            })),
        }
    }

    /// Serves a new simulator on a free loopback port until the process ends; the base URL,
    /// `http://127.0.0.1:PORT/resto/`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(login: &str, password: &str) -> (ServerSim, String) {
        let sim = ServerSim::new(login, password);
        let base = tillwire_platform::server::serve_on_loopback(sim.router())
            .await
            .expect("bind a loopback port for the iikoServer simulator");
        (sim, format!("{base}/resto/"))
    }

    fn with<T>(&self, change: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut inner)
    }

    /// Runs a change that can be refused, panicking with the refusal: for the setters tests call.
    fn apply(&self, what: &str, change: impl FnOnce(&mut Inner) -> Result<(), String>) {
        if let Err(refused) = self.with(change) {
            panic!("iikoServer simulator: {what}: {refused}");
        }
    }

    /// The HTTP side: the iikoServer API behind its key check and fault switches, and the simulator's own
    /// `/resto/sim/` door (not counted, not delayed).
    pub fn router(&self) -> Router {
        http::routes()
            .layer(middleware::from_fn_with_state(self.clone(), http::guard))
            .merge(inspect::routes())
            .with_state(self.clone())
    }

    pub fn set_license_slots(&self, slots: usize) {
        self.with(|inner| inner.slots = slots);
    }

    /// Live keys, each holding one licence slot.
    pub fn slots_in_use(&self) -> usize {
        self.with(|inner| {
            inner.expire_tokens();
            inner.tokens.len()
        })
    }

    /// How long a key lives after its `auth` (fixed, not extended by use); keys already issued keep theirs.
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.with(|inner| inner.token_ttl = ttl);
    }

    /// Every request with a live key takes at least `delay`, so that a second request sent meanwhile overlaps.
    pub fn set_request_delay(&self, delay: Duration) {
        self.with(|inner| inner.request_delay = delay);
    }

    /// Requests that started while another was in flight on this server, whatever their keys.
    pub fn overlaps(&self) -> usize {
        self.with(|inner| inner.overlaps)
    }

    /// Keys handed out.
    pub fn auth_count(&self) -> usize {
        self.with(|inner| inner.auth_count)
    }

    /// Keys given back with `logout`.
    pub fn logout_count(&self) -> usize {
        self.with(|inner| inner.logout_count)
    }

    /// The last requests answered, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.with(|inner| inner.requests.iter().cloned().collect())
    }

    /// The next `times` requests to `path` (e.g. `/resto/api/v2/reports/olap`) are answered `status` with a text
    /// body, after the key check and the request delay.
    ///
    /// # Panics
    /// When `status` is not an HTTP status code.
    pub fn fail_next(&self, path: &str, status: u16, times: usize) {
        let status = StatusCode::from_u16(status).expect("an HTTP status code");
        self.with(|inner| {
            inner.failures.push(Failure {
                path: path.to_owned(),
                status,
                remaining: times,
            })
        });
    }

    /// Consumes one armed failure for `path`, if any.
    fn take_failure(&self, path: &str) -> Option<StatusCode> {
        self.with(|inner| {
            let failure = inner
                .failures
                .iter_mut()
                .find(|failure| failure.path == path && failure.remaining > 0)?;
            failure.remaining -= 1;
            let status = failure.status;
            inner.failures.retain(|failure| failure.remaining > 0);
            Some(status)
        })
    }

    pub fn add_department(&self, id: &str, name: &str) {
        self.with(|inner| inner.departments.insert(id.to_owned(), name.to_owned()));
    }

    /// A closed order's dish line; an empty `discount_sum` is taken as `sum`.
    ///
    /// # Panics
    /// When an amount or sum is not a number, or the service type is not `COURIER` or `PICKUP`.
    pub fn add_sale(&self, sale: SaleLine) {
        self.apply("add_sale", |inner| inner.add_sale(sale));
    }

    /// Closed sales, in the order they were added or paid.
    pub fn sales(&self) -> Vec<SaleLine> {
        self.with(|inner| inner.sales.clone())
    }

    /// Fixes the server's clock at `at`.
    pub fn set_now(&self, at: DateTime<Utc>) {
        self.with(|inner| inner.clock = Clock::Fixed(at));
    }

    /// Moves the server's clock on, whether it is the real one or fixed.
    ///
    /// # Panics
    /// When that would move it past the year 262143.
    pub fn advance(&self, by: Duration) {
        self.apply("advance", |inner| inner.advance(by));
    }

    /// The server's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.with(|inner| inner.now())
    }

    /// The server's time zone (Europe/Moscow by default).
    pub fn set_timezone(&self, timezone: Tz) {
        self.with(|inner| inner.timezone = timezone);
    }

    /// An order opened on iikoFront: an `orderOpened` event.
    ///
    /// # Panics
    /// When an order with that id is already open.
    pub fn open_order(
        &self,
        department: &str,
        order_id: &str,
        order_num: i64,
        table_num: i64,
        waiter: &str,
    ) {
        self.apply("open_order", |inner| {
            inner.open_order(department, order_id, order_num, table_num, waiter)
        });
    }

    /// Items added to an open order: one `addItemToOrder` event each.
    ///
    /// # Panics
    /// When the order is not open, a position id is already in it, or an amount or price is not a number.
    pub fn add_items(&self, order_id: &str, dishes: &[Dish]) {
        self.apply("add_items", |inner| inner.add_items(order_id, dishes));
    }

    /// Unprinted items deleted from an open order: one `deletedNewItems` event each.
    ///
    /// # Panics
    /// When the order is not open or a position is not in it.
    pub fn delete_new_items(&self, order_id: &str, position_ids: &[&str]) {
        self.apply("delete_new_items", |inner| {
            inner.delete_new_items(order_id, position_ids)
        });
    }

    /// An open order deleted: an `orderDeleted` event; nothing reaches the OLAP.
    ///
    /// # Panics
    /// When the order is not open.
    pub fn delete_order(&self, order_id: &str) {
        self.apply("delete_order", |inner| inner.delete_order(order_id));
    }

    /// An open order paid: an `orderPaid` event, and its items become closed [`SaleLine`]s (the OLAP sees them
    /// only now), dated by the server's clock.
    ///
    /// # Panics
    /// When the order is not open.
    pub fn pay_order(&self, order_id: &str) {
        self.apply("pay_order", |inner| inner.pay_order(order_id));
    }

    /// The journal, oldest first; revisions count up from 1.
    pub fn events(&self) -> Vec<JournalEvent> {
        self.with(|inner| inner.journal.clone())
    }

    /// Runs a script (see the module doc) whole, or keeps nothing of it and names its first bad line.
    pub fn run_script(&self, script: &str) -> Result<(), ScriptError> {
        let commands = dsl::parse(script)?;
        self.with(|inner| {
            let mut draft = inner.clone();
            dsl::run(&mut draft, &commands)?;
            *inner = draft;
            Ok(())
        })
    }

    /// Counts a request in; the returned guard counts it out when dropped (a client that hangs up included).
    fn begin_request(&self) -> InFlight {
        self.with(|inner| {
            if inner.in_flight > 0 {
                inner.overlaps += 1;
            }
            inner.in_flight += 1;
        });
        InFlight { sim: self.clone() }
    }

    fn record(&self, record: RequestRecord) {
        self.with(|inner| {
            if inner.requests.len() == KEPT_REQUESTS {
                inner.requests.pop_front();
            }
            inner.requests.push_back(record);
        });
    }
}

/// A request being answered; see [`ServerSim::begin_request`].
struct InFlight {
    sim: ServerSim,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.sim.with(|inner| inner.in_flight -= 1);
    }
}
