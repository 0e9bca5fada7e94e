//! Windows time-zone ids, which iikoCloud gives terminal groups (`timeZone`), mapped to IANA zones, so local
//! times follow the zone's own rules, DST included.

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;

/// The zones of Russia (both the ids and the "Russia TZ n Standard Time" names iiko shows), its neighbours and a
/// few of Western Europe and America; an id not listed is taken as UTC.
pub(super) fn zone(windows_id: &str) -> Tz {
    use chrono_tz::{America, Asia, Europe};
    match windows_id {
        "Kaliningrad Standard Time" | "Russia TZ 1 Standard Time" => Europe::Kaliningrad,
        "Russian Standard Time" | "Russia TZ 2 Standard Time" => Europe::Moscow,
        "Russia Time Zone 3" | "Russia TZ 3 Standard Time" => Europe::Samara,
        "Ekaterinburg Standard Time" | "Russia TZ 4 Standard Time" => Asia::Yekaterinburg,
        "Omsk Standard Time" | "Russia TZ 5 Standard Time" => Asia::Omsk,
        "North Asia Standard Time" | "Russia TZ 6 Standard Time" => Asia::Krasnoyarsk,
        "North Asia East Standard Time" | "Russia TZ 7 Standard Time" => Asia::Irkutsk,
        "Yakutsk Standard Time" | "Russia TZ 8 Standard Time" => Asia::Yakutsk,
        "Vladivostok Standard Time" | "Russia TZ 9 Standard Time" => Asia::Vladivostok,
        "Russia Time Zone 10" | "Russia TZ 10 Standard Time" => Asia::Srednekolymsk,
        "Russia Time Zone 11" | "Russia TZ 11 Standard Time" => Asia::Kamchatka,
        "N. Central Asia Standard Time" => Asia::Novosibirsk,
        "Magadan Standard Time" => Asia::Magadan,
        "Astrakhan Standard Time" => Europe::Astrakhan,
        "Volgograd Standard Time" => Europe::Volgograd,
        "Saratov Standard Time" => Europe::Saratov,
        "Belarus Standard Time" => Europe::Minsk,
        "Central Asia Standard Time" => Asia::Almaty,
        "West Asia Standard Time" => Asia::Tashkent,
        "Georgian Standard Time" => Asia::Tbilisi,
        "Caucasus Standard Time" => Asia::Yerevan,
        "Azerbaijan Standard Time" => Asia::Baku,
        "Arabian Standard Time" => Asia::Dubai,
        "Turkey Standard Time" => Europe::Istanbul,
        "FLE Standard Time" => Europe::Kyiv,
        "E. Europe Standard Time" => Europe::Chisinau,
        "GTB Standard Time" => Europe::Bucharest,
        "W. Europe Standard Time" => Europe::Berlin,
        "Romance Standard Time" => Europe::Paris,
        "Central Europe Standard Time" => Europe::Budapest,
        "Central European Standard Time" => Europe::Warsaw,
        "GMT Standard Time" => Europe::London,
        "Eastern Standard Time" => America::New_York,
        "Pacific Standard Time" => America::Los_Angeles,
        _ => Tz::UTC,
    }
}

/// iikoCloud's date-time text, `yyyy-MM-dd HH:mm:ss.fff`, without an offset.
pub(super) fn format(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// `at` as the wall clock of a terminal group in `windows_id` shows it.
pub(super) fn local(at: DateTime<Utc>, windows_id: &str) -> NaiveDateTime {
    at.with_timezone(&zone(windows_id)).naive_local()
}

/// A date-time as clients send it (`yyyy-MM-dd HH:mm:ss.fff`, the fraction optional).
pub(super) fn parse(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f").ok()
}
