//! Simulators of the two ERPs oilmat-erp drives with a browser (spec `oilmat.md` §3), built from the spec's URLs,
//! locators and keystrokes, not from tillwire's connectors: AD Manager ([`ErpType::AdManager`], an Angular Material
//! look) and CAC Au2Office ([`ErpType::Au2Office`], an ag-grid worksheet). Each keeps the lines added per case, which a
//! test reads back with [`ErpSim::lines`] (or anyone with `GET /sim/lines` and the page `/sim/`), and can be made
//! to misbehave: slow pages, sessions that expire, cases that are not listed, items the catalogue does not know,
//! lines already present, and saves that look fine but keep nothing.
//!
//! Everything is self-contained: pages, styles and scripts are written inline, nothing is loaded from elsewhere.

mod admanager;
mod au2office;
mod inspect;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

pub use crate::model::ErpType;

/// A line on a case's work card: what the connectors add and what the spec's §3.3 says the ERP ends up holding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The item number (*varenummer*).
    pub item: String,
    /// The product name as saved: the catalogue's name, plus whatever was typed after it.
    pub name: String,
    /// The quantity as typed (Danish decimals such as `2,5` are allowed).
    pub amount: String,
}

impl Line {
    pub fn new(item: &str, name: &str, amount: &str) -> Self {
        Line {
            item: item.to_owned(),
            name: name.to_owned(),
            amount: amount.to_owned(),
        }
    }
}

/// An item the ERP's catalogue knows: its number autocompletes to its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub item: String,
    pub name: String,
    pub unit: String,
    pub group: String,
    /// The sales price as the ERP shows it.
    pub price: String,
}

impl Product {
    pub fn new(item: &str, name: &str, unit: &str, group: &str, price: &str) -> Self {
        Product {
            item: item.to_owned(),
            name: name.to_owned(),
            unit: unit.to_owned(),
            group: group.to_owned(),
            price: price.to_owned(),
        }
    }
}

/// The faults that are switches rather than data (cases, catalogue and seeded lines are data: see the setters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Every request to the ERP's pages and scripts waits this long before it is answered.
    pub page_delay_ms: u64,
    /// A session ends after this many requests; the next one is sent to the login page.
    pub session_requests: Option<u32>,
    /// Saves are answered as if stored, and nothing is kept.
    pub drop_saves: bool,
}

/// The login both simulators accept until [`ErpSim::set_credentials`] changes it.
pub const DEFAULT_USERNAME: &str = "workshop@example.dk";
pub const DEFAULT_PASSWORD: &str = "oilmat-sim";

/// The session cookie of both simulators.
const SESSION_COOKIE: &str = "erp_session";

/// Why a line was not saved, as the ERPs word it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refused {
    NoCase(String),
    UnknownItem(String),
    BadAmount(String),
    NoLine(usize),
    /// Au2Office derives unit and group from the item.
    FixedField(String),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::NoCase(case) => write!(f, "Arbejdskort {case} findes ikke"),
            Refused::UnknownItem(item) => write!(f, "Varenummer {item} findes ikke"),
            Refused::BadAmount(amount) => write!(f, "Antal \"{amount}\" er ikke et tal"),
            Refused::NoLine(index) => write!(f, "Linje {index} findes ikke"),
            Refused::FixedField(field) => write!(f, "{field} følger varen og kan ikke ændres"),
        }
    }
}

struct Inner {
    username: String,
    password: String,
    cases: Vec<String>,
    catalogue: Vec<Product>,
    lines: BTreeMap<String, Vec<Line>>,
    faults: Faults,
    /// Live sessions by token, with the requests each has made.
    sessions: HashMap<String, u32>,
    sessions_opened: u64,
    dropped_saves: usize,
}

/// One simulated ERP, shared by the HTTP side and the test driving it.
#[derive(Clone)]
pub struct ErpSim {
    kind: ErpType,
    inner: Arc<Mutex<Inner>>,
}

impl ErpSim {
    /// Cases `1001`..=`1045` (three pages of AD Manager's overview), a catalogue of oils and filters, no lines,
    /// no faults, and the login [`DEFAULT_USERNAME`] / [`DEFAULT_PASSWORD`].
    pub fn new(kind: ErpType) -> Self {
        ErpSim {
            kind,
            inner: Arc::new(Mutex::new(Inner {
                username: DEFAULT_USERNAME.to_owned(),
                password: DEFAULT_PASSWORD.to_owned(),
                cases: (1001..=1045).map(|n: u32| n.to_string()).collect(),
                catalogue: vec![
                    Product::new("10", "Motorolie 5W-30", "L", "Olie", "89,00"),
                    Product::new("11", "Motorolie 5W-40", "L", "Olie", "85,00"),
                    Product::new("20", "Gearolie 75W-90", "L", "Olie", "120,00"),
                    Product::new("OL-0W20", "Motorolie 0W-20", "L", "Olie", "99,00"),
                    Product::new("30", "Oliefilter", "stk", "Filtre", "149,00"),
                ],
                lines: BTreeMap::new(),
                faults: Faults::default(),
                sessions: HashMap::new(),
                sessions_opened: 0,
                dropped_saves: 0,
            })),
        }
    }

