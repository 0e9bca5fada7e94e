//! A client-side budget per method, so tillwire stays under iikoCloud's limits instead of finding them with
//! 429s. iiko publishes no per-method table (spec B.10); these are the conservative figures integrators use, with
//! the token call allowed once a second. A `Retry-After` holds the method until it has passed.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Calls allowed per window, by method prefix; the first match wins.
const LIMITS: &[(&str, usize, Duration)] = &[
    ("/api/1/access_token", 1, Duration::from_secs(1)),
    ("/api/v2/access_token", 1, Duration::from_secs(1)),
    ("/api/1/order/", 20, Duration::from_secs(60)),
    ("/api/1/commands/status", 60, Duration::from_secs(60)),
    ("/api/1/webhooks/", 2, Duration::from_secs(60)),
    ("", 10, Duration::from_secs(60)),
];

#[derive(Default)]
struct Window {
    recent: VecDeque<Instant>,
    hold_until: Option<Instant>,
}

#[derive(Default)]
pub(super) struct Budgets {
    windows: Mutex<HashMap<String, Window>>,
}

fn limit(method: &str) -> (usize, Duration) {
    LIMITS
        .iter()
        .find(|(prefix, _, _)| method.starts_with(prefix))
        .map_or((10, Duration::from_secs(60)), |(_, calls, per)| {
            (*calls, *per)
        })
}

impl Budgets {
    /// Waits until `method` may be called, and counts the call.
    pub(super) async fn take(&self, method: &str) {
        loop {
            let wait = self.try_take(method, Instant::now());
            match wait {
                None => return,
                Some(wait) => {
                    tracing::debug!(
                        method,
                        wait_ms = wait.as_millis() as u64,
                        "iikoCloud: within the method's budget, waiting"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// `None` when the call may go now (and is counted), else how long to wait.
    fn try_take(&self, method: &str, now: Instant) -> Option<Duration> {
        let (calls, per) = limit(method);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window = windows.entry(method.to_owned()).or_default();
        if let Some(until) = window.hold_until {
            if until > now {
                return Some(until - now);
            }
            window.hold_until = None;
        }
        while window
            .recent
            .front()
            .is_some_and(|at| now.duration_since(*at) >= per)
        {
            window.recent.pop_front();
        }
        if window.recent.len() < calls {
            window.recent.push_back(now);
            return None;
        }
        window.recent.front().map(|oldest| (*oldest + per) - now)
    }

    /// iiko asked to wait `wait` before calling `method` again.
    pub(super) fn hold(&self, method: &str, wait: Duration) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.entry(method.to_owned()).or_default().hold_until = Some(Instant::now() + wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_waits_once_its_window_is_spent_and_while_held() {
        let budgets = Budgets::default();
        let start = Instant::now();
        for _ in 0..20 {
            assert_eq!(budgets.try_take("/api/1/order/by_table", start), None);
        }
        let wait = budgets
            .try_take("/api/1/order/by_table", start)
            .expect("spent");
        assert_eq!(wait, Duration::from_secs(60));
        // Other methods have their own windows.
        assert_eq!(
            budgets.try_take("/api/1/deliveries/by_revision", start),
            None
        );
        assert_eq!(
            budgets.try_take("/api/1/order/by_table", start + Duration::from_secs(60)),
            None
        );
        budgets.hold("/api/1/deliveries/by_revision", Duration::from_secs(3));
        assert!(
            budgets
                .try_take("/api/1/deliveries/by_revision", Instant::now())
                .is_some()
        );
        assert_eq!(budgets.try_take("/api/1/access_token", start), None);
        assert_eq!(
            budgets.try_take("/api/1/access_token", start + Duration::from_millis(500)),
            Some(Duration::from_millis(500))
        );
    }
}
