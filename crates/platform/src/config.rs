//! Settings, layered with figment. Lowest first: built-in defaults, `tillwire.toml` (or `--config`), a `.env`
//! file, the process environment, command-line flags. Every setting is declared once: its key (`listen`,
//! `kitchen.day_rollover_hour`), its default and validation where it is parsed, and its environment variables in
//! an [`EnvVar`] (tillwire's own name first, then ELQ's alias where ELQ had one: `API_KEY`, `CALC_PRINT_TICKETS`,
//! `PRINT_PAPER_W`, `PRINT_PAPER_H`). The platform parses only its own keys; each area deserialises its own
//! `[section]` with [`Settings::section`]. An error names the setting and the layer it came from.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono_tz::Tz;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A value of the wrong type or shape; figment's message names the key and where it came from.
    #[error("{0}")]
    Layer(String),
    #[error("setting {key} ({origin}): {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
}

impl From<figment::Error> for ConfigError {
    fn from(error: figment::Error) -> Self {
        ConfigError::from_layer("", error)
    }
}

impl ConfigError {
    /// A value a layer gave that does not fit: the setting's full key (`section.key`), the layer and name it came
    /// from, and what is wrong with it.
    fn from_layer(section: &str, error: figment::Error) -> Self {
        let mut path: Vec<String> = section
            .split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        path.extend(error.path.iter().cloned());
        if path.is_empty() {
            // Not about one value (a file that does not parse): figment's message names the file.
            return ConfigError::Layer(error.to_string());
        }
        let key = path.join(".");
        ConfigError::Invalid {
            origin: error
                .metadata
                .as_ref()
                .map_or_else(|| "default".into(), |metadata| origin(metadata, &key)),
            key,
            message: error.kind.to_string(),
        }
    }
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

/// The environment variables of one setting: tillwire's own name first, then aliases (ELQ's), the first one set
/// winning. An empty variable counts as unset.
#[derive(Debug)]
pub struct EnvVar {
    /// The setting's key, `section.name` for an area's.
    pub key: &'static str,
    pub names: &'static [&'static str],
    /// Read as TOML would read it (`5` a number, `true` a boolean); otherwise always text, so a key of digits
    /// stays a key.
    pub typed: bool,
}

