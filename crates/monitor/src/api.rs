//! The monitor's JSON API under `/api/v1/monitor/`: registers (read and write), their current state, incidents
//! (filtered, acknowledged) and each register's recent history. Callers present a platform service token
//! (`Authorization: Bearer <token>`) of scope `monitor` or `admin`; every error is the platform's one JSON shape.

use std::collections::BTreeSet;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tillwire_platform::error::ErrorBody;
use tillwire_platform::tokens::{ScopedCaller, TokenScope};
use tillwire_platform::{HttpError, Platform, Text, now_ms};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::health::Health;
use crate::manage;
use crate::model::{BaseUrl, Kind, Overrides, RegisterId, RegisterName, parse_region, parse_zone};
use crate::storage::{
    Incident, IncidentFilter, Incidents, MonitorError, NewRegister, Register, Registers, Sample,
    States,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "tillwire monitor API", version = "1", description = "UKM 5 registers, their state and incidents. Authenticate with `Authorization: Bearer <service token>` of scope `monitor` or `admin`."),
    paths(list_registers, create_register, get_register, update_register, delete_register, register_history,
          list_states, list_incidents, acknowledge_incident),
    components(schemas(MonitorRegister, MonitorRegisterIn, MonitorThresholds, MonitorRegisterState, MonitorHealth,
                       MonitorIncident, MonitorIncidentKind, MonitorSample, MonitorHistory, ErrorBody)),
    modifiers(&TokenAuth)
)]
pub struct MonitorApi;

/// The scheme each operation names (`monitor_token`): a platform service token as a bearer token.
struct TokenAuth;

impl utoipa::Modify for TokenAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("A service token of scope `monitor` or `admin`.".into());
        components.add_security_scheme("monitor_token", SecurityScheme::Http(scheme));
    }
}

pub fn router(platform: Platform) -> Router {
    Router::new()
        .route(
            "/api/v1/monitor/registers",
            get(list_registers).post(create_register),
        )
        .route(
            "/api/v1/monitor/registers/{id}",
            get(get_register)
                .put(update_register)
                .delete(delete_register),
        )
        .route(
            "/api/v1/monitor/registers/{id}/history",
            get(register_history),
        )
        .route("/api/v1/monitor/state", get(list_states))
        .route("/api/v1/monitor/incidents", get(list_incidents))
        .route(
            "/api/v1/monitor/incidents/{id}/acknowledge",
            post(acknowledge_incident),
        )
        .with_state(platform)
}

// ---- authentication ----

/// The monitor's API takes tokens of scope `monitor`.
pub struct MonitorScope;

impl TokenScope for MonitorScope {
    const SCOPE: &'static str = crate::AREA.name;
    const NAME_RU: &'static str = "монитору касс";
    const NAME_EN: &'static str = "the register monitor";
}

/// Who called: a service token allowed the monitor's API.
pub type Caller = ScopedCaller<MonitorScope>;

// ---- schemas ----

/// A register's own thresholds (those it overrides over its unit's and the chain's); absent ones are inherited.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorThresholds {
    /// Unreachable polls in a row that open `offline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100)]
    pub offline_polls: Option<u32>,
    /// `paper` 204s in a row that open `no_paper`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100)]
    pub no_paper_polls: Option<u32>,
    /// Unsent OFD receipts that open `ofd_backlog`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100000)]
    pub ofd_backlog: Option<u32>,
    /// `vision` 204s in a row that open `vision_offline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100)]
    pub vision_polls: Option<u32>,
    /// Minutes without activity in an open receipt that open `receipt_stuck`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1440)]
    pub receipt_stuck_minutes: Option<u32>,
    /// Good polls in a row that close an incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100)]
    pub close_after: Option<u32>,
}

impl From<Overrides> for MonitorThresholds {
    fn from(o: Overrides) -> Self {
        MonitorThresholds {
            offline_polls: o.offline_polls,
            no_paper_polls: o.no_paper_polls,
            ofd_backlog: o.ofd_backlog,
            vision_polls: o.vision_polls,
            receipt_stuck_minutes: o.receipt_stuck_minutes,
            close_after: o.close_after,
        }
    }
}

/// A monitored register.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonitorRegister {
    pub id: i64,
    pub unit_id: i64,
    pub name: String,
    /// The base URL of the register's monitoring API (ends in `/`).
    pub url: String,
    /// IANA time zone of the register's clock; null: the install's.
    pub timezone: Option<String>,
    pub region: String,
    /// Polled only while enabled.
    pub enabled: bool,
    /// Declared in `tillwire.toml`: changed there, never through the API.
    pub declared: bool,
    pub thresholds: MonitorThresholds,
    /// When it last changed (Unix ms).
    pub updated_ms: i64,
}

