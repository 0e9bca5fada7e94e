//! When to ask a register what (spec A.1's limit: at most one request per second per register, all endpoints
//! together). `downtime` is the frequent probe (it tells busy from idle); `last_receipt_time` is asked only while a
//! receipt is open; `ofd`, `paper`, `vision` and `user_role_id` are the slow ones. Whatever the settings, two
//! requests are never closer than [`SAFE_GAP`]: a schedule that asks for more is stretched, and says by how much.

use std::time::Duration;

use tokio::time::Instant;

/// The vendor's limit, with a margin for the register's own clock and the network's jitter.
pub const SAFE_GAP: Duration = Duration::from_millis(1_050);

/// The probes, in the order a tie is broken (the busy/idle probe first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    Downtime,
    LastReceiptTime,
    Ofd,
    Paper,
    Vision,
    UserRoleId,
    /// Only when someone asks for it from the register's page.
    Weight,
}

impl Probe {
    pub const DETAILS: [Probe; 4] = [Probe::Ofd, Probe::Paper, Probe::Vision, Probe::UserRoleId];

    /// The endpoint's path under `api/v1/status/`.
    pub fn endpoint(self) -> &'static str {
        match self {
            Probe::Downtime => "downtime",
            Probe::LastReceiptTime => "last_receipt_time",
            Probe::Ofd => "ofd",
            Probe::Paper => "paper",
            Probe::Vision => "vision",
            Probe::UserRoleId => "user_role_id",
            Probe::Weight => "weight",
        }
    }
}

/// How often each kind of probe is wanted (`[monitor] status_every_secs`, `details_every_secs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    pub status_every: Duration,
    pub details_every: Duration,
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence {
            status_every: Duration::from_secs(10),
            details_every: Duration::from_secs(60),
        }
    }
}

impl Cadence {
    /// How much slower than configured the register is asked at worst (while busy, when `last_receipt_time`
    /// doubles the status probes): `None` when the limit allows the configured cadence.
    pub fn stretch(self) -> Option<f64> {
        let per_second = |every: Duration| 1.0 / every.as_secs_f64().max(1e-3);
        let wanted = 2.0 * per_second(self.status_every)
            + Probe::DETAILS.len() as f64 * per_second(self.details_every);
        let allowed = per_second(SAFE_GAP);
        (wanted > allowed).then(|| wanted / allowed)
    }
}

