//! The kitchen's vocabulary, as types that can only hold valid values.

use serde::{Deserialize, Serialize};

use tillwire_platform::Text;

use crate::KitchenError;

/// A form field: its name in the form, and what a person calls it in each language.
#[derive(Debug, Clone, Copy)]
pub struct Label {
    pub field: &'static str,
    pub ru: &'static str,
    pub en: &'static str,
}

impl Label {
    pub const fn new(field: &'static str, ru: &'static str, en: &'static str) -> Self {
        Label { field, ru, en }
    }

    /// The field's error: "<what it is called>: <why>", in both languages.
    pub fn error(self, ru: impl std::fmt::Display, en: impl std::fmt::Display) -> KitchenError {
        KitchenError::field(
            self.field,
            Text::new(format!("{}: {ru}", self.ru), format!("{}: {en}", self.en)),
        )
    }
}

fn bounded_text(text: &str, max: usize, label: Label) -> Result<String, KitchenError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(label.error(
            format!("от 1 до {max} печатных символов"),
            format!("1–{max} printable characters"),
        ));
    }
    Ok(text.to_owned())
}

/// A ware's local code, as the till sends it (Set Retail `ch_position.item`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WareCode(String);

impl WareCode {
    pub fn parse(text: &str) -> Result<Self, KitchenError> {
        bounded_text(text, 64, Label::new("code", "код товара", "ware code")).map(WareCode)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A name shown on screens and tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(text: &str, max: usize, label: Label) -> Result<Self, KitchenError> {
        bounded_text(text, max, label).map(Name)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A positive, finite amount of a ware (pieces or kilograms). Fractions are kept, never truncated.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct Quantity(f64);

/// The largest amount of one ware a receipt may carry (a line, or the lines of one code together); anything larger
/// is a malformed receipt.
pub const MAX_QUANTITY: f64 = 1_000_000.0;

impl Quantity {
    pub fn parse(value: f64) -> Option<Self> {
        (value.is_finite() && value > 0.0 && value <= MAX_QUANTITY).then_some(Quantity(value))
    }
    pub fn value(self) -> f64 {
        self.0
    }
}

/// The code of a receipt whose lines of one ware add up to more than [`MAX_QUANTITY`] (they are merged into one
/// order line, which must respect the cap too).
pub fn over_cap(lines: &[(String, Quantity)]) -> Option<&str> {
    let mut totals: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    for (code, quantity) in lines {
        let total = totals.entry(code.as_str()).or_default();
        *total += quantity.value();
        if *total > MAX_QUANTITY {
            return Some(code);
        }
    }
    None
}

/// Formats an amount without a spurious `.0`: 1.0 → "1", 0.5 → "0.5", 0.333 → "0.333".
pub fn format_quantity(value: f64) -> String {
    let rounded = (value * 1000.0).round() / 1000.0;
    if rounded.fract() == 0.0 {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded}")
    }
}

/// Where a ticket printer is reached, parsed from the printer's address text. An empty address means the printer
/// is not set up yet: registers attached to it print nothing (as a register without a printer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrinterAddress {
    /// ESC/POS over raw TCP: `tcp://HOST[:PORT]` or CUPS's `socket://HOST[:PORT]`, port 9100 by default.
    Tcp { host: String, port: u16 },
    /// An IPP printer or CUPS queue: `ipp://HOST[:PORT]/PATH`, port 631 by default.
    Ipp {
        host: String,
        port: u16,
        path: String,
    },
}

impl PrinterAddress {
    pub fn parse(text: &str) -> Result<Option<Self>, KitchenError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let invalid = || {
            Label::new("address", "адрес принтера", "printer address").error(
                format!("{text:?}: нужен tcp://HOST[:PORT] или ipp://HOST[:PORT]/printers/NAME"),
                format!("{text:?}: expected tcp://HOST[:PORT] or ipp://HOST[:PORT]/printers/NAME"),
            )
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(invalid)?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        // The port follows the last colon, unless that colon is inside an IPv6 literal ("[::1]").
        let (host, port) = match authority
            .rfind(':')
            .filter(|&i| !authority[i..].contains(']'))
        {
            Some(i) => (
                &authority[..i],
                Some(authority[i + 1..].parse::<u16>().map_err(|_| invalid())?),
            ),
            None => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._[]:".contains(c));
        if !host_ok || port == Some(0) || path.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid());
        }
        let host = host.to_owned();
        match scheme.to_ascii_lowercase().as_str() {
            "tcp" | "socket" if path.trim_matches('/').is_empty() => {
                Ok(Some(PrinterAddress::Tcp {
                    host,
                    port: port.unwrap_or(9100),
                }))
            }
            "ipp" if path.len() > 1 => Ok(Some(PrinterAddress::Ipp {
                host,
                port: port.unwrap_or(631),
                path: path.to_owned(),
            })),
            _ => Err(invalid()),
        }
    }
}

