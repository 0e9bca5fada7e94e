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
}

impl Default for KitchenSettings {
    fn default() -> Self {
        KitchenSettings {
            day_rollover_hour: 4,
            station_readiness: true,
            board_ready_hide_minutes: 10,
            retention_days: 30,
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
];

impl KitchenSettings {
    pub fn load(settings: &Settings) -> Result<Self, ConfigError> {
        let kitchen: KitchenSettings = settings.section("kitchen")?;
        if kitchen.day_rollover_hour > 23 {
            return Err(settings.invalid("kitchen.day_rollover_hour", "must be 0–23"));
        }
        Ok(kitchen)
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
}
