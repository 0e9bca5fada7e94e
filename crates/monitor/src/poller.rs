//! The poller: every enabled register polled by exactly one instance, within the vendor's limit.
//!
//! Registers are spread over [`SHARDS`] leases (`monitor/<n>`, by id), so thousands of registers cost a few dozen
//! lease renewals, not thousands. The instance holding a shard runs one task per register of it: the task follows
//! the register's [`Plan`], sends one request at a time with a short timeout over a shared keep-alive client,
//! feeds the answer to the register's [`Health`], and stores incidents at once (with their events). Everything
//! else a poll changes is kept in memory and flushed in batches every [`FLUSH_EVERY`], with one sample a minute.
//!
//! The limit holds through a handover: a task sends only while its shard's lease has time left, and a task
//! starting on a newly taken shard waits [`SAFE_GAP`] (and a jitter, so thousands of registers do not fire
//! together) before its first request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use rand::Rng;
use tillwire_platform::area::Shutdown;
use tillwire_platform::{Event, Platform, now_ms};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::MonitorSettings;
use crate::health::{Health, Outcome, Poll};
use crate::model::{BaseUrl, RegisterId, Thresholds};
use crate::parse::Answer;
use crate::schedule::{Cadence, Plan, Probe, SAFE_GAP};
use crate::storage::{Incidents, Maintenance, Registers, Sample, States, Subject, Window};

/// How many leases the registers are spread over.
pub const SHARDS: i64 = 64;
/// A shard's lease: held this long, renewed every [`RENEW_EVERY`].
const LEASE_TTL: Duration = Duration::from_secs(20);
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// A task stops sending this long before its shard's lease would run out (another instance may take it then).
const LEASE_MARGIN_MS: i64 = 3_000;
/// How often states and samples are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// A request that takes longer is "unreachable".
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long samples are kept.
const SAMPLE_RETENTION_MS: i64 = 48 * 3600 * 1000;
/// How often open incidents are checked for a reminder that is due.
const REMIND_CHECK_EVERY: Duration = Duration::from_secs(30);
/// The bus topic of a register's changed state, and of a request to weigh now.
pub const TOPIC_STATE: &str = "monitor.state";
pub const TOPIC_WEIGH: &str = "monitor.weigh";
/// The most a status answer's body is read.
const MAX_BODY: usize = 4096;

pub fn shard_of(id: RegisterId) -> i64 {
    id.0.rem_euclid(SHARDS)
}

fn lease_name(shard: i64) -> String {
    format!("monitor/{shard}")
}

/// What a register's task needs to know, replaced when the register or its thresholds change.
#[derive(Debug, Clone, PartialEq)]
struct Setup {
    subject: Subject,
    url: BaseUrl,
    zone: Tz,
    thresholds: Thresholds,
    unit_name: String,
}

/// What every register task shares.
struct Shared {
    platform: Platform,
    client: reqwest::Client,
    cadence: Cadence,
    /// Each shard's lease, held until (Unix ms; 0 when not held).
    held_until: Vec<AtomicI64>,
    /// Maintenance windows that have not ended.
    windows: Mutex<Vec<Window>>,
    /// States changed since the last flush, and samples to write.
    dirty: Mutex<HashMap<RegisterId, Health>>,
    samples: Mutex<Vec<Sample>>,
}

impl Shared {
    fn may_send(&self, register: RegisterId) -> bool {
        let until = self.held_until[shard_of(register) as usize].load(Ordering::Relaxed);
        until - LEASE_MARGIN_MS > now_ms()
    }

    fn muted(&self, unit_id: i64, register: RegisterId, at_ms: i64) -> bool {
        self.windows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|window| window.covers(unit_id, register, at_ms))
    }
}

/// A running register task.
struct Running {
    setup: watch::Sender<Setup>,
    weigh: mpsc::Sender<()>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The client every register task shares: keep-alive, short timeouts, no proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .no_proxy()
        .build()
        .expect("a client with only timeouts set builds")
}

