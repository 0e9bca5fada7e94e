//! iikoCloud simulator (spec `pos_protocols.md` B.11), built from the spec's description of the real service,
//! not from tillwire's client: the token methods (v1 `apiLogin`, v2 JWT), organizations and terminal groups,
//! nomenclature, deliveries (by id, by date and status, by revision), table orders (by id, by table), webhook
//! settings and `commands/status`, all `POST` with JSON, plus `/api/1/reserve/available_restaurant_sections`
//! so a client can map table ids to numbers. Orders are driven by the test (the setters) or by a scenario
//! script (the DSL below); each change bumps the order's `timestamp` and the global revision and queues a
//! webhook event, which the emitter POSTs to the URL registered with `webhooks/update_settings` (batched,
//! duplicated, reordered, delayed and retried as [`WebhookBehaviour`] says; the filters are stored and shown,
//! not applied: every change is sent). Faults ([`Fault`]) are armed per path.
//!
//! Times: the sim's clock is the real one until [`CloudSim::set_now`] freezes it; [`CloudSim::advance`] moves
//! it either way. Order times are the terminal group's local time (its Windows zone mapped to IANA, DST
//! included), webhook `eventTime` is UTC. Tokens live on the real clock (a JWT's `exp` is read by the client
//! against its own), and `advance` ages them too, so a test can expire them without sleeping. Deliveries are
//! filtered by date on `completeBefore` (an hour after creation), table orders on `whenCreated`.
//!
//! `GET /sim/` shows the world, the orders, the revision and the webhook log; `GET /sim/state` is the same as
//! JSON; `POST /sim/script` runs a script (its body, plain text): 200, or 400 naming the line.
//!
//! # Scenario scripts
//!
//! One command a line; `#` starts a comment, blank lines are skipped, and a word with spaces is quoted
//! (`name="Основная группа"`, `"Кафе 1"`; `\"` inside quotes). Options are `key=value`.
//!
//! ```text
//! org ORG_ID "Кафе 1"                                   # an organization (again: renames it)
//! terminal TG_ID org=ORG_ID tz="Russian Standard Time" name="Основная группа"   # name defaults to the id
//! table TABLE_ID org=ORG_ID number=5
//! product PRODUCT_ID org=ORG_ID code=101 name="Борщ" price=280.50
//! open ORDER_ID org=ORG_ID terminal=TG_ID table=TABLE_ID number=42   # a table order, status New
//! delivery ORDER_ID org=ORG_ID terminal=TG_ID number=1234            # a delivery, status Unconfirmed
//! add ORDER_ID POSITION_ID PRODUCT_ID amount=2          # item status Added; amount defaults to 1
//! delete ORDER_ID POSITION_ID                           # the item stays, with `deleted` set
//! status ORDER_ID Bill                                  # New|Bill|Closed|Deleted, or a delivery's 10 statuses
//! item-status ORDER_ID POSITION_ID CookingStarted       # Added|PrintedNotCooking|CookingStarted|CookingCompleted|Served
//! wait 500ms                                            # ms, s, m or h; moves the sim's clock
//! ```
//!
//! [`CloudSim::run_script`] checks every line first (nothing happens if one is wrong), then runs them, and a
//! `wait` only moves the clock; [`CloudSim::play_script`] (`/sim/script`, the CLI) also really waits. An error
//! names its line; lines before a failing one have taken effect.

mod api;
mod dsl;
mod inspect;
mod snapshot;
mod state;
mod webhooks;
mod zones;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use chrono::{DateTime, Utc};
use serde::Serialize;

pub use dsl::{ScriptError, demo_script};
use state::{Inner, Kind};

/// The apiLogin every new simulator accepts.
pub const DEFAULT_API_LOGIN: &str = "sim-api-login";

/// How the webhook emitter behaves; the default is a well-behaved iikoCloud with retries compressed to test time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookBehaviour {
    /// False: events are lost, never sent (nor queued).
    pub enabled: bool,
    /// Events per POST (at most; of one organization).
    pub batch: usize,
    /// Every POST is made twice, so each event arrives twice.
    pub duplicate: bool,
    /// The events of a batch are sent in reverse order.
    pub reorder: bool,
    /// Waited before each POST (retries and duplicates too).
    pub delay: Duration,
    /// Waited before each retry after a non-2xx answer or an error; once they run out the events are dropped.
    /// Real iiko: every 10 minutes for an hour.
    pub retry_intervals: Vec<Duration>,
    /// Send on their own as changes happen; false: only [`CloudSim::flush_webhooks`] sends.
    pub auto: bool,
}