    fn with<T>(&self, change: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut inner)
    }

    pub fn kind(&self) -> ErpType {
        self.kind
    }

    /// The one login the ERP accepts; sessions already open stay open.
    pub fn set_credentials(&self, username: &str, password: &str) {
        self.with(|inner| {
            inner.username = username.to_owned();
            inner.password = password.to_owned();
        });
    }

    /// The cases the ERP lists, in order; a case left out "does not exist" (its page answers 404 too).
    pub fn set_cases<S: Into<String>>(&self, cases: impl IntoIterator<Item = S>) {
        let cases = cases.into_iter().map(Into::into).collect();
        self.with(|inner| inner.cases = cases);
    }

    pub fn cases(&self) -> Vec<String> {
        self.with(|inner| inner.cases.clone())
    }

    /// The items the ERP knows; an item left out gets no autocompletion and cannot be saved.
    pub fn set_catalogue(&self, products: impl IntoIterator<Item = Product>) {
        let products = products.into_iter().collect();
        self.with(|inner| inner.catalogue = products);
    }

    pub fn catalogue(&self) -> Vec<Product> {
        self.with(|inner| inner.catalogue.clone())
    }

    /// Puts a line on a case's work card as if someone had added it earlier (the "line already present" fault);
    /// it is stored as given, whatever the catalogue and the faults say.
    pub fn seed_line(&self, case: &str, line: Line) {
        self.with(|inner| inner.lines.entry(case.to_owned()).or_default().push(line));
    }

    /// The lines on a case's work card, oldest first.
    pub fn lines(&self, case: &str) -> Vec<Line> {
        self.with(|inner| inner.lines.get(case).cloned().unwrap_or_default())
    }

    /// Every case's lines (cases without lines left out).
    pub fn all_lines(&self) -> BTreeMap<String, Vec<Line>> {
        self.with(|inner| inner.lines.clone())
    }

    pub fn set_faults(&self, faults: Faults) {
        self.with(|inner| inner.faults = faults);
    }

    pub fn faults(&self) -> Faults {
        self.with(|inner| inner.faults.clone())
    }

    /// Every request to the ERP waits `delay` before it is answered.
    pub fn set_page_delay(&self, delay: Duration) {
        self.with(|inner| inner.faults.page_delay_ms = delay.as_millis() as u64);
    }

    /// Sessions end after `requests` requests (counted from the login, for sessions already open too); `None`:
    /// they never do.
    pub fn expire_sessions_after(&self, requests: Option<u32>) {
        self.with(|inner| inner.faults.session_requests = requests);
    }

    /// Saves are answered as if stored, and nothing is kept.
    pub fn set_drop_saves(&self, drop: bool) {
        self.with(|inner| inner.faults.drop_saves = drop);
    }

    /// How many logins the ERP has accepted: a connector that keeps its session logs in once for many lines.
    pub fn sessions_opened(&self) -> u64 {
        self.with(|inner| inner.sessions_opened)
    }

    /// How many saves were answered and thrown away while [`ErpSim::set_drop_saves`] was on.
    pub fn dropped_saves(&self) -> usize {
        self.with(|inner| inner.dropped_saves)
    }

    /// Serves the ERP on a free loopback port until the process ends; the base URL (`http://…`), to which the
    /// connector appends [`ErpType::login_path`].
    pub async fn serve_on_loopback(&self) -> std::io::Result<String> {
        tillwire_platform::server::serve_on_loopback(self.router()).await
    }

    /// The HTTP side: the ERP's pages behind its login and the faults, and the inspection under `/sim/`.
    pub fn router(&self) -> Router {
        let erp = match self.kind {
            ErpType::AdManager => admanager::routes(),
            ErpType::Au2Office => au2office::routes(),
        };
        erp.layer(middleware::from_fn_with_state(self.clone(), guard))
            .merge(inspect::routes())
            .with_state(self.clone())
    }

    /// A new session's token if the login is the configured one.
    fn open_session(&self, username: &str, password: &str) -> Option<String> {
        self.with(|inner| {
            if username != inner.username || password != inner.password {
                return None;
            }
            inner.sessions_opened += 1;
            // Sessions must be told apart, not be unguessable: this is a test double on loopback.
            let token = format!("s{}-{:x}", inner.sessions_opened, std::process::id());
            inner.sessions.insert(token.clone(), 0);
            Some(token)
        })
    }

    /// Counts a request on the session; false (and the session forgotten) once it has run out or if it is unknown.
    fn touch_session(&self, token: Option<&str>) -> bool {
        self.with(|inner| {
            let Some(token) = token else { return false };
            let limit = inner.faults.session_requests;
            let Some(requests) = inner.sessions.get_mut(token) else {
                return false;
            };
            *requests += 1;
            if limit.is_some_and(|limit| *requests > limit) {
                inner.sessions.remove(token);
                return false;
            }
            true
        })
    }

    fn product(&self, item: &str) -> Option<Product> {
        self.with(|inner| inner.catalogue.iter().find(|p| p.item == item).cloned())
    }

    fn has_case(&self, case: &str) -> bool {
        self.with(|inner| inner.cases.iter().any(|known| known == case))
    }

    /// Adds a line after the ERP's checks: a listed case, a known item, an amount that is a number.
    fn add_line(&self, case: &str, line: Line) -> Result<(), Refused> {
        self.with(|inner| {
            if !inner.cases.iter().any(|known| known == case) {
                return Err(Refused::NoCase(case.to_owned()));
            }
            if !inner.catalogue.iter().any(|p| p.item == line.item) {
                return Err(Refused::UnknownItem(line.item));
            }
            check_amount(&line.amount)?;
            if inner.faults.drop_saves {
                inner.dropped_saves += 1;
            } else {
                inner.lines.entry(case.to_owned()).or_default().push(line);
            }
            Ok(())
        })
    }

    /// Changes one field of line `index` (0-based, oldest first) of a case.
    fn edit_line(
        &self,
        case: &str,
        index: usize,
        field: Field,
        value: &str,
    ) -> Result<(), Refused> {
        self.with(|inner| {
            let line = inner
                .lines
                .get_mut(case)
                .and_then(|lines| lines.get_mut(index))
                .ok_or(Refused::NoLine(index))?;
            if field == Field::Amount {
                check_amount(value)?;
            }
            if inner.faults.drop_saves {
                inner.dropped_saves += 1;
                return Ok(());
            }
            match field {
                Field::Name => line.name = value.to_owned(),
                Field::Amount => line.amount = value.to_owned(),
            }
            Ok(())
        })
    }
}