impl std::fmt::Display for PrinterAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrinterAddress::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            PrinterAddress::Ipp { host, port, path } => write!(f, "ipp://{host}:{port}{path}"),
        }
    }
}

/// A CSS colour for a status: a name or a `#hex` value, nothing that could break out of a style attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CssColor(String);

impl CssColor {
    pub fn parse(text: &str) -> Result<Self, KitchenError> {
        let text = text.trim();
        let valid = !text.is_empty()
            && text.len() <= 32
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '#');
        if valid {
            Ok(CssColor(text.to_owned()))
        } else {
            Err(Label::new("color", "цвет", "color")
                .error("название цвета CSS или #hex", "a CSS colour name or #hex"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An order's status as the screens need it.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Status {
    pub id: i64,
    pub name: String,
    pub finished: bool,
    pub shown: bool,
    pub color: String,
    pub icon: String,
    /// Moving an order here cancels it: the screens ask first.
    pub cancels: bool,
    /// Minutes an order may stay here before its card turns amber (red at twice that).
    pub alert_minutes: Option<i32>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Flow {
    pub current_status_id: i64,
    pub next_status_id: i64,
}

/// The statuses and allowed transitions, with the two roles the code needs derived from the data:
/// the initial status (ELQ's rule: the lowest id that is shown and not finished) and the ready status
/// (the first shown, unfinished status the initial one may move to).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Workflow {
    pub statuses: Vec<Status>,
    pub flows: Vec<Flow>,
}

impl Workflow {
    pub fn initial(&self) -> Option<&Status> {
        self.statuses
            .iter()
            .filter(|s| s.shown && !s.finished)
            .min_by_key(|s| s.id)
    }
    pub fn ready(&self) -> Option<&Status> {
        let initial = self.initial()?.id;
        self.flows
            .iter()
            .filter(|f| f.current_status_id == initial)
            .filter_map(|f| self.status(f.next_status_id))
            .filter(|s| s.shown && !s.finished)
            .min_by_key(|s| s.id)
    }
    pub fn status(&self, id: i64) -> Option<&Status> {
        self.statuses.iter().find(|s| s.id == id)
    }
    pub fn allows(&self, from: i64, to: i64) -> bool {
        self.flows
            .iter()
            .any(|f| f.current_status_id == from && f.next_status_id == to)
    }
    pub fn next_of(&self, from: i64) -> Vec<&Status> {
        let mut next: Vec<&Status> = self
            .flows
            .iter()
            .filter(|f| f.current_status_id == from)
            .filter_map(|f| self.status(f.next_status_id))
            .collect();
        next.sort_by_key(|s| s.id);
        next
    }
    /// Statuses with a column on the board and a row on the operator screen.
    pub fn active(&self) -> Vec<&Status> {
        self.statuses
            .iter()
            .filter(|s| s.shown && !s.finished)
            .collect()
    }
}

/// One line of an order as screens show it.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OrderLine {
    pub order_id: i64,
    pub code: String,
    pub short_name: String,
    pub station_id: i64,
    pub quantity: f64,
    /// When a kitchen screen crossed the line off (`null`: still to make).
    pub crossed_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OrderStation {
    pub order_id: i64,
    pub station_id: i64,
    pub ready_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct OrderRow {
    pub id: i64,
    pub unit_id: i64,
    pub business_day: String,
    pub number: i64,
    pub status_id: i64,
    pub created_ms: i64,
    pub status_changed_ms: i64,
    pub print_failed: bool,
    pub external_number: Option<String>,
}

/// An order with everything a screen shows about it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: i64,
    pub unit_id: i64,
    pub business_day: String,
    pub number: i64,
    pub status_id: i64,
    pub created_ms: i64,
    pub status_changed_ms: i64,
    /// The last attempt at printing its ticket failed (cleared once a ticket prints).
    pub print_failed: bool,
    /// The number the POS that sent it gave it (an iiko order's), shown beside the queue number.
    pub external_number: Option<String>,
    pub lines: Vec<OrderLine>,
    pub stations: Vec<OrderStation>,
}

impl OrderView {
    pub fn assemble(
        rows: Vec<OrderRow>,
        lines: Vec<OrderLine>,
        stations: Vec<OrderStation>,
    ) -> Vec<OrderView> {
        rows.into_iter()
            .map(|row| OrderView {
                lines: lines
                    .iter()
                    .filter(|l| l.order_id == row.id)
                    .cloned()
                    .collect(),
                stations: stations
                    .iter()
                    .filter(|s| s.order_id == row.id)
                    .cloned()
                    .collect(),
                id: row.id,
                unit_id: row.unit_id,
                business_day: row.business_day,
                number: row.number,
                status_id: row.status_id,
                created_ms: row.created_ms,
                status_changed_ms: row.status_changed_ms,
                print_failed: row.print_failed,
                external_number: row.external_number,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_print_without_spurious_fraction() {
        assert_eq!(format_quantity(1.0), "1");
        assert_eq!(format_quantity(4.0), "4");
        assert_eq!(format_quantity(0.5), "0.5");
        assert_eq!(format_quantity(1.25), "1.25");
        assert_eq!(format_quantity(0.3334), "0.333");
    }

    #[test]
    fn quantity_rejects_nonsense() {
        assert!(Quantity::parse(f64::NAN).is_none());
        assert!(Quantity::parse(f64::INFINITY).is_none());
        assert!(Quantity::parse(0.0).is_none());
        assert!(Quantity::parse(-1.0).is_none());
        assert!(Quantity::parse(1e300).is_none());
        assert_eq!(Quantity::parse(0.5).map(Quantity::value), Some(0.5));
    }

    #[test]
    fn printer_addresses_parse_or_explain() {
        let tcp = |host: &str, port| {
            Some(PrinterAddress::Tcp {
                host: host.into(),
                port,
            })
        };
        assert_eq!(PrinterAddress::parse("").unwrap(), None);
        assert_eq!(
            PrinterAddress::parse(" tcp://10.0.0.5:9100 ").unwrap(),
            tcp("10.0.0.5", 9100)
        );
        assert_eq!(
            PrinterAddress::parse("tcp://printer.local").unwrap(),
            tcp("printer.local", 9100)
        );
        assert_eq!(
            PrinterAddress::parse("socket://10.0.0.9:6001").unwrap(),
            tcp("10.0.0.9", 6001)
        );
        assert_eq!(
            PrinterAddress::parse("tcp://[::1]:9101").unwrap(),
            tcp("[::1]", 9101)
        );
        let ipp = PrinterAddress::parse("ipp://host/printers/ELLIX50")
            .unwrap()
            .unwrap();
        assert_eq!(ipp.to_string(), "ipp://host:631/printers/ELLIX50");
        for bad in [
            "10.0.0.5",
            "tcp://",
            "tcp://h:0",
            "tcp://h:99999",
            "tcp://h/x",
            "ipp://h",
            "ipp://h/",
            "http://h/x",
            "tcp://a b",
        ] {
            assert!(PrinterAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn colors_cannot_inject_css() {
        assert!(CssColor::parse("#d9b9b6").is_ok());
        assert!(CssColor::parse("maroon").is_ok());
        assert!(CssColor::parse("red;background:url(x)").is_err());
    }
}
