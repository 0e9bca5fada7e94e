//! Where the registers are: ELQ's `main.json` (CLI mode) and the `[[collector.setretail]]` sections of
//! `tillwire.toml` (in-process mode). Both describe a register with ELQ's `cashes` keys and defaults.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use tillwire_platform::config::Secret;

use crate::CollectorError;

/// ELQ's defaults (`api_import_receipts/main.py`).
const DEFAULT_API: &str = "http://127.0.0.1/devices/import_receipt";
const DEFAULT_API_KEY: &str = "secret_key_here";
const DEFAULT_TIMER_SECS: f64 = 3.0;
const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_DATABASE: &str = "cash";
const DEFAULT_LOGIN: &str = "postgres";
const DEFAULT_PORT: u16 = 5432;

/// One register as ELQ's `cashes` entries spell it; any other key is an error, as in ELQ.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCash {
    pub sql_server: Option<String>,
    pub sql_database: Option<String>,
    pub sql_login: Option<String>,
    pub sql_password: Option<String>,
    pub sql: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMain {
    api: Option<String>,
    api_key: Option<String>,
    timer: Option<f64>,
    #[serde(default)]
    cashes: Vec<RawCash>,
}

/// A Set Retail register database. The password is a [`Secret`]: `Debug` and [`CashSource::name`] never show it.
#[derive(Debug, Clone)]
pub struct CashSource {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub login: String,
    pub password: Secret,
    /// A custom query replacing the built-in one (ELQ's `sql`); see `reader` for what it must return.
    pub sql: Option<String>,
}

impl CashSource {
    /// `host:port/database`: how logs, the admin page, metrics and the cursor table name this register.
    pub fn name(&self) -> String {
        register_name(&self.host, i64::from(self.port), &self.database)
    }

    pub(crate) fn parse(raw: RawCash) -> Result<Self, String> {
        let server = raw
            .sql_server
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_owned());
        // ELQ passed `sql_server` to psycopg2 as the host; `host:port` is accepted too for non-default ports.
        let (host, port) = match server.trim().rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (
                host.to_owned(),
                port.parse()
                    .map_err(|_| format!("sql_server {server:?}: {port:?} is not a port"))?,
            ),
            _ => (server.trim().to_owned(), DEFAULT_PORT),
        };
        let or = |value: Option<String>, default: &str| {
            value
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Ok(CashSource {
            host,
            port,
            database: or(raw.sql_database, DEFAULT_DATABASE),
            login: or(raw.sql_login, DEFAULT_LOGIN),
            password: Secret::new(or(raw.sql_password, DEFAULT_LOGIN)),
            // ELQ read main.sql when `sql` was empty; the built-in query is that one, with the cursor.
            sql: raw.sql.filter(|s| !s.trim().is_empty()),
        })
    }
}

/// `host:port/database`, see [`CashSource::name`].
pub(crate) fn register_name(host: &str, port: i64, database: &str) -> String {
    format!("{host}:{port}/{database}")
}

fn parse_cashes(raw: Vec<RawCash>) -> Result<Vec<CashSource>, String> {
    let cashes = raw
        .into_iter()
        .map(CashSource::parse)
        .collect::<Result<Vec<_>, _>>()?;
    for (i, cash) in cashes.iter().enumerate() {
        if cashes[..i].iter().any(|c| c.name() == cash.name()) {
            return Err(format!("register {} is listed twice", cash.name()));
        }
    }
    Ok(cashes)
}

/// Seconds between passes once caught up (ELQ's `timer`, fractions allowed).
#[derive(Debug, Clone, Copy)]
pub struct Timer(Duration);

impl Timer {
    pub(crate) fn parse(seconds: Option<f64>) -> Result<Self, String> {
        let seconds = seconds.unwrap_or(DEFAULT_TIMER_SECS);
        if !(0.05..=3600.0).contains(&seconds) {
            return Err(format!("timer {seconds} must be 0.05–3600 seconds"));
        }
        Ok(Timer(Duration::from_secs_f64(seconds)))
    }
    pub fn get(self) -> Duration {
        self.0
    }

    pub(crate) fn millis(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }

    pub(crate) fn from_millis(ms: i64) -> Result<Self, String> {
        Self::parse(Some(ms as f64 / 1e3))
    }
}

