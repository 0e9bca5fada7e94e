//! The kitchen's `[kitchen]` settings, each with its variable and its check.

use serde::Deserialize;
use tillwire_platform::Settings;
use tillwire_platform::config::{ConfigError, EnvVar};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KitchenSettings {
    /// Hour (local) at which the business day, and so the queue numbering, rolls over (0–23).
    pub day_rollover_hour: u32,
    /// When on, an order becomes Ready once every station has marked its part ready.
    pub station_readiness: bool,
    /// Ready orders leave the customer board this many minutes after they became ready (0 = never).
    pub board_ready_hide_minutes: u32,
    /// Finished orders older than this many days are purged (daily, and by `tillwire maintenance`).
    pub retention_days: u32,
    /// The board's heading (empty: "Электронная очередь" / "Order board").
    pub board_title: String,
    /// An image shown beside the board's heading (SVG, PNG, JPEG or WebP file).
    pub board_logo: Option<std::path::PathBuf>,
    /// The board never draws a number smaller than this (CSS pixels): it pages a full column instead. 90 px is
    /// about 4 cm of digit on a 55" 1080p TV, readable from 5 m.
    pub board_min_number_px: u32,
    /// Seconds each page of a column that does not fit is shown.
    pub board_page_seconds: u32,
    /// How long a screen can undo its moves (minutes, 0 = no undo).
    pub recall_minutes: u32,
}

/// The image types a board logo may be, by file extension.
pub const LOGO_TYPES: [(&str, &str); 5] = [
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("webp", "image/webp"),
];

impl Default for KitchenSettings {
    fn default() -> Self {
        KitchenSettings {
            day_rollover_hour: 4,
            station_readiness: true,
            board_ready_hide_minutes: 10,
            retention_days: 30,
            board_title: String::new(),
            board_logo: None,
            board_min_number_px: 90,
            board_page_seconds: 8,
            recall_minutes: 10,
        }
    }
}

pub const ENV: &[EnvVar] = &[
    EnvVar::typed("kitchen.day_rollover_hour", &["TILLWIRE_DAY_ROLLOVER_HOUR"]),
    EnvVar::typed("kitchen.station_readiness", &["TILLWIRE_STATION_READINESS"]),
    EnvVar::typed(
        "kitchen.board_ready_hide_minutes",
        &["TILLWIRE_BOARD_READY_HIDE_MINUTES"],
    ),
    EnvVar::typed("kitchen.retention_days", &["TILLWIRE_RETENTION_DAYS"]),
    EnvVar::text("kitchen.board_title", &["TILLWIRE_BOARD_TITLE"]),
    EnvVar::text("kitchen.board_logo", &["TILLWIRE_BOARD_LOGO"]),
    EnvVar::typed(
        "kitchen.board_min_number_px",
        &["TILLWIRE_BOARD_MIN_NUMBER_PX"],
    ),
    EnvVar::typed(
        "kitchen.board_page_seconds",
        &["TILLWIRE_BOARD_PAGE_SECONDS"],
    ),
    EnvVar::typed("kitchen.recall_minutes", &["TILLWIRE_RECALL_MINUTES"]),
];

impl KitchenSettings {
    pub fn load(settings: &Settings) -> Result<Self, ConfigError> {
        let kitchen: KitchenSettings = settings.section("kitchen")?;
        if kitchen.day_rollover_hour > 23 {
            return Err(settings.invalid("kitchen.day_rollover_hour", "must be 0–23"));
        }
        if !(24..=400).contains(&kitchen.board_min_number_px) {
            return Err(settings.invalid("kitchen.board_min_number_px", "must be 24–400"));
        }
        if kitchen.recall_minutes > 24 * 60 {
            return Err(settings.invalid("kitchen.recall_minutes", "must be 0–1440"));
        }
        if !(2..=120).contains(&kitchen.board_page_seconds) {
            return Err(settings.invalid("kitchen.board_page_seconds", "must be 2–120"));
        }
        if let Some(logo) = &kitchen.board_logo {
            if kitchen.logo_type().is_none() {
                return Err(settings.invalid(
                    "kitchen.board_logo",
                    "must be an .svg, .png, .jpg or .webp file",
                ));
            }
            if !logo.is_file() {
                return Err(settings.invalid(
                    "kitchen.board_logo",
                    format!("{} is not a readable file", logo.display()),
                ));
            }
        }
        Ok(kitchen)
    }

