//! A register's last day drawn on its page: a plot of the OFD backlog and the response time (inline SVG, built
//! here from numbers and times only, so nothing a user typed reaches the markup), and an availability strip of
//! quarter hours.

use std::fmt::Write;

use tillwire_platform::Settings;
use tillwire_platform::admin::local_time;
use tillwire_platform::web::Lang;

use crate::storage::Sample;

const DAY_MS: i64 = 24 * 3600 * 1000;
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 56.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 28.0;

/// A scale's top: the largest value rounded up to 1, 2 or 5 times a power of ten (at least `floor`).
fn nice_top(max: f64, floor: f64) -> f64 {
    let max = max.max(floor);
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|step| step * magnitude)
        .find(|top| *top >= max)
        .unwrap_or(max)
}

/// The SVG of the last 24 hours before `now`: the OFD backlog (left axis) and the response time (right axis).
pub fn history(samples: &[Sample], now: i64, lang: Lang, settings: &Settings) -> String {
    let start = now - DAY_MS;
    let x = |at: i64| LEFT + (at - start) as f64 / DAY_MS as f64 * (WIDTH - LEFT - RIGHT);
    let plot_height = HEIGHT - TOP - BOTTOM;
    let ofd_top = nice_top(
        samples.iter().filter_map(|s| s.ofd).max().unwrap_or(0) as f64,
        5.0,
    );
    let latency_top = nice_top(
        samples
            .iter()
            .filter_map(|s| s.latency_ms)
            .max()
            .unwrap_or(0) as f64,
        50.0,
    );
    let y = |value: f64, top: f64| TOP + plot_height * (1.0 - value / top);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="history" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}">"#,
        lang.pick(
            "Очередь ОФД и время ответа за сутки",
            "OFD backlog and response time over the day"
        )
    );
    // Grid and axes: five bands (every top is a multiple of five), a tick every three hours.
    for step in 0..=5 {
        let fraction = f64::from(step) / 5.0;
        let line_y = TOP + plot_height * (1.0 - fraction);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{line_y:.1}" y2="{line_y:.1}" stroke="#e5e7eb"/><text x="{}" y="{:.1}" text-anchor="end" class="axis ofd">{}</text><text x="{}" y="{:.1}" class="axis latency">{} {}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            line_y + 4.0,
            (ofd_top * fraction).round(),
            WIDTH - RIGHT + 6.0,
            line_y + 4.0,
            (latency_top * fraction).round(),
            lang.pick("мс", "ms"),
        );
    }
    let first_tick = (start / (3 * 3600 * 1000) + 1) * 3 * 3600 * 1000;
    for tick in (first_tick..now).step_by(3 * 3600 * 1000) {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" class="axis">{}</text>"#,
            x(tick),
            HEIGHT - 8.0,
            local_time(settings, tick, "%H:%M")
        );
    }
    let line = |values: Vec<(i64, f64)>, top: f64, class: &str| {
        if values.is_empty() {
            return String::new();
        }
        let points: Vec<String> = values
            .iter()
            .map(|(at, value)| format!("{:.1},{:.1}", x(*at), y(*value, top)))
            .collect();
        format!(
            r#"<polyline class="{class}" fill="none" points="{}"/>"#,
            points.join(" ")
        )
    };
    svg.push_str(&line(
        samples
            .iter()
            .filter_map(|s| s.ofd.map(|v| (s.at_ms, v as f64)))
            .collect(),
        ofd_top,
        "ofd",
    ));
    svg.push_str(&line(
        samples
            .iter()
            .filter_map(|s| s.latency_ms.map(|v| (s.at_ms, v as f64)))
            .collect(),
        latency_top,
        "latency",
    ));
    if samples.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" class="axis">{}</text>"#,
            WIDTH / 2.0,
            HEIGHT / 2.0,
            lang.pick("Пока нет данных", "No data yet")
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The last 24 hours in quarter hours, oldest first: each cell's class (`up`, `busy`, `down`, `none`) and its
/// title.
pub fn strip(
    samples: &[Sample],
    now: i64,
    lang: Lang,
    settings: &Settings,
) -> Vec<(&'static str, String)> {
    const CELL_MS: i64 = 15 * 60 * 1000;
    let start = (now - DAY_MS) / CELL_MS * CELL_MS + CELL_MS;
    (0..96)
        .map(|i| {
            let from = start + i * CELL_MS;
            let cell: Vec<&Sample> = samples
                .iter()
                .filter(|s| (from..from + CELL_MS).contains(&s.at_ms))
                .collect();
            let down = cell.iter().filter(|s| !s.up).count();
            let busy = cell.iter().filter(|s| s.up && s.busy == Some(true)).count();
            let (class, what) = if cell.is_empty() {
                ("none", lang.pick("нет данных", "no data"))
            } else if down > 0 {
                ("down", lang.pick("была без связи", "was unreachable"))
            } else if busy * 2 >= cell.len() {
                (
                    "busy",
                    lang.pick("в основном пробивала чеки", "mostly serving receipts"),
                )
            } else {
                ("up", lang.pick("на связи", "online"))
            };
            let title = format!(
                "{}–{}: {what}",
                local_time(settings, from, "%H:%M"),
                local_time(settings, from + CELL_MS, "%H:%M")
            );
            (class, title)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RegisterId;

    fn sample(at_ms: i64, up: bool, ofd: i64, latency: i64) -> Sample {
        Sample {
            register: RegisterId(1),
            at_ms,
            up,
            busy: Some(false),
            ofd: Some(ofd),
            latency_ms: up.then_some(latency),
        }
    }

    #[test]
    fn scales_round_up_to_readable_tops() {
        assert_eq!(nice_top(0.0, 5.0), 5.0);
        assert_eq!(nice_top(23.0, 5.0), 50.0);
        assert_eq!(nice_top(180.0, 50.0), 200.0);
        assert_eq!(nice_top(1000.0, 50.0), 1000.0);
    }

    #[test]
    fn the_plot_draws_both_lines_and_the_strip_marks_the_outage() {
        let mut settings = Settings::for_database("sqlite://unused.sqlite3");
        settings.timezone = Some(chrono_tz::UTC);
        let now = 1_714_554_000_000;
        let samples: Vec<Sample> = (0..60)
            .map(|minute| {
                sample(
                    now - 3_600_000 + minute * 60_000,
                    !(20..25).contains(&minute),
                    minute,
                    7,
                )
            })
            .collect();
        let svg = history(&samples, now, Lang::En, &settings);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        let cells = strip(&samples, now, Lang::En, &settings);
        assert_eq!(cells.len(), 96);
        assert!(cells.iter().any(|(class, _)| *class == "down"));
        assert_eq!(
            cells.iter().filter(|(class, _)| *class != "none").count(),
            4
        );
        assert!(history(&[], now, Lang::Ru, &settings).contains("Пока нет данных"));
    }
}
