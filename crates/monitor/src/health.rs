//! What one register's answers mean, poll after poll: its current state (up, busy or idle, cashier, OFD backlog,
//! paper, Vision) and when an incident opens or closes. Pure: the poller feeds it polls and stores what it
//! returns, so every threshold, the hysteresis and the maintenance mute are tested without a network or a clock.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::model::{Kind, Thresholds};
use crate::parse::{self, Answer};
use crate::schedule::Probe;

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The register answered (200, 204 or anything else).
    Answered(Answer),
    /// Refused, dropped or timed out.
    Unreachable,
}

impl Outcome {
    /// The outcome's label in the `tillwire_monitor_requests_total{outcome}` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Outcome::Answered(Answer::Value(_)) => "ok",
            Outcome::Answered(Answer::NoContent) => "no_content",
            Outcome::Answered(Answer::Unknown(_)) => "unknown",
            Outcome::Unreachable => "unreachable",
        }
    }
}

/// One request and its outcome.
#[derive(Debug, Clone)]
pub struct Poll {
    pub probe: Probe,
    pub outcome: Outcome,
    pub at: DateTime<Utc>,
    pub latency_ms: i64,
}

/// Consecutive bad and good polls for one kind of incident.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streak {
    pub bad: u32,
    pub good: u32,
}

/// A register's state as its answers left it. Stored as it is, so an instance taking a register over goes on
/// counting where the last one stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Whether the last request got an answer (`None` before the first).
    pub up: Option<bool>,
    /// Whether a receipt is open.
    pub busy: Option<bool>,
    /// When the last receipt closed (while idle).
    pub idle_since_ms: Option<i64>,
    /// The last activity inside the open receipt (while busy).
    pub activity_ms: Option<i64>,
    /// The logged-in cashier's id.
    pub cashier: Option<String>,
    /// Receipts not yet sent to the OFD.
    pub ofd: Option<u64>,
    pub paper: Option<bool>,
    pub vision: Option<bool>,
    /// The weight on the scale when it was last asked for (kilograms), and when.
    pub weight: Option<f64>,
    pub weighed_ms: Option<i64>,
    /// The status of the last answer other than 200/204, while the register keeps answering so.
    pub unknown: Option<u16>,
    pub last_seen_ms: Option<i64>,
    pub last_poll_ms: Option<i64>,
    pub latency_ms: Option<i64>,
    pub streaks: BTreeMap<Kind, Streak>,
    /// The kinds of incident open now.
    pub open: BTreeSet<Kind>,
}

/// An incident to open or close, decided by a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Opens an incident of this kind; the detail is what tripped it (the backlog, the stuck receipt's time).
    Open(Kind, String),
    Close(Kind),
}

/// What a poll says about each kind of incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Bad,
    Good,
}

impl Health {
    /// Takes one poll in. `muted` is true inside a maintenance window: nothing opens then, though streaks go on
    /// counting and open incidents still close.
    pub fn observe(
        &mut self,
        poll: &Poll,
        zone: Tz,
        thresholds: &Thresholds,
        muted: bool,
    ) -> Vec<Change> {
        let at_ms = poll.at.timestamp_millis();
        self.last_poll_ms = Some(at_ms);
        let mut verdicts: Vec<(Kind, Verdict, String)> = Vec::new();
        match &poll.outcome {
            Outcome::Unreachable => {
                self.up = Some(false);
                self.latency_ms = None;
                verdicts.push((Kind::Offline, Verdict::Bad, String::new()));
            }
            Outcome::Answered(answer) => {
                self.up = Some(true);
                self.last_seen_ms = Some(at_ms);
                self.latency_ms = Some(poll.latency_ms);
                verdicts.push((Kind::Offline, Verdict::Good, String::new()));
                self.unknown = match answer {
                    Answer::Unknown(status) => Some(*status),
                    _ => None,
                };
                verdicts.extend(self.read(poll.probe, answer, zone, poll.at, thresholds));
            }
        }
        let mut changes = Vec::new();
        for (kind, verdict, detail) in verdicts {
            let streak = self.streaks.entry(kind).or_default();
            match verdict {
                Verdict::Bad => {
                    streak.bad = streak.bad.saturating_add(1);
                    streak.good = 0;
                }
                Verdict::Good => {
                    streak.good = streak.good.saturating_add(1);
                    streak.bad = 0;
                }
            }
            let streak = *streak;
            let is_open = self.open.contains(&kind);
            if !is_open && !muted && streak.bad >= opens_after(kind, thresholds) {
                self.open.insert(kind);
                changes.push(Change::Open(kind, detail));
            } else if is_open && streak.good >= thresholds.close_after.max(1) {
                self.open.remove(&kind);
                changes.push(Change::Close(kind));
            }
        }
        changes
    }