    /// The logo's content type, from its extension.
    pub fn logo_type(&self) -> Option<&'static str> {
        let extension = self
            .board_logo
            .as_ref()?
            .extension()?
            .to_str()?
            .to_ascii_lowercase();
        LOGO_TYPES
            .iter()
            .find(|(known, _)| *known == extension)
            .map(|(_, content_type)| *content_type)
    }
}

#[cfg(test)]
mod tests {
    use tillwire_platform::config::{Overrides, PLATFORM_ENV, Sources};

    use super::*;

    fn with_env(environment: &[(&str, &str)]) -> Settings {
        Settings::load(Sources {
            flags: Overrides::default(),
            environment: environment
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            dotenv: None,
            variables: PLATFORM_ENV.iter().chain(ENV).collect(),
        })
        .expect("platform settings")
    }

    #[test]
    fn defaults_variables_and_checks() {
        let defaults = KitchenSettings::load(&with_env(&[])).expect("defaults");
        assert_eq!(
            (
                defaults.day_rollover_hour,
                defaults.station_readiness,
                defaults.board_ready_hide_minutes,
                defaults.retention_days
            ),
            (4, true, 10, 30)
        );
        let set = KitchenSettings::load(&with_env(&[
            ("TILLWIRE_DAY_ROLLOVER_HOUR", "0"),
            ("TILLWIRE_STATION_READINESS", "false"),
            ("TILLWIRE_RETENTION_DAYS", "7"),
        ]))
        .expect("set");
        assert_eq!(
            (
                set.day_rollover_hour,
                set.station_readiness,
                set.retention_days
            ),
            (0, false, 7)
        );
        let error = KitchenSettings::load(&with_env(&[("TILLWIRE_DAY_ROLLOVER_HOUR", "25")]))
            .expect_err("out of range")
            .to_string();
        assert_eq!(
            error,
            "setting kitchen.day_rollover_hour (environment variable TILLWIRE_DAY_ROLLOVER_HOUR): must be 0–23"
        );
        let error = KitchenSettings::load(&with_env(&[("TILLWIRE_RETENTION_DAYS", "a week")]))
            .expect_err("not a number")
            .to_string();
        assert!(error.contains("TILLWIRE_RETENTION_DAYS"), "{error}");
    }

    #[test]
    fn board_settings_are_checked() {
        let error = KitchenSettings::load(&with_env(&[("TILLWIRE_BOARD_MIN_NUMBER_PX", "10")]))
            .expect_err("too small")
            .to_string();
        assert!(error.contains("must be 24–400"), "{error}");
        let error =
            KitchenSettings::load(&with_env(&[("TILLWIRE_BOARD_LOGO", "/nowhere/logo.png")]))
                .expect_err("no such file")
                .to_string();
        assert!(error.contains("is not a readable file"), "{error}");
        let error = KitchenSettings::load(&with_env(&[("TILLWIRE_BOARD_LOGO", "/etc/hostname")]))
            .expect_err("not an image")
            .to_string();
        assert!(error.contains(".svg, .png"), "{error}");
        let dir = std::env::temp_dir().join(format!("tillwire-logo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let logo = dir.join("Logo.SVG");
        std::fs::write(&logo, "<svg xmlns='http://www.w3.org/2000/svg'/>").expect("logo");
        let set = KitchenSettings::load(&with_env(&[(
            "TILLWIRE_BOARD_LOGO",
            logo.to_str().expect("UTF-8"),
        )]))
        .expect("a logo");
        assert_eq!(set.logo_type(), Some("image/svg+xml"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