/// A due time that never comes (a probe asked only on demand).
fn never(from: Instant) -> Instant {
    from + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// One register's plan: when each probe is next due, and when the register was last asked anything.
#[derive(Debug, Clone)]
pub struct Plan {
    cadence: Cadence,
    due: [(Probe, Instant); 7],
    last_request: Option<Instant>,
}

impl Plan {
    /// A plan whose first probe is due at `start` (jittered by the caller, so thousands of registers do not
    /// fire together); the slow probes follow one gap apart.
    pub fn new(cadence: Cadence, start: Instant) -> Self {
        let at = |gaps: u32| start + SAFE_GAP * gaps;
        Plan {
            cadence,
            due: [
                (Probe::Downtime, at(0)),
                (Probe::LastReceiptTime, at(0)),
                (Probe::Ofd, at(1)),
                (Probe::Paper, at(2)),
                (Probe::Vision, at(3)),
                (Probe::UserRoleId, at(4)),
                (Probe::Weight, never(start)),
            ],
            last_request: None,
        }
    }

    /// The probe to send next and when: the most overdue one (ties in [`Probe`] order), never sooner than
    /// [`SAFE_GAP`] after the last request. `last_receipt_time` only counts while `busy`.
    pub fn next(&self, busy: bool) -> (Probe, Instant) {
        let (probe, due) = self
            .due
            .iter()
            .filter(|(probe, _)| busy || *probe != Probe::LastReceiptTime)
            .min_by_key(|(_, due)| *due)
            .copied()
            .expect("the busy/idle probe is always planned");
        let earliest = self.last_request.map_or(due, |last| last + SAFE_GAP);
        (probe, due.max(earliest))
    }

    /// Records that `probe` was sent at `at`: it is due again one period later.
    pub fn sent(&mut self, probe: Probe, at: Instant) {
        self.last_request = Some(at);
        let next = match probe {
            Probe::Downtime | Probe::LastReceiptTime => at + self.cadence.status_every,
            Probe::Weight => never(at),
            _ => at + self.cadence.details_every,
        };
        self.set_due(probe, next);
    }

    /// Asks for `probe` as soon as the limit allows (the weight, on demand).
    pub fn ask(&mut self, probe: Probe, at: Instant) {
        self.set_due(probe, at);
    }

    fn set_due(&mut self, probe: Probe, at: Instant) {
        for (planned, due) in &mut self.due {
            if *planned == probe {
                *due = at;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Runs a plan for `span` of virtual time, sending each probe the moment it is allowed; the send times.
    fn run(cadence: Cadence, busy: bool, span: Duration) -> Vec<(Probe, Duration)> {
        let start = Instant::now();
        let mut plan = Plan::new(cadence, start);
        let mut sent = Vec::new();
        loop {
            let (probe, at) = plan.next(busy);
            if at - start > span {
                return sent;
            }
            plan.sent(probe, at);
            sent.push((probe, at - start));
        }
    }

    fn gaps_ok(sent: &[(Probe, Duration)]) {
        for pair in sent.windows(2) {
            assert!(
                pair[1].1 - pair[0].1 >= SAFE_GAP,
                "two requests {:?} apart: {pair:?}",
                pair[1].1 - pair[0].1
            );
        }
    }

    fn counts(sent: &[(Probe, Duration)]) -> HashMap<Probe, usize> {
        let mut counts = HashMap::new();
        for (probe, _) in sent {
            *counts.entry(*probe).or_default() += 1;
        }
        counts
    }

    #[test]
    fn the_default_cadence_fits_the_limit_and_is_kept() {
        let hour = Duration::from_secs(3600);
        assert_eq!(Cadence::default().stretch(), None);
        let idle = run(Cadence::default(), false, hour);
        gaps_ok(&idle);
        // Every 10 s and every 60 s over an hour, give or take a gap's delay now and then.
        assert!(
            (350..=361).contains(&counts_of(&idle, Probe::Downtime)),
            "{:?}",
            counts(&idle)
        );
        assert_eq!(
            counts_of(&idle, Probe::LastReceiptTime),
            0,
            "asked only while busy"
        );
        for detail in Probe::DETAILS {
            assert!(
                (59..=61).contains(&counts_of(&idle, detail)),
                "{detail:?}: {:?}",
                counts(&idle)
            );
        }
        let busy = run(Cadence::default(), true, hour);
        gaps_ok(&busy);
        assert!(
            (350..=361).contains(&counts_of(&busy, Probe::LastReceiptTime)),
            "{:?}",
            counts(&busy)
        );
        assert!(
            (350..=361).contains(&counts_of(&busy, Probe::Downtime)),
            "{:?}",
            counts(&busy)
        );
    }

    fn counts_of(sent: &[(Probe, Duration)], probe: Probe) -> usize {
        counts(sent).get(&probe).copied().unwrap_or(0)
    }

    #[test]
    fn a_cadence_too_fast_for_the_limit_is_stretched_and_says_so() {
        let fast = Cadence {
            status_every: Duration::from_millis(200),
            details_every: Duration::from_secs(1),
        };
        let stretch = fast.stretch().expect("stretched");
        assert!(stretch > 10.0, "{stretch}");
        let minute = Duration::from_secs(60);
        let sent = run(fast, true, minute);
        gaps_ok(&sent);
        assert!(sent.len() <= 58, "{} requests in a minute", sent.len());
        // Every probe still gets its turn.
        for probe in [Probe::Downtime, Probe::LastReceiptTime]
            .into_iter()
            .chain(Probe::DETAILS)
        {
            assert!(
                counts_of(&sent, probe) >= 5,
                "{probe:?}: {:?}",
                counts(&sent)
            );
        }
    }
}
