//! The `[iiko]` section of `tillwire.toml`: iikoCloud accounts, one per organization, for automation (the admin
//! pages are the other door). Secrets may come from the environment instead of the file.
//!
//! ```toml
//! [iiko]
//! poll_seconds = 60                     # the reconciliation poll; webhooks are not a guaranteed feed
//! api_login = "…"                       # or TILLWIRE_IIKO_API_LOGIN: for entries that name none
//! webhook_token = "…"                   # or TILLWIRE_IIKO_WEBHOOK_TOKEN: likewise
//!
//! [[iiko.cloud]]
//! unit = "Пиццерия"                     # optional: the default unit
//! api_url = "https://api-ru.iiko.services"
//! api_login = "…"                       # v1; or api_key + app_id + client_secret (v2)
//! organization_id = "…"                 # the webhook path is /iiko/webhook/{organization_id}
//! webhook_token = "…"                   # the authToken iiko sends
//! tables = ["…"]                        # table ids polled with order/by_table
//! products = { "<iiko product id or code>" = "<ware code>" }   # on top of the mapping page
//!
//! [[iiko.server]]                       # an iikoServer whose events journal shows orders made in iikoFront
//! unit = "Пиццерия"
//! url = "http://10.1.1.5:8080/resto/"
//! login = "…"                           # password: TILLWIRE_IIKO_SERVER_PASSWORD (or password = "…")
//! organization_id = "…"                 # optional: file its orders with this cloud organization's
//! time_zone = "Russian Standard Time"   # optional: the server's wall clock (Windows or IANA name)
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tillwire_platform::Settings;
use tillwire_platform::config::{ConfigError, EnvVar, Secret};

use crate::cloud::{Auth, DEFAULT_API_URL};
use crate::model::IikoId;

pub const ENV: &[EnvVar] = &[
    EnvVar::text("iiko.api_login", &["TILLWIRE_IIKO_API_LOGIN"]),
    EnvVar::text("iiko.api_key", &["TILLWIRE_IIKO_API_KEY"]),
    EnvVar::text("iiko.client_secret", &["TILLWIRE_IIKO_CLIENT_SECRET"]),
    EnvVar::text("iiko.webhook_token", &["TILLWIRE_IIKO_WEBHOOK_TOKEN"]),
    EnvVar::typed("iiko.poll_seconds", &["TILLWIRE_IIKO_POLL_SECONDS"]),
    EnvVar::text("iiko.server_password", &["TILLWIRE_IIKO_SERVER_PASSWORD"]),
];

