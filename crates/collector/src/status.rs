//! Each register's state, for the admin page and `/metrics`. One board per process, like the metrics recorder.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

/// What the admin page shows about one register.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RegisterState {
    pub source: String,
    /// The unit it feeds (in-process mode) or the import URL's host (CLI mode).
    pub target: String,
    pub last_success_ms: Option<i64>,
    /// From a sale's commit on the register to its acknowledgement, for the last sale delivered.
    pub lag_ms: Option<i64>,
    pub last_error: Option<String>,
    pub cursor: Option<String>,
    pub delivered: u64,
    /// Sales still to read, while backfilling.
    pub backlog: u64,
    /// Another instance reads this register now (the holder of its lease); this one stands by.
    pub standby_for: Option<String>,
    /// Receipts parked by this instance since it started (refused for good).
    pub parked: u64,
}

fn board() -> &'static Mutex<BTreeMap<String, RegisterState>> {
    static BOARD: OnceLock<Mutex<BTreeMap<String, RegisterState>>> = OnceLock::new();
    BOARD.get_or_init(Default::default)
}

/// Every register's state, ordered by source.
pub fn snapshot() -> Vec<RegisterState> {
    board()
        .lock()
        .map(|b| b.values().cloned().collect())
        .unwrap_or_default()
}

/// The handle a register's task reports through.
#[derive(Clone)]
pub struct Reporter {
    source: String,
}

impl Reporter {
    pub fn new(source: &str, target: &str) -> Self {
        update(source, |state| {
            state.source = source.to_owned();
            state.target = target.to_owned();
        });
        Reporter {
            source: source.to_owned(),
        }
    }

    pub fn delivered(&self, cursor: &str, lag_ms: Option<i64>) {
        let now = tillwire_platform::now_ms();
        let mut backlog = 0;
        update(&self.source, |state| {
            state.last_success_ms = Some(now);
            state.lag_ms = lag_ms.or(state.lag_ms);
            state.last_error = None;
            state.cursor = Some(cursor.to_owned());
            state.delivered += 1;
            // Outside a backfill the backlog is 0 and stays 0.
            state.backlog = state.backlog.saturating_sub(1);
            backlog = state.backlog;
        });
        let labels = [("register", self.source.clone())];
        metrics::counter!("tillwire_collector_receipts_total", &labels).increment(1);
        metrics::gauge!("tillwire_collector_last_success_seconds", &labels).set(now as f64 / 1e3);
        metrics::gauge!("tillwire_collector_up", &labels).set(1.0);
        if let Some(lag) = lag_ms {
            metrics::gauge!("tillwire_collector_lag_seconds", &labels).set(lag as f64 / 1e3);
        }
        metrics::gauge!("tillwire_collector_backlog", &labels).set(backlog as f64);
    }

    /// A pass that found nothing new still proves the register is reachable.
    pub fn idle(&self) {
        let now = tillwire_platform::now_ms();
        update(&self.source, |state| {
            state.last_success_ms = Some(now);
            state.last_error = None;
            state.backlog = 0;
        });
        let labels = [("register", self.source.clone())];
        metrics::gauge!("tillwire_collector_last_success_seconds", &labels).set(now as f64 / 1e3);
        metrics::gauge!("tillwire_collector_up", &labels).set(1.0);
        metrics::gauge!("tillwire_collector_backlog", &labels).set(0.0);
    }

    pub fn backlog(&self, remaining: u64) {
        update(&self.source, |state| state.backlog = remaining);
        metrics::gauge!("tillwire_collector_backlog", "register" => self.source.clone())
            .set(remaining as f64);
    }

    /// Another instance holds the register's lease.
    pub fn standby(&self, holder: &str) {
        update(&self.source, |state| {
            state.standby_for = Some(holder.to_owned());
            state.backlog = 0;
        });
        metrics::gauge!("tillwire_collector_owned", "register" => self.source.clone()).set(0.0);
    }

    /// This instance took the register's lease and reads it.
    pub fn owned(&self) {
        update(&self.source, |state| state.standby_for = None);
        metrics::gauge!("tillwire_collector_owned", "register" => self.source.clone()).set(1.0);
    }

    pub fn parked(&self, reason: &str) {
        update(&self.source, |state| {
            state.parked += 1;
            state.last_error = Some(reason.to_owned());
        });
        metrics::counter!("tillwire_collector_parked_total", "register" => self.source.clone())
            .increment(1);
    }

    pub fn failed(&self, error: &str) {
        update(&self.source, |state| {
            state.last_error = Some(error.to_owned())
        });
        let labels = [("register", self.source.clone())];
        metrics::counter!("tillwire_collector_errors_total", &labels).increment(1);
        metrics::gauge!("tillwire_collector_up", &labels).set(0.0);
    }

    pub fn state(&self) -> RegisterState {
        board()
            .lock()
            .ok()
            .and_then(|b| b.get(&self.source).cloned())
            .unwrap_or_default()
    }
}

/// Takes a register that is no longer collected off the board.
pub(crate) fn forget(source: &str) {
    if let Ok(mut board) = board().lock() {
        board.remove(source);
    }
}

fn update(source: &str, change: impl FnOnce(&mut RegisterState)) {
    if let Ok(mut board) = board().lock() {
        change(board.entry(source.to_owned()).or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog_gauge(source: &str) -> Option<String> {
        let metrics = tillwire_platform::telemetry::metrics_handle().render();
        let prefix = format!("tillwire_collector_backlog{{register=\"{source}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
    }

    #[test]
    fn the_backlog_counts_down_to_zero_and_no_further() {
        tillwire_platform::telemetry::metrics_handle();
        let reporter = Reporter::new("status-test:5432/cash", "test");
        reporter.delivered("a", Some(10));
        reporter.delivered("b", Some(10));
        assert_eq!(backlog_gauge("status-test:5432/cash").as_deref(), Some("0"));
        reporter.backlog(2);
        reporter.delivered("c", None);
        assert_eq!(backlog_gauge("status-test:5432/cash").as_deref(), Some("1"));
        assert_eq!(reporter.state().backlog, 1);
        reporter.delivered("d", None);
        reporter.delivered("e", None);
        assert_eq!(backlog_gauge("status-test:5432/cash").as_deref(), Some("0"));
        assert_eq!(reporter.state().delivered, 5);
    }
}