impl EnvVar {
    /// A number, boolean or list.
    pub const fn typed(key: &'static str, names: &'static [&'static str]) -> Self {
        EnvVar {
            key,
            names,
            typed: true,
        }
    }

    /// Text, whatever it looks like.
    pub const fn text(key: &'static str, names: &'static [&'static str]) -> Self {
        EnvVar {
            key,
            names,
            typed: false,
        }
    }
}

/// The platform's own settings and their variables (every top-level key that is not an area's section).
pub const PLATFORM_ENV: &[EnvVar] = &[
    EnvVar::text("listen", &["TILLWIRE_LISTEN"]),
    EnvVar::text("database_url", &["TILLWIRE_DATABASE_URL"]),
    EnvVar::text("data_dir", &["TILLWIRE_DATA_DIR"]),
    EnvVar::text("timezone", &["TILLWIRE_TIMEZONE"]),
    EnvVar::typed("secure_cookies", &["TILLWIRE_SECURE_COOKIES"]),
    EnvVar::text("api_key", &["TILLWIRE_API_KEY", "API_KEY"]),
    EnvVar::typed("shutdown_grace_secs", &["TILLWIRE_SHUTDOWN_GRACE_SECS"]),
    EnvVar::typed(
        "http_header_timeout_secs",
        &["TILLWIRE_HTTP_HEADER_TIMEOUT_SECS"],
    ),
    EnvVar::typed(
        "http_body_timeout_secs",
        &["TILLWIRE_HTTP_BODY_TIMEOUT_SECS"],
    ),
    EnvVar::typed("http_max_connections", &["TILLWIRE_HTTP_MAX_CONNECTIONS"]),
    EnvVar::text("trusted_proxies", &["TILLWIRE_TRUSTED_PROXIES"]),
    EnvVar::typed("session_idle_hours", &["TILLWIRE_SESSION_IDLE_HOURS"]),
];

/// Where `--config` is found when not given as a flag.
const CONFIG_VAR: &str = "TILLWIRE_CONFIG";

/// The platform's part of the settings; the other top-level keys are the areas' sections.
#[derive(Debug, Serialize, Deserialize)]
struct PlatformKeys {
    listen: String,
    database_url: Option<String>,
    data_dir: PathBuf,
    timezone: Option<String>,
    secure_cookies: bool,
    api_key: Option<String>,
    shutdown_grace_secs: u64,
    http_header_timeout_secs: u64,
    http_body_timeout_secs: u64,
    http_max_connections: usize,
    /// A list in TOML; a comma-separated text in a variable.
    #[serde(deserialize_with = "list_or_text")]
    trusted_proxies: Vec<String>,
    session_idle_hours: u64,
}

/// A list, or one text of comma-separated entries (as an environment variable gives it).
fn list_or_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    Ok(match ListOrText::deserialize(deserializer)? {
        ListOrText::List(list) => list,
        ListOrText::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

impl Default for PlatformKeys {
    fn default() -> Self {
        PlatformKeys {
            listen: "127.0.0.1:8000".into(),
            database_url: None,
            data_dir: PathBuf::from("data"),
            timezone: None,
            secure_cookies: false,
            api_key: None,
            shutdown_grace_secs: 10,
            http_header_timeout_secs: 10,
            http_body_timeout_secs: 30,
            http_max_connections: 4096,
            trusted_proxies: Vec::new(),
            session_idle_hours: 12,
        }
    }
}

/// What the command line may set.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// Where settings come from, besides the built-in defaults.
pub struct Sources<'a> {
    pub flags: Overrides,
    /// The process environment (`std::env::vars()`); tests pass their own.
    pub environment: Vec<(String, String)>,
    /// A `.env` file, read when it exists.
    pub dotenv: Option<PathBuf>,
    /// Every setting's variables: [`PLATFORM_ENV`] and each area's.
    pub variables: Vec<&'a EnvVar>,
}

impl Sources<'_> {
    /// The process's own sources: its environment, `./.env`, the given flags.
    pub fn process<'a>(flags: Overrides, variables: Vec<&'a EnvVar>) -> Sources<'a> {
        Sources {
            flags,
            environment: std::env::vars().collect(),
            dotenv: Some(PathBuf::from(".env")),
            variables,
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
    /// ELQ's single device key (`API_KEY`); it belongs to the default unit. Unset means only keys made in
    /// tillwire work.
    pub api_key: Option<Secret>,
    /// How long a stopping process waits for running jobs and requests before it exits anyway.
    pub shutdown_grace: std::time::Duration,
    /// A staff session ends after this long without use (it is renewed on use).
    pub session_idle: std::time::Duration,
    /// The HTTP edge's timeouts, connection cap and trusted proxies.
    pub http: crate::server::Edge,
    /// Every layer, for the areas' sections.
    layers: Arc<Figment>,
}

impl Settings {
    pub fn load(sources: Sources<'_>) -> Result<Self, ConfigError> {
        let dotenv = match &sources.dotenv {
            Some(path) if path.exists() => read_dotenv(path)?,
            _ => Vec::new(),
        };
        let lookup = |pairs: &[(String, String)], name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(n, v)| n == name && !v.trim().is_empty())
                .map(|(_, v)| PathBuf::from(v))
        };
        let config_file = sources
            .flags
            .config_file
            .clone()
            .or_else(|| lookup(&sources.environment, CONFIG_VAR))
            .or_else(|| lookup(&dotenv, CONFIG_VAR));
        let mut layers = Figment::from(Serialized::defaults(PlatformKeys::default()));
        match config_file {
            Some(path) => {
                if let Err(source) = std::fs::metadata(&path) {
                    return Err(ConfigError::Read { path, source });
                }
                layers = layers.merge(Toml::file(path));
            }
            None if Path::new("tillwire.toml").exists() => {
                layers = layers.merge(Toml::file("tillwire.toml"));
            }
            None => {}
        }
        let flags = &sources.flags;
        let flag_entries = [
            ("listen", "--listen", flags.listen.clone()),
            ("database_url", "--database-url", flags.database_url.clone()),
            (
                "data_dir",
                "--data-dir",
                flags.data_dir.as_ref().map(|p| p.display().to_string()),
            ),
        ]
        .into_iter()
        .filter_map(|(key, flag, value)| Some((key, Value::from(value?), flag.to_owned())))
        .collect();
        let layers = layers
            .merge(Layer::from_variables(
                ".env file",
                &dotenv,
                &sources.variables,
            ))
            .merge(Layer::from_variables(
                "environment variable",
                &sources.environment,
                &sources.variables,
            ))
            .merge(Layer {
                kind: "command-line flag",
                entries: flag_entries,
            });
        Self::from_layers(layers)
    }

