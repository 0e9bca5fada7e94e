//! The `[erp]` section of `tillwire.toml`: who may call OilMat's contract without a token, where the integrations'
//! own listeners bind, and which browser drives the ERPs.
//!
//! ```toml
//! [erp]
//! allow = ["127.0.0.0/8", "::1"]        # or "none"; TILLWIRE_ERP_ALLOW="10.0.0.0/8,127.0.0.1"
//! listen_host = "127.0.0.1"             # an integration's port is opened here (OilMat's was loopback only)
//! chromedriver = "/usr/bin/chromedriver"
//! chromium = "/usr/bin/chromium"
//! ```

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use tillwire_platform::Settings;
use tillwire_platform::config::{ConfigError, EnvVar};
use tillwire_platform::server::Networks;

use crate::connector::BrowserConfig;

pub const ENV: &[EnvVar] = &[
    EnvVar::text("erp.allow", &["TILLWIRE_ERP_ALLOW"]),
    EnvVar::text("erp.listen_host", &["TILLWIRE_ERP_LISTEN_HOST"]),
    EnvVar::text(
        "erp.chromedriver",
        &["TILLWIRE_ERP_CHROMEDRIVER", "CHROMEDRIVER"],
    ),
    EnvVar::text("erp.chromium", &["TILLWIRE_ERP_CHROMIUM", "CHROMIUM"]),
];

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSection {
    allow: Option<tillwire_platform::server::NetworkList>,
    listen_host: Option<String>,
    chromedriver: Option<PathBuf>,
    chromium: Option<PathBuf>,
}

/// The checked section.
#[derive(Debug, Clone)]
pub struct ErpSettings {
    pub allow: Networks,
    pub listen_host: IpAddr,
    pub browser: BrowserConfig,
}

pub fn parse(settings: &Settings) -> Result<ErpSettings, ConfigError> {
    let raw: RawSection = settings.section("erp")?;
    let allow = match raw.allow {
        None => Networks::loopback(),
        Some(list) => Networks::parse(&list.items())
            .map_err(|message| settings.invalid("erp.allow", message))?,
    };
    let listen_host = match raw.listen_host.as_deref().map(str::trim) {
        None | Some("") => IpAddr::from([127, 0, 0, 1]),
        Some(host) => host.parse().map_err(|_| {
            settings.invalid(
                "erp.listen_host",
                format!("{host:?} is not an address such as 127.0.0.1"),
            )
        })?,
    };
    let mut browser = BrowserConfig::default();
    if let Some(path) = raw.chromedriver {
        browser.chromedriver = path;
    }
    if let Some(path) = raw.chromium {
        browser.chromium = path;
    }
    Ok(ErpSettings {
        allow,
        listen_host,
        browser,
    })
}
