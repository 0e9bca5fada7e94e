//! A UKM 5 register simulator (spec `pos_protocols.md` A.5), built from the spec, not from the monitor: register
//! `n` answers under `/r/{n}/api/v1/status/{endpoint}` with the 200/204 table of A.1, from a state a test (or a
//! scenario) drives on a virtual clock. The body format is a knob, faults can be injected per register, and every
//! request is timed so a rate checker can name each register that got two requests within 1,000 ms.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

/// The seven endpoints of the register's monitoring API.
pub const ENDPOINTS: [&str; 7] = [
    "last_receipt_time",
    "downtime",
    "user_role_id",
    "ofd",
    "paper",
    "vision",
    "weight",
];

/// How a register writes the values of its 200 answers (the real format is not public).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `2024-05-01T12:00:00+03:00`
    PlainIso,
    /// `2024-05-01 12:00:00`, register-local time
    PlainSpace,
    /// `"2024-05-01 12:00:00"`
    JsonScalar,
    /// `{"downtime": "2024-05-01 12:00:00"}`
    JsonObject,
    /// `1714554000000`
    EpochMs,
}

impl std::str::FromStr for BodyFormat {
    type Err = String;

    /// The knob's names: `plain-iso`, `plain-space`, `json-scalar`, `json-object`, `epoch-ms`.
    fn from_str(name: &str) -> Result<Self, String> {
        BODY_FORMATS
            .iter()
            .zip(BODY_FORMAT_NAMES)
            .find(|(_, known)| *known == name)
            .map(|(format, _)| *format)
            .ok_or_else(|| {
                format!(
                    "unknown body format {name:?}; one of {}",
                    BODY_FORMAT_NAMES.join(", ")
                )
            })
    }
}

pub const BODY_FORMAT_NAMES: [&str; 5] = [
    "plain-iso",
    "plain-space",
    "json-scalar",
    "json-object",
    "epoch-ms",
];

pub const BODY_FORMATS: [BodyFormat; 5] = [
    BodyFormat::PlainIso,
    BodyFormat::PlainSpace,
    BodyFormat::JsonScalar,
    BodyFormat::JsonObject,
    BodyFormat::EpochMs,
];

/// A fault a register is made to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// The connection is closed without an answer (the monitor sees a transport error, as with a refusal).
    Drop,
    /// The request is accepted and never answered.
    Hang,
    /// 500 Internal Server Error.
    ServerError,
    /// Answers after this delay.
    Slow(Duration),
    /// Alternates between answering and dropping, every `period` of the virtual clock.
    Flapping(Duration),
}

/// What the register is doing (A.5's state machine).
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterState {
    /// `Some(last activity)` while a receipt is open.
    pub receipt_activity: Option<DateTime<Utc>>,
    /// When the last receipt was closed (idle since).
    pub last_close: DateTime<Utc>,
    pub user_id: Option<String>,
    pub ofd_pending: u32,
    pub paper: bool,
    pub vision: bool,
    /// Kilograms on the scale.
    pub weight: f64,
}

struct SimRegister {
    state: RegisterState,
    format: BodyFormat,
    fault: Fault,
    /// The rate checker's record: how many requests, when the last came (real time), and the shortest gap seen.
    requests: usize,
    last_request: Option<tokio::time::Instant>,
    shortest_gap: Option<Duration>,
}

struct Inner {
    registers: HashMap<u32, SimRegister>,
    /// The virtual clock: real time shifted by what the scenario advanced it.
    offset: TimeDelta,
    zone: Tz,
}

/// The simulated registers, shared by the HTTP side and the test or scenario driving them.
#[derive(Clone)]
pub struct Simulator(Arc<Mutex<Inner>>);

/// Two requests to one register closer than this break the vendor's rule.
pub const MIN_GAP: Duration = Duration::from_millis(1000);

impl Simulator {
    /// Registers `1..=count`, idle since now, paper in, Vision connected, nobody logged in, clocks in `zone`.
    pub fn new(count: u32, zone: Tz) -> Self {
        let now = Utc::now();
        let registers = (1..=count)
            .map(|n| {
                let state = RegisterState {
                    receipt_activity: None,
                    last_close: now,
                    user_id: None,
                    ofd_pending: 0,
                    paper: true,
                    vision: true,
                    weight: 0.0,
                };
                (
                    n,
                    SimRegister {
                        state,
                        format: BodyFormat::PlainSpace,
                        fault: Fault::None,
                        requests: 0,
                        last_request: None,
                        shortest_gap: None,
                    },
                )
            })
            .collect();
        Simulator(Arc::new(Mutex::new(Inner {
            registers,
            offset: TimeDelta::zero(),
            zone,
        })))
    }