/// ELQ's `main.json`, parsed.
#[derive(Debug)]
pub struct MainConfig {
    pub api: reqwest::Url,
    pub api_key: Secret,
    pub timer: Timer,
    pub cashes: Vec<CashSource>,
}

impl MainConfig {
    pub fn load(path: &Path) -> Result<Self, CollectorError> {
        let text = std::fs::read_to_string(path).map_err(|e| CollectorError::Config {
            origin: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text).map_err(|message| CollectorError::Config {
            origin: path.display().to_string(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        // serde names the offending key: "unknown field `x`, expected one of `api`, …".
        let raw: RawMain = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let api_text = raw.api.unwrap_or_else(|| DEFAULT_API.to_owned());
        let api = reqwest::Url::parse(&api_text)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| format!("api {api_text:?} is not an http(s) URL"))?;
        Ok(MainConfig {
            api,
            api_key: Secret::new(raw.api_key.unwrap_or_else(|| DEFAULT_API_KEY.to_owned())),
            timer: Timer::parse(raw.timer)?,
            cashes: parse_cashes(raw.cashes)?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    overlap_minutes: Option<u32>,
    alert_after_minutes: Option<u32>,
    #[serde(default)]
    setretail: Vec<RawUnitSources>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnitSources {
    unit: Option<String>,
    timer: Option<f64>,
    lookback_hours: Option<u32>,
    #[serde(default)]
    cashes: Vec<RawCash>,
}

/// The registers one unit collects from inside `tillwire serve`.
#[derive(Debug)]
pub struct UnitSources {
    /// The unit's name; `None` means the default unit.
    pub unit: Option<String>,
    pub timer: Timer,
    pub lookback: Lookback,
    pub cashes: Vec<CashSource>,
}

/// The `[collector]` table of `tillwire.toml`.
#[derive(Debug)]
pub struct Section {
    /// For every register of this instance, those of the admin pages too.
    pub overlap: Overlap,
    /// How long a register may go uncollected before its unit is told; `None`: never.
    pub alert_after: Option<Duration>,
    pub units: Vec<UnitSources>,
}

pub fn parse_section(table: &toml::Table) -> Result<Section, CollectorError> {
    let invalid = |message: String| CollectorError::Config {
        origin: "tillwire.toml [collector]".into(),
        message,
    };
    let raw: RawSection = toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| invalid(e.message().to_owned()))?;
    let units = raw
        .setretail
        .into_iter()
        .map(|unit| {
            Ok(UnitSources {
                unit: unit.unit,
                timer: Timer::parse(unit.timer).map_err(invalid)?,
                lookback: Lookback::hours(unit.lookback_hours),
                cashes: parse_cashes(unit.cashes).map_err(invalid)?,
            })
        })
        .collect::<Result<_, CollectorError>>()?;
    let alert_after = match raw.alert_after_minutes {
        None => Some(crate::alerts::DEFAULT_ALERT_AFTER),
        Some(0) => None,
        Some(minutes @ 1..=10_080) => Some(Duration::from_secs(u64::from(minutes) * 60)),
        Some(other) => {
            return Err(invalid(format!(
                "alert_after_minutes = {other}: from 0 (never) to 10080 (a week)"
            )));
        }
    };
    Ok(Section {
        overlap: Overlap::minutes(raw.overlap_minutes),
        alert_after,
        units,
    })
}

/// How far behind its cursor each pass reads a register again, for sales it has not sent: a clock stepped back
/// or a sale committed late lands there. Minutes, default 10; 0 turns it off.
#[derive(Debug, Clone, Copy)]
pub struct Overlap(u32);

impl Default for Overlap {
    fn default() -> Self {
        Overlap(10)
    }
}

impl Overlap {
    pub fn minutes(minutes: Option<u32>) -> Self {
        minutes.map_or_else(Overlap::default, Overlap)
    }

    pub fn get(self) -> Option<chrono::TimeDelta> {
        (self.0 > 0).then(|| chrono::TimeDelta::minutes(i64::from(self.0)))
    }
}

/// Where a register seen for the first time starts: not the beginning of time (years of sales), but the start
/// of the current day, or `hours` back.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lookback(Option<u32>);

impl Lookback {
    pub fn hours(hours: Option<u32>) -> Self {
        Lookback(hours)
    }

    /// The starting commit time on the register's wall clock (registers record local time).
    pub fn start(self, now_local: chrono::NaiveDateTime) -> chrono::NaiveDateTime {
        match self.0 {
            Some(hours) => now_local - chrono::TimeDelta::hours(i64::from(hours)),
            None => now_local.date().and_time(chrono::NaiveTime::MIN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elq_main_json_is_accepted_with_elq_defaults() {
        let config = MainConfig::parse(
            r#"{"api": "http://elq:8000/devices/import_receipt/", "api_key": "secret_key_here", "timer": 3,
                "cashes": [{"sql_server": "10.1.16.11"}, {"sql_server": "10.1.16.12", "sql_database": "set",
                "sql_login": "set", "sql_password": "set", "sql": ""}]}"#,
        )
        .expect("ELQ's format");
        assert_eq!(
            config.api.as_str(),
            "http://elq:8000/devices/import_receipt/"
        );
        assert_eq!(config.timer.get(), Duration::from_secs(3));
        let first = &config.cashes[0];
        assert_eq!(
            (first.host.as_str(), first.port, first.database.as_str()),
            ("10.1.16.11", 5432, "cash")
        );
        assert_eq!(
            (first.login.as_str(), first.password.expose()),
            ("postgres", "postgres")
        );
        assert!(first.sql.is_none());
        assert_eq!(config.cashes[1].name(), "10.1.16.12:5432/set");
    }

    #[test]
    fn everything_has_a_default() {
        let config = MainConfig::parse("{}").expect("defaults");
        assert_eq!(config.api.as_str(), DEFAULT_API);
        assert_eq!(config.api_key.expose(), DEFAULT_API_KEY);
        assert!(config.cashes.is_empty());
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = MainConfig::parse(r#"{"cashes": [{"sql_server": "x", "sql_port": 5432}]}"#)
            .expect_err("unknown cash key");
        assert!(error.contains("unknown field `sql_port`"), "{error}");
        let error = MainConfig::parse(r#"{"apikey": "x"}"#).expect_err("unknown top-level key");
        assert!(error.contains("unknown field `apikey`"), "{error}");
    }

    #[test]
    fn passwords_never_show() {
        let config =
            MainConfig::parse(r#"{"cashes": [{"sql_password": "hunter2"}]}"#).expect("valid");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!config.cashes[0].name().contains("hunter2"));
    }

    #[test]
    fn host_may_carry_a_port() {
        let config =
            MainConfig::parse(r#"{"cashes": [{"sql_server": "127.0.0.1:6543"}]}"#).expect("valid");
        assert_eq!(config.cashes[0].port, 6543);
        assert!(MainConfig::parse(r#"{"cashes": [{"sql_server": "h:x"}]}"#).is_err());
    }

    #[test]
    fn toml_section_parses_per_unit() {
        let table: toml::Table = toml::from_str(
            r#"[[setretail]]
               unit = "Пиццерия"
               lookback_hours = 2
               cashes = [{ sql_server = "10.0.0.1" }]"#,
        )
        .expect("toml");
        let section = parse_section(&table).expect("valid");
        assert_eq!(section.units[0].unit.as_deref(), Some("Пиццерия"));
        assert_eq!(section.units[0].cashes[0].database, "cash");
        assert_eq!(section.overlap.get(), Some(chrono::TimeDelta::minutes(10)));
        let off: toml::Table = toml::from_str("overlap_minutes = 0").expect("toml");
        assert_eq!(parse_section(&off).expect("valid").overlap.get(), None);
        let bad: toml::Table = toml::from_str("[[setretail]]\nunits = 1").expect("toml");
        let error = parse_section(&bad).expect_err("unknown key").to_string();
        assert!(error.contains("units"), "{error}");
    }

    #[test]
    fn lookback_starts_today_by_default() {
        let now = chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
            .and_then(|d| d.and_hms_opt(15, 30, 0))
            .expect("valid");
        assert_eq!(
            Lookback::default().start(now).to_string(),
            "2024-05-01 00:00:00"
        );
        assert_eq!(
            Lookback::hours(Some(2)).start(now).to_string(),
            "2024-05-01 13:30:00"
        );
    }
}
