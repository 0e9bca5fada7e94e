//! `/admin/stats/`: prep times of a unit's business day: summary figures, a table per station and a chart by hour
//! (orders as bars, the 90th percentile as a line), drawn on the server as inline SVG so the page needs no script.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use tillwire_platform::admin::Admin;
use tillwire_platform::web::{PageContext, render};
use tillwire_units::UnitId;

use super::UnitPicker;
use crate::stats::{HourPrepTimes, PrepTimes};
use crate::{Kitchen, KitchenError};

const SECTION: &str = "/admin/stats/";

pub fn router() -> Router<Kitchen> {
    Router::new().route(SECTION, get(stats_page))
}

#[derive(Deserialize)]
struct StatsQuery {
    unit: Option<i64>,
    /// `YYYY-MM-DD`; empty means today's business day.
    #[serde(default)]
    day: String,
}

#[derive(Template)]
#[template(path = "admin_stats.html")]
struct StatsPage {
    page: PageContext,
    section: &'static str,
    picker: UnitPicker,
    day: String,
    previous_day: String,
    next_day: String,
    stats: PrepTimes,
    chart: Option<Chart>,
}

impl StatsPage {
    /// Seconds as minutes with one decimal; a dash when there is nothing to show.
    fn minutes(&self, seconds: &Option<f64>) -> String {
        minutes(*seconds)
    }
}

fn minutes(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "—".to_owned(), |s| format!("{:.1}", s / 60.0))
}

async fn stats_page(
    State(kitchen): State<Kitchen>,
    admin: Admin,
    Query(query): Query<StatsQuery>,
) -> Result<Response, KitchenError> {
    let picker = UnitPicker::load(&kitchen, query.unit).await?;
    let day = super::chosen_day(&kitchen, &query.day)?;
    let stats = kitchen.prep_times(UnitId(picker.id()), day).await?;
    let around = |next: Option<chrono::NaiveDate>| next.map(|d| d.to_string()).unwrap_or_default();
    Ok(render(&StatsPage {
        page: admin.page("Время приготовления", "Prep times"),
        section: SECTION,
        picker,
        day: day.to_string(),
        previous_day: around(day.pred_opt()),
        next_day: around(day.succ_opt()),
        chart: Chart::draw(&stats.hours),
        stats,
    }))
}

/// The chart by hour, laid out in SVG user units; the template writes the elements and their words.
struct Chart {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    bottom: f64,
    bars: Vec<Bar>,
    /// The p90 line's `points`, through the hours that have a p90.
    line: String,
    /// Left axis: orders.
    order_ticks: Vec<Tick>,
    /// Right axis: p90 minutes.
    minute_ticks: Vec<Tick>,
}

struct Bar {
    x: String,
    y: String,
    width: String,
    height: String,
    /// Middle of the hour's band, for its label and its p90 dot.
    centre: String,
    hour: String,
    next_hour: String,
    orders: usize,
    average: String,
    p90: String,
    /// The p90 dot's height, when the hour has one.
    dot: Option<String>,
}

struct Tick {
    y: String,
    label: String,
}

impl Chart {
    const WIDTH: f64 = 760.0;
    const HEIGHT: f64 = 280.0;
    const LEFT: f64 = 48.0;
    const RIGHT: f64 = 704.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 240.0;

    /// `None` for a day without orders: the page says so instead.
    fn draw(hours: &[HourPrepTimes]) -> Option<Chart> {
        let most_orders = hours.iter().map(|h| h.orders).max().filter(|m| *m > 0)?;
        let order_step = nice_step(most_orders as f64);
        let order_top = (most_orders as f64 / order_step).ceil() * order_step;
        let longest = hours
            .iter()
            .filter_map(|h| h.p90_seconds)
            .fold(0.0, f64::max)
            / 60.0;
        let minute_step = nice_step(longest.max(1.0));
        let minute_top = (longest / minute_step).ceil().max(1.0) * minute_step;
        let plot_height = Self::BOTTOM - Self::TOP;
        let band = (Self::RIGHT - Self::LEFT) / hours.len() as f64;
        let y_of = |value: f64, top: f64| Self::BOTTOM - value / top * plot_height;
        let bars: Vec<Bar> = hours
            .iter()
            .enumerate()
            .map(|(index, hour)| {
                let centre = Self::LEFT + band * (index as f64 + 0.5);
                let height = hour.orders as f64 / order_top * plot_height;
                Bar {
                    x: svg(centre - band * 0.35),
                    y: svg(Self::BOTTOM - height),
                    width: svg(band * 0.7),
                    height: svg(height),
                    centre: svg(centre),
                    hour: format!("{:02}", hour.hour),
                    next_hour: format!("{:02}", (hour.hour + 1) % 24),
                    orders: hour.orders,
                    average: minutes(hour.average_seconds),
                    p90: minutes(hour.p90_seconds),
                    dot: hour.p90_seconds.map(|s| svg(y_of(s / 60.0, minute_top))),
                }
            })
            .collect();
        let line = bars
            .iter()
            .filter_map(|bar| bar.dot.as_ref().map(|y| format!("{},{y}", bar.centre)))
            .collect::<Vec<_>>()
            .join(" ");
        let ticks = |top: f64, step: f64| {
            (0..=(top / step).round() as u32)
                .map(|i| {
                    let value = f64::from(i) * step;
                    Tick {
                        y: svg(y_of(value, top)),
                        label: format!("{value}"),
                    }
                })
                .collect()
        };
        Some(Chart {
            width: Self::WIDTH,
            height: Self::HEIGHT,
            left: Self::LEFT,
            right: Self::RIGHT,
            bottom: Self::BOTTOM,
            order_ticks: ticks(order_top, order_step),
            minute_ticks: ticks(minute_top, minute_step),
            bars,
            line,
        })
    }
}

/// A coordinate with one decimal: enough for a screen, short in the page.
fn svg(value: f64) -> String {
    format!("{value:.1}")
}

/// A round step (1, 2 or 5 times a power of ten) that splits `0..=most` into at most five parts.
fn nice_step(most: f64) -> f64 {
    let rough = most / 5.0;
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * power)
        .max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_steps_are_round() {
        let steps: Vec<f64> = [1.0, 4.0, 5.0, 7.0, 12.0, 48.0, 130.0]
            .into_iter()
            .map(nice_step)
            .collect();
        assert_eq!(steps, [1.0, 1.0, 1.0, 2.0, 5.0, 10.0, 50.0]);
    }

    #[test]
    fn no_chart_without_orders() {
        assert!(Chart::draw(&[]).is_none());
        let idle = HourPrepTimes {
            hour: 9,
            orders: 0,
            average_seconds: None,
            p90_seconds: None,
        };
        assert!(Chart::draw(&[idle]).is_none());
    }

    #[test]
    fn bars_scale_to_the_busiest_hour() {
        let hour = |hour, orders, p90: Option<f64>| HourPrepTimes {
            hour,
            orders,
            average_seconds: p90,
            p90_seconds: p90,
        };
        let chart = Chart::draw(&[hour(23, 4, Some(600.0)), hour(0, 2, None)]).expect("a chart");
        let heights: Vec<&str> = chart.bars.iter().map(|b| b.height.as_str()).collect();
        assert_eq!(heights, ["224.0", "112.0"]);
        assert_eq!(chart.bars[1].next_hour, "01");
        assert_eq!(chart.line, format!("{},{}", chart.bars[0].centre, "16.0"));
        assert_eq!(chart.order_ticks.len(), 5);
    }
}
