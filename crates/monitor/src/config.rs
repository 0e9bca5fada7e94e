//! The `[monitor]` section of `tillwire.toml`: how often registers are asked, the chain's thresholds, and
//! registers declared in the file.
//!
//! ```toml
//! [monitor]
//! status_every_secs = 10    # the busy/idle probe (downtime / last_receipt_time)
//! details_every_secs = 60   # paper, ofd, vision, user_role_id
//! remind_every_minutes = 30 # an open incident nobody acknowledged is told again (0: never)
//! [monitor.thresholds]
//! ofd_backlog = 30
//! [[monitor.register]]
//! unit = "Пиццерия"         # optional: the default unit
//! name = "Касса 1"
//! url = "http://10.1.16.11:8080/"
//! timezone = "Asia/Yekaterinburg"   # optional: the install's
//! ```

use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;
use tillwire_platform::Settings;
use tillwire_platform::config::{ConfigError, EnvVar};
use tillwire_platform::web::Lang;

use crate::model::{self, BaseUrl, Overrides, RegisterName, Thresholds};
use crate::schedule::Cadence;

pub const ENV: &[EnvVar] = &[
    EnvVar::typed(
        "monitor.status_every_secs",
        &["TILLWIRE_MONITOR_STATUS_EVERY_SECS"],
    ),
    EnvVar::typed(
        "monitor.details_every_secs",
        &["TILLWIRE_MONITOR_DETAILS_EVERY_SECS"],
    ),
    EnvVar::typed(
        "monitor.remind_every_minutes",
        &["TILLWIRE_MONITOR_REMIND_EVERY_MINUTES"],
    ),
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    status_every_secs: Option<f64>,
    details_every_secs: Option<f64>,
    remind_every_minutes: Option<u32>,
    #[serde(default)]
    thresholds: Overrides,
    #[serde(default)]
    register: Vec<RawRegister>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegister {
    unit: Option<String>,
    name: String,
    url: String,
    timezone: Option<String>,
    #[serde(default)]
    region: String,
}

/// A register declared in `tillwire.toml`.
#[derive(Debug, Clone)]
pub struct Declared {
    /// The unit's name; `None` is the default unit.
    pub unit: Option<String>,
    pub name: RegisterName,
    pub url: BaseUrl,
    pub zone: Option<Tz>,
    pub region: String,
}

/// The monitor's settings, checked.
#[derive(Debug, Clone, Default)]
pub struct MonitorSettings {
    pub cadence: Cadence,
    pub thresholds: Thresholds,
    pub declared: Vec<Declared>,
    /// How often an open, unacknowledged incident is told again; `None`: never.
    pub remind_every: Option<Duration>,
}

/// Reminders, unless the settings say otherwise: every half hour.
const REMIND_EVERY_MINUTES: u32 = 30;

fn seconds(key: &str, value: Option<f64>, default: Duration, max: f64) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(secs) if (1.0..=max).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        Some(secs) => Err(format!("monitor.{key} = {secs}: from 1 to {max} seconds")),
    }
}

/// Reads and checks `[monitor]` (every layer applied).
pub fn parse(settings: &Settings) -> Result<MonitorSettings, ConfigError> {
    let raw: RawSection = settings.section("monitor")?;
    let bad = |message: String| ConfigError::Layer(message);
    let defaults = Cadence::default();
    let cadence = Cadence {
        status_every: seconds(
            "status_every_secs",
            raw.status_every_secs,
            defaults.status_every,
            3_600.0,
        )
        .map_err(bad)?,
        details_every: seconds(
            "details_every_secs",
            raw.details_every_secs,
            defaults.details_every,
            86_400.0,
        )
        .map_err(bad)?,
    };
    let remind_every = match raw.remind_every_minutes.unwrap_or(REMIND_EVERY_MINUTES) {
        0 => None,
        minutes @ 1..=10_080 => Some(Duration::from_secs(u64::from(minutes) * 60)),
        other => {
            return Err(bad(format!(
                "monitor.remind_every_minutes = {other}: from 0 (never) to 10080 (a week)"
            )));
        }
    };
    let thresholds = raw
        .thresholds
        .checked()
        .map_err(|error| {
            bad(format!(
                "monitor.thresholds: {}",
                error.message.get(Lang::En)
            ))
        })?
        .over(Thresholds::default());
    let mut declared = Vec::new();
    for (index, register) in raw.register.into_iter().enumerate() {
        let at = |error: model::FieldError| {
            bad(format!(
                "monitor.register[{index}] {}: {}",
                error.field,
                error.message.get(Lang::En)
            ))
        };
        let name = RegisterName::parse(&register.name).map_err(at)?;
        if declared
            .iter()
            .any(|d: &Declared| d.name == name && d.unit == register.unit)
        {
            return Err(bad(format!(
                "monitor.register[{index}]: {:?} is declared twice in one unit",
                name.as_str()
            )));
        }
        declared.push(Declared {
            unit: register.unit.map(|unit| unit.trim().to_owned()),
            url: BaseUrl::parse(&register.url).map_err(at)?,
            zone: register
                .timezone
                .as_deref()
                .map(model::parse_zone)
                .transpose()
                .map_err(at)?,
            region: model::parse_region(&register.region).map_err(at)?,
            name,
        });
    }
    Ok(MonitorSettings {
        cadence,
        thresholds,
        declared,
        remind_every,
    })
}
