//! A scenario script for the simulated registers (spec A.5): what happens to which register when, one step a line.
//!
//! ```text
//! # seconds  register  action       [value]
//! 2          1         login        104
//! 5          1         open
//! 8          1         scan
//! 12         1         close
//! 20         2         paper-out
//! 30         3         ofd          25
//! 40         4         vision-off
//! 60         5         fault        drop      # none, drop, hang, 500, slow MS, flapping MS
//! 70         *         advance      15        # the virtual clock jumps 15 minutes (a receipt goes quiet)
//! ```
//!
//! `*` is every register. Steps run in the order of their times, on the real clock from the start of the script;
//! `advance` moves the simulator's virtual clock, so a test needs no quarter hour to see a receipt get stuck.

use std::time::Duration;

use crate::sim::{Fault, Simulator};

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A receipt opens (its first activity now).
    Open,
    /// An item is scanned into the open receipt.
    Scan,
    /// The receipt closes: the register is idle from now.
    Close,
    Login(String),
    Logout,
    PaperOut,
    PaperIn,
    /// Receipts not yet sent to the OFD.
    Ofd(u32),
    VisionOff,
    VisionOn,
    /// Kilograms on the scale.
    Weight(f64),
    Fault(Fault),
    /// Moves the virtual clock forward.
    Advance(Duration),
}

/// One line of a script.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub at: Duration,
    /// `None` is every register.
    pub register: Option<u32>,
    pub action: Action,
}

/// Reads a script; every line's problem is reported, by line number.
pub fn parse(text: &str) -> Result<Vec<Step>, Vec<String>> {
    let mut steps = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        match step(line) {
            Ok(step) => steps.push(step),
            Err(message) => errors.push(format!("line {}: {message}", index + 1)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    steps.sort_by_key(|step| step.at);
    Ok(steps)
}

fn step(line: &str) -> Result<Step, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let [at, register, action, rest @ ..] = words.as_slice() else {
        return Err("expected: SECONDS REGISTER ACTION [VALUE]".into());
    };
    let at = at
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{at:?} is not a number of seconds"))?;
    let register = match *register {
        "*" => None,
        n => Some(
            n.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{n:?} is not a register number or *"))?,
        ),
    };
    let value = |what: &str| {
        rest.first()
            .copied()
            .ok_or_else(|| format!("{action} needs {what}"))
    };
    let number = |what: &str| -> Result<f64, String> {
        let text = value(what)?;
        text.replace(',', ".")
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("{text:?} is not {what}"))
    };
    let action = match *action {
        "open" => Action::Open,
        "scan" => Action::Scan,
        "close" => Action::Close,
        "login" => Action::Login(value("a cashier id")?.to_owned()),
        "logout" => Action::Logout,
        "paper-out" => Action::PaperOut,
        "paper-in" => Action::PaperIn,
        "ofd" => Action::Ofd(number("a count")? as u32),
        "vision-off" => Action::VisionOff,
        "vision-on" => Action::VisionOn,
        "weight" => Action::Weight(number("kilograms")?),
        "advance" => Action::Advance(Duration::from_secs_f64(number("minutes")? * 60.0)),
        "fault" => Action::Fault(match value("a fault")? {
            "none" => Fault::None,
            "drop" => Fault::Drop,
            "hang" => Fault::Hang,
            "500" => Fault::ServerError,
            "slow" => Fault::Slow(millis_after(rest)?),
            "flapping" => Fault::Flapping(millis_after(rest)?),
            other => {
                return Err(format!(
                    "unknown fault {other:?}: none, drop, hang, 500, slow MS or flapping MS"
                ));
            }
        }),
        other => {
            return Err(format!(
                "unknown action {other:?}: open, scan, close, login, logout, paper-out, paper-in, ofd, vision-off, \
                 vision-on, weight, fault or advance"
            ));
        }
    };
    Ok(Step {
        at,
        register,
        action,
    })
}