    fn with<T>(&self, change: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut inner)
    }

    /// The virtual clock's time.
    pub fn now(&self) -> DateTime<Utc> {
        self.with(|inner| Utc::now() + inner.offset)
    }

    /// Moves the virtual clock forward.
    pub fn advance(&self, by: Duration) {
        self.with(|inner| inner.offset += TimeDelta::from_std(by).unwrap_or_default());
    }

    /// Changes register `n`'s state (opening a receipt, running out of paper, …); false if there is no such one.
    pub fn update(&self, n: u32, change: impl FnOnce(&mut RegisterState, DateTime<Utc>)) -> bool {
        self.with(|inner| {
            let now = Utc::now() + inner.offset;
            inner
                .registers
                .get_mut(&n)
                .map(|register| change(&mut register.state, now))
                .is_some()
        })
    }

    /// How many registers it simulates (`1..=count`).
    pub fn count(&self) -> u32 {
        self.with(|inner| inner.registers.len() as u32)
    }

    pub fn set_format(&self, n: u32, format: BodyFormat) {
        self.with(|inner| {
            if let Some(register) = inner.registers.get_mut(&n) {
                register.format = format;
            }
        });
    }

    pub fn set_fault(&self, n: u32, fault: Fault) {
        self.with(|inner| {
            if let Some(register) = inner.registers.get_mut(&n) {
                register.fault = fault;
            }
        });
    }

    /// How many requests register `n` got.
    pub fn requests(&self, n: u32) -> usize {
        self.with(|inner| inner.registers.get(&n).map_or(0, |r| r.requests))
    }

    /// Every register that got two requests within [`MIN_GAP`], with the shortest gap it saw.
    pub fn rate_violations(&self) -> Vec<(u32, Duration)> {
        let mut found: Vec<(u32, Duration)> = self.with(|inner| {
            inner
                .registers
                .iter()
                .filter_map(|(n, register)| {
                    let shortest = register.shortest_gap?;
                    (shortest < MIN_GAP).then_some((*n, shortest))
                })
                .collect()
        });
        found.sort_unstable();
        found
    }

    /// Serves the registers on a free loopback port until the process ends; the base address (`http://…`).
    pub async fn serve_on_loopback(&self) -> std::io::Result<String> {
        tillwire_platform::server::serve_on_loopback(self.router()).await
    }

    /// The HTTP side: register `n` under `/r/{n}/api/v1/status/{endpoint}`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/r/{n}/api/v1/status/{endpoint}", get(answer))
            .with_state(self.clone())
    }
}

/// What register `n` answers to `endpoint` now, following A.1's table, or the fault it shows.
enum Reply {
    Status(StatusCode, String),
    Fault(Fault),
}

async fn answer(
    State(sim): State<Simulator>,
    Path((n, endpoint)): Path<(u32, String)>,
) -> Response {
    let reply = sim.with(|inner| {
        let now = Utc::now() + inner.offset;
        let zone = inner.zone;
        let register = inner.registers.get_mut(&n)?;
        let arrived = tokio::time::Instant::now();
        register.requests += 1;
        if let Some(last) = register.last_request.replace(arrived) {
            let gap = arrived - last;
            register.shortest_gap = Some(
                register
                    .shortest_gap
                    .map_or(gap, |shortest| shortest.min(gap)),
            );
        }
        let fault = match register.fault {
            Fault::Flapping(period) => {
                let period = period.as_millis().max(1) as i64;
                if (now.timestamp_millis() / period) % 2 == 0 {
                    Fault::None
                } else {
                    Fault::Drop
                }
            }
            other => other,
        };
        if !matches!(fault, Fault::None | Fault::Slow(_)) {
            return Some((Reply::Fault(fault), Duration::ZERO));
        }
        let delay = match fault {
            Fault::Slow(delay) => delay,
            _ => Duration::ZERO,
        };
        Some((
            status_reply(&register.state, &endpoint, register.format, zone),
            delay,
        ))
    });
    let Some((reply, delay)) = reply else {
        return StatusCode::NOT_FOUND.into_response();
    };
    tokio::time::sleep(delay).await;
    match reply {
        Reply::Status(status, body) => (status, body).into_response(),
        Reply::Fault(Fault::ServerError) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Reply::Fault(Fault::Hang) => std::future::pending().await,
        // A body that fails at once: the connection is cut before a whole answer is sent.
        Reply::Fault(_) => Response::new(Body::from_stream(futures::stream::once(async {
            Err::<axum::body::Bytes, _>(std::io::Error::other("simulated connection drop"))
        }))),
    }
}

fn status_reply(state: &RegisterState, endpoint: &str, format: BodyFormat, zone: Tz) -> Reply {
    let open = state.receipt_activity;
    let value = match endpoint {
        "last_receipt_time" => open.map(|at| time_value(at, format, zone)),
        "downtime" => match open {
            None => Some(time_value(state.last_close, format, zone)),
            Some(_) => None,
        },
        "user_role_id" => state.user_id.clone(),
        "ofd" => Some(state.ofd_pending.to_string()),
        "paper" => state.paper.then(String::new),
        "vision" => state.vision.then(String::new),
        "weight" => match open {
            None => Some(format!("{:.3}", state.weight)),
            Some(_) => None,
        },
        _ => return Reply::Status(StatusCode::NOT_FOUND, String::new()),
    };
    match value {
        None => Reply::Status(StatusCode::NO_CONTENT, String::new()),
        Some(value) => Reply::Status(StatusCode::OK, body(endpoint, &value, format)),
    }
}

fn time_value(at: DateTime<Utc>, format: BodyFormat, zone: Tz) -> String {
    let local = at.with_timezone(&zone);
    match format {
        BodyFormat::PlainIso => local.to_rfc3339(),
        BodyFormat::EpochMs => at.timestamp_millis().to_string(),
        _ => local.format("%Y-%m-%d %H:%M:%S").to_string(),
    }
}

fn body(endpoint: &str, value: &str, format: BodyFormat) -> String {
    match format {
        BodyFormat::JsonScalar => serde_json::Value::String(value.to_owned()).to_string(),
        BodyFormat::JsonObject => serde_json::json!({ endpoint: value }).to_string(),
        _ => value.to_owned(),
    }
}