impl From<&Register> for MonitorRegister {
    fn from(r: &Register) -> Self {
        MonitorRegister {
            id: r.id,
            unit_id: r.unit_id,
            name: r.name.clone(),
            url: r.url.clone(),
            timezone: r.timezone.clone(),
            region: r.region.clone(),
            enabled: r.enabled,
            declared: r.declared,
            thresholds: r.overrides().into(),
            updated_ms: r.updated_ms,
        }
    }
}

/// A register to create, or what a register becomes (PUT replaces it whole: absent fields take their defaults).
#[allow(dead_code)] // Documents the body; it is read field by field to name every field that does not fit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorRegisterIn {
    pub unit_id: i64,
    /// 1–64 characters, unique within the unit.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// `http://` or `https://` URL of the register's monitoring API, without query or user name.
    #[schema(example = "http://10.1.16.11:8080/")]
    pub url: String,
    /// IANA zone such as `Europe/Moscow`; null or absent: the install's.
    #[schema(example = "Europe/Moscow")]
    pub timezone: Option<String>,
    /// Up to 64 characters; default empty.
    #[schema(max_length = 64)]
    pub region: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Default none.
    pub thresholds: Option<MonitorThresholds>,
}

/// The kinds of incident.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MonitorIncidentKind {
    Offline,
    NoPaper,
    OfdBacklog,
    VisionOffline,
    ReceiptStuck,
}

/// A register's state as its last polls left it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonitorHealth {
    /// Whether the last request got an answer (null before the first).
    pub up: Option<bool>,
    /// Whether a receipt is open.
    pub busy: Option<bool>,
    /// When the last receipt closed (Unix ms, while idle).
    pub idle_since_ms: Option<i64>,
    /// The last activity inside the open receipt (Unix ms, while busy).
    pub activity_ms: Option<i64>,
    /// The logged-in cashier's id.
    pub cashier: Option<String>,
    /// Receipts not yet sent to the OFD.
    pub ofd: Option<u64>,
    /// Whether there is paper.
    pub paper: Option<bool>,
    /// Whether Vision is connected.
    pub vision: Option<bool>,
    /// The weight on the scale when last asked for (kg), and when (Unix ms).
    pub weight: Option<f64>,
    pub weighed_ms: Option<i64>,
    /// The last answer's HTTP status when it was neither 200 nor 204.
    pub unknown_status: Option<u16>,
    /// The last answer (Unix ms).
    pub last_seen_ms: Option<i64>,
    /// The last request (Unix ms).
    pub last_poll_ms: Option<i64>,
    /// The last answer's response time.
    pub latency_ms: Option<i64>,
    /// The kinds of incident open now.
    pub open: Vec<MonitorIncidentKind>,
}

fn kind_out(kind: Kind) -> MonitorIncidentKind {
    match kind {
        Kind::Offline => MonitorIncidentKind::Offline,
        Kind::NoPaper => MonitorIncidentKind::NoPaper,
        Kind::OfdBacklog => MonitorIncidentKind::OfdBacklog,
        Kind::VisionOffline => MonitorIncidentKind::VisionOffline,
        Kind::ReceiptStuck => MonitorIncidentKind::ReceiptStuck,
    }
}

impl From<Health> for MonitorHealth {
    fn from(h: Health) -> Self {
        let open: BTreeSet<Kind> = h.open;
        MonitorHealth {
            up: h.up,
            busy: h.busy,
            idle_since_ms: h.idle_since_ms,
            activity_ms: h.activity_ms,
            cashier: h.cashier,
            ofd: h.ofd,
            paper: h.paper,
            vision: h.vision,
            weight: h.weight,
            weighed_ms: h.weighed_ms,
            unknown_status: h.unknown,
            last_seen_ms: h.last_seen_ms,
            last_poll_ms: h.last_poll_ms,
            latency_ms: h.latency_ms,
            open: open.into_iter().map(kind_out).collect(),
        }
    }
}

/// A register with its current state (null until it has been polled).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonitorRegisterState {
    pub register: MonitorRegister,
    pub state: Option<MonitorHealth>,
}

