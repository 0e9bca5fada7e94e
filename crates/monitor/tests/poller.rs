//! The poller against the UKM 5 simulator over real HTTP, on SQLite and PostgreSQL: each kind of incident opens at
//! its threshold and closes after the hysteresis, with its domain events; maintenance mutes; acknowledging records
//! who; the simulator's rate checker sees no register asked twice within a second, with the default schedule, with
//! one configured too fast, with 200 registers, and while a second instance takes over.

use std::time::Duration;

use chrono::TimeDelta;
use tillwire_monitor::config::MonitorSettings;
use tillwire_monitor::schedule::Cadence;
use tillwire_monitor::sim::{Fault, Simulator};
use tillwire_monitor::storage::{
    Incident, IncidentFilter, Incidents, Maintenance, NewRegister, Registers,
};
use tillwire_monitor::{BaseUrl, Kind, RegisterId, RegisterName, poller};
use tillwire_platform::area::Shutdown;
use tillwire_platform::{Platform, Settings, Store, read};
use tillwire_testkit::{Backend, TestDatabase, eventually};

async fn platform(db: &TestDatabase) -> Platform {
    let store = Store::connect(db.url()).await.expect("connect");
    store
        .migrate(&[
            tillwire_platform::MIGRATIONS,
            tillwire_units::MIGRATIONS,
            tillwire_monitor::MIGRATIONS,
        ])
        .await
        .expect("migrate");
    let mut settings = Settings::for_database(db.url());
    settings.timezone = Some(chrono_tz::Europe::Moscow);
    let platform = Platform::new(store, settings);
    tillwire_units::Units(&platform.store)
        .ensure_default("Пиццерия")
        .await
        .expect("default unit");
    platform
}

/// A simulator of `count` registers on a loopback port, and its base address.
async fn simulator(count: u32) -> (Simulator, String) {
    let sim = Simulator::new(count, chrono_tz::Europe::Moscow);
    let base = sim.serve_on_loopback().await.expect("serve the simulator");
    (sim, base)
}

/// Registers `1..=count` of the simulator at `base`, in the default unit; their ids in order.
async fn add_registers(platform: &Platform, base: &str, count: u32) -> Vec<RegisterId> {
    let unit = tillwire_units::Units(&platform.store)
        .default_unit()
        .await
        .expect("units")
        .expect("a default unit");
    let registers = Registers(platform.store.clone());
    let mut ids = Vec::new();
    for n in 1..=count {
        let id = registers
            .create(&NewRegister {
                unit_id: unit.id,
                name: RegisterName::parse(&format!("Касса {n}")).expect("name"),
                url: BaseUrl::parse(&format!("{base}/r/{n}/")).expect("url"),
                zone: None,
                region: String::new(),
                enabled: true,
                overrides: Default::default(),
            })
            .await
            .expect("register");
        ids.push(id);
    }
    ids
}

/// A poller of `platform` with `cadence`, running until the returned sender says stop.
fn start_poller(
    platform: &Platform,
    cadence: Cadence,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (stop, shutdown) = Shutdown::channel();
    let settings = MonitorSettings {
        cadence,
        ..MonitorSettings::default()
    };
    let task = tokio::spawn(poller::run(platform.clone(), settings, shutdown));
    (stop, task)
}

/// As fast as the limit allows: every register is asked about once a second.
const FAST: Cadence = Cadence {
    status_every: Duration::from_secs(1),
    details_every: Duration::from_secs(2),
};

async fn incidents_of(platform: &Platform, register: RegisterId) -> Vec<Incident> {
    Incidents(platform.store.clone())
        .list(&IncidentFilter {
            register: Some(register),
            limit: 100,
            ..IncidentFilter::default()
        })
        .await
        .expect("incidents")
}

/// Waits until `register` has an incident of `kind` open (`open`) or closed (`!open`).
async fn wait_incident(platform: &Platform, register: RegisterId, kind: Kind, open: bool) {
    eventually(
        &format!(
            "{} of register {register} {}",
            kind.as_str(),
            if open { "open" } else { "closed" }
        ),
        || async {
            incidents_of(platform, register)
                .await
                .iter()
                .any(|i| i.kind == kind.as_str() && i.closed_ms.is_none() == open)
        },
    )
    .await;
}

async fn events(platform: &Platform) -> Vec<(String, serde_json::Value)> {
    let rows: Vec<(String, String)> = read!(&platform.store, db => sqlx::query_as(
        "SELECT kind, payload FROM domain_events ORDER BY id",
    )
    .fetch_all(db)
    .await)
    .expect("events");
    rows.into_iter()
        .map(|(kind, payload)| (kind, serde_json::from_str(&payload).expect("payload")))
        .collect()
}