/// The milliseconds after a fault's name (`slow 2500`).
fn millis_after(rest: &[&str]) -> Result<Duration, String> {
    let text = rest
        .get(1)
        .ok_or_else(|| "the fault needs milliseconds".to_owned())?;
    text.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{text:?} is not a number of milliseconds"))
}

impl Simulator {
    /// Plays `steps` from now, each at its time; returns after the last.
    pub async fn play(&self, steps: &[Step]) {
        let start = tokio::time::Instant::now();
        for step in steps {
            tokio::time::sleep_until(start + step.at).await;
            self.apply(step);
        }
    }

    fn apply(&self, step: &Step) {
        if let Action::Advance(by) = step.action {
            self.advance(by);
            return;
        }
        let registers: Vec<u32> = match step.register {
            Some(n) => vec![n],
            None => (1..=self.count()).collect(),
        };
        for n in registers {
            if let Action::Fault(fault) = step.action {
                self.set_fault(n, fault);
                continue;
            }
            self.update(n, |state, now| match &step.action {
                Action::Open | Action::Scan => state.receipt_activity = Some(now),
                Action::Close => {
                    state.receipt_activity = None;
                    state.last_close = now;
                }
                Action::Login(id) => state.user_id = Some(id.clone()),
                Action::Logout => state.user_id = None,
                Action::PaperOut => state.paper = false,
                Action::PaperIn => state.paper = true,
                Action::Ofd(count) => state.ofd_pending = *count,
                Action::VisionOff => state.vision = false,
                Action::VisionOn => state.vision = true,
                Action::Weight(kg) => state.weight = *kg,
                Action::Fault(_) | Action::Advance(_) => {}
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_is_read_in_time_order() {
        let steps = parse(
            "# a morning\n12 1 close\n5 1 open   # first customer\n\n30 3 ofd 25\n60 5 fault slow 2500\n70 * advance 15\n",
        )
        .expect("script");
        let actions: Vec<(u64, Option<u32>, Action)> = steps
            .into_iter()
            .map(|s| (s.at.as_secs(), s.register, s.action))
            .collect();
        assert_eq!(
            actions,
            vec![
                (5, Some(1), Action::Open),
                (12, Some(1), Action::Close),
                (30, Some(3), Action::Ofd(25)),
                (
                    60,
                    Some(5),
                    Action::Fault(Fault::Slow(Duration::from_millis(2500)))
                ),
                (70, None, Action::Advance(Duration::from_secs(900))),
            ]
        );
    }

    #[test]
    fn every_bad_line_is_named() {
        let errors = parse(
            "5 1 open\nsoon 1 open\n5 0 open\n5 1 dance\n5 1 ofd\n5 1 fault slow\n5 1 fault meh\n",
        )
        .expect_err("bad lines");
        let lines: Vec<&str> = errors
            .iter()
            .map(|e| e.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            lines,
            ["line 2", "line 3", "line 4", "line 5", "line 6", "line 7"],
            "{errors:?}"
        );
    }

    #[tokio::test]
    async fn a_played_script_changes_the_registers_and_the_virtual_clock() {
        let sim = Simulator::new(2, chrono_tz::UTC);
        let before = sim.now();
        let steps =
            parse("0 1 open\n0 2 paper-out\n0 * login 7\n0.05 * advance 15\n").expect("script");
        sim.play(&steps).await;
        assert!(sim.now() - before >= chrono::TimeDelta::minutes(15));
        let mut seen = Vec::new();
        for n in 1..=2 {
            sim.update(n, |state, _| {
                seen.push((
                    state.receipt_activity.is_some(),
                    state.paper,
                    state.user_id.clone(),
                ))
            });
        }
        assert_eq!(
            seen,
            vec![
                (true, true, Some("7".to_owned())),
                (false, false, Some("7".to_owned()))
            ]
        );
    }
}
