//! The monitor's words: a register and what it is told apart by (parsed once, at the edge), the kinds of incident
//! and the thresholds that open and close them.

use std::fmt;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use tillwire_platform::Text;

/// A monitored register's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RegisterId(pub i64);

impl fmt::Display for RegisterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a register's field was refused, in both languages, with the field it concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: Text,
}

impl FieldError {
    fn new(field: &'static str, ru: impl Into<String>, en: impl Into<String>) -> Self {
        FieldError {
            field,
            message: Text::new(ru.into(), en.into()),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.field,
            self.message.get(tillwire_platform::web::Lang::En)
        )
    }
}

impl std::error::Error for FieldError {}

impl From<FieldError> for tillwire_platform::HttpError {
    fn from(error: FieldError) -> Self {
        tillwire_platform::HttpError::field(error.field, error.message)
    }
}

/// A register's name within its unit: trimmed, 1–64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RegisterName(String);

impl RegisterName {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let name = text.trim();
        match name.chars().count() {
            0 => Err(FieldError::new(
                "name",
                "Укажите название кассы.",
                "Name the register.",
            )),
            1..=64 => Ok(RegisterName(name.to_owned())),
            _ => Err(FieldError::new(
                "name",
                "Название кассы — не длиннее 64 символов.",
                "A register's name is at most 64 characters.",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a register's monitoring API lives: an `http` or `https` URL, possibly with a path prefix, always ending
/// in `/` so the status paths append to it. No port is assumed: the real one is not public (spec A.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct BaseUrl(String);

impl BaseUrl {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let bad = |ru: &str, en: &str| FieldError::new("url", ru, en);
        let text = text.trim();
        let url = reqwest::Url::parse(text).map_err(|_| {
            bad(
                "Адрес кассы — полный URL, например http://10.1.16.11:8080/.",
                "The register's address is a full URL, such as http://10.1.16.11:8080/.",
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad(
                "Адрес кассы начинается с http:// или https:// и называет хост.",
                "The register's address starts with http:// or https:// and names a host.",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(bad(
                "В адресе кассы не бывает ?запроса, #фрагмента или имени пользователя.",
                "A register's address has no ?query, #fragment or user name.",
            ));
        }
        let mut text = url.to_string();
        if !text.ends_with('/') {
            text.push('/');
        }
        Ok(BaseUrl(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL of one status endpoint (`downtime`, …).
    pub fn status(&self, endpoint: &str) -> String {
        format!("{}api/v1/status/{endpoint}", self.0)
    }
}

/// A register's clock: an IANA zone name such as `Asia/Yekaterinburg`.
pub fn parse_zone(text: &str) -> Result<Tz, FieldError> {
    text.trim().parse::<Tz>().map_err(|_| {
        FieldError::new(
            "timezone",
            format!(
                "Неизвестный часовой пояс {:?} (пример: Europe/Moscow).",
                text.trim()
            ),
            format!(
                "Unknown time zone {:?} (for example Europe/Moscow).",
                text.trim()
            ),
        )
    })
}

/// A region label used to filter the chain's page: trimmed, at most 64 characters, may be empty.
pub fn parse_region(text: &str) -> Result<String, FieldError> {
    let region = text.trim();
    if region.chars().count() > 64 {
        return Err(FieldError::new(
            "region",
            "Регион — не длиннее 64 символов.",
            "A region is at most 64 characters.",
        ));
    }
    Ok(region.to_owned())
}

/// What can go wrong with a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Unreachable (refused, dropped, timed out) so many polls in a row.
    Offline,
    /// `paper` answered 204 so many polls in a row.
    NoPaper,
    /// At least so many receipts not yet sent to the OFD.
    OfdBacklog,
    /// `vision` answered 204 so many polls in a row.
    VisionOffline,
    /// A receipt open with no activity for so many minutes.
    ReceiptStuck,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Offline,
        Kind::NoPaper,
        Kind::OfdBacklog,
        Kind::VisionOffline,
        Kind::ReceiptStuck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Offline => "offline",
            Kind::NoPaper => "no_paper",
            Kind::OfdBacklog => "ofd_backlog",
            Kind::VisionOffline => "vision_offline",
            Kind::ReceiptStuck => "receipt_stuck",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The kind as people read it.
    pub fn label(self) -> Text {
        match self {
            Kind::Offline => Text::new("Нет связи", "Offline"),
            Kind::NoPaper => Text::new("Нет бумаги", "Out of paper"),
            Kind::OfdBacklog => Text::new("Чеки не ушли в ОФД", "OFD backlog"),
            Kind::VisionOffline => Text::new("Нет связи с Vision", "Vision disconnected"),
            Kind::ReceiptStuck => Text::new("Чек завис", "Receipt stuck"),
        }
    }
}

/// When incidents open and close. Each field is the chain's default unless a unit or a register overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Unreachable polls in a row that open `offline`.
    pub offline_polls: u32,
    /// `paper` 204s in a row that open `no_paper`.
    pub no_paper_polls: u32,
    /// Unsent OFD receipts that open `ofd_backlog`.
    pub ofd_backlog: u32,
    /// `vision` 204s in a row that open `vision_offline`.
    pub vision_polls: u32,
    /// Minutes without activity in an open receipt that open `receipt_stuck`.
    pub receipt_stuck_minutes: u32,
    /// Good polls in a row that close an incident (so a flapping register keeps one incident open).
    pub close_after: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            offline_polls: 3,
            no_paper_polls: 2,
            ofd_backlog: 20,
            vision_polls: 3,
            receipt_stuck_minutes: 15,
            close_after: 2,
        }
    }
}

/// Some thresholds changed from what applies above (a unit over the chain, a register over its unit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_polls: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_paper_polls: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ofd_backlog: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision_polls: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_stuck_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_after: Option<u32>,
}

/// Each threshold's name, as forms, the API and `tillwire.toml` spell it, with its range.
pub const THRESHOLD_FIELDS: [(&str, u32, u32); 6] = [
    ("offline_polls", 1, 100),
    ("no_paper_polls", 1, 100),
    ("ofd_backlog", 1, 100_000),
    ("vision_polls", 1, 100),
    ("receipt_stuck_minutes", 1, 1_440),
    ("close_after", 1, 100),
];

impl Overrides {
    fn slots(&mut self) -> [&mut Option<u32>; 6] {
        [
            &mut self.offline_polls,
            &mut self.no_paper_polls,
            &mut self.ofd_backlog,
            &mut self.vision_polls,
            &mut self.receipt_stuck_minutes,
            &mut self.close_after,
        ]
    }

    /// Sets the threshold named `field` (empty text clears it), checking its range.
    pub fn set(&mut self, field: &str, text: &str) -> Result<(), FieldError> {
        let Some(index) = THRESHOLD_FIELDS
            .iter()
            .position(|(name, ..)| *name == field)
        else {
            return Err(FieldError::new(
                "thresholds",
                format!("Нет такого порога: {field}."),
                format!("No such threshold: {field}."),
            ));
        };
        let (name, min, max) = THRESHOLD_FIELDS[index];
        let text = text.trim();
        let value = if text.is_empty() {
            None
        } else {
            match text.parse::<u32>() {
                Ok(value) if (min..=max).contains(&value) => Some(value),
                _ => {
                    return Err(FieldError::new(
                        "thresholds",
                        format!("Порог {name} — целое число от {min} до {max}."),
                        format!("Threshold {name} is a whole number from {min} to {max}."),
                    ));
                }
            }
        };
        *self.slots()[index] = value;
        Ok(())
    }

    /// Each threshold's override as text ("" where none), in [`THRESHOLD_FIELDS`] order.
    pub fn texts(mut self) -> [(&'static str, String); 6] {
        let slots = self
            .slots()
            .map(|slot| slot.map(|v| v.to_string()).unwrap_or_default());
        let mut names = THRESHOLD_FIELDS.iter().map(|(name, ..)| *name);
        slots.map(|text| (names.next().unwrap_or_default(), text))
    }

    /// Checks ranges of a value read from JSON or TOML.
    pub fn checked(mut self) -> Result<Self, FieldError> {
        let values = self.slots().map(|slot| *slot);
        for ((name, ..), value) in THRESHOLD_FIELDS.iter().zip(values) {
            if let Some(value) = value {
                self.set(name, &value.to_string())?;
            }
        }
        Ok(self)
    }

    /// `base` with these overrides applied.
    pub fn over(self, base: Thresholds) -> Thresholds {
        Thresholds {
            offline_polls: self.offline_polls.unwrap_or(base.offline_polls),
            no_paper_polls: self.no_paper_polls.unwrap_or(base.no_paper_polls),
            ofd_backlog: self.ofd_backlog.unwrap_or(base.ofd_backlog),
            vision_polls: self.vision_polls.unwrap_or(base.vision_polls),
            receipt_stuck_minutes: self
                .receipt_stuck_minutes
                .unwrap_or(base.receipt_stuck_minutes),
            close_after: self.close_after.unwrap_or(base.close_after),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_take_any_port_and_prefix_and_end_in_a_slash() {
        let url = BaseUrl::parse(" http://10.1.16.11:8080 ").unwrap();
        assert_eq!(
            url.status("downtime"),
            "http://10.1.16.11:8080/api/v1/status/downtime"
        );
        let url = BaseUrl::parse("https://kassa-3.shop.local/ukm/monitor").unwrap();
        assert_eq!(
            url.status("ofd"),
            "https://kassa-3.shop.local/ukm/monitor/api/v1/status/ofd"
        );
        for bad in [
            "",
            "10.1.16.11:8080",
            "ftp://x/",
            "http://x/?a=1",
            "http://u:p@x/",
            "http:///",
        ] {
            assert_eq!(BaseUrl::parse(bad).unwrap_err().field, "url", "{bad:?}");
        }
    }

    #[test]
    fn overrides_apply_over_the_defaults_and_check_their_ranges() {
        let mut unit = Overrides::default();
        unit.set("ofd_backlog", "50").unwrap();
        let mut register = Overrides::default();
        register.set("offline_polls", " 5 ").unwrap();
        let applied = register.over(unit.over(Thresholds::default()));
        assert_eq!(
            (
                applied.ofd_backlog,
                applied.offline_polls,
                applied.close_after
            ),
            (50, 5, 2)
        );
        assert!(register.set("offline_polls", "0").is_err());
        assert!(register.set("bogus", "1").is_err());
        register.set("offline_polls", "").unwrap();
        assert!(register.is_empty());
        let parsed: Overrides = serde_json::from_str(r#"{"close_after": 0}"#).unwrap();
        assert!(parsed.checked().is_err());
        assert!(serde_json::from_str::<Overrides>(r#"{"nope": 1}"#).is_err());
    }

    #[test]
    fn names_and_zones_are_checked() {
        assert!(RegisterName::parse("  ").is_err());
        assert_eq!(
            RegisterName::parse(" Касса 1 ").unwrap().as_str(),
            "Касса 1"
        );
        assert!(RegisterName::parse(&"к".repeat(65)).is_err());
        assert_eq!(
            parse_zone("Asia/Yekaterinburg").unwrap(),
            chrono_tz::Asia::Yekaterinburg
        );
        assert_eq!(parse_zone("Mars/Base").unwrap_err().field, "timezone");
    }
}
