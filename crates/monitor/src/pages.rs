//! The monitor's pages: the live page of the chain or of one unit (`/monitor/`, SSE), a register's page with its
//! history (`/monitor/registers/{id}`), and the registers' admin page (`/admin/monitor/`).
//!
//! The live page is filtered and paged on the server, so a chain of thousands of registers sends one page of
//! tiles; its stream sends one re-rendered tile when a register on the page changes, and asks for the page again
//! (debounced in the browser) only when incidents open or close.

use std::collections::{BTreeSet, HashMap};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use futures::StreamExt;
use serde::Deserialize;
use tillwire_platform::admin::{Admin, human_duration, local_time};
use tillwire_platform::web::{Lang, NavLink, PageContext, render};
use tillwire_platform::{CurrentUser, Event, HttpError, Platform, Role, Text, now_ms};
use tillwire_units::Units;

use crate::config::MonitorSettings;
use crate::health::Health;
use crate::manage;
use crate::model::{self, BaseUrl, Kind, Overrides, RegisterId, RegisterName, THRESHOLD_FIELDS};
use crate::poller::{TOPIC_STATE, TOPIC_WEIGH};
use crate::storage::{
    Incident, IncidentFilter, Incidents, Maintenance, NewRegister, Register, Registers, States,
};

pub const MAIN_NAV: &[NavLink] = &[NavLink::to("/monitor/", "Кассы УКМ", "UKM registers")];
pub const ADMIN_NAV: &[NavLink] = &[NavLink::to(
    "/admin/monitor/",
    "Мониторинг касс",
    "Register monitor",
)];

/// Tiles on one page of the live page.
pub const PAGE_SIZE: usize = 48;

#[derive(Clone)]
pub struct Pages {
    pub platform: Platform,
    pub settings: std::sync::Arc<MonitorSettings>,
}

impl axum::extract::FromRef<Pages> for Platform {
    fn from_ref(pages: &Pages) -> Platform {
        pages.platform.clone()
    }
}

pub fn router(pages: Pages) -> Router {
    Router::new()
        .route("/monitor/", get(live_page))
        .route("/monitor/stream", get(live_stream))
        .route("/monitor/registers/{id}", get(register_page))
        .route("/monitor/registers/{id}/weigh", post(weigh))
        .route("/monitor/registers/{id}/maintenance", post(add_maintenance))
        .route("/monitor/maintenance/{id}/end", post(end_maintenance))
        .route("/monitor/incidents/{id}/acknowledge", post(acknowledge))
        .route("/admin/monitor/", get(admin_page).post(create_register))
        .route("/admin/monitor/registers/{id}", post(update_register))
        .route(
            "/admin/monitor/registers/{id}/delete",
            post(delete_register),
        )
        .route(
            "/admin/monitor/units/{id}/thresholds",
            post(unit_thresholds),
        )
        .with_state(pages)
}

/// What the live page shows: `?unit=&region=&kind=&only=problems|down&page=`. Values that do not parse are
/// ignored (a stale bookmark still opens the page).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FilterQuery {
    unit: Option<String>,
    region: Option<String>,
    kind: Option<String>,
    only: Option<String>,
    page: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Filter {
    unit: Option<i64>,
    region: Option<String>,
    kind: Option<Kind>,
    only: Only,
    page: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Only {
    #[default]
    All,
    Problems,
    Down,
}

impl FilterQuery {
    fn parse(&self) -> Filter {
        let text = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Filter {
            unit: text(&self.unit).and_then(|v| v.parse().ok()),
            region: text(&self.region),
            kind: text(&self.kind).and_then(|v| Kind::parse(&v)),
            only: match text(&self.only).as_deref() {
                Some("problems") => Only::Problems,
                Some("down") => Only::Down,
                _ => Only::All,
            },
            page: text(&self.page)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1),
        }
    }
}

impl Filter {
    /// The query string of this filter on another page.
    fn query(&self, page: usize) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(unit) = self.unit {
            pairs.push(("unit", unit.to_string()));
        }
        if let Some(region) = &self.region {
            pairs.push(("region", region.clone()));
        }
        if let Some(kind) = self.kind {
            pairs.push(("kind", kind.as_str().to_owned()));
        }
        match self.only {
            Only::Problems => pairs.push(("only", "problems".into())),
            Only::Down => pairs.push(("only", "down".into())),
            Only::All => {}
        }
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    fn admits(&self, register: &Register, health: Option<&Health>) -> bool {
        let open = health.map(|h| &h.open);
        self.unit.is_none_or(|unit| register.unit_id == unit)
            && self
                .region
                .as_ref()
                .is_none_or(|region| &register.region == region)
            && self
                .kind
                .is_none_or(|kind| open.is_some_and(|open| open.contains(&kind)))
            && match self.only {
                Only::All => true,
                Only::Problems => {
                    open.is_some_and(|open| !open.is_empty())
                        || health.and_then(|h| h.up) == Some(false)
                }
                Only::Down => health.and_then(|h| h.up) == Some(false),
            }
    }
}

