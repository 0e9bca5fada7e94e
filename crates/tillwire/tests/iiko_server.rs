//! The real binary against the iikoServer simulator: a process killed with `kill -9` in the middle of a session
//! leaves its key holding the server's only licence slot; the restarted process logs that key out before it
//! signs in, so the slot is free again, and no two requests ever overlap, across the two processes.

mod common;

use std::time::Duration;

use common::{eventually, serve_with_config};
use tillwire_iiko::sim::server::ServerSim;
use tillwire_testkit::TestDatabase;

async fn licence_slot_survives_a_kill_9(db: TestDatabase) {
    let (sim, url) = ServerSim::start("tillwire", "пароль сервера").await;
    // Each keyed request takes a while, so the kill lands inside a session.
    sim.set_request_delay(Duration::from_secs(2));
    let data = tempfile::tempdir().expect("data dir");
    let settings = data.path().join("tillwire.toml");
    std::fs::write(
        &settings,
        format!(
            "[iiko]\npoll_seconds = 5\n\n[[iiko.server]]\nurl = \"{url}\"\nlogin = \"tillwire\"\npassword = \"пароль сервера\"\ntime_zone = \"UTC\"\n"
        ),
    )
    .expect("settings");
    let dir = data.path().join("data");
    let mut first = serve_with_config(db.url(), &dir, &settings, false, &[]).await;
    eventually(
        "a session holding the slot",
        Duration::from_secs(30),
        || async {
            if sim.slots_in_use() == 1 {
                Ok(())
            } else {
                Err(format!("{} slots", sim.slots_in_use()))
            }
        },
    )
    .await;
    first.kill9();
    // Whatever the killed process had asked is answered; nobody logs its key out.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sim.set_request_delay(Duration::ZERO);
    assert_eq!(
        sim.slots_in_use(),
        1,
        "the killed process's key still holds the slot"
    );
    let logouts = sim.logout_count();

    let mut second = serve_with_config(db.url(), &dir, &settings, false, &[]).await;
    // Once the dead process's leases run out, the new one logs the leftover key out and works in its own session.
    eventually(
        "the leftover key logged out and a session of its own done",
        Duration::from_secs(60),
        || async {
            let (slots, out, auths) = (sim.slots_in_use(), sim.logout_count(), sim.auth_count());
            if out >= logouts + 2 && slots == 0 {
                Ok(())
            } else {
                Err(format!(
                    "{slots} slots in use, {out} logouts, {auths} logins"
                ))
            }
        },
    )
    .await;
    assert_eq!(
        sim.overlaps(),
        0,
        "no two requests at once, across both processes"
    );
    let status = second.terminate();
    assert!(status.success(), "{}", second.output());
    assert_eq!(sim.slots_in_use(), 0, "nothing held after a clean stop");
}

tillwire_testkit::both_backends!(
    licence_slot_survives_a_kill_9,
    licence_slot_survives_a_kill_9
);
