//! iikoCloud gives order times in the terminal group's local time, with no offset, and names the group's zone
//! with a Windows time-zone id ("Russian Standard Time"). Here the id becomes an IANA zone (the "001" territory
//! of CLDR's windowsZones table, for the zones a chain in Russia and its neighbours meets), and a local time an
//! instant.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Windows ids and their IANA zones (CLDR windowsZones, territory 001).
const WINDOWS_ZONES: &[(&str, Tz)] = &[
    ("UTC", Tz::UTC),
    ("Coordinated Universal Time", Tz::UTC),
    ("GMT Standard Time", Tz::Europe__London),
    ("Greenwich Standard Time", Tz::Atlantic__Reykjavik),
    ("W. Europe Standard Time", Tz::Europe__Berlin),
    ("Central Europe Standard Time", Tz::Europe__Budapest),
    ("Central European Standard Time", Tz::Europe__Warsaw),
    ("Romance Standard Time", Tz::Europe__Paris),
    ("GTB Standard Time", Tz::Europe__Bucharest),
    ("E. Europe Standard Time", Tz::Europe__Chisinau),
    ("FLE Standard Time", Tz::Europe__Kiev),
    ("Kaliningrad Standard Time", Tz::Europe__Kaliningrad),
    ("Russian Standard Time", Tz::Europe__Moscow),
    ("Belarus Standard Time", Tz::Europe__Minsk),
    ("Turkey Standard Time", Tz::Europe__Istanbul),
    ("Astrakhan Standard Time", Tz::Europe__Astrakhan),
    ("Russia Time Zone 3", Tz::Europe__Samara),
    ("Saratov Standard Time", Tz::Europe__Saratov),
    ("Volgograd Standard Time", Tz::Europe__Volgograd),
    ("Georgian Standard Time", Tz::Asia__Tbilisi),
    ("Caucasus Standard Time", Tz::Asia__Yerevan),
    ("Azerbaijan Standard Time", Tz::Asia__Baku),
    ("Ekaterinburg Standard Time", Tz::Asia__Yekaterinburg),
    ("West Asia Standard Time", Tz::Asia__Tashkent),
    ("Qyzylorda Standard Time", Tz::Asia__Qyzylorda),
    ("Central Asia Standard Time", Tz::Asia__Almaty),
    ("Omsk Standard Time", Tz::Asia__Omsk),
    ("N. Central Asia Standard Time", Tz::Asia__Novosibirsk),
    ("Altai Standard Time", Tz::Asia__Barnaul),
    ("Tomsk Standard Time", Tz::Asia__Tomsk),
    ("North Asia Standard Time", Tz::Asia__Krasnoyarsk),
    ("North Asia East Standard Time", Tz::Asia__Irkutsk),
    ("Transbaikal Standard Time", Tz::Asia__Chita),
    ("Yakutsk Standard Time", Tz::Asia__Yakutsk),
    ("Vladivostok Standard Time", Tz::Asia__Vladivostok),
    ("Sakhalin Standard Time", Tz::Asia__Sakhalin),
    ("Magadan Standard Time", Tz::Asia__Magadan),
    ("Russia Time Zone 10", Tz::Asia__Srednekolymsk),
    ("Russia Time Zone 11", Tz::Asia__Kamchatka),
    ("Arabian Standard Time", Tz::Asia__Dubai),
    ("Arab Standard Time", Tz::Asia__Riyadh),
    ("Israel Standard Time", Tz::Asia__Jerusalem),
    ("China Standard Time", Tz::Asia__Shanghai),
    ("Tokyo Standard Time", Tz::Asia__Tokyo),
    ("Eastern Standard Time", Tz::America__New_York),
    ("Central Standard Time", Tz::America__Chicago),
    ("Mountain Standard Time", Tz::America__Denver),
    ("Pacific Standard Time", Tz::America__Los_Angeles),
];

/// The IANA zone of a Windows time-zone id, or of an IANA name given as is. `None` for anything else.
pub fn zone(id: &str) -> Option<Tz> {
    let id = id.trim();
    WINDOWS_ZONES
        .iter()
        .find(|(windows, _)| windows.eq_ignore_ascii_case(id))
        .map(|(_, zone)| *zone)
        .or_else(|| id.parse().ok())
}

/// The instant a terminal's wall-clock time means. In the hour a DST change repeats, the earlier instant; in the
/// hour it skips (no such wall time), the instant an hour later, where the terminal's clock then stood.
pub fn to_utc(local: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    match zone.from_local_datetime(&local).earliest() {
        Some(at) => at.to_utc(),
        None => zone
            .from_local_datetime(&(local + chrono::TimeDelta::hours(1)))
            .earliest()
            .map_or_else(|| local.and_utc(), |at| at.to_utc()),
    }
}

/// An iikoCloud date-time, `yyyy-MM-dd HH:mm:ss.fff` (the fraction optional).
pub fn parse_local(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        parse_local(text).expect("a date-time")
    }

    #[test]
    fn windows_ids_and_iana_names_are_zones() {
        assert_eq!(zone("Russian Standard Time"), Some(Tz::Europe__Moscow));
        assert_eq!(zone("russian standard time "), Some(Tz::Europe__Moscow));
        assert_eq!(zone("Europe/Samara"), Some(Tz::Europe__Samara));
        assert_eq!(zone("Russia TZ 2 Standard Time"), None);
    }

    #[test]
    fn moscow_has_no_dst_and_berlin_does() {
        let moscow = zone("Russian Standard Time").unwrap();
        assert_eq!(
            to_utc(at("2024-05-01 12:40:12.345"), moscow).to_rfc3339(),
            "2024-05-01T09:40:12.345+00:00"
        );
        let berlin = zone("W. Europe Standard Time").unwrap();
        // Winter, then summer: the same wall time is an hour earlier in UTC after the change.
        assert_eq!(
            to_utc(at("2024-03-30 12:00:00.000"), berlin).to_rfc3339(),
            "2024-03-30T11:00:00+00:00"
        );
        assert_eq!(
            to_utc(at("2024-03-31 12:00:00.000"), berlin).to_rfc3339(),
            "2024-03-31T10:00:00+00:00"
        );
        // 02:30 does not exist on 31 March in Berlin: the clock read 03:30 then.
        assert_eq!(
            to_utc(at("2024-03-31 02:30:00"), berlin).to_rfc3339(),
            "2024-03-31T01:30:00+00:00"
        );
        // 02:30 happens twice on 27 October: the first.
        assert_eq!(
            to_utc(at("2024-10-27 02:30:00"), berlin).to_rfc3339(),
            "2024-10-27T00:30:00+00:00"
        );
    }

    #[test]
    fn iiko_date_times_are_read_with_or_without_the_fraction() {
        assert_eq!(at("2024-05-01 20:45:00.000"), at("2024-05-01 20:45:00"));
        assert!(parse_local("2024-05-01T20:45:00").is_none());
        assert!(parse_local("yesterday").is_none());
    }
}