/// An incident.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonitorIncident {
    pub id: i64,
    pub register_id: i64,
    pub unit_id: i64,
    pub kind: String,
    /// What tripped it: the OFD backlog, or the stuck receipt's last activity (Unix ms); else empty.
    pub detail: String,
    pub opened_ms: i64,
    pub acknowledged_ms: Option<i64>,
    pub acknowledged_by: Option<String>,
    /// Null while open.
    pub closed_ms: Option<i64>,
}

impl From<Incident> for MonitorIncident {
    fn from(i: Incident) -> Self {
        MonitorIncident {
            id: i.id,
            register_id: i.register_id,
            unit_id: i.unit_id,
            kind: i.kind,
            detail: i.detail,
            opened_ms: i.opened_ms,
            acknowledged_ms: i.acknowledged_ms,
            acknowledged_by: i.acknowledged_by,
            closed_ms: i.closed_ms,
        }
    }
}

/// One minute of a register's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonitorSample {
    pub at_ms: i64,
    pub up: bool,
    pub busy: Option<bool>,
    pub ofd: Option<i64>,
    pub latency_ms: Option<i64>,
}

impl From<Sample> for MonitorSample {
    fn from(s: Sample) -> Self {
        MonitorSample {
            at_ms: s.at_ms,
            up: s.up,
            busy: s.busy,
            ofd: s.ofd,
            latency_ms: s.latency_ms,
        }
    }
}

/// A register's samples and incidents over the last hours.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonitorHistory {
    pub register_id: i64,
    pub since_ms: i64,
    pub until_ms: i64,
    /// Oldest first.
    pub samples: Vec<MonitorSample>,
    /// Those open at any time in the span, newest first.
    pub incidents: Vec<MonitorIncident>,
}

// ---- queries ----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnitQuery {
    /// Only this unit's registers.
    #[param(value_type = Option<i64>)]
    pub unit: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentsQuery {
    /// Only this unit's incidents.
    #[param(value_type = Option<i64>)]
    pub unit: Option<String>,
    /// Only this register's incidents.
    #[param(value_type = Option<i64>)]
    pub register: Option<String>,
    /// Only incidents of this kind.
    #[param(value_type = Option<MonitorIncidentKind>)]
    pub kind: Option<String>,
    /// `true`: only incidents still open; `false` (the default): open and closed.
    #[param(value_type = Option<bool>)]
    pub open: Option<String>,
    /// Only incidents opened at or after this instant (Unix ms).
    #[param(value_type = Option<i64>)]
    pub since_ms: Option<String>,
    /// At most this many, newest first (1–1000, default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// How many hours back (1–48, default 24).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 48)]
    pub hours: Option<String>,
}

/// Collects every query or body field that does not fit, so one answer names them all.
#[derive(Default)]
struct Problems(Vec<(String, Text)>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: Text) {
        self.0.push((field.into(), message));
    }

    fn finish(self) -> Result<(), HttpError> {
        let mut fields = self.0.into_iter();
        let Some((field, message)) = fields.next() else {
            return Ok(());
        };
        Err(fields.fold(
            HttpError::field(field, message),
            |error, (field, message)| error.with_field(field, message),
        ))
    }

    /// A whole number, if given.
    fn int(&mut self, field: &'static str, text: Option<&str>) -> Option<i64> {
        let text = text.map(str::trim).filter(|text| !text.is_empty())?;
        match text.parse() {
            Ok(value) => Some(value),
            Err(_) => {
                self.add(
                    field,
                    Text::new("Нужно целое число.", "Expected a whole number."),
                );
                None
            }
        }
    }

    /// A whole number in `min..=max`, if given.
    fn ranged(
        &mut self,
        field: &'static str,
        text: Option<&str>,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let value = self.int(field, text)?;
        if (min..=max).contains(&value) {
            Some(value)
        } else {
            self.add(
                field,
                Text::new(
                    format!("Нужно целое число от {min} до {max}."),
                    format!("Expected a whole number from {min} to {max}."),
                ),
            );
            None
        }
    }
}

// ---- the register body ----

