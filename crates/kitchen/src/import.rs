//! Receipt import: the ELQ-compatible endpoint `POST /devices/import_receipt/` and the shared logic the JSON
//! API uses too.
//!
//! The legacy contract is kept exactly: header `key`, HTTP 200 with `{"doc_number","count","error"}` in that
//! order, −1 for errors, 0 for "Nothing to register", the number otherwise, and ELQ's message strings. ELQ's
//! bugs are fixed: the unknown-register message is the real one, a register without a printer works, no
//! internal error text leaks, fractional counts are kept, and de-duplication is exact per
//! (unit, register, shift, check_date, check_id) instead of a high-water mark.

use std::time::Instant;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::Value;
use subtle::ConstantTimeEq;
use tillwire_units::{ApiKeys, UnitId, Units};

use crate::model::Quantity;
use crate::storage::{NewLine, NewOrder, ReceiptContext, ReceiptKey, Registered, WareMatch};
use crate::{Kitchen, KitchenError};
use tillwire_platform::Text;
use tillwire_platform::error::ErrorReply;
use tillwire_platform::web::Lang;

pub const INVALID_KEY: &str = "Invalid api key.";
pub const INVALID_JSON: &str = "Invalid json";
pub const INVALID_STRUCTURE: &str = "Invalid json structure";
pub const INVALID_DATE: &str = "Invalid check_date, expected YYYY-MM-DD";
pub const NOTHING_TO_REGISTER: &str = "Nothing to register";
pub const INTERNAL: &str = "Internal error, try again";
/// More lines than any till prints on one receipt: a malformed request.
pub const MAX_LINES: usize = 1_000;

/// A receipt, parsed. Its lines are still raw: matching them against the catalogue decides what counts.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub key: ReceiptKey,
    pub business_day: NaiveDate,
    pub lines: Vec<(String, Quantity)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Registered(Registered),
    NothingToRegister,
    AlreadyImported,
}

impl Kitchen {
    /// Registers a receipt from a known register (its `context`); the order, its lines and the receipt's
    /// claim are committed together, through the group-commit writer.
    pub async fn import_receipt(
        &self,
        receipt: &Receipt,
        context: &ReceiptContext,
    ) -> Result<ImportOutcome, KitchenError> {
        let codes: Vec<&str> = receipt
            .lines
            .iter()
            .map(|(code, _)| code.as_str())
            .collect();
        let catalogue = self.wares_by_codes(receipt.key.unit, &codes).await?;
        let lines = merge_lines(&catalogue, &receipt.lines);
        if lines.is_empty() {
            return Ok(ImportOutcome::NothingToRegister);
        }
        let initial = context.initial_status_id.ok_or_else(|| {
            KitchenError::Conflict(Text::new(
                "Не задан начальный статус заказа.",
                "No initial status is configured.",
            ))
        })?;
        let order = NewOrder {
            receipt: receipt.key.clone(),
            business_day: receipt.business_day,
            register_id: context.register_id,
            printer_id: context.printer_id,
            initial_status_id: initial,
            lines,
        };
        let registered = match &self.writer {
            Some(writer) => writer.register(order.clone()).await?,
            None => self
                .register_orders(std::slice::from_ref(&order))
                .await?
                .pop()
                .flatten(),
        };
        match registered {
            None => Ok(ImportOutcome::AlreadyImported),
            Some(registered) => {
                self.announce(&order.view(&registered)).await;
                Ok(ImportOutcome::Registered(registered))
            }
        }
    }

    /// The unit a device key belongs to: ELQ's single `API_KEY` means the default unit; other keys are
    /// looked up by hash.
    pub async fn unit_for_key(&self, presented: &str) -> Result<Option<UnitId>, KitchenError> {
        if presented.is_empty() {
            return Ok(None);
        }
        let hash = tillwire_platform::sha256_hex(presented);
        if let Some(unit) = self.key_cache.get(&hash) {
            return Ok(Some(unit));
        }
        // Read before the lookup: a change made meanwhile leaves this answer already stale in the cache.
        let generation = crate::key_cache::generation();
        let unit = match &self.platform.settings.api_key {
            Some(legacy) if bool::from(legacy.expose().as_bytes().ct_eq(presented.as_bytes())) => {
                Units(self.store())
                    .default_unit()
                    .await?
                    .map(|u| u.unit_id())
            }
            _ => ApiKeys(self.store()).authenticate(presented).await?,
        };
        if let Some(unit) = unit {
            self.key_cache.put(hash, unit, generation);
        }
        Ok(unit)
    }
}