impl Default for WebhookBehaviour {
    fn default() -> Self {
        WebhookBehaviour {
            enabled: true,
            batch: 1,
            duplicate: false,
            reorder: false,
            delay: Duration::ZERO,
            retry_intervals: vec![Duration::from_millis(200); 6],
            auto: true,
        }
    }
}

/// One POST of the webhook emitter, as [`CloudSim::webhook_log`] keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookAttempt {
    pub organization_id: String,
    pub url: String,
    /// The events in the body, in the order sent.
    pub events: Vec<serde_json::Value>,
    /// The receiver's status, or None when the POST failed (then `error` says why).
    pub status: Option<u16>,
    pub error: Option<String>,
    /// 0 for the first try, n for the n-th retry.
    pub retry: usize,
}

/// What the next requests to a path get instead of (or before) their answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// This status (400, 408, 500, …) with an ErrorResponse body.
    Status(u16),
    /// 429 with a `Retry-After` header.
    TooManyRequests { retry_after_secs: u64 },
    /// 401, as for a revoked token.
    Unauthorized,
    /// 410, what `commands/status` says of an expired correlationId.
    Gone,
    /// The answer comes after this long; beyond the request's `Timeout` header (default 15 s) a 408 comes at the
    /// timeout instead.
    Slow(Duration),
}

/// One simulated iikoCloud, shared by its HTTP side and the test driving it.
#[derive(Clone)]
pub struct CloudSim {
    inner: Arc<Mutex<Inner>>,
    /// One deliverer at a time, so batches go out in order and a flush can wait for the one under way.
    delivery: Arc<tokio::sync::Mutex<()>>,
    http: reqwest::Client,
}

impl Default for CloudSim {
    fn default() -> Self {
        Self::new()
    }
}

impl CloudSim {
    /// An empty world that accepts the apiLogin [`DEFAULT_API_LOGIN`], with tokens living an hour.
    pub fn new() -> Self {
        CloudSim {
            inner: Arc::new(Mutex::new(Inner::new(DEFAULT_API_LOGIN))),
            delivery: Arc::new(tokio::sync::Mutex::new(())),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    fn with<T>(&self, change: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut inner)
    }

    /// Applies an order change; a mistake in the test (an unknown id, a bad status) panics like a failed assert.
    fn must(&self, change: impl FnOnce(&mut Inner) -> Result<bool, String>) {
        match self.with(change) {
            Ok(queued) => self.queued(queued),
            Err(mistake) => panic!("iikoCloud sim: {mistake}"),
        }
    }

    /// The HTTP side: the API under `/api/` (faults, counts, tokens) and the inspection under `/sim/`.
    pub fn router(&self) -> Router {
        api::routes(self.clone())
            .merge(inspect::routes())
            .with_state(self.clone())
    }

    /// A new simulator served on a free loopback port until the process ends, and its base URL
    /// (`http://127.0.0.1:PORT`). Panics if no port can be had.
    pub async fn start() -> (CloudSim, String) {
        let sim = CloudSim::new();
        let base = tillwire_platform::server::serve_on_loopback(sim.router())
            .await
            .expect("iikoCloud sim: bind a loopback port");
        (sim, base)
    }

    // Auth.

    pub fn add_api_login(&self, login: &str) {
        self.with(|inner| inner.logins.insert(login.to_owned()));
    }

    /// A v2 key: `/api/v2/access_token` accepts exactly this triple.
    pub fn add_api_key(&self, api_key: &str, app_id: &str, client_secret: &str) {
        self.with(|inner| {
            inner.api_keys.push(state::ApiKey {
                api_key: api_key.to_owned(),
                app_id: app_id.to_owned(),
                client_secret: client_secret.to_owned(),
            })
        });
    }

    /// The lifetime of tokens issued from now on.
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.with(|inner| inner.token_ttl = ttl);
    }

    /// Every token issued so far answers 401 from now on.
    pub fn revoke_tokens(&self) {
        self.with(|inner| inner.tokens.clear());
    }

    pub fn tokens_issued(&self) -> usize {
        self.with(|inner| inner.tokens_issued)
    }

    // The world. Adding again what exists replaces it.

    pub fn add_organization(&self, id: &str, name: &str) {
        self.with(|inner| inner.add_organization(id, name));
    }