/// Reads a register body field by field: every field that does not fit is named, with why.
fn register_input(payload: Result<Json<Value>, JsonRejection>) -> Result<NewRegister, HttpError> {
    let Json(value) = payload.map_err(HttpError::unreadable_body)?;
    let Value::Object(object) = value else {
        return Err(HttpError::invalid(Text::new(
            "Тело запроса — объект JSON.",
            "The request body is a JSON object.",
        )));
    };
    let mut problems = Problems::default();
    const KNOWN: [&str; 7] = [
        "unit_id",
        "name",
        "url",
        "timezone",
        "region",
        "enabled",
        "thresholds",
    ];
    for key in object.keys().filter(|key| !KNOWN.contains(&key.as_str())) {
        problems.add(key.clone(), Text::new("Нет такого поля.", "No such field."));
    }
    let text = |problems: &mut Problems, field: &'static str| -> Option<String> {
        match object.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                problems.add(field, Text::new("Нужна строка.", "Expected a string."));
                None
            }
        }
    };
    let required = |problems: &mut Problems, field: &'static str| {
        if matches!(object.get(field), None | Some(Value::Null)) {
            problems.add(field, Text::new("Обязательное поле.", "Required."));
        }
    };
    required(&mut problems, "unit_id");
    let unit_id = match object.get("unit_id") {
        Some(value) => value.as_i64().or_else(|| {
            if !value.is_null() {
                problems.add(
                    "unit_id",
                    Text::new(
                        "Нужен номер подразделения (целое число).",
                        "Expected a unit id (a whole number).",
                    ),
                );
            }
            None
        }),
        None => None,
    };
    required(&mut problems, "name");
    let name = text(&mut problems, "name").and_then(|name| {
        RegisterName::parse(&name)
            .map_err(|error| problems.add(error.field, error.message))
            .ok()
    });
    required(&mut problems, "url");
    let url = text(&mut problems, "url").and_then(|url| {
        BaseUrl::parse(&url)
            .map_err(|error| problems.add(error.field, error.message))
            .ok()
    });
    let zone = match text(&mut problems, "timezone") {
        Some(zone) if !zone.trim().is_empty() => parse_zone(&zone)
            .map(Some)
            .map_err(|error| problems.add(error.field, error.message))
            .unwrap_or(None),
        _ => None,
    };
    let region = text(&mut problems, "region")
        .map(|region| {
            parse_region(&region)
                .map_err(|error| problems.add(error.field, error.message))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let enabled = match object.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(enabled)) => *enabled,
        Some(_) => {
            problems.add(
                "enabled",
                Text::new("Нужно true или false.", "Expected true or false."),
            );
            true
        }
    };
    let mut overrides = Overrides::default();
    match object.get("thresholds") {
        None | Some(Value::Null) => {}
        Some(Value::Object(thresholds)) => {
            for (field, value) in thresholds {
                let problem = match value {
                    Value::Null => overrides.set(field, "").err(),
                    Value::Number(number) => overrides.set(field, &number.to_string()).err(),
                    _ => overrides.set(field, "not a number").err(),
                };
                if let Some(error) = problem {
                    problems.add(format!("thresholds.{field}"), error.message);
                }
            }
        }
        Some(_) => problems.add(
            "thresholds",
            Text::new(
                "Нужен объект порогов, например {\"offline_polls\": 5}.",
                "Expected an object of thresholds such as {\"offline_polls\": 5}.",
            ),
        ),
    }
    problems.finish()?;
    match (unit_id, name, url) {
        (Some(unit_id), Some(name), Some(url)) => Ok(NewRegister {
            unit_id,
            name,
            url,
            zone,
            region,
            enabled,
            overrides,
        }),
        // Each missing one was named above.
        _ => Err(HttpError::invalid(Text::new(
            "Проверьте поля.",
            "Check the fields.",
        ))),
    }
}

// ---- helpers ----

fn monitor_error(error: MonitorError) -> HttpError {
    match error {
        MonitorError::NoUnit => HttpError::field(
            "unit_id",
            Text::new("Такого подразделения нет.", "No such unit."),
        ),
        other => other.into(),
    }
}

// ---- handlers ----

