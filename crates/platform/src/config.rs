//! Settings. Precedence, lowest first: built-in defaults, `tillwire.toml`, a `.env` file, the process environment,
//! command-line flags. ELQ's variable names (`API_KEY`, `CALC_PRINT_TICKETS`, `PRINT_PAPER_W`, `PRINT_PAPER_H`)
//! are read as they are so an ELQ `.env` keeps working; everything of tillwire's own is `TILLWIRE_*`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("setting {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

/// A value that must never be printed: its `Debug` shows only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The settings ELQ read from its `.env`.
#[derive(Debug, Clone)]
pub struct LegacySettings {
    /// ELQ's single device key; it belongs to the default unit. Unset means only keys made in tillwire work.
    pub api_key: Option<Secret>,
    pub calc_print_tickets: i64,
    pub print_paper_w: u32,
    pub print_paper_h: u32,
}

#[derive(Debug, Clone)]
pub struct KitchenSettings {
    /// Hour (local) at which the business day, and so the queue numbering, rolls over.
    pub day_rollover_hour: u32,
    /// When on, an order becomes Ready once every station has marked its part ready.
    pub station_readiness: bool,
    /// Ready orders leave the customer board this many minutes after they became ready (0 = never).
    pub board_ready_hide_minutes: u32,
    /// `tillwire maintenance` purges finished orders older than this many days.
    pub retention_days: u32,
}

/// How a ticket's text is encoded for an ESC/POS printer (and which `ESC t` table it selects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePage {
    /// DOS Cyrillic, what most Russian-market thermal printers default to.
    Cp866,
    Cp1251,
}

impl std::str::FromStr for CodePage {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "cp866" | "ibm866" | "866" => Ok(CodePage::Cp866),
            "cp1251" | "windows-1251" | "1251" => Ok(CodePage::Cp1251),
            other => Err(format!("{other:?} is not a code page (cp866 or cp1251)")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PrintSettings {
    pub code_page: CodePage,
    /// Adds a QR code of the queue number to each ticket.
    pub qr_code: bool,
    /// After the tickets, one slip per kitchen station listing only that station's wares.
    pub station_slips: bool,
    /// Connect and write timeout for one attempt at a printer.
    pub timeout_secs: u64,
    /// Attempts before a ticket's job is dead (retries back off up to ten minutes apart).
    pub max_attempts: i64,
}

impl Default for PrintSettings {
    fn default() -> Self {
        PrintSettings {
            code_page: CodePage::Cp866,
            qr_code: false,
            station_slips: false,
            timeout_secs: 5,
            max_attempts: 20,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub data_dir: PathBuf,
    /// `None` uses the machine's local zone.
    pub timezone: Option<Tz>,
    /// Adds `Secure` to cookies; turn on behind HTTPS.
    pub secure_cookies: bool,
    pub legacy: LegacySettings,
    pub kitchen: KitchenSettings,
    /// The other tables of `tillwire.toml` by name, each parsed by the area that owns it (`area::Area::settings`).
    pub sections: std::collections::BTreeMap<String, toml::Table>,
    pub print: PrintSettings,
}

#[derive(Debug, Default, Deserialize)]
struct FileSettings {
    listen: Option<String>,
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    timezone: Option<String>,
    secure_cookies: Option<bool>,
    #[serde(default)]
    kitchen: FileKitchen,
    #[serde(default)]
    print: FilePrint,
    /// Every other key must be an area's table; which areas exist is checked at start.
    #[serde(flatten)]
    sections: std::collections::BTreeMap<String, toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKitchen {
    day_rollover_hour: Option<u32>,
    station_readiness: Option<bool>,
    board_ready_hide_minutes: Option<u32>,
    retention_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePrint {
    code_page: Option<String>,
    qr_code: Option<bool>,
    station_slips: Option<bool>,
    timeout_secs: Option<u64>,
    max_attempts: Option<i64>,
}

/// What the command line may override; each is also settable by its `TILLWIRE_*` variable through clap.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl Settings {
    /// Loads `.env` into the environment (without replacing real variables) so clap's `env` sees it too.
    pub fn load_dotenv() {
        let _ = dotenvy::dotenv();
    }

    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let file = match &overrides.config_file {
            Some(path) => read_file(path)?,
            None if Path::new("tillwire.toml").exists() => read_file(Path::new("tillwire.toml"))?,
            None => FileSettings::default(),
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());

        let data_dir = overrides
            .data_dir
            .clone()
            .or_else(|| env("TILLWIRE_DATA_DIR").map(PathBuf::from))
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let listen_text = overrides
            .listen
            .clone()
            .or_else(|| env("TILLWIRE_LISTEN"))
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8000".to_owned());
        let listen = listen_text.parse().map_err(|_| ConfigError::Invalid {
            name: "TILLWIRE_LISTEN",
            message: format!("{listen_text:?} is not an address such as 127.0.0.1:8000"),
        })?;
        let database_url = overrides
            .database_url
            .clone()
            .or_else(|| env("TILLWIRE_DATABASE_URL"))
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("tillwire.sqlite3").display()));
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(ConfigError::Invalid {
                name: "TILLWIRE_DATABASE_URL",
                message: "expected sqlite://PATH or postgres://…".into(),
            });
        }
        let timezone = match env("TILLWIRE_TIMEZONE").or(file.timezone) {
            None => None,
            Some(name) => Some(name.parse::<Tz>().map_err(|_| ConfigError::Invalid {
                name: "TILLWIRE_TIMEZONE",
                message: format!("{name:?} is not an IANA zone such as Europe/Moscow"),
            })?),
        };
        let secure_cookies = parse_env("TILLWIRE_SECURE_COOKIES")?
            .or(file.secure_cookies)
            .unwrap_or(false);

        let legacy = LegacySettings {
            api_key: env("API_KEY").map(Secret::new),
            // ELQ treats a missing or unreadable value as 0 (one copy); so do we.
            calc_print_tickets: env("CALC_PRINT_TICKETS")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            print_paper_w: paper_mm("PRINT_PAPER_W", 57)?,
            print_paper_h: paper_mm("PRINT_PAPER_H", 120)?,
        };
        let kitchen = KitchenSettings {
            day_rollover_hour: parse_env("TILLWIRE_DAY_ROLLOVER_HOUR")?
                .or(file.kitchen.day_rollover_hour)
                .unwrap_or(4),
            station_readiness: parse_env("TILLWIRE_STATION_READINESS")?
                .or(file.kitchen.station_readiness)
                .unwrap_or(true),
            board_ready_hide_minutes: parse_env("TILLWIRE_BOARD_READY_HIDE_MINUTES")?
                .or(file.kitchen.board_ready_hide_minutes)
                .unwrap_or(10),
            retention_days: parse_env("TILLWIRE_RETENTION_DAYS")?
                .or(file.kitchen.retention_days)
                .unwrap_or(30),
        };
        if kitchen.day_rollover_hour > 23 {
            return Err(ConfigError::Invalid {
                name: "TILLWIRE_DAY_ROLLOVER_HOUR",
                message: "must be 0–23".into(),
            });
        }
        let print = print_settings(file.print)?;
        Ok(Settings {
            listen,
            database_url,
            data_dir,
            timezone,
            secure_cookies,
            legacy,
            kitchen,
            sections: file.sections,
            print,
        })
    }

    /// The business day an instant belongs to: the local date after subtracting the rollover hour.
    /// The hour is subtracted on the local wall clock, so a DST change does not move the rollover.
    pub fn business_day(&self, at: DateTime<Utc>) -> NaiveDate {
        let local = match self.timezone {
            Some(zone) => at.with_timezone(&zone).naive_local(),
            None => at.with_timezone(&chrono::Local).naive_local(),
        };
        (local - TimeDelta::hours(i64::from(self.kitchen.day_rollover_hour))).date()
    }

    /// An area's table of `tillwire.toml` (empty when absent).
    pub fn section(&self, name: &str) -> &toml::Table {
        static EMPTY: std::sync::LazyLock<toml::Table> = std::sync::LazyLock::new(toml::Table::new);
        self.sections.get(name).unwrap_or(&EMPTY)
    }

    pub fn today(&self) -> NaiveDate {
        self.business_day(Utc::now())
    }

    /// A settings value for tests and tools: defaults plus the given database URL.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Settings {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            database_url: database_url.into(),
            data_dir: PathBuf::from("data"),
            timezone: None,
            secure_cookies: false,
            legacy: LegacySettings {
                api_key: None,
                calc_print_tickets: 0,
                print_paper_w: 57,
                print_paper_h: 120,
            },
            sections: Default::default(),
            kitchen: KitchenSettings {
                day_rollover_hour: 4,
                station_readiness: true,
                board_ready_hide_minutes: 10,
                retention_days: 30,
            },
            print: PrintSettings::default(),
        }
    }
}