/// Keeps the receipt lines whose ware is in the catalogue with `count >= catch_quantity`, merging repeated
/// codes by summing their counts, in the receipt's order.
pub fn merge_lines(catalogue: &[WareMatch], lines: &[(String, Quantity)]) -> Vec<NewLine> {
    let mut merged: Vec<NewLine> = Vec::new();
    for (code, quantity) in lines {
        let Some(ware) = catalogue.iter().find(|w| &w.code == code) else {
            continue;
        };
        if quantity.value() < ware.catch_quantity {
            continue;
        }
        match merged.iter_mut().find(|line| &line.code == code) {
            Some(line) => line.quantity += quantity.value(),
            None => merged.push(NewLine {
                ware_id: ware.id,
                code: ware.code.clone(),
                short_name: ware.short_name.clone(),
                station_id: ware.station_id,
                quantity: quantity.value(),
            }),
        }
    }
    merged
}

/// ELQ's reply, keys in ELQ's order.
#[derive(Debug, Serialize, PartialEq)]
pub struct LegacyReply {
    pub doc_number: i64,
    pub count: i64,
    pub error: String,
}

impl LegacyReply {
    fn error(message: impl Into<String>) -> Self {
        LegacyReply {
            doc_number: -1,
            count: 0,
            error: message.into(),
        }
    }
}

/// ELQ's clients read every answer of the import as its reply, errors too (a panic, a body over the limit).
pub fn legacy_error(reply: &ErrorReply, _: Lang) -> Response {
    let message = if reply.status.is_server_error() {
        INTERNAL.to_owned()
    } else {
        reply.message.to_string()
    };
    (reply.status, Json(LegacyReply::error(message))).into_response()
}

pub fn legacy_router() -> Router<Kitchen> {
    Router::new()
        .route(
            "/devices/import_receipt/",
            get(help_page).post(import_legacy),
        )
        .route(
            "/devices/import_receipt",
            get(help_page).post(import_legacy),
        )
}

async fn help_page() -> Html<&'static str> {
    Html(include_str!("../templates/import_help.html"))
}

async fn import_legacy(
    State(kitchen): State<Kitchen>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let started = Instant::now();
    let reply = match legacy_import(&kitchen, &headers, &body).await {
        Ok(reply) => reply,
        Err(error) => {
            tracing::error!(%error, "receipt import failed");
            LegacyReply::error(INTERNAL)
        }
    };
    let outcome = match reply.doc_number {
        n if n > 0 => "registered",
        0 => "nothing",
        _ => "rejected",
    };
    metrics::histogram!("tillwire_import_seconds", "api" => "legacy")
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("tillwire_imports_total", "api" => "legacy", "outcome" => outcome)
        .increment(1);
    Json(reply).into_response()
}

