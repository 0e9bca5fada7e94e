//! Prep-time statistics: for one unit and business day, how many orders there were and how long they took from
//! being placed to ready, overall, per kitchen station and per local hour.
//!
//! An order's time to ready runs from its creation to the first time it reached the workflow's ready status
//! (an order that never did, finished straight away or cancelled, counts as an order without a time); a station's,
//! from the order's creation to that station marking its part ready. The storage reads the day's raw instants and
//! the summary is computed here rather than in SQL: SQLite has no percentile function, and one computation gives
//! both engines the same answer. A day is at most a few thousand orders.

use chrono::{DateTime, NaiveDate, Timelike};
use serde::Serialize;
use tillwire_platform::read;
use tillwire_units::UnitId;
use utoipa::ToSchema;

use crate::screens::StationRef;
use crate::{Kitchen, KitchenError};

/// Milliseconds from an order's creation to ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PrepTime(i64);

impl PrepTime {
    /// From `created_ms` to `ready_ms`. A clock stepped back between the two makes no time, not a negative one.
    pub fn between(created_ms: i64, ready_ms: i64) -> Self {
        PrepTime(ready_ms.saturating_sub(created_ms).max(0))
    }

    pub fn from_millis(ms: i64) -> Self {
        PrepTime(ms.max(0))
    }

    pub fn seconds(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

/// The average and the 90th percentile of some prep times; both `None` when there are none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spread {
    pub average: Option<PrepTime>,
    pub p90: Option<PrepTime>,
}

impl Spread {
    pub fn of(mut times: Vec<PrepTime>) -> Spread {
        if times.is_empty() {
            return Spread::default();
        }
        times.sort_unstable();
        let count = times.len();
        let total: i128 = times.iter().map(|t| i128::from(t.0)).sum();
        // Rounded to the nearest millisecond, half up (all times are non-negative).
        let average = (2 * total + count as i128) / (2 * count as i128);
        // Nearest rank: the ⌈0.9·n⌉-th smallest, in whole numbers so no float rounding picks a neighbour.
        let rank = (9 * count).div_ceil(10);
        Spread {
            average: Some(PrepTime(average as i64)),
            p90: Some(times[rank - 1]),
        }
    }
}

/// One order of the day as the statistics see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderTimes {
    pub created_ms: i64,
    /// When it first reached the ready status; `None` if it never did.
    pub ready_ms: Option<i64>,
    /// It reached a cancelling status (or is in one).
    pub cancelled: bool,
}

/// One station's part of an order of the day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StationTimes {
    pub station_id: i64,
    pub created_ms: i64,
    pub ready_ms: Option<i64>,
}

/// A unit's business day, raw.
#[derive(Debug, Clone, Default)]
pub struct DayTimes {
    pub orders: Vec<OrderTimes>,
    pub stations: Vec<StationTimes>,
}

