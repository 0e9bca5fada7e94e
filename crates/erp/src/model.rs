//! The words of the ERP bridge: which ERP, the values an order carries (parsed once, so nothing unchecked is ever
//! typed into an ERP's page, spec §6.1.4), an order's status as OilMat's clients read it, and why a line failed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which ERP an integration drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErpType {
    /// AD Manager (`manager.addanmark.dk`), spec §3.1.
    AdManager,
    /// CAC Au2Office (`auth.cac.dk`), spec §3.2.
    Au2Office,
}

impl ErpType {
    pub const ALL: [ErpType; 2] = [ErpType::AdManager, ErpType::Au2Office];

    /// The `erp_type` oilmat-erp is started with.
    pub fn name(self) -> &'static str {
        match self {
            ErpType::AdManager => "admanager",
            ErpType::Au2Office => "au2office",
        }
    }

    /// Where the ERP's login page is, relative to the base URL.
    pub fn login_path(self) -> &'static str {
        match self {
            ErpType::AdManager => "/login",
            ErpType::Au2Office => "/Account/Login",
        }
    }

    /// The real ERP, which an integration drives unless told otherwise.
    pub fn default_url(self) -> &'static str {
        match self {
            ErpType::AdManager => "https://manager.addanmark.dk",
            ErpType::Au2Office => "https://auth.cac.dk",
        }
    }

    /// How the ERP's marker on a line added for OilMat order `id` reads (spec §3.3): AD Manager's has no space
    /// after the colon, Au2Office's has one.
    pub fn marker(self, id: &OrderRef) -> String {
        match self {
            ErpType::AdManager => format!(" -- OilMat:{id}"),
            ErpType::Au2Office => format!(" -- OilMat: {id}"),
        }
    }
}

impl fmt::Display for ErpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ErpType {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        ErpType::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| format!("unknown ERP {name:?}; admanager or au2office"))
    }
}

/// A value typed into an ERP's field: an OilMat order id, a case (work card) number or an item number. Only
/// `[A-Za-z0-9._-]`, 1 to 64 characters, so no WebDriver key code (U+E000..U+F8FF: ENTER, TAB, …) and nothing a
/// selector or a page could read as markup ever reaches a field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderRef(String);

impl OrderRef {
    pub const MAX_LEN: usize = 64;

    pub fn parse(value: &str) -> Result<Self, String> {
        if value.is_empty() || value.len() > Self::MAX_LEN {
            return Err(format!("must be 1 to {} characters", Self::MAX_LEN));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(format!(
                "may hold only letters A–Z, digits, '.', '_' and '-', not {bad:?}"
            ));
        }
        Ok(OrderRef(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for OrderRef {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        OrderRef::parse(&value)
    }
}

impl From<OrderRef> for String {
    fn from(value: OrderRef) -> String {
        value.0
    }
}

/// A quantity to enter: a whole number from 1 to 100,000 (the original typed `int(product_amount)`; a fraction
/// was truncated or failed the order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Amount(u32);

impl Amount {
    pub const MAX: u32 = 100_000;

    pub fn new(value: u32) -> Result<Self, String> {
        if (1..=Self::MAX).contains(&value) {
            Ok(Amount(value))
        } else {
            Err(format!("must be a whole number from 1 to {}", Self::MAX))
        }
    }

    /// From what OilMat sends: a JSON number or a string of digits. `5.0` is 5; `5.5`, `0` and `-1` are refused
    /// rather than truncated.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        let refused = || format!("must be a whole number from 1 to {}", Self::MAX);
        let number = match value {
            serde_json::Value::Number(number) => number.as_u64().or_else(|| {
                number
                    .as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| f as u64)
            }),
            serde_json::Value::String(text) => text.trim().parse::<u64>().ok(),
            _ => None,
        };
        number
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(refused)
            .and_then(Amount::new)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Amount {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, String> {
        Amount::new(value)
    }
}

impl From<Amount> for u32 {
    fn from(value: Amount) -> u32 {
        value.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a connector is asked to do: add this line to this case, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineOrder {
    pub unique_id: OrderRef,
    pub case_nr: OrderRef,
    pub product_nr: OrderRef,
    pub amount: Amount,
}

/// An ERP login. The password is never printed: `Debug` hides it. Serialised only to be sealed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[hidden]")
            .finish()
    }
}

/// An order's status, with the exact words OilMat's clients read (spec §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Received,
    Processing,
    Completed,
    Failed,
    BadRequest,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Received,
        OrderStatus::Processing,
        OrderStatus::Completed,
        OrderStatus::Failed,
        OrderStatus::BadRequest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Received => "received",
            OrderStatus::Processing => "processing",
            OrderStatus::Completed => "completed",
            OrderStatus::Failed => "failed",
            OrderStatus::BadRequest => "bad request",
        }
    }