/// One register's tile.
#[derive(Template)]
#[template(path = "monitor_tile.html")]
pub struct Tile {
    lang: Lang,
    id: i64,
    name: String,
    unit: String,
    region: String,
    /// `ok`, `warn`, `down`, `unknown` or `off` (the tile's colour).
    level: &'static str,
    state: String,
    activity: String,
    cashier: String,
    ofd: String,
    paper: String,
    vision: String,
    last_seen_ms: Option<i64>,
    last_seen: String,
    incidents: Vec<String>,
    muted: bool,
}

impl Tile {
    fn new(
        pages: &Pages,
        lang: Lang,
        register: &Register,
        unit: &str,
        health: Option<&Health>,
        muted: bool,
    ) -> Tile {
        let settings = &pages.platform.settings;
        let pick = |ru: &str, en: &str| lang.pick(ru, en).to_owned();
        let empty = Health::default();
        let health = health.unwrap_or(&empty);
        let level = if !register.enabled {
            "off"
        } else if health.up == Some(false) || health.open.contains(&Kind::Offline) {
            "down"
        } else if !health.open.is_empty() {
            "warn"
        } else if health.up.is_none() || health.unknown.is_some() {
            "unknown"
        } else {
            "ok"
        };
        let state = match (register.enabled, health.up, health.unknown) {
            (false, ..) => pick("Не опрашивается", "Not polled"),
            (true, None, _) => pick("Ещё не опрошена", "Not polled yet"),
            (true, Some(false), _) => pick("Нет связи", "Unreachable"),
            (true, Some(true), Some(status)) => format!(
                "{} {status}",
                lang.pick("Непонятный ответ", "Unknown answer")
            ),
            (true, Some(true), None) => pick("На связи", "Online"),
        };
        let minutes_since = |ms: i64| ((now_ms() - ms).max(0) / 60_000).to_string();
        let activity = match (health.busy, health.activity_ms, health.idle_since_ms) {
            (Some(true), Some(at), _) => format!(
                "{} · {} {}",
                lang.pick("Чек открыт", "Receipt open"),
                minutes_since(at),
                lang.pick("мин", "min")
            ),
            (Some(true), None, _) => pick("Чек открыт", "Receipt open"),
            (Some(false), _, Some(since)) => format!(
                "{} {}",
                lang.pick("Свободна с", "Idle since"),
                local_time(settings, since, "%H:%M")
            ),
            (Some(false), _, None) => pick("Свободна", "Idle"),
            (None, ..) => String::new(),
        };
        let flag = |value: Option<bool>, yes: (&str, &str), no: (&str, &str)| match value {
            Some(true) => pick(yes.0, yes.1),
            Some(false) => pick(no.0, no.1),
            None => "—".to_owned(),
        };
        Tile {
            lang,
            id: register.id,
            name: register.name.clone(),
            unit: unit.to_owned(),
            region: register.region.clone(),
            level,
            state,
            activity,
            cashier: health.cashier.clone().unwrap_or_else(|| "—".into()),
            ofd: health.ofd.map_or_else(|| "—".into(), |n| n.to_string()),
            paper: flag(health.paper, ("есть", "in"), ("нет", "out")),
            vision: flag(
                health.vision,
                ("на связи", "connected"),
                ("нет связи", "disconnected"),
            ),
            last_seen_ms: health.last_seen_ms,
            last_seen: health
                .last_seen_ms
                .map(|ms| local_time(settings, ms, "%H:%M:%S"))
                .unwrap_or_else(|| "—".into()),
            incidents: health
                .open
                .iter()
                .map(|kind| kind.label().get(lang).to_owned())
                .collect(),
            muted,
        }
    }
}

/// An incident as the pages list it.
struct IncidentRow {
    id: i64,
    register_id: i64,
    register: String,
    unit: String,
    kind: String,
    detail: String,
    opened: String,
    acknowledged: String,
    closed: String,
    duration: String,
    open: bool,
    acknowledged_yet: bool,
}