    /// Defaults plus the given database URL, for tests and tools.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        let layers = Figment::from(Serialized::defaults(PlatformKeys::default()))
            .merge(Serialized::default("database_url", database_url.into()));
        let mut settings = Self::from_layers(layers).expect("the defaults are valid");
        settings.listen = "127.0.0.1:0".parse().expect("valid address");
        settings
    }

    /// Sets an area's setting above every layer (`"kitchen.station_readiness"`), as a flag would; for tests.
    pub fn set(&mut self, key: &str, value: impl Serialize) {
        let layers = (*self.layers).clone().merge(Serialized::global(key, value));
        self.layers = Arc::new(layers);
    }

    fn from_layers(layers: Figment) -> Result<Self, ConfigError> {
        let keys: PlatformKeys = layers.extract()?;
        let settings = Settings {
            listen: keys.listen.parse().map_err(|_| {
                invalid_at(
                    &layers,
                    "listen",
                    format!("{:?} is not an address such as 127.0.0.1:8000", keys.listen),
                )
            })?,
            database_url: keys.database_url.clone().unwrap_or_else(|| {
                format!(
                    "sqlite://{}",
                    keys.data_dir.join("tillwire.sqlite3").display()
                )
            }),
            timezone: match &keys.timezone {
                None => None,
                Some(name) => Some(name.parse::<Tz>().map_err(|_| {
                    invalid_at(
                        &layers,
                        "timezone",
                        format!("{name:?} is not an IANA zone such as Europe/Moscow"),
                    )
                })?),
            },
            data_dir: keys.data_dir,
            secure_cookies: keys.secure_cookies,
            api_key: keys.api_key.map(Secret::new),
            shutdown_grace: match keys.shutdown_grace_secs {
                0..=3600 => std::time::Duration::from_secs(keys.shutdown_grace_secs),
                _ => {
                    return Err(invalid_at(
                        &layers,
                        "shutdown_grace_secs",
                        "seconds, at most 3600".to_owned(),
                    ));
                }
            },
            session_idle: match keys.session_idle_hours {
                1..=720 => std::time::Duration::from_secs(keys.session_idle_hours * 3600),
                _ => {
                    return Err(invalid_at(
                        &layers,
                        "session_idle_hours",
                        "hours, from 1 to 720".to_owned(),
                    ));
                }
            },
            http: crate::server::Edge {
                header_timeout: seconds(
                    &layers,
                    "http_header_timeout_secs",
                    keys.http_header_timeout_secs,
                )?,
                body_timeout: seconds(
                    &layers,
                    "http_body_timeout_secs",
                    keys.http_body_timeout_secs,
                )?,
                max_connections: match keys.http_max_connections {
                    0 => {
                        return Err(invalid_at(
                            &layers,
                            "http_max_connections",
                            "at least 1".to_owned(),
                        ));
                    }
                    cap => cap,
                },
                trusted_proxies: crate::server::TrustedProxies::parse(&keys.trusted_proxies)
                    .map_err(|message| invalid_at(&layers, "trusted_proxies", message))?,
            },
            layers: Arc::new(layers),
        };
        if !(settings.database_url.starts_with("sqlite:")
            || settings.database_url.starts_with("postgres"))
        {
            return Err(settings.invalid("database_url", "expected sqlite://PATH or postgres://…"));
        }
        Ok(settings)
    }

    /// An area's `[section]`, every layer applied; what no layer sets comes from the type's serde defaults.
    pub fn section<T: DeserializeOwned>(&self, name: &str) -> Result<T, ConfigError> {
        self.layers
            .focus(name)
            .extract()
            .map_err(|error| ConfigError::from_layer(name, error))
    }

    /// The names of the tables that are not the platform's (each must be an area's section).
    pub fn section_names(&self) -> Vec<String> {
        let Ok(data) = self.layers.data() else {
            return Vec::new();
        };
        data.values()
            .flat_map(|dict| dict.keys())
            .filter(|key| {
                !PLATFORM_ENV
                    .iter()
                    .any(|variable| variable.key == key.as_str())
            })
            .cloned()
            .collect()
    }

    /// The error for a setting whose value parsed but is not allowed, naming where the value came from.
    pub fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        invalid_at(&self.layers, key, message.into())
    }
}