fn assert_within_limit(sim: &Simulator) {
    let violations = sim.rate_violations();
    assert!(
        violations.is_empty(),
        "registers asked twice within a second: {violations:?}"
    );
}

async fn each_kind_opens_and_closes(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let platform = platform(&db).await;
    let (sim, base) = simulator(5).await;
    let ids = add_registers(&platform, &base, 5).await;
    let (stop, task) = start_poller(&platform, FAST);

    // Register 1 drops every connection, 2 is out of paper, 3 has 25 receipts for the OFD, 4 lost Vision, 5 has
    // had a receipt open without activity for 16 minutes.
    sim.set_fault(1, Fault::Drop);
    sim.update(2, |state, _| state.paper = false);
    sim.update(3, |state, _| state.ofd_pending = 25);
    sim.update(4, |state, _| state.vision = false);
    sim.update(5, |state, now| {
        state.receipt_activity = Some(now - TimeDelta::minutes(16))
    });
    let kinds = [
        Kind::Offline,
        Kind::NoPaper,
        Kind::OfdBacklog,
        Kind::VisionOffline,
        Kind::ReceiptStuck,
    ];
    for (id, kind) in ids.iter().zip(kinds) {
        wait_incident(&platform, *id, kind, true).await;
    }
    assert_eq!(
        incidents_of(&platform, ids[2]).await[0].detail,
        "25",
        "the backlog that tripped it"
    );

    sim.set_fault(1, Fault::None);
    sim.update(2, |state, _| state.paper = true);
    sim.update(3, |state, _| state.ofd_pending = 0);
    sim.update(4, |state, _| state.vision = true);
    sim.update(5, |state, now| {
        state.receipt_activity = None;
        state.last_close = now;
    });
    for (id, kind) in ids.iter().zip(kinds) {
        wait_incident(&platform, *id, kind, false).await;
    }
    let _ = stop.send(true);
    task.await.expect("poller").expect("poller ends cleanly");

    for (id, kind) in ids.iter().zip(kinds) {
        let incidents = incidents_of(&platform, *id).await;
        assert_eq!(
            incidents.len(),
            1,
            "one {} incident: {incidents:?}",
            kind.as_str()
        );
        assert!(incidents[0].duration_ms(0) > 0);
    }
    let events = events(&platform).await;
    for kind in kinds {
        for event in ["monitor.incident_opened", "monitor.incident_closed"] {
            let count = events
                .iter()
                .filter(|(k, payload)| k == event && payload["kind"] == kind.as_str())
                .count();
            assert_eq!(count, 1, "{event} of {}: {events:?}", kind.as_str());
        }
    }
    let closed = events
        .iter()
        .find(|(k, p)| k == "monitor.incident_closed" && p["kind"] == "offline")
        .expect("closed offline");
    assert_eq!(closed.1["register_name"], "Касса 1");
    assert!(closed.1["duration_ms"].as_i64().expect("duration") > 0);
    assert_within_limit(&sim);
}

#[tokio::test]
async fn each_kind_opens_and_closes_sqlite() {
    each_kind_opens_and_closes(Backend::Sqlite).await;
}

#[tokio::test]
async fn each_kind_opens_and_closes_postgres() {
    each_kind_opens_and_closes(Backend::Postgres).await;
}

async fn maintenance_mutes_and_acknowledge_records_who(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let platform = platform(&db).await;
    let (sim, base) = simulator(1).await;
    let ids = add_registers(&platform, &base, 1).await;
    let register = Registers(platform.store.clone())
        .get(ids[0])
        .await
        .expect("register");
    let now = tillwire_platform::now_ms();
    let window = Maintenance(platform.store.clone())
        .add(
            register.unit_id,
            None,
            now - 1000,
            now + 3_600_000,
            "замена кассы",
            "tech",
        )
        .await
        .expect("window");
    sim.set_fault(1, Fault::Drop);
    let (stop, task) = start_poller(&platform, FAST);
    // Well past the threshold of three polls, nothing opens.
    eventually("eight polls", || async { sim.requests(1) >= 8 }).await;
    assert!(incidents_of(&platform, ids[0]).await.is_empty());
    // The window ends: the next bad poll opens the incident (the poller rereads windows every few seconds).
    Maintenance(platform.store.clone())
        .end(window)
        .await
        .expect("end");
    wait_incident(&platform, ids[0], Kind::Offline, true).await;
    let incident = incidents_of(&platform, ids[0]).await.remove(0);
    // Reminders: two instances asking at once remind once; nothing is due again right after.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let incidents = Incidents(platform.store.clone());
    let every = Duration::from_millis(500);
    let (first, second) = tokio::join!(incidents.remind(every), incidents.remind(every));
    let reminded: Vec<i64> = first
        .expect("remind")
        .into_iter()
        .chain(second.expect("remind"))
        .map(|incident| incident.id)
        .collect();
    assert_eq!(reminded, vec![incident.id]);
    assert!(incidents.remind(every).await.expect("remind").is_empty());
    let acknowledged = Incidents(platform.store.clone())
        .acknowledge(incident.id, "ivanova", "Касса 1")
        .await
        .expect("acknowledge");
    assert_eq!(acknowledged.acknowledged_by.as_deref(), Some("ivanova"));
    // Acknowledging again keeps the first.
    let again = Incidents(platform.store.clone())
        .acknowledge(incident.id, "petrov", "Касса 1")
        .await
        .expect("acknowledge again");
    assert_eq!(again.acknowledged_by.as_deref(), Some("ivanova"));
    let _ = stop.send(true);
    task.await.expect("poller").expect("clean stop");
    let acknowledgements: Vec<_> = events(&platform)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "monitor.incident_acknowledged")
        .collect();
    assert_eq!(acknowledgements.len(), 1, "{acknowledgements:?}");
    assert_eq!(acknowledgements[0].1["acknowledged_by"], "ivanova");
    // Acknowledged, it is not reminded of again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(incidents.remind(every).await.expect("remind").is_empty());
    let reminders: Vec<_> = events(&platform)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "monitor.incident_reminded")
        .collect();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert_eq!(reminders[0].1["register_name"], "Касса 1");
    assert_within_limit(&sim);
}

