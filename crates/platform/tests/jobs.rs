//! The durable job queue on both backends: per-key FIFO, parallel keys, retries with backoff, `dead`, manual
//! retry, lease takeover after a crash, and a throughput smoke. No test asserts how long anything took; waits
//! are bounded only so that a hang fails instead of blocking the suite.

mod common;

use common::open;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tillwire_platform::jobs::{
    Attempt, BackgroundJob, EnqueueJob, Job, JobFailure, JobQueue, JobRegistry, JobRow, NewJob,
    backoff,
};
use tillwire_platform::{Store, now_ms};
use tokio::sync::{Barrier, oneshot};

const QUEUE: &str = Probe::QUEUE;
/// Upper bound for any wait in these tests: far beyond what the work needs, so only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(120);

fn new_job(key: &str, payload: serde_json::Value, max_attempts: i64) -> NewJob {
    NewJob {
        queue: QUEUE,
        key: key.to_owned(),
        payload,
        max_attempts,
    }
}

/// The test job type. The tests enqueue rows directly (`new_job`) to choose keys and attempt budgets freely.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Probe {
    #[serde(default)]
    seq: i64,
    #[serde(default)]
    fatal: bool,
    #[serde(default)]
    panic: bool,
}

impl BackgroundJob for Probe {
    const QUEUE: &'static str = "test";
    const MAX_ATTEMPTS: i64 = 3;

    fn key(&self) -> String {
        format!("probe:{}", self.seq)
    }

    /// Retries come at once, so a test of attempts need not wait out the real backoff.
    fn backoff(_attempt: i64) -> Duration {
        Duration::ZERO
    }
}

fn registry_for<F, Fut>(handler: F) -> Arc<JobRegistry>
where
    F: Fn(Probe, Attempt) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobFailure>> + Send + 'static,
{
    let mut registry = JobRegistry::default();
    registry.register(handler);
    Arc::new(registry)
}

/// A background runner that stops (and waits for its in-flight jobs) on `stop`.
struct Runner {
    stop: oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

fn spawn_runner(queue: &JobQueue, registry: Arc<JobRegistry>, concurrency: usize) -> Runner {
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(queue.clone().run(registry, concurrency, async move {
        let _ = stopped.await;
    }));
    Runner { stop, handle }
}

impl Runner {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.handle)
            .await
            .expect("the runner stops when asked")
            .expect("runner task");
    }
}

async fn row(queue: &JobQueue, id: i64) -> JobRow {
    queue
        .list(None, 100_000)
        .await
        .expect("list jobs")
        .into_iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("job {id} exists"))
}

/// Polls `check` until it holds; panics with `what` if it never does.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let waited = tokio::time::timeout(PATIENCE, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "gave up waiting for: {what}");
}

async fn state_is(queue: &JobQueue, id: i64, state: &str) -> bool {
    row(queue, id).await.state == state
}

async fn count_in(queue: &JobQueue, state: &str) -> i64 {
    queue
        .counts()
        .await
        .expect("counts")
        .into_iter()
        .find(|(s, _)| s == state)
        .map_or(0, |(_, n)| n)
}