    /// Updates the state from one answer, and says what it tells about the incidents its probe watches.
    fn read(
        &mut self,
        probe: Probe,
        answer: &Answer,
        zone: Tz,
        now: DateTime<Utc>,
        thresholds: &Thresholds,
    ) -> Vec<(Kind, Verdict, String)> {
        let time_ms = |value: &str| parse::time(value, zone).map(|at| at.timestamp_millis());
        let flag = |answer: &Answer| match answer {
            Answer::Value(_) => Some(true),
            Answer::NoContent => Some(false),
            Answer::Unknown(_) => None,
        };
        let good_or_bad = |ok: bool| if ok { Verdict::Good } else { Verdict::Bad };
        match (probe, answer) {
            (_, Answer::Unknown(_)) => Vec::new(),
            (Probe::Downtime, Answer::Value(value)) => {
                self.busy = Some(false);
                self.idle_since_ms = time_ms(value).or(self.idle_since_ms);
                self.activity_ms = None;
                vec![(Kind::ReceiptStuck, Verdict::Good, String::new())]
            }
            (Probe::Downtime, Answer::NoContent) => {
                self.busy = Some(true);
                Vec::new()
            }
            (Probe::LastReceiptTime, Answer::Value(value)) => {
                self.busy = Some(true);
                let Some(activity) = time_ms(value) else {
                    return Vec::new();
                };
                self.activity_ms = Some(activity);
                let quiet_ms = now.timestamp_millis() - activity;
                let limit_ms = i64::from(thresholds.receipt_stuck_minutes) * 60_000;
                vec![(
                    Kind::ReceiptStuck,
                    good_or_bad(quiet_ms < limit_ms),
                    activity.to_string(),
                )]
            }
            (Probe::LastReceiptTime, Answer::NoContent) => {
                self.busy = Some(false);
                self.activity_ms = None;
                vec![(Kind::ReceiptStuck, Verdict::Good, String::new())]
            }
            (Probe::UserRoleId, answer) => {
                self.cashier = match answer {
                    Answer::Value(value) => parse::id(value),
                    _ => None,
                };
                Vec::new()
            }
            (Probe::Ofd, answer) => {
                let backlog = match answer {
                    Answer::Value(value) => parse::count(value),
                    _ => Some(0),
                };
                let Some(backlog) = backlog else {
                    return Vec::new();
                };
                self.ofd = Some(backlog);
                vec![(
                    Kind::OfdBacklog,
                    good_or_bad(backlog < u64::from(thresholds.ofd_backlog)),
                    backlog.to_string(),
                )]
            }
            (Probe::Paper, answer) => {
                self.paper = flag(answer);
                vec![(
                    Kind::NoPaper,
                    good_or_bad(self.paper == Some(true)),
                    String::new(),
                )]
            }
            (Probe::Vision, answer) => {
                self.vision = flag(answer);
                vec![(
                    Kind::VisionOffline,
                    good_or_bad(self.vision == Some(true)),
                    String::new(),
                )]
            }
            (Probe::Weight, answer) => {
                self.weighed_ms = Some(now.timestamp_millis());
                self.weight = match answer {
                    Answer::Value(value) => parse::weight(value),
                    _ => None,
                };
                if matches!(answer, Answer::NoContent) {
                    self.busy = Some(true);
                }
                Vec::new()
            }
        }
    }

