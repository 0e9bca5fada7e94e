//! The daily summary (`DAILY_SUMMARY`): for each unit routed for it, once a business day is over, at
//! `[telegram] daily_summary_hour` local time, what the day was like: orders, the average and 90th percentile
//! time to ready (the kitchen's statistics), register incidents and how long they lasted in all (the monitor's),
//! and how often printers and sales collection failed (their events). A row per unit and day, written in the
//! transaction of the messages, makes it once however many instances look.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use tillwire_directory::routing::Routing;
use tillwire_kitchen::Kitchen;
use tillwire_platform::admin::human_duration;
use tillwire_platform::jobs::{BackgroundJob, EnqueueJob};
use tillwire_platform::web::Lang;
use tillwire_platform::{now_ms, read, write_tx};
use tillwire_units::{Unit, UnitId, Units};

use crate::router::{insert_planned, planned};
use crate::templates::{DAILY, DAILY_SUMMARY, Templates};

/// Writes the summaries that are due.
#[derive(Clone)]
pub struct Summaries {
    pub kitchen: Kitchen,
    /// The local hour summaries go at.
    pub hour: u32,
    pub lang: Lang,
}

impl Summaries {
    /// The business day whose summary is due at `now`, if one is: the day before the current one, from `hour`
    /// o'clock on the day after it ends (with the day ending at 04:00 and summaries at 02:00, the next night).
    pub fn due_day(&self, now: DateTime<Utc>) -> Option<NaiveDate> {
        let day = self.kitchen.business_day(now) - TimeDelta::days(1);
        let rollover = self.kitchen.settings.day_rollover_hour;
        let local = self.kitchen.local_time(now);
        let due_on = day + TimeDelta::days(if self.hour < rollover { 2 } else { 1 });
        (local.date() > due_on || (local.date() == due_on && local.hour() >= self.hour))
            .then_some(day)
    }

    /// Writes every unit's summary of the day due at `now` that is not written yet; how many went out.
    pub async fn write_due(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let Some(day) = self.due_day(now) else {
            return Ok(0);
        };
        let platform = &self.kitchen.platform;
        let routing = Routing(platform.store.clone());
        // Asked every minute: once the day's summaries are written, one read answers it.
        let done = self.written(day).await?;
        let mut templates = None;
        let mut written = 0;
        for unit in Units(&platform.store).list().await? {
            if done.contains(&unit.id) {
                continue;
            }
            let recipients = routing.recipients(unit.id, DAILY_SUMMARY).await?;
            let messages = if recipients.is_empty() {
                Vec::new()
            } else {
                let values = self.values(&unit, day).await?;
                let templates = match &mut templates {
                    Some(templates) => templates,
                    None => templates.insert(Templates::load(&platform.store).await?),
                };
                let html = templates.render(&DAILY, self.lang, &values);
                planned(None, &recipients, DAILY_SUMMARY, &html)
            };
            let claimed = write_tx!(&platform.store, tx => {
                let claimed = sqlx::query(
                    "INSERT INTO notify_summaries (unit_id, day, created_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (unit_id, day) DO NOTHING",
                )
                .bind(unit.id)
                .bind(day.to_string())
                .bind(now_ms())
                .execute(&mut **tx)
                .await?
                .rows_affected() == 1;
                if claimed {
                    insert_planned!(tx, &messages);
                }
                Ok::<bool, sqlx::Error>(claimed)
            })?;
            if claimed && !messages.is_empty() {
                written += 1;
            }
        }
        if written > 0 {
            platform.jobs.notify();
        }
        Ok(written)
    }

    /// The units whose summary of `day` is written.
    async fn written(&self, day: NaiveDate) -> Result<HashSet<i64>, sqlx::Error> {
        let units: Vec<i64> = read!(&self.kitchen.platform.store, db => sqlx::query_scalar(
            "SELECT unit_id FROM notify_summaries WHERE day = $1",
        )
        .bind(day.to_string())
        .fetch_all(db)
        .await)?;
        Ok(units.into_iter().collect())
    }

    /// The summary's values for `unit` on business day `day`.
    pub async fn values(
        &self,
        unit: &Unit,
        day: NaiveDate,
    ) -> anyhow::Result<Vec<(&'static str, String)>> {
        let lang = self.lang;
        let platform = &self.kitchen.platform;
        let prep = self.kitchen.prep_times(UnitId(unit.id), day).await?;
        let (from, to) = self.kitchen.business_day_bounds(day);
        let (incidents, incident_ms) = tillwire_monitor::storage::Incidents(platform.store.clone())
            .in_window(unit.id, from, to)
            .await?;
        let printer_trouble = platform
            .outbox
            .count(
                unit.id,
                &[
                    tillwire_printing::PRINTER_FAILING,
                    tillwire_printing::TICKET_GIVEN_UP,
                ],
                from,
                to,
            )
            .await?;
        let collector_trouble = platform
            .outbox
            .count(unit.id, &[tillwire_collector::REGISTER_BEHIND], from, to)
            .await?;
        // iiko's figures, for a unit with an iikoServer: its closed sales of the day (by the server's calendar).
        let sales = tillwire_iiko::reports::Reports::new(platform.store.clone())
            .day(UnitId(unit.id), day)
            .await?;
        let (revenue, iiko_orders, top_dishes) = match &sales {
            None => (String::new(), String::new(), String::new()),
            Some(sales) => (
                tillwire_iiko::reports::money(&sales.revenue, lang),
                sales.orders.to_string(),
                sales
                    .dishes
                    .iter()
                    .take(3)
                    .map(|dish| format!("{} ×{}", dish.name, dish.amount))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
        let seconds = |value: Option<f64>| match value {
            Some(seconds) => human_duration((seconds * 1000.0).round() as i64, lang),
            None => "—".to_owned(),
        };
        Ok(vec![
            ("unit", unit.name.clone()),
            ("date", day.format("%d.%m.%Y").to_string()),
            ("orders", prep.orders.to_string()),
            ("avg_ready", seconds(prep.average_seconds)),
            ("p90_ready", seconds(prep.p90_seconds)),
            ("incidents", incidents.to_string()),
            ("incident_time", human_duration(incident_ms, lang)),
            ("printer_trouble", printer_trouble.to_string()),
            ("collector_trouble", collector_trouble.to_string()),
            ("revenue", revenue),
            ("iiko_orders", iiko_orders),
            ("top_dishes", top_dishes),
        ])
    }
}