/// The fields of a stored line that can be edited after it was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Amount,
}

/// A positive number, with a comma or a point before the decimals.
fn check_amount(amount: &str) -> Result<(), Refused> {
    match amount.trim().replace(',', ".").parse::<f64>() {
        Ok(number) if number > 0.0 && number.is_finite() => Ok(()),
        _ => Err(Refused::BadAmount(amount.to_owned())),
    }
}

/// In front of every ERP route: the slow-pages delay, then the session (counted, and sent to the login page when
/// missing or run out; scripts' calls get a 401 their page turns into the same).
async fn guard(State(sim): State<ErpSim>, request: Request, next: Next) -> Response {
    let delay = sim.with(|inner| inner.faults.page_delay_ms);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let path = request.uri().path();
    let login = sim.kind.login_path();
    if path != login && !sim.touch_session(session_token(request.headers()).as_deref()) {
        return if path.contains("/api/") {
            StatusCode::UNAUTHORIZED.into_response()
        } else {
            Redirect::to(login).into_response()
        };
    }
    next.run(request).await
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .find_map(|cookie| {
            let (name, value) = cookie.trim().split_once('=')?;
            (name == SESSION_COOKIE).then(|| value.to_owned())
        })
}

/// The login form's fields: AD Manager's `email` and `password`, Au2Office's `Email` and `Password`.
#[derive(Deserialize)]
struct Credentials {
    #[serde(default, alias = "Email")]
    email: String,
    #[serde(default, alias = "Password")]
    password: String,
}

/// A good login gets the session cookie and goes on to the ERP's start page; a wrong one gets the ERP's login
/// page with its error, and no session.
fn log_in(
    sim: &ErpSim,
    credentials: &Credentials,
    refused: impl FnOnce() -> Html<String>,
) -> Response {
    match sim.open_session(&credentials.email, &credentials.password) {
        Some(token) => (
            [(
                header::SET_COOKIE,
                format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax"),
            )],
            Redirect::to("/"),
        )
            .into_response(),
        None => refused().into_response(),
    }
}

/// Text made safe for HTML content and quoted attributes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A whole page: the ERP's own style sheet and an optional script, both inline. The empty icon keeps browsers
/// from asking for `/favicon.ico`, which would count against a session that expires after N requests; `hidden`
/// is made to win over the style sheets' `display`, which the scripts rely on to show and hide errors.
fn page(title: &str, style: &str, body: &str, script: &str) -> String {
    let script = if script.is_empty() {
        String::new()
    } else {
        format!("<script>{script}</script>")
    };
    format!(
        "<!doctype html><html lang=\"da\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\">\
         <title>{}</title><style>[hidden]{{display:none!important}}{style}</style></head>\
         <body>{body}{script}</body></html>",
        escape(title)
    )
}