fn incident_row(
    pages: &Pages,
    lang: Lang,
    incident: &Incident,
    names: &HashMap<i64, (String, String)>,
) -> IncidentRow {
    let settings = &pages.platform.settings;
    let at = |ms: i64| local_time(settings, ms, "%d.%m %H:%M:%S");
    let kind = incident.kind();
    let detail = match kind {
        Some(Kind::OfdBacklog) => format!("{} {}", incident.detail, lang.pick("чеков", "receipts")),
        Some(Kind::ReceiptStuck) => incident
            .detail
            .parse()
            .ok()
            .map(|ms| {
                format!(
                    "{} {}",
                    lang.pick("последнее действие", "last activity"),
                    at(ms)
                )
            })
            .unwrap_or_default(),
        _ => String::new(),
    };
    let (register, unit) = names
        .get(&incident.register_id)
        .cloned()
        .unwrap_or_default();
    IncidentRow {
        id: incident.id,
        register_id: incident.register_id,
        register,
        unit,
        kind: kind.map_or_else(|| incident.kind.clone(), |k| k.label().get(lang).to_owned()),
        detail,
        opened: at(incident.opened_ms),
        acknowledged: match (&incident.acknowledged_by, incident.acknowledged_ms) {
            (Some(by), Some(ms)) => format!("{by}, {}", at(ms)),
            _ => String::new(),
        },
        closed: incident.closed_ms.map(at).unwrap_or_default(),
        duration: human_duration(incident.duration_ms(now_ms()), lang),
        open: incident.closed_ms.is_none(),
        acknowledged_yet: incident.acknowledged_ms.is_some(),
    }
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "monitor_live.html")]
struct LivePage {
    page: PageContext,
    body: LiveBody,
}

/// The part of the live page the browser fetches again when incidents change.
#[derive(Template)]
#[template(path = "monitor_live_body.html")]
struct LiveBody {
    lang: Lang,
    csrf: String,
    can_act: bool,
    units: Vec<Choice>,
    regions: Vec<Choice>,
    kinds: Vec<Choice>,
    only: Vec<Choice>,
    total: usize,
    up: usize,
    down: usize,
    with_incidents: usize,
    shown: usize,
    tiles: Vec<Tile>,
    incidents: Vec<IncidentRow>,
    pager: Vec<(usize, String, bool)>,
    query: String,
    stretch: Option<String>,
}

/// Everything the live page and its stream read, filtered.
struct Snapshot {
    registers: Vec<Register>,
    units: HashMap<i64, String>,
    states: HashMap<RegisterId, Health>,
    muted: BTreeSet<i64>,
}

impl Snapshot {
    async fn load(pages: &Pages) -> Result<Snapshot, HttpError> {
        let store = &pages.platform.store;
        let registers = Registers(store.clone()).list().await?;
        let units = Units(store)
            .list()
            .await
            .map_err(HttpError::internal)?
            .into_iter()
            .map(|unit| (unit.id, unit.name))
            .collect();
        let states = States(store.clone()).all().await?;
        let now = now_ms();
        let windows = Maintenance(store.clone()).current(now).await?;
        let muted = registers
            .iter()
            .filter(|r| {
                windows
                    .iter()
                    .any(|w| w.covers(r.unit_id, r.register_id(), now))
            })
            .map(|r| r.id)
            .collect();
        Ok(Snapshot {
            registers,
            units,
            states,
            muted,
        })
    }

    /// The registers the filter admits, problems first, then by unit and name.
    fn admitted(&self, filter: &Filter) -> Vec<&Register> {
        let mut admitted: Vec<&Register> = self
            .registers
            .iter()
            .filter(|r| filter.admits(r, self.states.get(&r.register_id())))
            .collect();
        admitted.sort_by_key(|r| {
            let health = self.states.get(&r.register_id());
            let rank = match health {
                Some(h) if h.up == Some(false) => 0,
                Some(h) if !h.open.is_empty() => 1,
                _ => 2,
            };
            (
                rank,
                self.units.get(&r.unit_id).cloned().unwrap_or_default(),
                r.name.clone(),
            )
        });
        admitted
    }

    fn tile(&self, pages: &Pages, lang: Lang, register: &Register) -> Tile {
        Tile::new(
            pages,
            lang,
            register,
            self.units.get(&register.unit_id).map_or("", String::as_str),
            self.states.get(&register.register_id()),
            self.muted.contains(&register.id),
        )
    }
}