    /// Whether what a tile shows differs from `other` (a change worth telling live pages about; the poll times
    /// alone are not).
    pub fn shows_differently(&self, other: &Health) -> bool {
        (
            self.up,
            self.busy,
            &self.cashier,
            self.ofd,
            self.paper,
            self.vision,
            self.weighed_ms,
            self.unknown,
            &self.open,
        ) != (
            other.up,
            other.busy,
            &other.cashier,
            other.ofd,
            other.paper,
            other.vision,
            other.weighed_ms,
            other.unknown,
            &other.open,
        )
    }
}

/// Bad polls in a row that open an incident of `kind`.
fn opens_after(kind: Kind, thresholds: &Thresholds) -> u32 {
    match kind {
        Kind::Offline => thresholds.offline_polls,
        Kind::NoPaper => thresholds.no_paper_polls,
        Kind::VisionOffline => thresholds.vision_polls,
        // The threshold is in the value itself (a count, minutes): one poll tells.
        Kind::OfdBacklog | Kind::ReceiptStuck => 1,
    }
    .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: Tz = chrono_tz::Europe::Moscow;

    fn poll(probe: Probe, outcome: Outcome, at: DateTime<Utc>) -> Poll {
        Poll {
            probe,
            outcome,
            at,
            latency_ms: 3,
        }
    }

    fn value(text: &str) -> Outcome {
        Outcome::Answered(Answer::Value(text.into()))
    }

    const EMPTY: Outcome = Outcome::Answered(Answer::NoContent);

    /// Feeds `outcomes` of `probe` one second apart; the changes of each.
    fn feed(
        health: &mut Health,
        probe: Probe,
        outcomes: &[Outcome],
        thresholds: &Thresholds,
        muted: bool,
    ) -> Vec<Vec<Change>> {
        let start = Utc::now();
        outcomes
            .iter()
            .enumerate()
            .map(|(i, outcome)| {
                let at = start + chrono::TimeDelta::seconds(i as i64);
                health.observe(&poll(probe, outcome.clone(), at), ZONE, thresholds, muted)
            })
            .collect()
    }

    #[test]
    fn offline_opens_after_its_threshold_and_closes_after_good_polls() {
        let thresholds = Thresholds::default();
        let mut health = Health::default();
        let down = Outcome::Unreachable;
        let up = value("2024-05-01 12:00:00");
        let changes = feed(
            &mut health,
            Probe::Downtime,
            &[
                down.clone(),
                down.clone(),
                down.clone(),
                down.clone(),
                up.clone(),
                up,
            ],
            &thresholds,
            false,
        );
        let expected: Vec<Vec<Change>> = vec![
            vec![],
            vec![],
            vec![Change::Open(Kind::Offline, String::new())],
            vec![],
            vec![],
            vec![Change::Close(Kind::Offline)],
        ];
        assert_eq!(changes, expected);
        assert_eq!(health.up, Some(true));
        assert_eq!(health.busy, Some(false));
    }

    #[test]
    fn a_flapping_register_keeps_one_incident_open() {
        let thresholds = Thresholds::default();
        let mut health = Health::default();
        let down = Outcome::Unreachable;
        let up = value("2024-05-01 12:00:00");
        let mut outcomes = vec![down.clone(); 3];
        for _ in 0..20 {
            outcomes.push(up.clone());
            outcomes.push(down.clone());
        }
        let changes: Vec<Change> =
            feed(&mut health, Probe::Downtime, &outcomes, &thresholds, false)
                .into_iter()
                .flatten()
                .collect();
        assert_eq!(changes, vec![Change::Open(Kind::Offline, String::new())]);
    }

    #[test]
    fn paper_vision_and_the_ofd_backlog_follow_their_thresholds() {
        let thresholds = Thresholds::default();
        let mut health = Health::default();
        let paper = feed(
            &mut health,
            Probe::Paper,
            &[EMPTY, EMPTY, value(""), value("")],
            &thresholds,
            false,
        );
        assert_eq!(paper[1], vec![Change::Open(Kind::NoPaper, String::new())]);
        assert_eq!(paper[3], vec![Change::Close(Kind::NoPaper)]);
        let vision = feed(
            &mut health,
            Probe::Vision,
            &[EMPTY, EMPTY, EMPTY],
            &thresholds,
            false,
        );
        assert_eq!(
            vision[2],
            vec![Change::Open(Kind::VisionOffline, String::new())]
        );
        let ofd = feed(
            &mut health,
            Probe::Ofd,
            &[
                value("19"),
                Outcome::Answered(Answer::from_response(200, "{\"ofd\": 20}")),
                value("3"),
                EMPTY,
            ],
            &thresholds,
            false,
        );
        assert_eq!(ofd[0], vec![]);
        assert_eq!(ofd[1], vec![Change::Open(Kind::OfdBacklog, "20".into())]);
        assert_eq!(ofd[3], vec![Change::Close(Kind::OfdBacklog)]);
        assert_eq!(health.ofd, Some(0));
        assert_eq!(health.vision, Some(false));
    }

    #[test]
    fn a_receipt_quiet_for_too_long_is_stuck_until_it_closes() {
        let thresholds = Thresholds {
            receipt_stuck_minutes: 15,
            ..Thresholds::default()
        };
        let mut health = Health::default();
        let now = Utc::now();
        let local = |at: DateTime<Utc>| {
            at.with_timezone(&ZONE)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        let fresh = now - chrono::TimeDelta::minutes(14);
        let stale = now - chrono::TimeDelta::minutes(16);
        let ask = |health: &mut Health, probe, outcome| {
            health.observe(&poll(probe, outcome, now), ZONE, &thresholds, false)
        };
        assert_eq!(
            ask(&mut health, Probe::LastReceiptTime, value(&local(fresh))),
            vec![]
        );
        assert_eq!(health.busy, Some(true));
        let opened = ask(&mut health, Probe::LastReceiptTime, value(&local(stale)));
        assert!(
            matches!(&opened[..], [Change::Open(Kind::ReceiptStuck, _)]),
            "{opened:?}"
        );
        // The receipt closes: the idle probe answers, twice, and the incident closes.
        assert_eq!(
            ask(&mut health, Probe::Downtime, value(&local(now))),
            vec![]
        );
        assert_eq!(
            ask(&mut health, Probe::Downtime, value(&local(now))),
            vec![Change::Close(Kind::ReceiptStuck)]
        );
        assert_eq!(health.busy, Some(false));
    }

    #[test]
    fn nothing_opens_in_maintenance_but_what_is_open_still_closes() {
        let thresholds = Thresholds::default();
        let mut health = Health::default();
        let down = vec![Outcome::Unreachable; 5];
        assert!(
            feed(&mut health, Probe::Downtime, &down, &thresholds, true)
                .iter()
                .all(Vec::is_empty)
        );
        // The window ends with the register still down: the next bad poll opens the incident.
        let after = feed(&mut health, Probe::Downtime, &down[..1], &thresholds, false);
        assert_eq!(after[0], vec![Change::Open(Kind::Offline, String::new())]);
        let back = vec![value("2024-05-01 12:00:00"); 2];
        let closed = feed(&mut health, Probe::Downtime, &back, &thresholds, true);
        assert_eq!(closed[1], vec![Change::Close(Kind::Offline)]);
    }

    #[test]
    fn an_unknown_answer_is_up_but_tells_nothing_else() {
        let thresholds = Thresholds::default();
        let mut health = Health::default();
        let changes = feed(
            &mut health,
            Probe::Paper,
            &vec![Outcome::Answered(Answer::Unknown(500)); 3],
            &thresholds,
            false,
        );
        assert!(changes.iter().all(Vec::is_empty));
        assert_eq!(
            (health.up, health.unknown, health.paper),
            (Some(true), Some(500), None)
        );
    }

    #[test]
    fn the_state_survives_a_round_trip_through_json() {
        let thresholds = Thresholds::default();
        let mut health = Health::default();
        feed(
            &mut health,
            Probe::Downtime,
            &vec![Outcome::Unreachable; 3],
            &thresholds,
            false,
        );
        let stored = serde_json::to_string(&health).unwrap();
        let mut restored: Health = serde_json::from_str(&stored).unwrap();
        assert_eq!(restored, health);
        // The next owner goes on from the stored streaks: two good polls close what the last one opened.
        let back = feed(
            &mut restored,
            Probe::Downtime,
            &vec![value("1714554000"); 2],
            &thresholds,
            false,
        );
        assert_eq!(back[1], vec![Change::Close(Kind::Offline)]);
    }
}