/// Runs the poller until `shutdown`: leases, register tasks, flushes.
pub async fn run(
    platform: Platform,
    settings: MonitorSettings,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    let shared = Arc::new(Shared {
        client: client(),
        cadence: settings.cadence,
        held_until: (0..SHARDS).map(|_| AtomicI64::new(0)).collect(),
        windows: Mutex::new(Vec::new()),
        dirty: Mutex::new(HashMap::new()),
        samples: Mutex::new(Vec::new()),
        platform: platform.clone(),
    });
    if let Some(stretch) = settings.cadence.stretch() {
        tracing::warn!(
            stretch = format!("{stretch:.2}"),
            "the configured monitor cadence exceeds one request a second per register; it is stretched"
        );
    }
    let mut running: HashMap<RegisterId, Running> = HashMap::new();
    let mut bus = platform.events.subscribe();
    let mut renew = tokio::time::interval(RENEW_EVERY);
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut prune = tokio::time::interval(Duration::from_secs(3600));
    let mut remind = tokio::time::interval(REMIND_CHECK_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = renew.tick() => {
                if let Err(error) = supervise(&shared, &settings, &mut running).await {
                    tracing::warn!(%error, "monitor: could not refresh registers and leases; trying again");
                }
            }
            _ = flush.tick() => flush_states(&shared).await,
            _ = remind.tick(), if settings.remind_every.is_some() => {
                let every = settings.remind_every.unwrap_or(Duration::MAX);
                if let Err(error) = Incidents(platform.store.clone()).remind(every).await {
                    tracing::warn!(%error, "monitor: could not remind of open incidents; trying again");
                }
            }
            _ = prune.tick() => {
                if let Err(error) = States(platform.store.clone()).prune(now_ms() - SAMPLE_RETENTION_MS).await {
                    tracing::warn!(%error, "monitor: could not prune old samples");
                }
            }
            event = bus.recv() => match event {
                Ok(event) if event.topic == TOPIC_WEIGH => {
                    let id = event.payload.get("register").and_then(|v| v.as_i64()).map(RegisterId);
                    if let Some(running) = id.and_then(|id| running.get(&id)) {
                        let _ = running.weigh.try_send(());
                    }
                }
                Ok(event) if event.topic == crate::TOPIC_REGISTERS_CHANGED => {
                    renew.reset_immediately();
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    let stopping: Vec<_> = running.drain().map(|(_, r)| r).collect();
    for r in &stopping {
        let _ = r.stop.send(true);
    }
    for r in stopping {
        let _ = r.task.await;
    }
    flush_states(&shared).await;
    for shard in 0..SHARDS {
        if shared.held_until[shard as usize].load(Ordering::Relaxed) > 0 {
            let _ = platform.leases.release(&lease_name(shard)).await;
        }
    }
    Ok(())
}

/// Renews and takes shard leases, reads the registers, thresholds and windows, and starts, changes or stops
/// register tasks to match.
async fn supervise(
    shared: &Arc<Shared>,
    settings: &MonitorSettings,
    running: &mut HashMap<RegisterId, Running>,
) -> anyhow::Result<()> {
    let platform = &shared.platform;
    let mut taken = Vec::new();
    for shard in 0..SHARDS {
        let slot = &shared.held_until[shard as usize];
        let had = slot.load(Ordering::Relaxed) > 0;
        let asked_at = now_ms();
        match platform.leases.hold(&lease_name(shard), LEASE_TTL).await {
            Ok(true) => {
                slot.store(asked_at + LEASE_TTL.as_millis() as i64, Ordering::Relaxed);
                if !had {
                    taken.push(shard);
                }
            }
            Ok(false) => slot.store(0, Ordering::Relaxed),
            // Unsure: keep what is held until it runs out (the tasks stop sending before then).
            Err(error) => tracing::warn!(%error, shard, "monitor: could not renew a lease"),
        }
    }
    if !taken.is_empty() {
        tracing::info!(
            shards = taken.len(),
            holder = platform.leases.holder(),
            "monitor: shards taken"
        );
    }
    let store = &platform.store;
    let registers = Registers(store.clone()).list().await?;
    let unit_overrides = Registers(store.clone()).unit_overrides().await?;
    *shared.windows.lock().unwrap_or_else(|p| p.into_inner()) =
        Maintenance(store.clone()).current(now_ms()).await?;
    let units: HashMap<i64, String> = tillwire_units::Units(store)
        .list()
        .await?
        .into_iter()
        .map(|unit| (unit.id, unit.name))
        .collect();
    let fallback = platform.settings.timezone.unwrap_or(chrono_tz::UTC);
    let mut wanted: HashMap<RegisterId, Setup> = HashMap::new();
    for register in registers.iter().filter(|r| r.enabled) {
        let id = register.register_id();
        if !shared.may_send(id) {
            continue;
        }
        let Some(url) = register.base_url() else {
            continue;
        };
        let unit = unit_overrides
            .get(&register.unit_id)
            .copied()
            .unwrap_or_default();
        let setup = Setup {
            subject: Subject {
                register: id,
                register_name: register.name.clone(),
                unit_id: register.unit_id,
            },
            url,
            zone: register.zone(fallback),
            thresholds: register.overrides().over(unit.over(settings.thresholds)),
            unit_name: units.get(&register.unit_id).cloned().unwrap_or_default(),
        };
        wanted.insert(id, setup);
    }
    running.retain(|id, task| {
        let keep = wanted.contains_key(id);
        if !keep {
            let _ = task.stop.send(true);
        }
        keep
    });
    // New tasks go on from the stored state (another instance's, after a takeover).
    let mut stored = if wanted.keys().all(|id| running.contains_key(id)) {
        HashMap::new()
    } else {
        States(store.clone()).all().await?
    };
    for (id, setup) in wanted {
        match running.get(&id) {
            Some(task) => {
                task.setup.send_if_modified(|current| {
                    let changed = *current != setup;
                    *current = setup;
                    changed
                });
            }
            None => {
                let health = stored.remove(&id).unwrap_or_default();
                running.insert(id, start(shared.clone(), setup, health));
            }
        }
    }
    Ok(())
}

fn start(shared: Arc<Shared>, setup: Setup, health: Health) -> Running {
    let (setup_tx, setup_rx) = watch::channel(setup);
    let (weigh_tx, weigh_rx) = mpsc::channel(1);
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(poll_register(shared, setup_rx, weigh_rx, stop_rx, health));
    Running {
        setup: setup_tx,
        weigh: weigh_tx,
        stop: stop_tx,
        task,
    }
}

/// One register's loop: the next probe when its plan allows, one request, its meaning stored.
async fn poll_register(
    shared: Arc<Shared>,
    mut setup: watch::Receiver<Setup>,
    mut weigh: mpsc::Receiver<()>,
    mut stop: watch::Receiver<bool>,
    mut health: Health,
) {
    let jitter = shared
        .cadence
        .status_every
        .mul_f64(rand::rng().random_range(0.0..1.0));
    let mut plan = Plan::new(shared.cadence, Instant::now() + SAFE_GAP + jitter);
    let (unit_name, register_name) = {
        let current = setup.borrow();
        (
            current.unit_name.clone(),
            current.subject.register_name.clone(),
        )
    };
    let up_gauge = metrics::gauge!("tillwire_monitor_register_up", "unit" => unit_name.clone(), "register" => register_name.clone());
    let mut last_sample_minute = 0;
    loop {
        let (probe, at) = plan.next(health.busy == Some(true));
        tokio::select! {
            _ = stop.wait_for(|stopping| *stopping) => return,
            asked = weigh.recv() => {
                if asked.is_some() {
                    plan.ask(Probe::Weight, Instant::now());
                }
                continue;
            }
            _ = tokio::time::sleep_until(at) => {}
        }
        let current = setup.borrow_and_update().clone();
        if !shared.may_send(current.subject.register) {
            // The lease is running out: wait for the supervisor to renew it or stop this task.
            tokio::select! {
                _ = stop.wait_for(|stopping| *stopping) => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
            }
        }
        let sent = Instant::now();
        plan.sent(probe, sent);
        let outcome = ask(&shared.client, &current.url, probe).await;
        let latency = sent.elapsed();
        metrics::counter!("tillwire_monitor_requests_total", "outcome" => outcome.metric_label())
            .increment(1);
        metrics::histogram!("tillwire_monitor_poll_seconds").record(latency.as_secs_f64());
        let poll = Poll {
            probe,
            outcome,
            at: Utc::now(),
            latency_ms: latency.as_millis() as i64,
        };
        let before = health.clone();
        let subject = current.subject;
        let at_ms = poll.at.timestamp_millis();
        let muted = shared.muted(subject.unit_id, subject.register, at_ms);
        let changes = health.observe(&poll, current.zone, &current.thresholds, muted);
        up_gauge.set(if health.up == Some(true) { 1.0 } else { 0.0 });
        if !changes.is_empty() {
            match Incidents(shared.platform.store.clone())
                .apply(&subject, &health, &changes)
                .await
            {
                Ok(incidents) => {
                    for incident in &incidents {
                        let open = if incident.closed_ms.is_none() {
                            1.0
                        } else {
                            0.0
                        };
                        metrics::gauge!("tillwire_monitor_incident_open", "unit" => unit_name.clone(), "register" => register_name.clone(), "kind" => incident.kind.clone()).set(open);
                        tracing::info!(register = %subject.register, kind = %incident.kind, open = incident.closed_ms.is_none(), "monitor incident");
                    }
                }
                Err(error) => {
                    // Not stored: forget the decision, so the next poll (whose streak still counts) makes it again.
                    tracing::warn!(%error, register = %subject.register, "monitor: could not store an incident; retrying on the next poll");
                    health.open = before.open.clone();
                }
            }
        }
        let minute = at_ms / 60_000;
        if minute != last_sample_minute {
            last_sample_minute = minute;
            shared
                .samples
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Sample {
                    register: subject.register,
                    at_ms: minute * 60_000,
                    up: health.up == Some(true),
                    busy: health.busy,
                    ofd: health.ofd.map(|n| n as i64),
                    latency_ms: health.latency_ms,
                });
        }
        // A register going up or down, or an incident opening or closing, reorders the live pages, which read
        // the stored state: it is stored before they are told (an incident's state is stored with it already).
        let reorders = health.up != before.up || health.open != before.open;
        if reorders && changes.is_empty() {
            let store = States(shared.platform.store.clone());
            if let Err(error) = store.save(&[(subject.register, health.clone())], &[]).await {
                tracing::warn!(%error, register = %subject.register, "monitor: could not store a state change");
            }
        }
        shared
            .dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(subject.register, health.clone());
        if health.shows_differently(&before) {
            shared
                .platform
                .events
                .publish(Event {
                    topic: TOPIC_STATE.into(),
                    unit_id: subject.unit_id,
                    payload: serde_json::json!({ "register": subject.register.0, "health": &health }),
                })
                .await;
        }
    }
}

/// One request to one endpoint: its answer, or "unreachable".
async fn ask(client: &reqwest::Client, url: &BaseUrl, probe: Probe) -> Outcome {
    let Ok(mut response) = client.get(url.status(probe.endpoint())).send().await else {
        return Outcome::Unreachable;
    };
    let status = response.status().as_u16();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(MAX_BODY - body.len())]);
                if body.len() >= MAX_BODY {
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => return Outcome::Unreachable,
        }
    }
    Outcome::Answered(Answer::from_response(
        status,
        &String::from_utf8_lossy(&body),
    ))
}

/// Writes the states and samples gathered since the last flush.
async fn flush_states(shared: &Shared) {
    let states: Vec<(RegisterId, Health)> =
        std::mem::take(&mut *shared.dirty.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .collect();
    let samples = std::mem::take(&mut *shared.samples.lock().unwrap_or_else(|p| p.into_inner()));
    if states.is_empty() && samples.is_empty() {
        return;
    }
    if let Err(error) = States(shared.platform.store.clone())
        .save(&states, &samples)
        .await
    {
        tracing::warn!(%error, states = states.len(), "monitor: could not store register states");
        // Keep what was not written, unless a poll has newer state already.
        let mut dirty = shared.dirty.lock().unwrap_or_else(|p| p.into_inner());
        for (id, health) in states {
            dirty.entry(id).or_insert(health);
        }
    }
}