#[tokio::test]
async fn maintenance_mutes_and_acknowledge_records_who_sqlite() {
    maintenance_mutes_and_acknowledge_records_who(Backend::Sqlite).await;
}

#[tokio::test]
async fn maintenance_mutes_and_acknowledge_records_who_postgres() {
    maintenance_mutes_and_acknowledge_records_who(Backend::Postgres).await;
}

/// Runs a poller with `cadence` over `count` registers for `span`; the simulator, to check.
async fn poll_for(backend: Backend, count: u32, cadence: Cadence, span: Duration) -> Simulator {
    let db = TestDatabase::new(backend).await;
    let platform = platform(&db).await;
    let (sim, base) = simulator(count).await;
    add_registers(&platform, &base, count).await;
    let (stop, task) = start_poller(&platform, cadence);
    tokio::time::sleep(span).await;
    let _ = stop.send(true);
    task.await.expect("poller").expect("clean stop");
    sim
}

#[tokio::test]
async fn the_default_schedule_keeps_the_limit_for_200_registers() {
    let sim = poll_for(
        Backend::Sqlite,
        200,
        Cadence::default(),
        Duration::from_secs(14),
    )
    .await;
    assert_within_limit(&sim);
    // Every register was asked (the jittered start spreads them over the first ten seconds).
    let asked = (1..=200).filter(|n| sim.requests(*n) > 0).count();
    assert_eq!(asked, 200);
}

#[tokio::test]
async fn a_schedule_configured_too_fast_is_stretched_to_the_limit() {
    let too_fast = Cadence {
        status_every: Duration::from_millis(100),
        details_every: Duration::from_millis(200),
    };
    assert!(too_fast.stretch().is_some());
    let sim = poll_for(Backend::Sqlite, 20, too_fast, Duration::from_secs(10)).await;
    assert_within_limit(&sim);
    // Stretched, not starved: each register is still asked about once a second after its first poll.
    for n in 1..=20 {
        assert!(
            sim.requests(n) >= 5,
            "register {n}: {} requests",
            sim.requests(n)
        );
    }
}

#[tokio::test]
async fn a_second_instance_takes_over_within_the_limit_postgres() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let first = platform(&db).await;
    // The second instance: its own store, event bus and leases, as another process would have.
    let second = platform(&db).await;
    let (sim, base) = simulator(10).await;
    add_registers(&first, &base, 10).await;
    let (stop_first, first_task) = start_poller(&first, FAST);
    eventually("the first instance polling", || async {
        (1..=10).all(|n| sim.requests(n) >= 2)
    })
    .await;
    let (stop_second, second_task) = start_poller(&second, FAST);
    // Both run for a while: one owner per register, so the limit holds.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_within_limit(&sim);
    // The first stops (and hands its leases back); the second goes on within the limit.
    let _ = stop_first.send(true);
    first_task
        .await
        .expect("first")
        .expect("first stops cleanly");
    let before: Vec<usize> = (1..=10).map(|n| sim.requests(n)).collect();
    eventually("the second instance polling every register", || async {
        (1..=10).all(|n| sim.requests(n) >= before[n as usize - 1] + 3)
    })
    .await;
    let _ = stop_second.send(true);
    second_task
        .await
        .expect("second")
        .expect("second stops cleanly");
    assert_within_limit(&sim);
}