    /// Reads a stored status; OilMat's databases also hold the typo `compleated` (spec §1.4).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "compleated" => Some(OrderStatus::Completed),
            _ => OrderStatus::ALL.into_iter().find(|s| s.as_str() == text),
        }
    }

    /// Nothing more happens to an order in this status unless a person requeues it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Completed | OrderStatus::Failed | OrderStatus::BadRequest
        )
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an order line failed (spec §8's codes). Some are worth another try, some never succeed by trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The ERP refused the login.
    LoginFailed,
    /// No work card with the order's case number.
    CaseNotFound,
    /// The item or the amount was not accepted (unknown item, a field that would not take the value).
    ProductEntryFailed,
    /// Saved, but reading the lines back did not show the line.
    VerifyFailed,
    /// Chromium or chromedriver could not be started.
    BrowserStartFailed,
    /// A step, or the whole task, took longer than allowed.
    Timeout,
    /// The ERP did not answer (refused, reset, DNS, TLS).
    ErpUnreachable,
    /// No login for the ERP: none configured and none sent with the order.
    NoCredentials,
    /// Imported from OilMat while still waiting in its queue, which is not carried over.
    NotMigrated,
    /// Removed from the queue by `/clear_queue?type=task` before it was tried.
    Cleared,
}

impl Reason {
    pub const ALL: [Reason; 10] = [
        Reason::LoginFailed,
        Reason::CaseNotFound,
        Reason::ProductEntryFailed,
        Reason::VerifyFailed,
        Reason::BrowserStartFailed,
        Reason::Timeout,
        Reason::ErpUnreachable,
        Reason::NoCredentials,
        Reason::NotMigrated,
        Reason::Cleared,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::LoginFailed => "login_failed",
            Reason::CaseNotFound => "case_not_found",
            Reason::ProductEntryFailed => "product_entry_failed",
            Reason::VerifyFailed => "verify_failed",
            Reason::BrowserStartFailed => "browser_start_failed",
            Reason::Timeout => "timeout",
            Reason::ErpUnreachable => "erp_unreachable",
            Reason::NoCredentials => "no_credentials",
            Reason::NotMigrated => "not_migrated",
            Reason::Cleared => "cleared",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Trying again later can help: the ERP or the browser may be back, a slow page may be quick, a save that was
    /// lost may stick. Login, case and item errors need a person.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Reason::VerifyFailed
                | Reason::BrowserStartFailed
                | Reason::Timeout
                | Reason::ErpUnreachable
        )
    }

    /// The reason in the page's language.
    pub fn describe(self, russian: bool) -> &'static str {
        let (ru, en) = match self {
            Reason::LoginFailed => ("ERP не принял логин", "the ERP refused the login"),
            Reason::CaseNotFound => ("заказ-наряд не найден", "the case was not found"),
            Reason::ProductEntryFailed => (
                "товар или количество не приняты",
                "the item or amount was refused",
            ),
            Reason::VerifyFailed => (
                "строка не найдена после сохранения",
                "the line was not there after saving",
            ),
            Reason::BrowserStartFailed => ("браузер не запустился", "the browser did not start"),
            Reason::Timeout => ("истекло время ожидания", "timed out"),
            Reason::ErpUnreachable => ("ERP недоступен", "the ERP could not be reached"),
            Reason::NoCredentials => ("нет логина для ERP", "no ERP login"),
            Reason::NotMigrated => (
                "ждал в очереди OilMat, не перенесён",
                "was waiting in OilMat's queue, not moved",
            ),
            Reason::Cleared => ("убран из очереди", "removed from the queue"),
        };
        if russian { ru } else { en }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_refs_refuse_webdriver_keys_and_markup() {
        assert!(OrderRef::parse("A-12_3.4").is_ok());
        for bad in [
            "",
            "10\u{E007}",
            "10\u{E004}",
            "a b",
            "<b>",
            "'x'",
            &"9".repeat(65),
        ] {
            assert!(OrderRef::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn amounts_are_whole_and_positive() {
        use serde_json::json;
        assert_eq!(Amount::from_json(&json!("5")).map(Amount::get), Ok(5));
        assert_eq!(Amount::from_json(&json!(5)).map(Amount::get), Ok(5));
        assert_eq!(Amount::from_json(&json!(5.0)).map(Amount::get), Ok(5));
        for bad in [
            json!("5.5"),
            json!(5.5),
            json!(0),
            json!(-1),
            json!("x"),
            json!(null),
            json!(100_001),
        ] {
            assert!(Amount::from_json(&bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn statuses_read_oilmats_typo() {
        assert_eq!(
            OrderStatus::parse("compleated"),
            Some(OrderStatus::Completed)
        );
        assert_eq!(
            OrderStatus::parse("bad request"),
            Some(OrderStatus::BadRequest)
        );
        assert_eq!(OrderStatus::parse("done"), None);
    }

    #[test]
    fn markers_follow_each_erp() {
        let id = OrderRef::parse("0007").unwrap();
        assert_eq!(ErpType::AdManager.marker(&id), " -- OilMat:0007");
        assert_eq!(ErpType::Au2Office.marker(&id), " -- OilMat: 0007");
    }
}