/// Registers, by unit and name.
#[utoipa::path(get, path = "/api/v1/monitor/registers", tag = "monitor", params(UnitQuery),
    security(("monitor_token" = [])),
    responses((status = 200, body = Vec<MonitorRegister>), (status = 401, body = ErrorBody),
              (status = 403, description = "A token of another scope", body = ErrorBody),
              (status = 422, description = "A unit that is not a whole number", body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn list_registers(
    State(platform): State<Platform>,
    _caller: Caller,
    Query(query): Query<UnitQuery>,
) -> Result<Json<Vec<MonitorRegister>>, HttpError> {
    let mut problems = Problems::default();
    let unit = problems.int("unit", query.unit.as_deref());
    problems.finish()?;
    let registers = Registers(platform.store.clone())
        .list()
        .await
        .map_err(monitor_error)?;
    Ok(Json(
        registers
            .iter()
            .filter(|r| unit.is_none_or(|unit| r.unit_id == unit))
            .map(MonitorRegister::from)
            .collect(),
    ))
}

/// Add a register; the poller picks it up at once.
#[utoipa::path(post, path = "/api/v1/monitor/registers", tag = "monitor", request_body = MonitorRegisterIn,
    security(("monitor_token" = [])),
    responses((status = 201, description = "Created", body = MonitorRegister), (status = 401, body = ErrorBody),
              (status = 403, description = "A token of another scope", body = ErrorBody),
              (status = 409, description = "The unit has a register of that name", body = ErrorBody),
              (status = 422, description = "A field that does not fit (named), or no such unit", body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn create_register(
    State(platform): State<Platform>,
    _caller: Caller,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<Response, HttpError> {
    let input = register_input(payload)?;
    let register = manage::create(&platform, &input)
        .await
        .map_err(monitor_error)?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/monitor/registers/{}", register.id),
        )],
        Json(MonitorRegister::from(&register)),
    )
        .into_response())
}

/// One register.
#[utoipa::path(get, path = "/api/v1/monitor/registers/{id}", tag = "monitor",
    params(("id" = i64, Path, description = "The register's id")), security(("monitor_token" = [])),
    responses((status = 200, body = MonitorRegister), (status = 401, body = ErrorBody),
              (status = 403, description = "A token of another scope", body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn get_register(
    State(platform): State<Platform>,
    _caller: Caller,
    Path(id): Path<RegisterId>,
) -> Result<Json<MonitorRegister>, HttpError> {
    let register = Registers(platform.store.clone())
        .get(id)
        .await
        .map_err(monitor_error)?;
    Ok(Json(MonitorRegister::from(&register)))
}

/// Change a register (the body replaces it whole). Registers declared in `tillwire.toml` are refused.
#[utoipa::path(put, path = "/api/v1/monitor/registers/{id}", tag = "monitor", request_body = MonitorRegisterIn,
    params(("id" = i64, Path, description = "The register's id")), security(("monitor_token" = [])),
    responses((status = 200, body = MonitorRegister), (status = 401, body = ErrorBody),
              (status = 403, description = "A token of another scope", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "A name the unit has already, or a register declared in tillwire.toml", body = ErrorBody),
              (status = 422, description = "A field that does not fit (named), or no such unit", body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn update_register(
    State(platform): State<Platform>,
    _caller: Caller,
    Path(id): Path<RegisterId>,
    payload: Result<Json<Value>, JsonRejection>,
) -> Result<Json<MonitorRegister>, HttpError> {
    let input = register_input(payload)?;
    let (_, register) = manage::update(&platform, id, &input)
        .await
        .map_err(monitor_error)?;
    Ok(Json(MonitorRegister::from(&register)))
}

/// Remove a register with its state, incidents and history. Registers declared in `tillwire.toml` are refused.
#[utoipa::path(delete, path = "/api/v1/monitor/registers/{id}", tag = "monitor",
    params(("id" = i64, Path, description = "The register's id")), security(("monitor_token" = [])),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody),
              (status = 403, description = "A token of another scope", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "Declared in tillwire.toml", body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn delete_register(
    State(platform): State<Platform>,
    _caller: Caller,
    Path(id): Path<RegisterId>,
) -> Result<StatusCode, HttpError> {
    manage::delete(&platform, id).await.map_err(monitor_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A register's samples (one a minute) and incidents over the last hours.
#[utoipa::path(get, path = "/api/v1/monitor/registers/{id}/history", tag = "monitor",
    params(("id" = i64, Path, description = "The register's id"), HistoryQuery), security(("monitor_token" = [])),
    responses((status = 200, body = MonitorHistory), (status = 401, body = ErrorBody),
              (status = 403, description = "A token of another scope", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 422, description = "Hours out of 1–48", body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn register_history(
    State(platform): State<Platform>,
    _caller: Caller,
    Path(id): Path<RegisterId>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<MonitorHistory>, HttpError> {
    let mut problems = Problems::default();
    let hours = problems.ranged("hours", query.hours.as_deref(), 1, 48);
    problems.finish()?;
    let hours = hours.unwrap_or(24);
    Registers(platform.store.clone())
        .get(id)
        .await
        .map_err(monitor_error)?;
    let until_ms = now_ms();
    let since_ms = until_ms - hours * 3_600_000;
    let samples = States(platform.store.clone())
        .samples(id, since_ms)
        .await
        .map_err(monitor_error)?;
    let incidents = Incidents(platform.store.clone())
        .list(&IncidentFilter {
            register: Some(id),
            limit: 1000,
            ..Default::default()
        })
        .await
        .map_err(monitor_error)?;
    Ok(Json(MonitorHistory {
        register_id: id.0,
        since_ms,
        until_ms,
        samples: samples.into_iter().map(Into::into).collect(),
        incidents: incidents
            .into_iter()
            .filter(|i| i.closed_ms.is_none_or(|closed| closed >= since_ms))
            .map(Into::into)
            .collect(),
    }))
}

/// Every register with its current state.
#[utoipa::path(get, path = "/api/v1/monitor/state", tag = "monitor", params(UnitQuery),
    security(("monitor_token" = [])),
    responses((status = 200, body = Vec<MonitorRegisterState>), (status = 401, body = ErrorBody),
              (status = 403, description = "A token of another scope", body = ErrorBody),
              (status = 422, description = "A unit that is not a whole number", body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn list_states(
    State(platform): State<Platform>,
    _caller: Caller,
    Query(query): Query<UnitQuery>,
) -> Result<Json<Vec<MonitorRegisterState>>, HttpError> {
    let mut problems = Problems::default();
    let unit = problems.int("unit", query.unit.as_deref());
    problems.finish()?;
    let registers = Registers(platform.store.clone())
        .list()
        .await
        .map_err(monitor_error)?;
    let mut states = States(platform.store.clone())
        .all()
        .await
        .map_err(monitor_error)?;
    Ok(Json(
        registers
            .iter()
            .filter(|r| unit.is_none_or(|unit| r.unit_id == unit))
            .map(|r| MonitorRegisterState {
                register: r.into(),
                state: states.remove(&r.register_id()).map(Into::into),
            })
            .collect(),
    ))
}

/// Incidents, newest first.
#[utoipa::path(get, path = "/api/v1/monitor/incidents", tag = "monitor", params(IncidentsQuery),
    security(("monitor_token" = [])),
    responses((status = 200, body = Vec<MonitorIncident>), (status = 401, body = ErrorBody),
              (status = 403, description = "A token of another scope", body = ErrorBody),
              (status = 422, description = "A filter that does not fit (named)", body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn list_incidents(
    State(platform): State<Platform>,
    _caller: Caller,
    Query(query): Query<IncidentsQuery>,
) -> Result<Json<Vec<MonitorIncident>>, HttpError> {
    let mut problems = Problems::default();
    let unit = problems.int("unit", query.unit.as_deref());
    let register = problems.int("register", query.register.as_deref());
    let since_ms = problems.int("since_ms", query.since_ms.as_deref());
    let limit = problems.ranged("limit", query.limit.as_deref(), 1, 1000);
    let kind = match query.kind.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let kind = Kind::parse(text);
            if kind.is_none() {
                let kinds = Kind::ALL.map(Kind::as_str).join(", ");
                problems.add(
                    "kind",
                    Text::new(format!("Одно из: {kinds}."), format!("One of: {kinds}.")),
                );
            }
            kind
        }
    };
    let open = match query.open.as_deref().map(str::trim) {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            problems.add(
                "open",
                Text::new("Нужно true или false.", "Expected true or false."),
            );
            false
        }
    };
    problems.finish()?;
    let incidents = Incidents(platform.store.clone())
        .list(&IncidentFilter {
            register: register.map(RegisterId),
            unit,
            kind,
            open,
            since_ms,
            limit: limit.unwrap_or(100),
        })
        .await
        .map_err(monitor_error)?;
    Ok(Json(incidents.into_iter().map(Into::into).collect()))
}

/// Mark an incident as seen (by the token's name). Acknowledging again changes nothing.
#[utoipa::path(post, path = "/api/v1/monitor/incidents/{id}/acknowledge", tag = "monitor",
    params(("id" = i64, Path, description = "The incident's id")), security(("monitor_token" = [])),
    responses((status = 200, body = MonitorIncident), (status = 401, body = ErrorBody),
              (status = 403, description = "A token of another scope", body = ErrorBody),
              (status = 404, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn acknowledge_incident(
    State(platform): State<Platform>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<MonitorIncident>, HttpError> {
    let incidents = Incidents(platform.store.clone());
    let incident = incidents.get(id).await.map_err(monitor_error)?;
    let register = Registers(platform.store.clone())
        .get(RegisterId(incident.register_id))
        .await
        .map_err(monitor_error)?;
    let acknowledged = incidents
        .acknowledge(id, &caller.0.name, &register.name)
        .await
        .map_err(monitor_error)?;
    Ok(Json(acknowledged.into()))
}
