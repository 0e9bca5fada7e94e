//! `serve --demo`: six simulated registers in the default unit, driven by a scenario so the monitor page lives —
//! receipts open and close, one register runs out of paper now and then, one's OFD backlog grows, one drops off
//! the network, one loses Vision.

use std::time::Duration;

use rand::Rng;
use tillwire_platform::Platform;
use tillwire_units::Units;

use crate::model::{BaseUrl, RegisterName};
use crate::sim::{Fault, Simulator};
use crate::storage::{NewRegister, Registers};

const REGISTERS: u32 = 6;

/// Starts the simulator on a free loopback port and points the demo registers at it.
pub async fn start(platform: &Platform) -> anyhow::Result<()> {
    let Some(unit) = Units(&platform.store).default_unit().await? else {
        return Ok(());
    };
    let zone = platform.settings.timezone.unwrap_or(chrono_tz::UTC);
    let sim = Simulator::new(REGISTERS, zone);
    let base = sim.serve_on_loopback().await?;
    tokio::spawn(scenario(sim));
    let registers = Registers(platform.store.clone());
    for n in 1..=REGISTERS {
        let name = format!("{} {n}", "Демо-касса");
        registers
            .upsert(
                &NewRegister {
                    unit_id: unit.id,
                    name: RegisterName::parse(&name)?,
                    url: BaseUrl::parse(&format!("{base}/r/{n}/"))?,
                    zone: None,
                    region: if n <= 3 { "Центр" } else { "Север" }.into(),
                    enabled: true,
                    overrides: Default::default(),
                },
                false,
            )
            .await?;
    }
    tracing::info!(%base, "demo: simulated UKM 5 registers");
    Ok(())
}

/// Moves the simulated registers along, every few seconds, for as long as the process runs.
async fn scenario(sim: Simulator) {
    let mut tick: u64 = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        tick += 1;
        let mut rng = rand::rng();
        for n in 1..=REGISTERS {
            let (open, close, cashier) = (
                rng.random_bool(0.3),
                rng.random_bool(0.4),
                rng.random_range(101..105),
            );
            sim.update(n, |state, now| {
                state.user_id = Some(cashier.to_string());
                match state.receipt_activity {
                    None if open => state.receipt_activity = Some(now),
                    Some(_) if close => {
                        state.receipt_activity = None;
                        state.last_close = now;
                    }
                    Some(_) => state.receipt_activity = Some(now),
                    None => {}
                }
            });
        }
        // A 3-second tick: register 3 is out of paper two minutes in six, register 4's backlog climbs past the
        // threshold and is sent, register 5 is off the network 90 s in five minutes, register 6 loses Vision three
        // minutes in ten.
        let phase = |period: u64| tick % (period / 3);
        sim.update(3, |state, _| state.paper = phase(360) >= 40);
        sim.update(4, |state, _| state.ofd_pending = (phase(300) / 3) as u32);
        sim.set_fault(
            5,
            if phase(300) < 30 {
                Fault::Drop
            } else {
                Fault::None
            },
        );
        sim.update(6, |state, _| state.vision = phase(600) >= 60);
    }
}
