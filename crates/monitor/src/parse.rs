//! Reading a UKM 5 register's status answers (spec `pos_protocols.md` A.1). The body format of the real device is
//! not public, so every choice about it is made here and nowhere else: a body is plain text, a bare JSON scalar or
//! a one-key JSON object; a time is RFC 3339, `YYYY-MM-DD HH:MM:SS[.fff]`, `DD.MM.YYYY HH:MM:SS` or a Unix epoch
//! (seconds or milliseconds, told apart by size), read in the register's own time zone when it carries no offset;
//! ids stay strings; a weight may use `.` or `,`. Once fixtures from a real register exist, they belong in the
//! tests below.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// What one status request told, before any meaning is given to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200, with the body's value (trimmed, unwrapped from JSON).
    Value(String),
    /// 204: the condition the endpoint asks about does not hold.
    NoContent,
    /// Any other status: the register answered, but not in a way the spec describes.
    Unknown(u16),
}

impl Answer {
    /// Classifies a response by its status, unwrapping the body of a 200.
    pub fn from_response(status: u16, body: &str) -> Answer {
        match status {
            200 => Answer::Value(value_of(body)),
            204 => Answer::NoContent,
            other => Answer::Unknown(other),
        }
    }
}

/// The value a body carries: whitespace and quotes trimmed; a JSON string or number as it is; the value of a
/// one-key object. Anything else is kept as the trimmed text.
pub fn value_of(body: &str) -> String {
    let text = body.trim();
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::String(value)) => value.trim().to_owned(),
        Ok(serde_json::Value::Number(number)) => number.to_string(),
        Ok(serde_json::Value::Object(object)) if object.len() == 1 => {
            match object.into_iter().next().map(|(_, v)| v) {
                Some(serde_json::Value::String(value)) => value.trim().to_owned(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            }
        }
        _ => text
            .trim_matches(|c| c == '"' || c == '\'')
            .trim()
            .to_owned(),
    }
}

/// Epoch values at or above this are milliseconds (in seconds it would be the year 5138).
const EPOCH_MS_FROM: i64 = 100_000_000_000;

/// A time value, in `zone` (the register's) when it carries no offset.
pub fn time(value: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Some(at.to_utc());
    }
    // ISO 8601 with an offset but a space instead of the `T`.
    if let Ok(at) = DateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(at.to_utc());
    }
    const LOCAL: [&str; 3] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%d.%m.%Y %H:%M:%S%.f",
    ];
    if let Some(local) = LOCAL
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
    {
        return in_zone(local, zone);
    }
    let epoch: i64 = value.parse().ok()?;
    if epoch.unsigned_abs() >= EPOCH_MS_FROM as u64 {
        DateTime::from_timestamp_millis(epoch)
    } else {
        DateTime::from_timestamp(epoch, 0)
    }
}

/// A register's wall-clock time as an instant; an hour skipped by a clock change is read as the moment after it.
fn in_zone(local: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        chrono::LocalResult::Single(at) => Some(at.to_utc()),
        chrono::LocalResult::Ambiguous(earliest, _) => Some(earliest.to_utc()),
        chrono::LocalResult::None => zone
            .from_local_datetime(&(local + chrono::TimeDelta::hours(1)))
            .earliest()
            .map(|at| at.to_utc()),
    }
}

/// A count (`ofd`: receipts not yet sent to the OFD): an integer, possibly written as `"12"` or `12.0`.
pub fn count(value: &str) -> Option<u64> {
    let value = value.trim();
    value.parse().ok().or_else(|| {
        value
            .parse::<f64>()
            .ok()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e15)
            .map(|f| f as u64)
    })
}

/// An id (`user_role_id`), kept as the register wrote it; empty means nobody.
pub fn id(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty() && value != "null").then(|| value.to_owned())
}

/// A weight on the scale (probably kilograms), with `.` or `,` as the decimal separator.
pub fn weight(value: &str) -> Option<f64> {
    value
        .trim()
        .replace(',', ".")
        .parse::<f64>()
        .ok()
        .filter(|w| w.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOSCOW: Tz = chrono_tz::Europe::Moscow;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test time")
            .to_utc()
    }

    #[test]
    fn bodies_of_every_shape_give_their_value() {
        for (body, value) in [
            ("2024-05-01 10:00:00", "2024-05-01 10:00:00"),
            ("  2024-05-01 10:00:00\n", "2024-05-01 10:00:00"),
            ("\"2024-05-01 10:00:00\"", "2024-05-01 10:00:00"),
            ("'2024-05-01 10:00:00'", "2024-05-01 10:00:00"),
            (
                "{\"downtime\": \"2024-05-01 10:00:00\"}",
                "2024-05-01 10:00:00",
            ),
            ("{\"ofd\": 12}", "12"),
            ("12", "12"),
            ("12.0", "12.0"),
            ("{\"user_role_id\": null}", ""),
            ("", ""),
            ("{\"a\": 1, \"b\": 2}", "{\"a\": 1, \"b\": 2}"),
        ] {
            assert_eq!(value_of(body), value, "body {body:?}");
        }
    }

    #[test]
    fn statuses_other_than_200_and_204_are_unknown() {
        assert_eq!(
            Answer::from_response(200, "{\"ofd\":\"3\"}"),
            Answer::Value("3".into())
        );
        assert_eq!(Answer::from_response(204, ""), Answer::NoContent);
        for status in [301, 404, 429, 500, 503] {
            assert_eq!(
                Answer::from_response(status, "oops"),
                Answer::Unknown(status)
            );
        }
    }

    #[test]
    fn times_in_every_format() {
        let noon_moscow = utc("2024-05-01T09:00:00Z");
        for text in [
            "2024-05-01T12:00:00+03:00",
            "2024-05-01T09:00:00Z",
            "2024-05-01 12:00:00+03:00",
            "2024-05-01 12:00:00",
            "2024-05-01T12:00:00",
            "01.05.2024 12:00:00",
            "1714554000",
            "1714554000000",
        ] {
            assert_eq!(time(text, MOSCOW), Some(noon_moscow), "time {text:?}");
        }
        assert_eq!(
            time("2024-05-01 12:00:00.250", MOSCOW),
            Some(noon_moscow + chrono::TimeDelta::milliseconds(250))
        );
        for bad in ["", "yesterday", "2024-13-01 10:00:00", "12:00"] {
            assert_eq!(time(bad, MOSCOW), None, "{bad:?}");
        }
    }

    #[test]
    fn a_time_without_offset_is_the_registers_local_time() {
        let vladivostok = chrono_tz::Asia::Vladivostok;
        assert_eq!(
            time("2024-05-01 12:00:00", vladivostok),
            Some(utc("2024-05-01T02:00:00Z"))
        );
        // A zone with clock changes: the hour skipped in spring is read as the moment after it.
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            time("2024-03-31 02:30:00", berlin),
            Some(utc("2024-03-31T01:30:00Z"))
        );
    }

    #[test]
    fn counts_ids_and_weights() {
        assert_eq!(count("12"), Some(12));
        assert_eq!(count("12.0"), Some(12));
        assert_eq!(count("-1"), None);
        assert_eq!(count("1.5"), None);
        assert_eq!(id("00042"), Some("00042".into()), "ids stay strings");
        assert_eq!(id(""), None);
        assert_eq!(id("null"), None);
        assert_eq!(weight("0.350"), Some(0.35));
        assert_eq!(weight("0,350"), Some(0.35));
        assert_eq!(weight("1"), Some(1.0));
        assert_eq!(weight("heavy"), None);
    }
}