/// Claims until something is handed out (a lease must run out first).
async fn claim_when_ready(queue: &JobQueue) -> Vec<Job> {
    let claimed = tokio::time::timeout(PATIENCE, async {
        loop {
            let claimed = queue.claim(10).await.expect("claim");
            if !claimed.is_empty() {
                return claimed;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    claimed.expect("a job is handed out")
}

/// Moves a pending job's next attempt to now, standing in for its backoff having passed.
async fn fast_forward(store: &Store, id: i64) {
    tillwire_platform::write!(store, db => sqlx::query("UPDATE jobs SET run_at_ms = 0 WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))
    .expect("fast-forward the backoff");
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mark {
    Start(String, i64),
    End(String, i64),
}

tillwire_testkit::both_backends!(per_key_fifo_and_parallel_keys, |db| async move {
    let store = open(&db).await;
    let queue = JobQueue::new(store.clone());
    let marks = Arc::new(Mutex::new(Vec::<Mark>::new()));
    let running = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let overlap = Arc::new(AtomicBool::new(false));
    // The first job of key a and the first of key b each wait for the other to have started: only a queue that
    // runs different keys in parallel gets both past this point.
    let rendezvous = Arc::new(Barrier::new(2));

    let handler = {
        let (marks, running, overlap, rendezvous) = (
            marks.clone(),
            running.clone(),
            overlap.clone(),
            rendezvous.clone(),
        );
        move |probe: Probe, attempt: Attempt| {
            let (marks, running, overlap, rendezvous) = (
                marks.clone(),
                running.clone(),
                overlap.clone(),
                rendezvous.clone(),
            );
            async move {
                let seq = probe.seq;
                let key = attempt.key.clone();
                {
                    let mut running = running.lock().expect("lock");
                    let now = running.entry(key.clone()).or_default();
                    *now += 1;
                    if *now > 1 {
                        overlap.store(true, Ordering::SeqCst);
                    }
                }
                marks
                    .lock()
                    .expect("lock")
                    .push(Mark::Start(key.clone(), seq));
                if seq == 0
                    && (key == "a" || key == "b")
                    && tokio::time::timeout(PATIENCE, rendezvous.wait())
                        .await
                        .is_err()
                {
                    return Err(JobFailure::Fatal(
                        "keys a and b never ran at the same time".into(),
                    ));
                }
                // Give a wrongly scheduled same-key job every chance to start meanwhile.
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(10)).await;
                marks
                    .lock()
                    .expect("lock")
                    .push(Mark::End(key.clone(), seq));
                *running
                    .lock()
                    .expect("lock")
                    .get_mut(&key)
                    .expect("counted") -= 1;
                Ok(())
            }
        }
    };

    let mut ids = Vec::new();
    for seq in 0..5 {
        for key in ["a", "b", "c"] {
            ids.push(
                queue
                    .enqueue(&new_job(key, json!({"seq": seq}), 1))
                    .await
                    .expect("enqueue"),
            );
        }
    }
    let runner = spawn_runner(&queue, registry_for(handler), 8);
    eventually("all 15 jobs done", || async {
        count_in(&queue, "done").await == 15
    })
    .await;
    runner.stop().await;

    for id in &ids {
        let job = row(&queue, *id).await;
        assert_eq!((job.state.as_str(), job.attempts), ("done", 1), "{job:?}");
    }
    assert!(
        !overlap.load(Ordering::SeqCst),
        "two jobs with one key ran at the same time"
    );
    let marks = marks.lock().expect("lock").clone();
    for key in ["a", "b", "c"] {
        let of_key: Vec<Mark> = marks
            .iter()
            .filter(|m| matches!(m, Mark::Start(k, _) | Mark::End(k, _) if k == key))
            .cloned()
            .collect();
        let expected: Vec<Mark> = (0..5)
            .flat_map(|seq| [Mark::Start(key.into(), seq), Mark::End(key.into(), seq)])
            .collect();
        assert_eq!(of_key, expected, "key {key} ran in order, one at a time");
    }
});

tillwire_testkit::both_backends!(failed_attempts_back_off_then_die, |db| async move {
    let store = open(&db).await;
    let queue = JobQueue::new(store.clone());
    let id = queue
        .enqueue(&new_job("printer-1", json!({"ticket": 1}), 3))
        .await
        .expect("enqueue");

    for attempt in 1..=3_i64 {
        let claimed = queue.claim(10).await.expect("claim");
        assert_eq!(claimed.len(), 1, "attempt {attempt}");
        let job = &claimed[0];
        assert_eq!((job.id, job.attempts, job.max_attempts), (id, attempt, 3));
        assert_eq!(row(&queue, id).await.state, "running");
        let before = now_ms();
        let state = queue
            .fail(
                job,
                &JobFailure::Retry(format!("printer offline ({attempt})")),
            )
            .await
            .expect("record failure");
        let after = now_ms();
        let stored = row(&queue, id).await;
        assert_eq!(stored.attempts, attempt);
        assert_eq!(
            stored.last_error.as_deref(),
            Some(format!("printer offline ({attempt})").as_str())
        );
        if attempt < 3 {
            assert_eq!(state.as_str(), "pending");
            assert_eq!(stored.state, "pending");
            // 2^attempt seconds plus up to 25 % jitter.
            let base = 1000 * 2_i64.pow(attempt as u32);
            assert!(
                stored.run_at_ms >= before + base && stored.run_at_ms <= after + base + base / 4,
                "attempt {attempt}: next run at {} (failed between {before} and {after})",
                stored.run_at_ms
            );
            fast_forward(&store, id).await;
        } else {
            assert_eq!(state.as_str(), "dead");
            assert_eq!(stored.state, "dead");
        }
    }
    // Dead jobs are not claimed again.
    assert!(queue.claim(10).await.expect("claim").is_empty());
    assert_eq!(queue.list(Some("dead"), 10).await.expect("list").len(), 1);

    // A manual retry puts it back with fresh attempts.
    assert!(queue.retry(id).await.expect("retry"));
    let revived = row(&queue, id).await;
    assert_eq!((revived.state.as_str(), revived.attempts), ("pending", 0));
    assert!(
        !queue.retry(id).await.expect("retry"),
        "only dead jobs can be retried"
    );
    let claimed = queue.claim(10).await.expect("claim");
    assert_eq!(
        claimed
            .iter()
            .map(|j| (j.id, j.attempts))
            .collect::<Vec<_>>(),
        [(id, 1)]
    );
    queue.complete(&claimed[0]).await.expect("complete");
    let done = row(&queue, id).await;
    assert_eq!(done.state, "done");
    assert_eq!(done.last_error, None);
    assert!(!queue.retry(id).await.expect("retry"));
    assert!(!queue.retry(id + 1000).await.expect("retry"));

    // A fatal failure is dead at once, whatever attempts are left.
    let fatal = queue
        .enqueue(&new_job("printer-1", json!({}), 5))
        .await
        .expect("enqueue");
    let claimed = queue.claim(10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let state = queue
        .fail(&claimed[0], &JobFailure::Fatal("bad payload".into()))
        .await
        .expect("fail");
    assert_eq!(state.as_str(), "dead");
    let stored = row(&queue, fatal).await;
    assert_eq!((stored.state.as_str(), stored.attempts), ("dead", 1));
});

tillwire_testkit::both_backends!(
    runner_retries_then_dead_then_manual_retry,
    |db| async move {
        let store = open(&db).await;
        let queue = JobQueue::new(store.clone());
        let calls = Arc::new(AtomicUsize::new(0));
        let healthy = Arc::new(AtomicBool::new(false));
        let handler = {
            let (calls, healthy) = (calls.clone(), healthy.clone());
            move |probe: Probe, attempt: Attempt| {
                let (calls, healthy) = (calls.clone(), healthy.clone());
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    if probe.fatal {
                        return Err(JobFailure::Fatal("cannot ever work".into()));
                    }
                    if healthy.load(Ordering::SeqCst) {
                        Ok(())
                    } else {
                        Err(JobFailure::Retry(format!(
                            "offline at attempt {}",
                            attempt.number
                        )))
                    }
                }
            }
        };
        let runner = spawn_runner(&queue, registry_for(handler), 4);
        let id = queue
            .enqueue(&new_job("k", json!({}), 2))
            .await
            .expect("enqueue");
        eventually("the failing job is dead", || async {
            state_is(&queue, id, "dead").await
        })
        .await;
        let dead = row(&queue, id).await;
        assert_eq!(dead.attempts, 2);
        assert_eq!(dead.last_error.as_deref(), Some("offline at attempt 2"));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one run per attempt");

        healthy.store(true, Ordering::SeqCst);
        assert!(queue.retry(id).await.expect("retry"));
        eventually("the retried job is done", || async {
            state_is(&queue, id, "done").await
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(row(&queue, id).await.attempts, 1);

        let fatal = queue
            .enqueue(&new_job("k2", json!({"fatal": true}), 5))
            .await
            .expect("enqueue");
        eventually("the fatal job is dead", || async {
            state_is(&queue, fatal, "dead").await
        })
        .await;
        assert_eq!(row(&queue, fatal).await.attempts, 1);

        // A job nobody handles is dead at once, not retried forever.
        let orphan = queue
            .enqueue(&NewJob {
                queue: "nobody",
                key: "k3".into(),
                payload: json!({}),
                max_attempts: 5,
            })
            .await
            .expect("enqueue");
        eventually("the unhandled job is dead", || async {
            state_is(&queue, orphan, "dead").await
        })
        .await;
        let orphan = row(&queue, orphan).await;
        assert!(
            orphan
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("no handler"),
            "{orphan:?}"
        );
        runner.stop().await;
    }
);

tillwire_testkit::both_backends!(
    crashed_workers_job_runs_again_after_its_lease,
    |db| async move {
        let store = open(&db).await;

        // While a crashed worker's lease lasts, its job is not handed out again, and the job's key stays blocked.
        let queue = JobQueue::new(store.clone());
        let held = queue
            .enqueue(&new_job("k", json!({"n": 1}), 3))
            .await
            .expect("enqueue");
        let behind = queue
            .enqueue(&new_job("k", json!({"n": 2}), 3))
            .await
            .expect("enqueue");
        let other = queue
            .enqueue(&new_job("other", json!({"n": 3}), 3))
            .await
            .expect("enqueue");
        let crashed = queue.claim(1).await.expect("claim");
        assert_eq!(crashed.iter().map(|j| j.id).collect::<Vec<_>>(), [held]);
        drop(crashed); // the worker dies without settling
        let claimed = queue.claim(10).await.expect("claim");
        assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), [other]);
        queue.complete(&claimed[0]).await.expect("complete");
        assert_eq!(row(&queue, held).await.state, "running");
        assert_eq!(row(&queue, behind).await.state, "pending");

        // With a short lease, the job held by a crashed worker runs again once the lease has expired, still before
        // the next job of its key.
        let queue = JobQueue::new(store.clone()).with_lease(Duration::from_millis(1500));
        let first = queue
            .enqueue(&new_job("lease", json!({"n": 1}), 3))
            .await
            .expect("enqueue");
        let second = queue
            .enqueue(&new_job("lease", json!({"n": 2}), 3))
            .await
            .expect("enqueue");
        let crashed = queue.claim(1).await.expect("claim");
        assert_eq!(
            crashed
                .iter()
                .map(|j| (j.id, j.attempts))
                .collect::<Vec<_>>(),
            [(first, 1)]
        );
        drop(crashed);

        let ran = Arc::new(Mutex::new(Vec::<(i64, i64)>::new()));
        let handler = {
            let ran = ran.clone();
            move |_: Probe, attempt: Attempt| {
                let ran = ran.clone();
                async move {
                    ran.lock()
                        .expect("lock")
                        .push((attempt.job_id, attempt.number));
                    Ok(())
                }
            }
        };
        let runner = spawn_runner(&queue, registry_for(handler), 4);
        eventually("both lease jobs done", || async {
            state_is(&queue, first, "done").await && state_is(&queue, second, "done").await
        })
        .await;
        runner.stop().await;
        let ran = ran.lock().expect("lock").clone();
        let first_runs: Vec<i64> = {
            let mut seen = Vec::new();
            for (id, _) in &ran {
                if !seen.contains(id) {
                    seen.push(*id);
                }
            }
            seen
        };
        assert_eq!(
            first_runs,
            [first, second],
            "the taken-over job still runs before its successor: {ran:?}"
        );
        let takeover = ran.iter().find(|(id, _)| *id == first).expect("ran");
        assert_eq!(
            takeover.1, 2,
            "the crashed claim counted as an attempt: {ran:?}"
        );

        // A lease is stored with its claim: the job claimed earlier for 60 seconds is still left alone, and so is
        // the job queued behind it.
        assert_eq!(row(&queue, held).await.state, "running");
        assert_eq!(row(&queue, behind).await.state, "pending");
    }
);

tillwire_testkit::both_backends!(
    a_panicking_job_is_a_failed_attempt_then_dead_and_its_key_moves_on,
    |db| async move {
        let store = open(&db).await;
        let queue = JobQueue::new(store.clone());
        let runs = Arc::new(Mutex::new(Vec::<(i64, i64)>::new()));
        let handler = {
            let runs = runs.clone();
            move |probe: Probe, attempt: Attempt| {
                let runs = runs.clone();
                async move {
                    runs.lock()
                        .expect("lock")
                        .push((attempt.job_id, attempt.number));
                    assert!(!probe.panic, "the printer driver exploded");
                    Ok(())
                }
            }
        };
        let poison = queue
            .enqueue(&new_job("printer:1", json!({"panic": true}), 3))
            .await
            .expect("enqueue");
        let garbled = queue
            .enqueue(&new_job("printer:1", json!("not a probe"), 3))
            .await
            .expect("enqueue");
        let behind = queue
            .enqueue(&new_job("printer:1", json!({"seq": 2}), 3))
            .await
            .expect("enqueue");
        let runner = spawn_runner(&queue, registry_for(handler), 4);
        eventually("the job behind the poison job is done", || async {
            state_is(&queue, behind, "done").await
        })
        .await;
        runner.stop().await;

        let dead = row(&queue, poison).await;
        assert_eq!(
            (dead.state.as_str(), dead.attempts),
            ("dead", 3),
            "{dead:?}"
        );
        let error = dead.last_error.unwrap_or_default();
        assert!(
            error.contains("panicked") && error.contains("the printer driver exploded"),
            "{error}"
        );
        let garbled = row(&queue, garbled).await;
        assert_eq!(
            (garbled.state.as_str(), garbled.attempts),
            ("dead", 1),
            "a payload that is not the job's type cannot work later either"
        );
        assert!(
            garbled
                .last_error
                .unwrap_or_default()
                .contains("bad payload")
        );
        let runs = runs.lock().expect("lock").clone();
        assert_eq!(
            runs,
            [(poison, 1), (poison, 2), (poison, 3), (behind, 1)],
            "one run per attempt, then the key's next job"
        );
    }
);

tillwire_testkit::both_backends!(
    a_job_whose_worker_died_during_its_last_attempt_is_dead,
    |db| async move {
        let store = open(&db).await;
        let queue = JobQueue::new(store.clone()).with_lease(Duration::from_millis(300));
        let doomed = queue
            .enqueue(&new_job("k", json!({}), 2))
            .await
            .expect("enqueue");
        let behind = queue
            .enqueue(&new_job("k", json!({"seq": 1}), 2))
            .await
            .expect("enqueue");
        // Two workers die in turn while holding it (the handler takes the process down, say).
        for attempt in 1..=2 {
            let claimed = claim_when_ready(&queue).await;
            assert_eq!(
                claimed
                    .iter()
                    .map(|j| (j.id, j.attempts))
                    .collect::<Vec<_>>(),
                [(doomed, attempt)]
            );
        }
        // Its attempts are spent: after the second lease it is dead, and the key's next job is handed out.
        let claimed = claim_when_ready(&queue).await;
        assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), [behind]);
        let dead = row(&queue, doomed).await;
        assert_eq!(
            (dead.state.as_str(), dead.attempts),
            ("dead", 2),
            "{dead:?}"
        );
        assert!(
            dead.last_error.unwrap_or_default().contains("lease"),
            "the reason is recorded"
        );
    }
);

tillwire_testkit::both_backends!(
    a_long_backlog_of_one_key_hides_no_other_key,
    |db| async move {
        let store = open(&db).await;
        let queue = JobQueue::new(store.clone());
        // More jobs of one key (a printer that was down) than a claim looks at first, then one of another key.
        let backlog: Vec<NewJob> = (0..600)
            .map(|seq| new_job("printer:1", json!({ "seq": seq }), 3))
            .collect();
        let ids = enqueue_in_one_transaction(&store, &backlog)
            .await
            .expect("enqueue the backlog");
        let other = queue
            .enqueue(&new_job("printer:2", json!({}), 3))
            .await
            .expect("enqueue");

        let claimed = queue.claim(10).await.expect("claim");
        assert_eq!(
            claimed.iter().map(|j| j.id).collect::<Vec<_>>(),
            [ids[0], other],
            "each key's head, and only its head"
        );
        assert!(
            queue.claim(10).await.expect("claim").is_empty(),
            "both keys are busy"
        );
        queue.complete(&claimed[0]).await.expect("complete");
        let next = queue.claim(10).await.expect("claim");
        assert_eq!(next.iter().map(|j| j.id).collect::<Vec<_>>(), [ids[1]]);
    }
);

async fn enqueue_in_one_transaction(
    store: &Store,
    jobs: &[NewJob],
) -> Result<Vec<i64>, sqlx::Error> {
    tillwire_platform::write_tx!(store, tx => {
        let mut ids = Vec::with_capacity(jobs.len());
        for job in jobs {
            ids.push((**tx).enqueue_job(job).await?);
        }
        Ok(ids)
    })
}

tillwire_testkit::both_backends!(thousand_jobs_smoke, |db| async move {
    let store = open(&db).await;
    let queue = JobQueue::new(store.clone());
    let jobs: Vec<NewJob> = (0..1000)
        .map(|i| new_job(&format!("k{}", i % 100), json!({"i": i}), 3))
        .collect();
    let ids = enqueue_in_one_transaction(&store, &jobs)
        .await
        .expect("enqueue 1000 jobs");
    assert_eq!(ids.len(), 1000);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1000);

    let ran = Arc::new(Mutex::new(Vec::<(String, i64)>::new()));
    let handler = {
        let ran = ran.clone();
        move |_: Probe, attempt: Attempt| {
            let ran = ran.clone();
            async move {
                ran.lock()
                    .expect("lock")
                    .push((attempt.key, attempt.job_id));
                Ok(())
            }
        }
    };
    let runner = spawn_runner(&queue, registry_for(handler), 16);
    queue.notify();
    eventually("1000 jobs done", || async {
        count_in(&queue, "done").await == 1000
    })
    .await;
    runner.stop().await;

    let ran = ran.lock().expect("lock").clone();
    let unique: HashSet<i64> = ran.iter().map(|(_, id)| *id).collect();
    assert_eq!(unique.len(), 1000, "every job ran");
    assert_eq!(unique, ids.iter().copied().collect());
    for state in ["pending", "running", "dead"] {
        assert_eq!(count_in(&queue, state).await, 0, "{state}");
    }
    // Within each key, jobs ran in the order they were enqueued.
    let mut last: HashMap<&str, i64> = HashMap::new();
    for (key, id) in &ran {
        if let Some(previous) = last.insert(key.as_str(), *id) {
            assert!(previous < *id, "key {key}: job {id} ran after {previous}");
        }
    }
    // Settled jobs can be purged.
    assert_eq!(queue.purge_done(now_ms() + 1).await.expect("purge"), 1000);
    assert!(queue.list(None, 10).await.expect("list").is_empty());
});

/// A short job claimed in runs of up to eight of one key.
#[derive(Debug, Serialize, Deserialize)]
struct Burst {
    seq: i64,
}

impl BackgroundJob for Burst {
    const QUEUE: &'static str = "test.burst";
    const MAX_ATTEMPTS: i64 = 3;
    const RUN_LENGTH: usize = 8;

    fn key(&self) -> String {
        "burst".into()
    }

    fn backoff(_attempt: i64) -> Duration {
        Duration::ZERO
    }
}

tillwire_testkit::both_backends!(runs_keep_order_and_stop_at_a_failure, |db| async move {
    let store = open(&db).await;
    let queue = JobQueue::new(store.clone());
    // 30 jobs of one key and 5 of another, interleaved.
    let mut jobs: Vec<NewJob> = Vec::new();
    for seq in 0..30 {
        jobs.push(Burst { seq }.to_job());
        if seq % 6 == 0 {
            jobs.push(NewJob {
                key: "other".into(),
                ..Burst { seq: 100 + seq }.to_job()
            });
        }
    }
    let ids = enqueue_in_one_transaction(&store, &jobs)
        .await
        .expect("enqueue");
    let ran = Arc::new(Mutex::new(Vec::<(String, i64, i64)>::new()));
    let failed_once = Arc::new(AtomicBool::new(false));
    let mut registry = JobRegistry::default();
    registry.register({
        let (ran, failed_once) = (ran.clone(), failed_once.clone());
        move |job: Burst, attempt: Attempt| {
            let (ran, failed_once) = (ran.clone(), failed_once.clone());
            async move {
                ran.lock()
                    .expect("lock")
                    .push((attempt.key.clone(), job.seq, attempt.number));
                // The 12th job of the busy key fails its first attempt, in the middle of a run.
                if job.seq == 11 && !failed_once.swap(true, Ordering::SeqCst) {
                    return Err(JobFailure::Retry("once".into()));
                }
                Ok(())
            }
        }
    });
    let runner = spawn_runner(&queue, Arc::new(registry), 4);
    queue.notify();
    eventually("every job done", || async {
        count_in(&queue, "done").await == ids.len() as i64
    })
    .await;
    runner.stop().await;

    let ran = ran.lock().expect("lock").clone();
    let busy: Vec<(i64, i64)> = ran
        .iter()
        .filter(|(key, _, _)| key == "burst")
        .map(|(_, seq, attempt)| (*seq, *attempt))
        .collect();
    // In order, the failed job retried before anything after it ran, and nothing else attempted twice.
    let mut expected: Vec<(i64, i64)> = (0..30).map(|seq| (seq, 1)).collect();
    expected.insert(12, (11, 2));
    assert_eq!(busy, expected);
    let other: Vec<i64> = ran
        .iter()
        .filter(|(key, _, _)| key == "other")
        .map(|(_, seq, _)| *seq)
        .collect();
    assert_eq!(other, [100, 106, 112, 118, 124]);
    // The jobs after the failure went back unattempted: each shows only the attempt that ran it.
    let mut attempts = Vec::new();
    for id in &ids {
        attempts.push(row(&queue, *id).await.attempts);
    }
    assert_eq!(
        attempts.iter().filter(|a| **a == 2).count(),
        1,
        "{attempts:?}"
    );
    assert!(attempts.iter().all(|a| *a == 1 || *a == 2), "{attempts:?}");
});

#[test]
fn backoff_doubles_with_jitter_and_is_capped() {
    for attempt in 1..=9 {
        let base = 1000 * 2_u128.pow(attempt as u32);
        let delay = backoff(attempt).as_millis();
        assert!(
            (base..=base + base / 4).contains(&delay),
            "attempt {attempt}: {delay} ms"
        );
    }
    for attempt in [10, 20, 1000, i64::MAX] {
        let delay = backoff(attempt).as_millis();
        assert!(
            (600_000..=750_000).contains(&delay),
            "attempt {attempt}: {delay} ms"
        );
    }
}

tillwire_testkit::both_backends!(
    a_fan_out_of_thousands_enqueues_in_one_transaction,
    |db| async move {
        let store = open(&db).await;
        // A notification to five thousand chats: more rows than one statement may bind on SQLite.
        let jobs: Vec<NewJob> = (0..5_000)
            .map(|n| NewJob {
                queue: "fan_out",
                key: format!("chat:{}", n % 1_000),
                payload: json!({ "n": n }),
                max_attempts: 3,
            })
            .collect();
        let enqueued: Result<(), sqlx::Error> =
            async { tillwire_platform::write_tx!(&store, tx => (**tx).enqueue_jobs(&jobs).await) }
                .await;
        enqueued.expect("enqueue");
        let payloads: Vec<String> = tillwire_platform::read!(&store, db => sqlx::query_scalar(
        "SELECT payload FROM jobs WHERE queue = 'fan_out' ORDER BY id",
    )
    .fetch_all(db)
    .await)
        .expect("jobs");
        let order: Vec<i64> = payloads
            .iter()
            .map(|p| {
                serde_json::from_str::<serde_json::Value>(p).expect("json")["n"]
                    .as_i64()
                    .expect("n")
            })
            .collect();
        assert_eq!(
            order,
            (0..5_000).collect::<Vec<i64>>(),
            "every job once, in order"
        );
    }
);