/// A timeout of 1 to 3,600 seconds.
fn seconds(layers: &Figment, key: &str, value: u64) -> Result<std::time::Duration, ConfigError> {
    match value {
        1..=3600 => Ok(std::time::Duration::from_secs(value)),
        _ => Err(invalid_at(
            layers,
            key,
            "seconds, from 1 to 3600".to_owned(),
        )),
    }
}

fn invalid_at(layers: &Figment, key: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        origin: layers
            .find_metadata(key)
            .map_or_else(|| "default".into(), |metadata| origin(metadata, key)),
        message,
    }
}

/// Where a key's value came from, as a person would look for it: "environment variable TILLWIRE_LISTEN",
/// "TOML file /etc/tillwire.toml".
fn origin(metadata: &Metadata, key: &str) -> String {
    let path: Vec<&str> = key.split('.').collect();
    let native = metadata.interpolate(&Profile::Default, &path);
    match (metadata.source.as_ref(), native != key) {
        (Some(source), true) => format!("{native} in {} {source}", metadata.name),
        (Some(source), false) => format!("{} {source}", metadata.name),
        (None, true) => format!("{} {native}", metadata.name),
        (None, false) => metadata.name.to_string(),
    }
}

fn read_dotenv(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let read = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let entries = dotenvy::from_path_iter(path).map_err(|e| match e {
        dotenvy::Error::Io(source) => read(source),
        other => ConfigError::Layer(format!("{}: {other}", path.display())),
    })?;
    entries
        .map(|entry| entry.map_err(|e| ConfigError::Layer(format!("{}: {e}", path.display()))))
        .collect()
}

/// One layer of settings: values by key, each with the name it was given under (a variable, a flag), which
/// errors show instead of the key.
struct Layer {
    kind: &'static str,
    entries: Vec<(&'static str, Value, String)>,
}

impl Layer {
    /// The declared variables found among `pairs` (the last occurrence of a name wins, as in a shell).
    fn from_variables(
        kind: &'static str,
        pairs: &[(String, String)],
        variables: &[&EnvVar],
    ) -> Layer {
        let found: HashMap<&str, &str> = pairs
            .iter()
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let entries = variables
            .iter()
            .filter_map(|variable| {
                let (name, text) = variable
                    .names
                    .iter()
                    .find_map(|name| Some((*name, *found.get(name)?)))?;
                let text = text.trim();
                let value = if variable.typed {
                    // Infallible: what does not parse as a value stays text.
                    text.parse::<Value>().unwrap_or_else(|never| match never {})
                } else {
                    Value::from(text.to_owned())
                };
                Some((variable.key, value, name.to_owned()))
            })
            .collect();
        Layer { kind, entries }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let names: HashMap<String, String> = self
            .entries
            .iter()
            .map(|(key, _, name)| ((*key).to_owned(), name.clone()))
            .collect();
        Metadata::named(self.kind).interpolater(move |_, path| {
            let key = path.join(".");
            names.get(&key).cloned().unwrap_or(key)
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (key, value, _) in &self.entries {
            let path: Vec<&str> = key.split('.').collect();
            insert(&mut root, &path, value.clone());
        }
        Ok(Profile::Default.collect(root))
    }
}

fn insert(dict: &mut Dict, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry((*first).to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}