    /// A terminal group in a Windows time zone (see the module doc); panics if the organization is unknown.
    pub fn add_terminal_group(
        &self,
        organization: &str,
        id: &str,
        name: &str,
        windows_time_zone: &str,
    ) {
        self.must(|inner| {
            inner
                .add_terminal_group(organization, id, name, windows_time_zone)
                .map(|()| false)
        });
    }

    pub fn add_table(&self, organization: &str, id: &str, number: i64) {
        self.must(|inner| inner.add_table(organization, id, number).map(|()| false));
    }

    /// A dish at `price`, decimal text such as `"280.50"`; it bumps the nomenclature's revision.
    pub fn add_product(&self, organization: &str, id: &str, code: &str, name: &str, price: &str) {
        self.must(|inner| {
            inner
                .add_product(organization, id, code, name, price)
                .map(|()| false)
        });
    }

    // The clock.

    /// Freezes the sim's clock at `at`.
    pub fn set_now(&self, at: DateTime<Utc>) {
        self.with(|inner| inner.set_now(at));
    }

    /// Moves the sim's clock on, frozen or not, and ages the tokens by as much.
    pub fn advance(&self, by: Duration) {
        self.with(|inner| inner.advance(by));
    }

    // Orders. Each change stamps the order, bumps the revision and queues a webhook event; the setters panic on
    // an unknown id or status.

    /// A table order in status New on `table`.
    pub fn open_table_order(
        &self,
        organization: &str,
        terminal_group: &str,
        table: &str,
        order_id: &str,
        number: i64,
    ) {
        self.must(|inner| {
            inner.open_table_order(organization, terminal_group, table, order_id, number)
        });
    }

    /// A product line (status Added) at the product's price; `amount` is decimal text such as `"0.5"`.
    pub fn add_item(&self, order_id: &str, position_id: &str, product_id: &str, amount: &str) {
        self.must(|inner| inner.add_item(order_id, position_id, product_id, amount));
    }

    /// Marks the item deleted (`deleted.deletionMethod`); it stays in the order, out of its sum.
    pub fn delete_item(&self, order_id: &str, position_id: &str) {
        self.must(|inner| inner.delete_item(order_id, position_id));
    }

    pub fn set_item_status(&self, order_id: &str, position_id: &str, status: &str) {
        self.must(|inner| inner.set_item_status(order_id, position_id, status));
    }

    /// New, Bill (sets `whenBillPrinted`), Closed (sets `whenClosed` and a cash payment) or Deleted.
    pub fn set_table_order_status(&self, order_id: &str, status: &str) {
        self.must(|inner| inner.set_status(order_id, status, Some(Kind::Table)));
    }

    /// A delivery in status Unconfirmed, without items.
    pub fn create_delivery(
        &self,
        organization: &str,
        terminal_group: &str,
        order_id: &str,
        number: i64,
    ) {
        self.must(|inner| inner.create_delivery(organization, terminal_group, order_id, number));
    }

    /// Any of the 10 delivery statuses; each sets its `when…` time, Cancelled sets `cancelInfo`.
    pub fn set_delivery_status(&self, order_id: &str, status: &str) {
        self.must(|inner| inner.set_status(order_id, status, Some(Kind::Delivery)));
    }

    /// The order as the API would answer it now (`TableOrderInfo` or `OrderInfo`).
    pub fn order_json(&self, order_id: &str) -> Option<serde_json::Value> {
        self.with(|inner| inner.order(order_id).map(|order| inner.snapshot(order)))
    }

    /// The global revision: the number of order changes so far.
    pub fn revision(&self) -> i64 {
        self.with(|inner| inner.revision)
    }

    /// Puts `script` in the page's script box, ready to run (the demo's orders).
    pub fn suggest_script(&self, script: &str) {
        self.with(|inner| inner.suggested_script = script.to_owned());
    }

    pub(crate) fn suggested_script(&self) -> String {
        self.with(|inner| inner.suggested_script.clone())
    }

    // Faults and counts.

    /// The next `times` requests to `path` (e.g. `/api/1/order/by_table`) get `fault`, after any armed before.
    pub fn fail_next(&self, path: &str, fault: Fault, times: usize) {
        self.with(|inner| inner.add_fault(path, fault, times));
    }

    /// Requests received on `path`, faulted and refused ones included.
    pub fn requests(&self, path: &str) -> usize {
        self.with(|inner| inner.requests.get(path).copied().unwrap_or(0))
    }
}