async fn live_body(
    pages: &Pages,
    lang: Lang,
    user: &CurrentUser,
    filter: &Filter,
) -> Result<LiveBody, HttpError> {
    let snapshot = Snapshot::load(pages).await?;
    let admitted = snapshot.admitted(filter);
    let pages_count = admitted.len().div_ceil(PAGE_SIZE).max(1);
    let page = filter.page.min(pages_count);
    let tiles = admitted
        .iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|r| snapshot.tile(pages, lang, r))
        .collect();
    let in_scope: Vec<&Register> = snapshot
        .registers
        .iter()
        .filter(|r| {
            filter.unit.is_none_or(|u| r.unit_id == u)
                && filter.region.as_ref().is_none_or(|g| &r.region == g)
        })
        .collect();
    let health_of = |r: &Register| snapshot.states.get(&r.register_id());
    let names: HashMap<i64, (String, String)> = snapshot
        .registers
        .iter()
        .map(|r| {
            (
                r.id,
                (
                    r.name.clone(),
                    snapshot.units.get(&r.unit_id).cloned().unwrap_or_default(),
                ),
            )
        })
        .collect();
    let open = Incidents(pages.platform.store.clone())
        .list(&IncidentFilter {
            unit: filter.unit,
            kind: filter.kind,
            open: true,
            limit: 200,
            ..IncidentFilter::default()
        })
        .await?;
    let scoped_ids: BTreeSet<i64> = in_scope.iter().map(|r| r.id).collect();
    let incidents = open
        .iter()
        .filter(|i| scoped_ids.contains(&i.register_id))
        .map(|i| incident_row(pages, lang, i, &names))
        .collect();
    let regions: Vec<String> = snapshot
        .registers
        .iter()
        .map(|r| r.region.clone())
        .filter(|r| !r.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut unit_list: Vec<(i64, String)> = snapshot
        .registers
        .iter()
        .map(|r| r.unit_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|id| (id, snapshot.units.get(&id).cloned().unwrap_or_default()))
        .collect();
    unit_list.sort_by(|a, b| a.1.cmp(&b.1));
    let choice = |value: String, label: String, selected: bool| Choice {
        value,
        label,
        selected,
    };
    Ok(LiveBody {
        lang,
        csrf: user.csrf.clone(),
        can_act: user.require(Role::Operator).is_ok(),
        units: unit_list
            .into_iter()
            .map(|(id, name)| choice(id.to_string(), name, filter.unit == Some(id)))
            .collect(),
        regions: regions
            .into_iter()
            .map(|r| choice(r.clone(), r.clone(), filter.region.as_ref() == Some(&r)))
            .collect(),
        kinds: Kind::ALL
            .iter()
            .map(|k| choice(k.as_str().into(), k.label().get(lang).into(), filter.kind == Some(*k)))
            .collect(),
        only: [
            ("problems", Text::new("Только с проблемами", "Problems only"), Only::Problems),
            ("down", Text::new("Только без связи", "Unreachable only"), Only::Down),
        ]
        .into_iter()
        .map(|(value, label, only)| choice(value.into(), label.get(lang).into(), filter.only == only))
        .collect(),
        total: in_scope.len(),
        up: in_scope.iter().filter(|r| health_of(r).and_then(|h| h.up) == Some(true)).count(),
        down: in_scope.iter().filter(|r| health_of(r).and_then(|h| h.up) == Some(false)).count(),
        with_incidents: in_scope.iter().filter(|r| health_of(r).is_some_and(|h| !h.open.is_empty())).count(),
        shown: admitted.len(),
        tiles,
        incidents,
        pager: if pages_count > 1 {
            (1..=pages_count).map(|n| (n, filter.query(n), n == page)).collect()
        } else {
            Vec::new()
        },
        query: filter.query(page),
        stretch: pages.settings.cadence.stretch().map(|factor| {
            format!(
                "{} {factor:.1}×{}",
                lang.pick(
                    "Заданная частота опроса больше разрешённой (1 запрос в секунду на кассу): опрос идёт медленнее в",
                    "The configured polling is faster than allowed (one request a second per register): it runs"
                ),
                lang.pick(" раза.", " slower.")
            )
        }),
    })
}