/// ELQ's algorithm, step by step in its order, so that each input gets the reply ELQ's clients expect.
async fn legacy_import(
    kitchen: &Kitchen,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<LegacyReply, KitchenError> {
    let presented = headers
        .get("key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(unit) = kitchen.unit_for_key(presented).await? else {
        return Ok(LegacyReply::error(INVALID_KEY));
    };
    let Ok(document) = serde_json::from_slice::<Value>(body) else {
        return Ok(LegacyReply::error(INVALID_JSON));
    };
    let Some(fields) = document.as_object() else {
        return Ok(LegacyReply::error(INVALID_STRUCTURE));
    };
    let Some(cash_number) = integer_field(fields.get("cash_id"), 0) else {
        return Ok(LegacyReply::error(INVALID_STRUCTURE));
    };
    // Everything is parsed up front so one query can answer "which register, seen before, initial status";
    // the replies still follow ELQ's order: unknown register first, then field errors, then repeats.
    let shift_id = integer_field(fields.get("shift_id"), 1);
    let check_id = integer_field(fields.get("check_id"), 0);
    let check_date = fields
        .get("check_date")
        .and_then(Value::as_str)
        .and_then(parse_day);
    let key = match (shift_id, check_id, check_date) {
        (Some(shift_id), Some(check_id), Some(check_date)) => Some(ReceiptKey {
            unit,
            cash_number,
            shift_id,
            check_date,
            check_id,
        }),
        _ => None,
    };
    let Some(context) = kitchen
        .receipt_context(unit, cash_number, key.as_ref())
        .await?
    else {
        let numbers = kitchen.register_numbers(unit).await?;
        let listed: Vec<String> = numbers.iter().map(i64::to_string).collect();
        return Ok(LegacyReply::error(format!(
            "Invalid cash number, registered numbers are: [{}]",
            listed.join(", ")
        )));
    };
    if shift_id.is_none() || check_id.is_none() {
        return Ok(LegacyReply::error(INVALID_STRUCTURE));
    }
    let (Some(key), Some(check_date)) = (key, check_date) else {
        return Ok(LegacyReply::error(INVALID_DATE));
    };
    if context.seen {
        return Ok(already(&key));
    }
    let Some(lines) = parse_legacy_wares(fields.get("wares")) else {
        return Ok(LegacyReply::error(INVALID_STRUCTURE));
    };
    if crate::model::over_cap(&lines).is_some() {
        return Ok(LegacyReply::error(INVALID_STRUCTURE));
    }
    let receipt = Receipt {
        key,
        business_day: legacy_business_day(check_date, kitchen.today()),
        lines,
    };
    Ok(match kitchen.import_receipt(&receipt, &context).await? {
        ImportOutcome::Registered(registered) => LegacyReply {
            doc_number: registered.number,
            count: registered.stations as i64,
            error: String::new(),
        },
        ImportOutcome::NothingToRegister => LegacyReply {
            doc_number: 0,
            count: 0,
            error: NOTHING_TO_REGISTER.into(),
        },
        ImportOutcome::AlreadyImported => already(&receipt.key),
    })
}

fn already(key: &ReceiptKey) -> LegacyReply {
    LegacyReply::error(format!(
        "Already have receipt with number {} for cash {} in {}",
        key.check_id, key.cash_number, key.check_date
    ))
}

/// The business day a legacy receipt is filed under. Its body carries no sale time, only `check_date`: the
/// collector sends the shift-open date, a till may send the calendar date. ELQ filed by `check_date`, so at 01:00
/// (rollover 04:00) a till's calendar date named a day no screen had reached, and a shift opened yesterday in a
/// shop open round the clock filed today's sales under yesterday; either way the orders were on no screen. So a
/// receipt whose date is the current business day or next to it (a live shift) is filed under the current
/// business day; one from further back is a backfill after downtime and keeps its own day, so old sales do not
/// appear on today's board. Every order on a screen then has the screen's day, so its numbers never repeat.
pub fn legacy_business_day(check_date: NaiveDate, today: NaiveDate) -> NaiveDate {
    match today.pred_opt() {
        Some(yesterday) if check_date < yesterday => check_date,
        _ => today,
    }
}

/// An id field: a JSON integer (or a string of digits, which ELQ's ORM also accepted); absent means `default`.
fn integer_field(value: Option<&Value>, default: i64) -> Option<i64> {
    match value {
        None => Some(default),
        Some(Value::Number(number)) => number.as_i64(),
        Some(Value::String(text)) => text.trim().parse().ok(),
        Some(_) => None,
    }
}

/// `YYYY-MM-DD` exactly.
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// `[{"ware_code": …, "ware_count": …}, …]` with exactly those keys, as ELQ required. As ELQ's code did (its spec
/// is silent): no `wares`, or `null`, is an empty receipt ("Nothing to register"), and an element without a
/// `ware_code` is skipped.
fn parse_legacy_wares(value: Option<&Value>) -> Option<Vec<(String, Quantity)>> {
    let items = match value {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(value) => value.as_array()?,
    };
    // As in the JSON API; unbounded, the catalogue lookup would exceed the database's bind-parameter limit.
    if items.len() > MAX_LINES {
        return None;
    }
    let mut lines = Vec::with_capacity(items.len());
    for item in items {
        let object = item.as_object()?;
        if !object.contains_key("ware_code") {
            continue;
        }
        if object.len() != 2 {
            return None;
        }
        let code = match object.get("ware_code")? {
            Value::String(text) => text.trim().to_owned(),
            Value::Number(number) if number.is_i64() || number.is_u64() => number.to_string(),
            _ => return None,
        };
        let count = object.get("ware_count")?.as_f64()?;
        if code.is_empty() || code.chars().count() > 64 || !count.is_finite() {
            return None;
        }
        // A count that cannot be an amount (zero, negative) simply matches no ware, as in ELQ.
        if let Some(quantity) = Quantity::parse(count) {
            lines.push((code, quantity));
        } else if count > 0.0 {
            return None;
        }
    }
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ware(id: i64, code: &str, station: i64, catch: f64) -> WareMatch {
        WareMatch {
            id,
            code: code.into(),
            short_name: format!("w{id}"),
            station_id: station,
            catch_quantity: catch,
        }
    }

    fn q(value: f64) -> Quantity {
        Quantity::parse(value).expect("valid quantity")
    }

    #[test]
    fn merges_repeated_codes_and_applies_catch_quantity() {
        let catalogue = [ware(1, "A", 10, 1.0), ware(2, "B", 20, 2.0)];
        let lines = [
            ("A".to_owned(), q(1.0)),
            ("B".to_owned(), q(1.0)),
            ("A".to_owned(), q(2.0)),
            ("X".to_owned(), q(5.0)),
        ];
        let merged = merge_lines(&catalogue, &lines);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].code, "A");
        assert_eq!(merged[0].quantity, 3.0);
    }

    #[test]
    fn keeps_fractional_counts() {
        let catalogue = [ware(1, "W", 10, 0.25)];
        let merged = merge_lines(&catalogue, &[("W".to_owned(), q(0.5))]);
        assert_eq!(merged[0].quantity, 0.5);
    }

    fn wares(value: Value) -> Option<Vec<(String, Quantity)>> {
        parse_legacy_wares(Some(&value))
    }

    #[test]
    fn a_live_legacy_receipt_is_filed_under_the_current_business_day() {
        let day = |text| parse_day(text).expect("a day");
        // 01:21 after midnight, rollover 04:00: the business day is still yesterday's.
        let today = day("2026-12-05");
        // A till's calendar date, the same day, a shift opened yesterday, a clock running ahead: today.
        for check_date in ["2026-12-06", "2026-12-05", "2026-12-04", "2026-12-09"] {
            assert_eq!(
                legacy_business_day(day(check_date), today),
                today,
                "{check_date}"
            );
        }
        // A backfill of older sales keeps its day.
        assert_eq!(
            legacy_business_day(day("2026-12-01"), today),
            day("2026-12-01")
        );
    }

    #[test]
    fn legacy_wares_may_be_absent_or_null_and_elements_without_a_code_are_skipped() {
        assert_eq!(parse_legacy_wares(None), Some(Vec::new()));
        assert_eq!(wares(Value::Null), Some(Vec::new()));
        let kept = wares(serde_json::json!([
            {"ware_count": 2},
            {"something": "else", "ware_count": 1},
            {"ware_code": "48566", "ware_count": 1}
        ]))
        .expect("valid");
        assert_eq!(kept, vec![("48566".to_owned(), q(1.0))]);
        // A code given as a JSON number is the same code.
        assert_eq!(
            wares(serde_json::json!([{"ware_code": 48566, "ware_count": 2}])),
            Some(vec![("48566".to_owned(), q(2.0))])
        );
    }

    #[test]
    fn the_quantity_cap_applies_to_a_ware_in_all_its_lines() {
        let line = |quantity| ("A".to_owned(), q(quantity));
        assert_eq!(
            crate::model::over_cap(&[line(600_000.0), line(400_000.0)]),
            None
        );
        assert_eq!(
            crate::model::over_cap(&[line(600_000.0), ("B".into(), q(1.0)), line(400_001.0)]),
            Some("A")
        );
    }

    #[test]
    fn legacy_wares_require_exact_keys() {
        assert!(wares(serde_json::json!([{"ware_code": "1", "ware_count": 1}])).is_some());
        assert!(wares(serde_json::json!([{"ware_code": 48566, "ware_count": 1.0}])).is_some());
        assert!(wares(serde_json::json!([{"ware_code": "1"}])).is_none());
        assert!(wares(serde_json::json!([{"ware_code": "1", "ware_count": 1, "x": 1}])).is_none());
        assert!(wares(serde_json::json!([{"ware_code": "1", "ware_count": null}])).is_none());
        assert!(wares(serde_json::json!(["1"])).is_none());
        assert!(wares(serde_json::json!({"ware_code": "1"})).is_none());
        assert!(wares(serde_json::json!([{"ware_code": "1", "ware_count": 1e300}])).is_none());
        assert_eq!(
            wares(serde_json::json!([{"ware_code": "1", "ware_count": 0}])).map(|l| l.len()),
            Some(0)
        );
    }

    #[test]
    fn days_are_strict() {
        assert!(parse_day("2022-11-17").is_some());
        assert!(parse_day("17.11.2022").is_none());
        assert!(parse_day("2022-13-01").is_none());
        assert!(parse_day("+2022-11-17").is_none());
    }
}
