//! Printing's `[print]` settings, each with its variables (ELQ's `CALC_PRINT_TICKETS`, `PRINT_PAPER_W` and
//! `PRINT_PAPER_H` as aliases) and its check.

use serde::{Deserialize, Deserializer};
use tillwire_platform::Settings;
use tillwire_platform::config::{ConfigError, EnvVar};

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

impl<'de> Deserialize<'de> for CodePage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrintSettings {
    pub code_page: CodePage,
    /// Adds a QR code of the queue number to each ticket.
    pub qr_code: bool,
    /// After the tickets, one slip per kitchen station listing only that station's wares.
    pub station_slips: bool,
    /// Connect and write timeout for one attempt at a printer, seconds (1–30).
    pub timeout_secs: u64,
    /// Attempts before a ticket's job is dead (retries back off up to ten minutes apart).
    pub max_attempts: i64,
    /// ELQ's copies rule: −1 = stations + 2, > 0 = that many, else 1.
    pub copies: i64,
    pub paper_width_mm: u32,
    pub paper_height_mm: u32,
}

impl Default for PrintSettings {
    fn default() -> Self {
        PrintSettings {
            code_page: CodePage::Cp866,
            qr_code: false,
            station_slips: false,
            timeout_secs: 5,
            max_attempts: 20,
            copies: 0,
            paper_width_mm: 57,
            paper_height_mm: 120,
        }
    }
}

pub const ENV: &[EnvVar] = &[
    EnvVar::text("print.code_page", &["TILLWIRE_PRINT_CODE_PAGE"]),
    EnvVar::typed("print.qr_code", &["TILLWIRE_PRINT_QR_CODE"]),
    EnvVar::typed("print.station_slips", &["TILLWIRE_PRINT_STATION_SLIPS"]),
    EnvVar::typed("print.timeout_secs", &["TILLWIRE_PRINT_TIMEOUT_SECS"]),
    EnvVar::typed("print.max_attempts", &["TILLWIRE_PRINT_MAX_ATTEMPTS"]),
    EnvVar::typed(
        "print.copies",
        &["TILLWIRE_PRINT_COPIES", "CALC_PRINT_TICKETS"],
    ),
    EnvVar::typed(
        "print.paper_width_mm",
        &["TILLWIRE_PRINT_PAPER_WIDTH_MM", "PRINT_PAPER_W"],
    ),
    EnvVar::typed(
        "print.paper_height_mm",
        &["TILLWIRE_PRINT_PAPER_HEIGHT_MM", "PRINT_PAPER_H"],
    ),
];

impl PrintSettings {
    pub fn load(settings: &Settings) -> Result<Self, ConfigError> {
        let print: PrintSettings = settings.section("print")?;
        if !(1..=30).contains(&print.timeout_secs) {
            return Err(settings.invalid(
                "print.timeout_secs",
                "must be 1–30 (an attempt must end well within the job lease)",
            ));
        }
        if print.max_attempts < 1 {
            return Err(settings.invalid("print.max_attempts", "must be 1 or more"));
        }
        for (key, mm) in [
            ("print.paper_width_mm", print.paper_width_mm),
            ("print.paper_height_mm", print.paper_height_mm),
        ] {
            if !(30..=1000).contains(&mm) {
                return Err(settings.invalid(key, format!("{mm} mm is outside 30–1000")));
            }
        }
        Ok(print)
    }
}

#[cfg(test)]
mod tests {
    use tillwire_platform::config::{Overrides, PLATFORM_ENV, Sources};

    use super::*;

    fn load(dotenv: &str, environment: &[(&str, &str)]) -> Result<PrintSettings, ConfigError> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(".env");
        std::fs::write(&path, dotenv).expect(".env");
        let settings = Settings::load(Sources {
            flags: Overrides::default(),
            environment: environment
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            dotenv: Some(path),
            variables: PLATFORM_ENV.iter().chain(ENV).collect(),
        })?;
        PrintSettings::load(&settings)
    }

    #[test]
    fn elqs_names_are_aliases() {
        let elq = load(
            "CALC_PRINT_TICKETS=-1\nPRINT_PAPER_W=80\nPRINT_PAPER_H=200\n",
            &[],
        )
        .expect("ELQ's .env");
        assert_eq!(
            (elq.copies, elq.paper_width_mm, elq.paper_height_mm),
            (-1, 80, 200)
        );
        let own = load(
            "CALC_PRINT_TICKETS=-1\n",
            &[("TILLWIRE_PRINT_COPIES", "3"), ("PRINT_PAPER_W", "58")],
        )
        .expect("both");
        assert_eq!((own.copies, own.paper_width_mm), (3, 58));
        let defaults = load("", &[]).expect("defaults");
        assert_eq!(
            (defaults.copies, defaults.paper_width_mm, defaults.code_page),
            (0, 57, CodePage::Cp866)
        );
    }

    #[test]
    fn bad_values_name_the_setting_and_its_source() {
        let error = load("PRINT_PAPER_W=10\n", &[])
            .expect_err("too narrow")
            .to_string();
        assert_eq!(
            error,
            "setting print.paper_width_mm (.env file PRINT_PAPER_W): 10 mm is outside 30–1000"
        );
        let error = load("", &[("TILLWIRE_PRINT_CODE_PAGE", "koi8")])
            .expect_err("unknown code page")
            .to_string();
        assert!(
            error.contains("koi8") && error.contains("TILLWIRE_PRINT_CODE_PAGE"),
            "{error}"
        );
        let error = load("", &[("TILLWIRE_PRINT_TIMEOUT_SECS", "90")])
            .expect_err("too long")
            .to_string();
        assert!(error.starts_with("setting print.timeout_secs (environment variable"));
    }
}