const DEFAULT_POLL: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSection {
    cloud: Vec<RawCloud>,
    server: Vec<RawServer>,
    server_password: Option<String>,
    poll_seconds: Option<u64>,
    api_login: Option<String>,
    api_key: Option<String>,
    client_secret: Option<String>,
    webhook_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawCloud {
    name: Option<String>,
    unit: Option<String>,
    api_url: Option<String>,
    api_login: Option<String>,
    api_key: Option<String>,
    app_id: Option<String>,
    client_secret: Option<String>,
    organization_id: String,
    webhook_token: Option<String>,
    tables: Vec<String>,
    products: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawServer {
    unit: Option<String>,
    url: String,
    login: String,
    password: Option<String>,
    organization_id: Option<String>,
    time_zone: Option<String>,
}

/// One `[[iiko.server]]` entry, checked.
#[derive(Clone)]
pub struct ServerConfig {
    pub unit: Option<String>,
    pub url: String,
    pub login: String,
    pub password: Secret,
    /// Its orders and product mapping are filed under this organization.
    pub organization: IikoId,
    pub time_zone: Option<chrono_tz::Tz>,
}

/// How tillwire signs in to iikoCloud; sealed at rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Credentials {
    ApiLogin {
        api_login: String,
    },
    ApiKey {
        api_key: String,
        app_id: String,
        client_secret: String,
    },
}

impl Credentials {
    pub fn auth(&self) -> Auth {
        match self {
            Credentials::ApiLogin { api_login } => Auth::ApiLogin(Secret::new(api_login)),
            Credentials::ApiKey {
                api_key,
                app_id,
                client_secret,
            } => Auth::ApiKey {
                api_key: Secret::new(api_key),
                app_id: app_id.clone(),
                client_secret: Secret::new(client_secret),
            },
        }
    }
}

/// One `[[iiko.cloud]]` entry, checked.
#[derive(Clone)]
pub struct CloudConfig {
    pub name: String,
    pub unit: Option<String>,
    pub api_url: String,
    pub credentials: Credentials,
    pub organization: IikoId,
    pub webhook_token: Option<Secret>,
    pub tables: Vec<IikoId>,
    pub products: BTreeMap<String, String>,
}

/// The checked section.
#[derive(Clone)]
pub struct IikoSettings {
    pub cloud: Vec<CloudConfig>,
    pub server: Vec<ServerConfig>,
    pub poll_every: Duration,
}

pub fn parse(settings: &Settings) -> Result<IikoSettings, ConfigError> {
    let raw: RawSection = settings.section("iiko")?;
    let poll_every = match raw.poll_seconds {
        None => DEFAULT_POLL,
        Some(seconds) if (5..=3600).contains(&seconds) => Duration::from_secs(seconds),
        Some(seconds) => {
            return Err(settings.invalid(
                "iiko.poll_seconds",
                format!("{seconds} is outside 5–3600 seconds"),
            ));
        }
    };
    let present = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
    let mut cloud = Vec::with_capacity(raw.cloud.len());
    for (index, entry) in raw.cloud.into_iter().enumerate() {
        let key = |field: &str| format!("iiko.cloud[{index}].{field}");
        let organization = IikoId::parse(&entry.organization_id).ok_or_else(|| {
            settings.invalid(
                &key("organization_id"),
                format!(
                    "{:?} is not an organization id (a UUID)",
                    entry.organization_id
                ),
            )
        })?;
        if cloud
            .iter()
            .any(|c: &CloudConfig| c.organization == organization)
        {
            return Err(settings.invalid(
                &key("organization_id"),
                format!("organization {organization} is listed twice"),
            ));
        }
        let api_key = present(&entry.api_key).or_else(|| present(&raw.api_key));
        let credentials = match (present(&entry.api_login), api_key) {
            (Some(api_login), _) => Credentials::ApiLogin { api_login },
            (None, Some(api_key)) => {
                let app_id = present(&entry.app_id).ok_or_else(|| {
                    settings.invalid(&key("app_id"), "an api_key needs the application's app_id")
                })?;
                let client_secret = present(&entry.client_secret)
                    .or_else(|| present(&raw.client_secret))
                    .ok_or_else(|| {
                        settings.invalid(
                            &key("client_secret"),
                            "an api_key needs its client_secret (or TILLWIRE_IIKO_CLIENT_SECRET)",
                        )
                    })?;
                Credentials::ApiKey {
                    api_key,
                    app_id,
                    client_secret,
                }
            }
            (None, None) => match present(&raw.api_login) {
                Some(api_login) => Credentials::ApiLogin { api_login },
                None => {
                    return Err(settings.invalid(
                        &key("api_login"),
                        "no api_login or api_key (set one, or TILLWIRE_IIKO_API_LOGIN)",
                    ));
                }
            },
        };
        let api_url = present(&entry.api_url).unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(settings.invalid(
                &key("api_url"),
                format!("{api_url:?} is not an http(s) address"),
            ));
        }
        let mut tables = Vec::with_capacity(entry.tables.len());
        for table in &entry.tables {
            tables.push(IikoId::parse(table).ok_or_else(|| {
                settings.invalid(
                    &key("tables"),
                    format!("{table:?} is not a table id (a UUID)"),
                )
            })?);
        }
        if let Some((product, _)) = entry
            .products
            .iter()
            .find(|(product, ware)| product.trim().is_empty() || ware.trim().is_empty())
        {
            return Err(settings.invalid(
                &key("products"),
                format!("product {product:?} needs a ware code"),
            ));
        }
        cloud.push(CloudConfig {
            name: present(&entry.name).unwrap_or_else(|| format!("iikoCloud {organization}")),
            unit: present(&entry.unit),
            api_url,
            credentials,
            organization,
            webhook_token: present(&entry.webhook_token)
                .or_else(|| present(&raw.webhook_token))
                .map(Secret::new),
            tables,
            products: entry.products,
        });
    }
    let mut server = Vec::with_capacity(raw.server.len());
    for (index, entry) in raw.server.into_iter().enumerate() {
        let key = |field: &str| format!("iiko.server[{index}].{field}");
        let url = entry.url.trim().to_owned();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(settings.invalid(&key("url"), format!("{url:?} is not an http(s) address")));
        }
        if entry.login.trim().is_empty() {
            return Err(settings.invalid(&key("login"), "the login is empty"));
        }
        let password = present(&entry.password)
            .or_else(|| present(&raw.server_password))
            .ok_or_else(|| {
                settings.invalid(
                    &key("password"),
                    "no password (set TILLWIRE_IIKO_SERVER_PASSWORD)",
                )
            })?;
        let organization = match present(&entry.organization_id) {
            Some(id) => IikoId::parse(&id).ok_or_else(|| {
                settings.invalid(
                    &key("organization_id"),
                    format!("{id:?} is not an organization id (a UUID)"),
                )
            })?,
            None => IikoId::derived(&url),
        };
        let time_zone = match present(&entry.time_zone) {
            None => None,
            Some(zone) => Some(crate::timezone::zone(&zone).ok_or_else(|| {
                settings.invalid(&key("time_zone"), format!("{zone:?} is not a time zone"))
            })?),
        };
        server.push(ServerConfig {
            unit: present(&entry.unit),
            url,
            login: entry.login.trim().to_owned(),
            password: Secret::new(password),
            organization,
            time_zone,
        });
    }
    Ok(IikoSettings {
        cloud,
        server,
        poll_every,
    })
}