/// Prep-time statistics of one unit's business day. Times are in seconds; null where there is nothing to measure.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PrepTimes {
    pub unit_id: i64,
    /// The business day, `YYYY-MM-DD`.
    pub day: String,
    /// Orders of the day, cancelled ones included.
    pub orders: usize,
    /// Orders that reached the ready status: those with a time to ready.
    pub ready: usize,
    /// Orders that reached a cancelling status.
    pub cancelled: usize,
    /// Average time from order to ready.
    pub average_seconds: Option<f64>,
    /// 90th percentile (nearest rank) of the time from order to ready.
    pub p90_seconds: Option<f64>,
    /// Every station of the unit, by name: time from order to the station's part ready.
    pub stations: Vec<StationPrepTimes>,
    /// By the local hour the orders were placed in, from the first hour with orders to the last, in the order of
    /// the business day (it starts at the rollover hour); hours in between without orders are listed with 0.
    pub hours: Vec<HourPrepTimes>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StationPrepTimes {
    pub station_id: i64,
    pub name: String,
    /// Orders of the day with a part for this station.
    pub orders: usize,
    pub average_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HourPrepTimes {
    /// The local hour (0–23, in the configured time zone) the orders were placed in.
    pub hour: u32,
    pub orders: usize,
    pub average_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
}

/// The day's statistics from its raw times. `stations` names the unit's stations (in the order to list them),
/// `local_hour` gives the local hour of an instant, and the business day starts at `first_hour`.
pub fn summarise(
    unit: UnitId,
    day: NaiveDate,
    times: &DayTimes,
    stations: &[StationRef],
    local_hour: impl Fn(i64) -> u32,
    first_hour: u32,
) -> PrepTimes {
    let to_ready = |order: &OrderTimes| {
        order
            .ready_ms
            .map(|ready| PrepTime::between(order.created_ms, ready))
    };
    let overall = Spread::of(times.orders.iter().filter_map(to_ready).collect());
    let stations = stations
        .iter()
        .map(|station| {
            let parts: Vec<&StationTimes> = times
                .stations
                .iter()
                .filter(|part| part.station_id == station.id)
                .collect();
            let spread = Spread::of(
                parts
                    .iter()
                    .filter_map(|part| {
                        part.ready_ms
                            .map(|ready| PrepTime::between(part.created_ms, ready))
                    })
                    .collect(),
            );
            StationPrepTimes {
                station_id: station.id,
                name: station.name.clone(),
                orders: parts.len(),
                average_seconds: spread.average.map(PrepTime::seconds),
                p90_seconds: spread.p90.map(PrepTime::seconds),
            }
        })
        .collect();
    // Hours in the business day's order: 04:00 comes before 01:00 when the day rolls over at 4.
    let position = |hour: u32| (hour + 24 - first_hour % 24) % 24;
    let mut by_hour: [Vec<&OrderTimes>; 24] = Default::default();
    for order in &times.orders {
        by_hour[position(local_hour(order.created_ms) % 24) as usize].push(order);
    }
    let first = by_hour.iter().position(|orders| !orders.is_empty());
    let last = by_hour.iter().rposition(|orders| !orders.is_empty());
    let hours = match (first, last) {
        (Some(first), Some(last)) => (first..=last)
            .map(|at| {
                let orders = &by_hour[at];
                let spread = Spread::of(orders.iter().copied().filter_map(to_ready).collect());
                HourPrepTimes {
                    hour: (at as u32 + first_hour) % 24,
                    orders: orders.len(),
                    average_seconds: spread.average.map(PrepTime::seconds),
                    p90_seconds: spread.p90.map(PrepTime::seconds),
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    PrepTimes {
        unit_id: unit.0,
        day: day.to_string(),
        orders: times.orders.len(),
        ready: times.orders.iter().filter(|o| o.ready_ms.is_some()).count(),
        cancelled: times.orders.iter().filter(|o| o.cancelled).count(),
        average_seconds: overall.average.map(PrepTime::seconds),
        p90_seconds: overall.p90.map(PrepTime::seconds),
        stations,
        hours,
    }
}

impl Kitchen {
    /// A unit's business day, raw: each order's creation, first arrival in `ready_status` and whether it was
    /// cancelled, and each station part's readiness.
    pub async fn day_times(
        &self,
        unit: UnitId,
        day: NaiveDate,
        ready_status: Option<i64>,
    ) -> Result<DayTimes, KitchenError> {
        let day = day.to_string();
        let orders: Vec<OrderTimes> = read!(self.store(), db => sqlx::query_as(
            "SELECT o.created_ms,
                    (SELECT MIN(l.at_ms) FROM order_status_log l
                     WHERE l.order_id = o.id AND l.to_status_id = $3) AS ready_ms,
                    (o.status_id IN (SELECT s.id FROM statuses s WHERE s.cancels)
                     OR EXISTS (SELECT 1 FROM order_status_log l JOIN statuses s ON s.id = l.to_status_id
                                WHERE l.order_id = o.id AND s.cancels)) AS cancelled
             FROM orders o WHERE o.unit_id = $1 AND o.business_day = $2 ORDER BY o.created_ms, o.id",
        )
        .bind(unit.0)
        .bind(&day)
        .bind(ready_status)
        .fetch_all(db)
        .await)?;
        let stations: Vec<StationTimes> = read!(self.store(), db => sqlx::query_as(
            "SELECT os.station_id, o.created_ms, os.ready_ms
             FROM order_stations os JOIN orders o ON o.id = os.order_id
             WHERE o.unit_id = $1 AND o.business_day = $2 ORDER BY o.created_ms, o.id, os.station_id",
        )
        .bind(unit.0)
        .bind(&day)
        .fetch_all(db)
        .await)?;
        Ok(DayTimes { orders, stations })
    }

    /// The prep-time statistics of a unit's business day, hours in the configured time zone.
    pub async fn prep_times(
        &self,
        unit: UnitId,
        day: NaiveDate,
    ) -> Result<PrepTimes, KitchenError> {
        let ready = self.workflow().await?.ready().map(|s| s.id);
        let times = self.day_times(unit, day, ready).await?;
        let stations = self.stations(unit).await?;
        let local_hour =
            |ms| DateTime::from_timestamp_millis(ms).map_or(0, |at| self.local_time(at).hour());
        Ok(summarise(
            unit,
            day,
            &times,
            &stations,
            local_hour,
            self.settings.day_rollover_hour,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;

    fn spread(seconds: &[i64]) -> (Option<f64>, Option<f64>) {
        let spread = Spread::of(
            seconds
                .iter()
                .map(|s| PrepTime::from_millis(s * 1000))
                .collect(),
        );
        (
            spread.average.map(PrepTime::seconds),
            spread.p90.map(PrepTime::seconds),
        )
    }

    #[test]
    fn average_and_nearest_rank_p90() {
        // (times in seconds, average, p90): the p90 is the ⌈0.9·n⌉-th smallest, never interpolated.
        let table: &[(&[i64], f64, f64)] = &[
            (&[300], 300.0, 300.0),
            (&[100, 200], 150.0, 200.0),
            (&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 5.5, 9.0),
            (&[10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 11], 6.0, 10.0),
            (&[60, 60, 60, 60, 60, 60, 60, 60, 60, 600], 114.0, 60.0),
            (&[120, 180, 240, 900], 360.0, 900.0),
            (&[0, 0, 1], 0.333, 1.0),
        ];
        for (seconds, average, p90) in table {
            assert_eq!(spread(seconds), (Some(*average), Some(*p90)), "{seconds:?}");
        }
        let twenty: Vec<i64> = (1..=20).collect();
        assert_eq!(spread(&twenty), (Some(10.5), Some(18.0)));
    }

    #[test]
    fn nothing_to_measure_is_none() {
        assert_eq!(spread(&[]), (None, None));
        assert_eq!(PrepTime::between(5_000, 4_000), PrepTime::from_millis(0));
    }

    fn station(id: i64, name: &str) -> StationRef {
        StationRef {
            id,
            name: name.to_owned(),
        }
    }

    fn order(created_ms: i64, ready_after_s: Option<i64>, cancelled: bool) -> OrderTimes {
        OrderTimes {
            created_ms,
            ready_ms: ready_after_s.map(|s| created_ms + s * 1000),
            cancelled,
        }
    }

    /// Hours in UTC.
    fn utc_hour(ms: i64) -> u32 {
        (ms.rem_euclid(24 * HOUR) / HOUR) as u32
    }

    #[test]
    fn empty_day() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 10).expect("a day");
        let stats = summarise(
            UnitId(7),
            day,
            &DayTimes::default(),
            &[station(1, "Вок")],
            utc_hour,
            4,
        );
        assert_eq!(
            stats,
            PrepTimes {
                unit_id: 7,
                day: "2026-03-10".into(),
                orders: 0,
                ready: 0,
                cancelled: 0,
                average_seconds: None,
                p90_seconds: None,
                stations: vec![StationPrepTimes {
                    station_id: 1,
                    name: "Вок".into(),
                    orders: 0,
                    average_seconds: None,
                    p90_seconds: None,
                }],
                hours: Vec::new(),
            }
        );
    }

    #[test]
    fn a_day_by_station_and_hour() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 10).expect("a day");
        let start = 1_773_100_800_000; // 2026-03-10T00:00:00Z
        let at = |hour: i64, minute: i64| start + hour * HOUR + minute * MINUTE;
        let times = DayTimes {
            orders: vec![
                order(at(10, 0), Some(300), false),
                order(at(10, 30), Some(600), false),
                order(at(12, 5), Some(120), false),
                // Cancelled before it was ready, and one finished without passing through ready.
                order(at(12, 10), None, true),
                order(at(12, 20), None, false),
                // After midnight: still this business day, so after 12:00 in the hours.
                order(at(25, 15), Some(900), false),
            ],
            stations: vec![
                StationTimes {
                    station_id: 2,
                    created_ms: at(10, 0),
                    ready_ms: Some(at(10, 4)),
                },
                StationTimes {
                    station_id: 2,
                    created_ms: at(10, 30),
                    ready_ms: None,
                },
                StationTimes {
                    station_id: 1,
                    created_ms: at(10, 30),
                    ready_ms: Some(at(10, 38)),
                },
            ],
        };
        let stats = summarise(
            UnitId(1),
            day,
            &times,
            &[
                station(2, "Вок"),
                station(1, "Пиццерия"),
                station(3, "Салаты"),
            ],
            utc_hour,
            4,
        );
        assert_eq!(
            (stats.orders, stats.ready, stats.cancelled),
            (6, 4, 1),
            "every order counts, cancelled or not"
        );
        // 300, 600, 120, 900 s: average 480, p90 the 4th of 4.
        assert_eq!(
            (stats.average_seconds, stats.p90_seconds),
            (Some(480.0), Some(900.0))
        );
        let stations: Vec<_> = stats
            .stations
            .iter()
            .map(|s| (s.station_id, s.orders, s.average_seconds, s.p90_seconds))
            .collect();
        assert_eq!(
            stations,
            [
                (2, 2, Some(240.0), Some(240.0)),
                (1, 1, Some(480.0), Some(480.0)),
                (3, 0, None, None),
            ]
        );
        let hours: Vec<_> = stats
            .hours
            .iter()
            .map(|h| (h.hour, h.orders, h.average_seconds, h.p90_seconds))
            .collect();
        let mut expected = vec![
            (10, 2, Some(450.0), Some(600.0)),
            (11, 0, None, None),
            (12, 3, Some(120.0), Some(120.0)),
        ];
        expected.extend((13..24).map(|hour| (hour, 0, None, None)));
        expected.push((0, 0, None, None));
        expected.push((1, 1, Some(900.0), Some(900.0)));
        assert_eq!(hours, expected);
    }
}