fn print_settings(file: FilePrint) -> Result<PrintSettings, ConfigError> {
    let defaults = PrintSettings::default();
    let code_page = match parse_env::<String>("TILLWIRE_PRINT_CODE_PAGE")?.or(file.code_page) {
        None => defaults.code_page,
        Some(text) => text.parse().map_err(|message| ConfigError::Invalid {
            name: "TILLWIRE_PRINT_CODE_PAGE",
            message,
        })?,
    };
    let print = PrintSettings {
        code_page,
        qr_code: parse_env("TILLWIRE_PRINT_QR_CODE")?
            .or(file.qr_code)
            .unwrap_or(defaults.qr_code),
        station_slips: parse_env("TILLWIRE_PRINT_STATION_SLIPS")?
            .or(file.station_slips)
            .unwrap_or(defaults.station_slips),
        timeout_secs: parse_env("TILLWIRE_PRINT_TIMEOUT_SECS")?
            .or(file.timeout_secs)
            .unwrap_or(defaults.timeout_secs),
        max_attempts: parse_env("TILLWIRE_PRINT_MAX_ATTEMPTS")?
            .or(file.max_attempts)
            .unwrap_or(defaults.max_attempts),
    };
    if !(1..=30).contains(&print.timeout_secs) {
        return Err(ConfigError::Invalid {
            name: "TILLWIRE_PRINT_TIMEOUT_SECS",
            message: "must be 1–30 (an attempt must end well within the job lease)".into(),
        });
    }
    if print.max_attempts < 1 {
        return Err(ConfigError::Invalid {
            name: "TILLWIRE_PRINT_MAX_ATTEMPTS",
            message: "must be 1 or more".into(),
        });
    }
    Ok(print)
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Toml {
        path: path.into(),
        message: e.message().to_owned(),
    })
}

fn parse_env<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            value
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ConfigError::Invalid {
                    name,
                    message: format!("cannot parse {value:?}"),
                })
        }
        _ => Ok(None),
    }
}

fn paper_mm(name: &'static str, default: u32) -> Result<u32, ConfigError> {
    let value = parse_env::<u32>(name)?.unwrap_or(default);
    if !(30..=1000).contains(&value) {
        return Err(ConfigError::Invalid {
            name,
            message: format!("{value} mm is outside 30–1000"),
        });
    }
    Ok(value)
}