#[derive(Deserialize)]
struct Fragment {
    #[serde(default)]
    fragment: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn live_page(
    State(pages): State<Pages>,
    user: CurrentUser,
    lang: Lang,
    Query(query): Query<FilterQuery>,
    Query(fragment): Query<Fragment>,
) -> Result<Response, HttpError> {
    let body = live_body(&pages, lang, &user, &query.parse()).await?;
    if fragment.fragment.is_some() {
        return Ok(Html(body.render().map_err(HttpError::internal)?).into_response());
    }
    Ok(render(&LivePage {
        page: PageContext::new(lang.pick("Кассы УКМ", "UKM registers"), lang, Some(user)),
        body,
    }))
}

/// The live page's stream: a re-rendered tile when a register on the page changes, `stale` when the page itself
/// should be fetched again (an incident opened or closed, a register joined or left the filter).
#[tracing::instrument(skip_all)]
async fn live_stream(
    State(pages): State<Pages>,
    _user: CurrentUser,
    lang: Lang,
    Query(query): Query<FilterQuery>,
    Query(only_register): Query<OnlyRegister>,
) -> Result<Response, HttpError> {
    let filter = query.parse();
    let mut bus = pages.platform.events.subscribe();
    let snapshot = Snapshot::load(&pages).await?;
    let shown: Vec<Register> = match only_register.register {
        Some(id) => snapshot
            .registers
            .iter()
            .filter(|r| r.id == id)
            .cloned()
            .collect(),
        None => snapshot
            .admitted(&filter)
            .into_iter()
            .skip((filter.page.max(1) - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .cloned()
            .collect(),
    };
    let (sender, receiver) = tokio::sync::mpsc::channel::<axum::response::sse::Event>(64);
    let stopping = pages.platform.stopping();
    tokio::spawn(async move {
        let mut snapshot = snapshot;
        let shown: HashMap<i64, Register> = shown.into_iter().map(|r| (r.id, r)).collect();
        loop {
            let event: Event = match bus.recv().await {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Event::resync(0),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let mut messages = Vec::new();
            if event.topic == TOPIC_STATE {
                let Some(id) = event.payload.get("register").and_then(|v| v.as_i64()) else {
                    continue;
                };
                if only_register.register.is_some_and(|only| only != id) {
                    continue;
                }
                let Some(health) = event
                    .payload
                    .get("health")
                    .and_then(|h| serde_json::from_value::<Health>(h.clone()).ok())
                else {
                    continue;
                };
                let before = snapshot.states.insert(RegisterId(id), health.clone());
                let register = snapshot.registers.iter().find(|r| r.id == id);
                let page_changes = register.is_some_and(|r| {
                    filter.admits(r, before.as_ref()) != filter.admits(r, Some(&health))
                        || before.as_ref().map(|b| (&b.open, b.up))
                            != Some((&health.open, health.up))
                });
                let tile = shown
                    .get(&id)
                    .and_then(|register| snapshot.tile(&pages, lang, register).render().ok());
                if let Some(html) = tile {
                    messages.push(
                        axum::response::sse::Event::default()
                            .event("tile")
                            .data(serde_json::json!({ "id": id, "html": html }).to_string()),
                    );
                }
                if page_changes {
                    messages.push(stale());
                }
            } else if only_register.register.is_none()
                && (event.topic == tillwire_platform::events::RESYNC
                    || event.topic == crate::TOPIC_REGISTERS_CHANGED)
            {
                messages.push(stale());
            }
            for message in messages {
                if sender.send(message).await.is_err() {
                    return;
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(receiver).map(Ok);
    Ok(tillwire_platform::web::live(stream, stopping))
}

/// "Fetch the page again". It carries data: browsers drop an event whose data is empty.
fn stale() -> axum::response::sse::Event {
    axum::response::sse::Event::default()
        .event("stale")
        .data("refetch")
}

#[derive(Deserialize)]
struct OnlyRegister {
    register: Option<i64>,
}

#[derive(Template)]
#[template(path = "monitor_register.html")]
struct RegisterPage {
    page: PageContext,
    register: Register,
    unit: String,
    zone: String,
    tile: Tile,
    can_act: bool,
    thresholds: Vec<(String, u32)>,
    weight: String,
    windows: Vec<WindowRow>,
    incidents: Vec<IncidentRow>,
    plot: String,
    strip: Vec<(&'static str, String)>,
}

struct WindowRow {
    id: i64,
    span: String,
    reason: String,
    by: String,
    whole_unit: bool,
}

fn threshold_label(field: &str, lang: Lang) -> String {
    match field {
        "offline_polls" => lang.pick("Нет связи: опросов подряд", "Offline: polls in a row"),
        "no_paper_polls" => lang.pick("Нет бумаги: опросов подряд", "No paper: polls in a row"),
        "ofd_backlog" => lang.pick("Чеков не ушло в ОФД", "Receipts not sent to the OFD"),
        "vision_polls" => lang.pick(
            "Нет Vision: опросов подряд",
            "Vision offline: polls in a row",
        ),
        "receipt_stuck_minutes" => lang.pick("Чек без действий, минут", "Receipt idle, minutes"),
        "close_after" => lang.pick("Закрыть после хороших опросов", "Close after good polls"),
        other => other,
    }
    .to_owned()
}

#[tracing::instrument(skip_all, fields(register = id))]
async fn register_page(
    State(pages): State<Pages>,
    user: CurrentUser,
    lang: Lang,
    Path(id): Path<i64>,
) -> Result<Response, HttpError> {
    let store = &pages.platform.store;
    let register = Registers(store.clone()).get(RegisterId(id)).await?;
    let unit = Units(store)
        .get(tillwire_units::UnitId(register.unit_id))
        .await
        .map(|u| u.name)
        .unwrap_or_default();
    let health = States(store.clone()).get(register.register_id()).await?;
    let now = now_ms();
    let windows = Maintenance(store.clone()).current(now).await?;
    let muted = windows
        .iter()
        .any(|w| w.covers(register.unit_id, register.register_id(), now));
    let unit_overrides = Registers(store.clone())
        .unit_overrides()
        .await?
        .get(&register.unit_id)
        .copied()
        .unwrap_or_default();
    let effective = register
        .overrides()
        .over(unit_overrides.over(pages.settings.thresholds));
    let values = [
        effective.offline_polls,
        effective.no_paper_polls,
        effective.ofd_backlog,
        effective.vision_polls,
        effective.receipt_stuck_minutes,
        effective.close_after,
    ];
    let names: HashMap<i64, (String, String)> =
        HashMap::from([(register.id, (register.name.clone(), unit.clone()))]);
    let incidents = Incidents(store.clone())
        .list(&IncidentFilter {
            register: Some(register.register_id()),
            limit: 100,
            ..IncidentFilter::default()
        })
        .await?
        .iter()
        .map(|i| incident_row(&pages, lang, i, &names))
        .collect();
    let samples = States(store.clone())
        .samples(register.register_id(), now - 24 * 3600 * 1000)
        .await?;
    let fallback = pages.platform.settings.timezone.unwrap_or(chrono_tz::UTC);
    let settings = &pages.platform.settings;
    Ok(render(&RegisterPage {
        page: PageContext::new(register.name.clone(), lang, Some(user.clone())),
        unit: unit.clone(),
        zone: register.zone(fallback).name().to_owned(),
        tile: Tile::new(&pages, lang, &register, &unit, health.as_ref(), muted),
        can_act: user.require(Role::Operator).is_ok(),
        thresholds: THRESHOLD_FIELDS
            .iter()
            .zip(values)
            .map(|((field, ..), value)| (threshold_label(field, lang), value))
            .collect(),
        weight: match health
            .as_ref()
            .and_then(|h| h.weighed_ms.map(|ms| (h.weight, ms)))
        {
            Some((Some(kg), ms)) => format!(
                "{kg:.3} {} · {}",
                lang.pick("кг", "kg"),
                local_time(settings, ms, "%H:%M:%S")
            ),
            Some((None, ms)) => format!(
                "{} · {}",
                lang.pick(
                    "весы недоступны (открыт чек)",
                    "scale unavailable (receipt open)"
                ),
                local_time(settings, ms, "%H:%M:%S")
            ),
            None => String::new(),
        },
        windows: windows
            .iter()
            .filter(|w| {
                w.unit_id == register.unit_id && w.register_id.is_none_or(|r| r == register.id)
            })
            .map(|w| WindowRow {
                id: w.id,
                span: format!(
                    "{} — {}",
                    local_time(settings, w.starts_ms, "%d.%m %H:%M"),
                    local_time(settings, w.ends_ms, "%d.%m %H:%M")
                ),
                reason: w.reason.clone(),
                by: w.created_by.clone(),
                whole_unit: w.register_id.is_none(),
            })
            .collect(),
        incidents,
        plot: crate::plot::history(&samples, now, lang, settings),
        strip: crate::plot::strip(&samples, now, lang, settings),
        register,
    }))
}

fn operator(user: &CurrentUser) -> Result<(), HttpError> {
    user.require(Role::Operator)
        .map_err(|_| HttpError::forbidden())
}

/// Asks the register's owner (whichever instance polls it) for the weight on the scale, within the limit.
#[tracing::instrument(skip_all, fields(register = id))]
async fn weigh(
    State(pages): State<Pages>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Redirect, HttpError> {
    operator(&user)?;
    let register = Registers(pages.platform.store.clone())
        .get(RegisterId(id))
        .await?;
    pages
        .platform
        .events
        .publish(Event {
            topic: TOPIC_WEIGH.into(),
            unit_id: register.unit_id,
            payload: serde_json::json!({ "register": id }),
        })
        .await;
    Ok(Redirect::to(&format!("/monitor/registers/{id}")))
}

#[derive(Deserialize)]
struct MaintenanceForm {
    minutes: String,
    #[serde(default)]
    reason: String,
    /// `unit` for the whole unit, else the register only.
    #[serde(default)]
    scope: String,
}

#[tracing::instrument(skip_all, fields(register = id))]
async fn add_maintenance(
    State(pages): State<Pages>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<MaintenanceForm>,
) -> Result<Redirect, HttpError> {
    operator(&user)?;
    let minutes: i64 = form
        .minutes
        .trim()
        .parse()
        .ok()
        .filter(|m| (1..=7 * 24 * 60).contains(m))
        .ok_or_else(|| {
            HttpError::field(
                "minutes",
                Text::new(
                    "Длительность — от 1 минуты до 7 дней.",
                    "The duration is from 1 minute to 7 days.",
                ),
            )
        })?;
    let reason = form.reason.trim();
    if reason.chars().count() > 200 {
        return Err(HttpError::field(
            "reason",
            Text::new(
                "Причина — не длиннее 200 символов.",
                "The reason is at most 200 characters.",
            ),
        ));
    }
    let register = Registers(pages.platform.store.clone())
        .get(RegisterId(id))
        .await?;
    let now = now_ms();
    let whole_unit = form.scope == "unit";
    Maintenance(pages.platform.store.clone())
        .add(
            register.unit_id,
            (!whole_unit).then_some(register.register_id()),
            now,
            now + minutes * 60_000,
            reason,
            &user.username,
        )
        .await?;
    tracing::info!(by = %user.username, minutes, whole_unit, "monitor: maintenance window added");
    manage::told(&pages.platform, &[register.unit_id]).await;
    Ok(Redirect::to(&format!("/monitor/registers/{id}")))
}

#[derive(Deserialize)]
struct Back {
    #[serde(default)]
    back: String,
}

/// Where to go after an action: the page it came from, if it is one of the monitor's.
fn back_to(back: &str) -> String {
    if back.starts_with("/monitor/")
        && !back.starts_with("//")
        && !back.contains(['\\', '\n', '\r'])
    {
        back.to_owned()
    } else {
        "/monitor/".to_owned()
    }
}

#[tracing::instrument(skip_all, fields(window = id))]
async fn end_maintenance(
    State(pages): State<Pages>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(back): Form<Back>,
) -> Result<Redirect, HttpError> {
    operator(&user)?;
    Maintenance(pages.platform.store.clone()).end(id).await?;
    tracing::info!(by = %user.username, "monitor: maintenance window ended");
    manage::told(&pages.platform, &[0]).await;
    Ok(Redirect::to(&back_to(&back.back)))
}

#[tracing::instrument(skip_all, fields(incident = id))]
async fn acknowledge(
    State(pages): State<Pages>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(back): Form<Back>,
) -> Result<Redirect, HttpError> {
    operator(&user)?;
    let incidents = Incidents(pages.platform.store.clone());
    let incident = incidents.get(id).await?;
    let register = Registers(pages.platform.store.clone())
        .get(RegisterId(incident.register_id))
        .await?;
    incidents
        .acknowledge(id, &user.username, &register.name)
        .await?;
    tracing::info!(by = %user.username, "monitor: incident acknowledged");
    manage::told(&pages.platform, &[register.unit_id]).await;
    Ok(Redirect::to(&back_to(&back.back)))
}

/// One threshold field of a form: its name, label and the override's text ("" where none).
struct ThresholdField {
    field: &'static str,
    label: String,
    text: String,
}

fn threshold_fields(overrides: Overrides, lang: Lang) -> Vec<ThresholdField> {
    overrides
        .texts()
        .into_iter()
        .map(|(field, text)| ThresholdField {
            field,
            label: threshold_label(field, lang),
            text,
        })
        .collect()
}

struct AdminRow {
    register: Register,
    unit: String,
    zone: String,
    thresholds: Vec<ThresholdField>,
}

struct UnitRow {
    id: i64,
    name: String,
    is_default: bool,
    thresholds: Vec<ThresholdField>,
}

#[derive(Template)]
#[template(path = "admin_monitor.html")]
struct AdminPage {
    page: PageContext,
    rows: Vec<AdminRow>,
    units: Vec<UnitRow>,
    defaults: Vec<(String, u32)>,
    status_every: String,
    details_every: String,
    stretch: Option<String>,
    /// The admin navigation's current entry.
    section: &'static str,
    /// Shown where a register has no zone of its own.
    install_zone: &'static str,
}

#[tracing::instrument(skip_all)]
async fn admin_page(State(pages): State<Pages>, admin: Admin) -> Result<Response, HttpError> {
    let store = &pages.platform.store;
    let lang = admin.lang;
    let fallback = pages.platform.settings.timezone.unwrap_or(chrono_tz::UTC);
    let units = Units(store).list().await.map_err(HttpError::internal)?;
    let overrides = Registers(store.clone()).unit_overrides().await?;
    let names: HashMap<i64, String> = units.iter().map(|u| (u.id, u.name.clone())).collect();
    let rows = Registers(store.clone())
        .list()
        .await?
        .into_iter()
        .map(|register| AdminRow {
            unit: names.get(&register.unit_id).cloned().unwrap_or_default(),
            zone: register.timezone.clone().unwrap_or_default(),
            thresholds: threshold_fields(register.overrides(), lang),
            register,
        })
        .collect();
    let thresholds = pages.settings.thresholds;
    let defaults = [
        thresholds.offline_polls,
        thresholds.no_paper_polls,
        thresholds.ofd_backlog,
        thresholds.vision_polls,
        thresholds.receipt_stuck_minutes,
        thresholds.close_after,
    ];
    Ok(render(&AdminPage {
        page: admin.page("Мониторинг касс УКМ", "UKM register monitor"),
        rows,
        units: units
            .into_iter()
            .map(|unit| UnitRow {
                thresholds: threshold_fields(
                    overrides.get(&unit.id).copied().unwrap_or_default(),
                    lang,
                ),
                id: unit.id,
                name: unit.name,
                is_default: unit.is_default,
            })
            .collect(),
        defaults: THRESHOLD_FIELDS
            .iter()
            .zip(defaults)
            .map(|((field, ..), value)| (threshold_label(field, lang), value))
            .collect(),
        status_every: format!("{:.0}", pages.settings.cadence.status_every.as_secs_f64()),
        details_every: format!("{:.0}", pages.settings.cadence.details_every.as_secs_f64()),
        stretch: pages.settings.cadence.stretch().map(|f| format!("{f:.1}")),
        section: "/admin/monitor/",
        install_zone: fallback.name(),
    }))
}

/// The register form of the admin page (create and update).
#[derive(Deserialize)]
struct RegisterForm {
    unit: String,
    name: String,
    url: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(flatten)]
    thresholds: HashMap<String, String>,
}

impl RegisterForm {
    fn parse(&self) -> Result<NewRegister, HttpError> {
        let mut error: Option<HttpError> = None;
        let mut note = |e: model::FieldError| {
            error = Some(match error.take() {
                None => HttpError::field(e.field, e.message),
                Some(previous) => previous.with_field(e.field, e.message),
            });
        };
        let unit_id = self.unit.trim().parse::<i64>().ok();
        if unit_id.is_none() {
            note(model::FieldError {
                field: "unit",
                message: Text::new("Выберите подразделение.", "Choose a unit."),
            });
        }
        let name = RegisterName::parse(&self.name).map_err(&mut note).ok();
        let url = BaseUrl::parse(&self.url).map_err(&mut note).ok();
        let zone = match self.timezone.trim() {
            "" => None,
            text => model::parse_zone(text).map_err(&mut note).ok(),
        };
        let region = model::parse_region(&self.region)
            .map_err(&mut note)
            .unwrap_or_default();
        let mut overrides = Overrides::default();
        for (field, ..) in THRESHOLD_FIELDS {
            if let Some(text) = self.thresholds.get(field) {
                let _ = overrides.set(field, text).map_err(|mut e| {
                    e.field = field;
                    note(e)
                });
            }
        }
        if let Some(error) = error {
            return Err(error);
        }
        match (unit_id, name, url) {
            (Some(unit_id), Some(name), Some(url)) => Ok(NewRegister {
                unit_id,
                name,
                url,
                zone,
                region,
                enabled: self.enabled.is_some(),
                overrides,
            }),
            _ => Err(HttpError::invalid(Text::new(
                "Проверьте поля.",
                "Check the fields.",
            ))),
        }
    }
}

#[tracing::instrument(skip_all)]
async fn create_register(
    State(pages): State<Pages>,
    admin: Admin,
    Form(form): Form<RegisterForm>,
) -> Result<Redirect, HttpError> {
    let created = manage::create(&pages.platform, &form.parse()?).await?;
    tracing::info!(by = admin.username(), register = %created.name, "monitor: register added");
    Ok(Redirect::to("/admin/monitor/"))
}

#[tracing::instrument(skip_all, fields(register = id))]
async fn update_register(
    State(pages): State<Pages>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<RegisterForm>,
) -> Result<Redirect, HttpError> {
    manage::update(&pages.platform, RegisterId(id), &form.parse()?).await?;
    tracing::info!(by = admin.username(), "monitor: register changed");
    Ok(Redirect::to("/admin/monitor/"))
}

#[tracing::instrument(skip_all, fields(register = id))]
async fn delete_register(
    State(pages): State<Pages>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Redirect, HttpError> {
    let removed = manage::delete(&pages.platform, RegisterId(id)).await?;
    tracing::info!(by = admin.username(), register = %removed.name, "monitor: register removed");
    Ok(Redirect::to("/admin/monitor/"))
}

#[tracing::instrument(skip_all, fields(unit = id))]
async fn unit_thresholds(
    State(pages): State<Pages>,
    admin: Admin,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Redirect, HttpError> {
    let mut overrides = Overrides::default();
    for (field, ..) in THRESHOLD_FIELDS {
        if let Some(text) = form.get(field) {
            overrides.set(field, text).map_err(|mut e| {
                e.field = field;
                HttpError::from(e)
            })?;
        }
    }
    Registers(pages.platform.store.clone())
        .set_unit_overrides(id, &overrides)
        .await?;
    tracing::info!(by = admin.username(), "monitor: unit thresholds changed");
    manage::told(&pages.platform, &[id]).await;
    Ok(Redirect::to("/admin/monitor/#thresholds"))
}
