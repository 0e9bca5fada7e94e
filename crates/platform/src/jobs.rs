//! The durable job queue: every side effect that must happen after a commit (a ticket, a message, an ERP line)
//! is a row in `jobs`, written in the same transaction as the change that caused it.
//!
//! Contract: per-key FIFO (a job waits while an older job with the same key is pending or running), attempts
//! with exponential backoff and jitter, a `dead` state after `max_attempts`, manual retry, and a lease so that
//! a job held by a crashed process runs again. Delivery is therefore at-least-once; handlers are idempotent.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use rand::Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, Semaphore, mpsc};
use tracing::Instrument;

use crate::store::Store;
use crate::{now_ms, read, write, write_tx};

/// How long a claimed job is ours before another worker may take it over (see [`JobQueue::with_lease`]).
/// Handlers with side effects that cannot be repeated safely must finish well within it.
pub const LEASE: Duration = Duration::from_secs(60);
const LEASE_MS: i64 = LEASE.as_millis() as i64;
const CLAIM_BATCH: i64 = 64;
/// Most outcomes recorded in one write.
const SETTLE_BATCH: usize = 512;
const IDLE_POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Running,
    Done,
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }
}

/// A job to enqueue. `key` orders jobs: those sharing a key run one at a time, oldest first.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: &'static str,
    pub key: String,
    pub payload: serde_json::Value,
    pub max_attempts: i64,
}

impl NewJob {
    /// The same job with another attempt budget (one a setting chooses, as printing's does).
    pub fn with_max_attempts(mut self, max_attempts: i64) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }
}

/// A kind of job: its queue name, its payload (the implementing type, stored as JSON), the key that orders it,
/// how many attempts it gets and how long it waits between them. The handler is registered separately
/// ([`JobRegistry::register`]), so the area that enqueues a job need not be the one that runs it.
pub trait BackgroundJob: Serialize + DeserializeOwned + Send + 'static {
    /// Stored with every job; renaming it strands the jobs already waiting.
    const QUEUE: &'static str;
    /// Attempts before the job is dead (a handler's panic and a lease lost to a crash count as attempts).
    const MAX_ATTEMPTS: i64;

    /// How many consecutive jobs of one key a worker may claim at once and run back to back. For short jobs
    /// (one key's backlog then drains at the speed of the handler, not of a claim per job); 1, the default, claims
    /// each job on its own. A run stops early once a quarter of the lease has passed, or at a failed job, and the
    /// rest of it goes back to the queue unattempted, in order.
    const RUN_LENGTH: usize = 1;

    /// Jobs sharing a key run one at a time, oldest first.
    fn key(&self) -> String;

    /// How long to wait after failed attempt number `attempt` (1-based).
    fn backoff(attempt: i64) -> Duration {
        backoff(attempt)
    }

    /// The row to enqueue for this job.
    fn to_job(&self) -> NewJob {
        NewJob {
            queue: Self::QUEUE,
            key: self.key(),
            // A derived `Serialize` of plain data cannot fail; `Null` would be refused by the handler as a bad
            // payload rather than lost.
            payload: serde_json::to_value(self).unwrap_or_default(),
            max_attempts: Self::MAX_ATTEMPTS,
        }
    }
}

/// Which attempt a handler is running, for its logs and messages.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub job_id: i64,
    pub key: String,
    /// 1 for the first attempt.
    pub number: i64,
    pub max_attempts: i64,
}

impl Attempt {
    /// Whether no attempt follows this one if it fails.
    pub fn is_last(&self) -> bool {
        self.number >= self.max_attempts
    }
}

type ErasedHandler = Arc<dyn Fn(Job) -> JobFuture + Send + Sync>;

struct Registered {
    handler: ErasedHandler,
    backoff: fn(i64) -> Duration,
    run_length: usize,
}

/// The handlers the runner knows, by job type. A job whose queue has no handler is dead at once.
#[derive(Default)]
pub struct JobRegistry {
    handlers: HashMap<&'static str, Registered>,
}

impl JobRegistry {
    /// Runs jobs of type `J` with `handler`. A payload that does not parse as `J` is dead at once.
    pub fn register<J, F, Fut>(&mut self, handler: F) -> &mut Self
    where
        J: BackgroundJob,
        F: Fn(J, Attempt) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobFailure>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased: ErasedHandler = Arc::new(move |job: Job| {
            let handler = handler.clone();
            Box::pin(async move {
                let payload: J = serde_json::from_str(&job.payload)
                    .map_err(|e| JobFailure::Fatal(format!("bad payload: {e}")))?;
                let attempt = Attempt {
                    job_id: job.id,
                    key: job.job_key,
                    number: job.attempts,
                    max_attempts: job.max_attempts,
                };
                handler(payload, attempt).await
            })
        });
        let registered = Registered {
            handler: erased,
            backoff: J::backoff,
            run_length: J::RUN_LENGTH.max(1),
        };
        if self.handlers.insert(J::QUEUE, registered).is_some() {
            tracing::warn!(
                queue = J::QUEUE,
                "a job type was registered twice; the last handler wins"
            );
        }
        self
    }

    /// How many consecutive jobs of a queue's key may be claimed together (1 for an unknown queue).
    fn run_length(&self, queue: &str) -> usize {
        self.handlers.get(queue).map_or(1, |r| r.run_length)
    }

    /// Runs one claimed job: its handler's outcome, a panic as a failed attempt, and when to try again.
    async fn run(&self, job: &Job) -> (Result<(), JobFailure>, Duration) {
        let Some(registered) = self.handlers.get(job.queue.as_str()) else {
            let failure = JobFailure::Fatal(format!("no handler for queue {}", job.queue));
            return (Err(failure), Duration::ZERO);
        };
        let outcome = match AssertUnwindSafe((registered.handler)(job.clone()))
            .catch_unwind()
            .await
        {
            Ok(outcome) => outcome,
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(job = job.id, queue = %job.queue, panic = %message, "job handler panicked");
                Err(JobFailure::Retry(format!(
                    "the handler panicked: {message}"
                )))
            }
        };
        let wait = match &outcome {
            Err(JobFailure::RetryIn(_, wait) | JobFailure::Defer(wait)) => *wait,
            _ => (registered.backoff)(job.attempts),
        };
        (outcome, wait)
    }
}

/// The text a panic was raised with, when it has one.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// A claimed job as a handler sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub queue: String,
    pub job_key: String,
    pub payload: String,
    pub attempts: i64,
    pub max_attempts: i64,
}

/// A job row for the jobs page.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub queue: String,
    pub job_key: String,
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at_ms: i64,
    pub last_error: Option<String>,
    pub created_ms: i64,
}

/// Why a handler gave up on this attempt.
#[derive(Debug)]
pub enum JobFailure {
    /// Try again later (printer offline, network down).
    Retry(String),
    /// Try again after this long, not after the usual backoff: the other side said when (Telegram's 429).
    RetryIn(String, Duration),
    /// Retrying cannot help (bad payload): go straight to `dead`.
    Fatal(String),
    /// Not an attempt: the handler may not start it yet (the ERP bridge's worker is parked). Back to `pending`
    /// after this long with its attempts unchanged, still ahead of its key's later jobs.
    Defer(Duration),
}

type JobFuture = Pin<Box<dyn Future<Output = Result<(), JobFailure>> + Send>>;

/// Enqueueing inside an open transaction, on either backend.
pub trait EnqueueJob {
    fn enqueue_job(
        &mut self,
        job: &NewJob,
    ) -> impl Future<Output = Result<i64, sqlx::Error>> + Send;

    /// Enqueues several jobs in one statement (a batch transaction pays one round trip, not one per job);
    /// per-key order follows the slice's order.
    fn enqueue_jobs(
        &mut self,
        jobs: &[NewJob],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

const INSERT_JOBS: &str = "INSERT INTO jobs (queue, job_key, payload, state, attempts, max_attempts, run_at_ms, created_ms, updated_ms) ";

/// The multi-row insert of `jobs`, all runnable from `now`.
fn insert_jobs<'a, DB: sqlx::Database>(jobs: &'a [NewJob], now: i64) -> sqlx::QueryBuilder<DB>
where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut insert = sqlx::QueryBuilder::new(INSERT_JOBS);
    insert.push_values(jobs, |mut row, job| {
        row.push_bind(job.queue)
            .push_bind(job.key.as_str())
            .push_bind(job.payload.to_string())
            .push_bind("pending")
            .push_bind(0_i64)
            .push_bind(job.max_attempts)
            .push_bind(now)
            .push_bind(now)
            .push_bind(now);
    });
    insert
}

/// Jobs per insert statement: nine bound values a row stays well under SQLite's 32,766 variables (a fan-out of
/// thousands of messages in one transaction hit it).
const ENQUEUE_CHUNK: usize = 1_000;

macro_rules! impl_enqueue {
    ($conn:ty) => {
        impl EnqueueJob for $conn {
            async fn enqueue_job(&mut self, job: &NewJob) -> Result<i64, sqlx::Error> {
                let mut insert = insert_jobs(std::slice::from_ref(job), now_ms());
                insert.push(" RETURNING id");
                let (id,): (i64,) = insert.build_query_as().fetch_one(&mut *self).await?;
                Ok(id)
            }

            async fn enqueue_jobs(&mut self, jobs: &[NewJob]) -> Result<(), sqlx::Error> {
                let now = now_ms();
                for chunk in jobs.chunks(ENQUEUE_CHUNK) {
                    insert_jobs(chunk, now).build().execute(&mut *self).await?;
                }
                Ok(())
            }
        }
    };
}
impl_enqueue!(sqlx::SqliteConnection);
impl_enqueue!(sqlx::PgConnection);

/// How many of the oldest open jobs a claim looks at first (running ones included).
const CLAIM_WINDOW: i64 = 256;
/// How often at most the claim walks every key when one key's backlog fills the window.
const SKIP_SCAN_EVERY_MS: i64 = 50;

/// Settles the attempts of `$2` (see [`attempts_json`]), running ones only, with `set`: matching the attempt
/// number means a worker whose job was taken over cannot settle the newer attempt. PostgreSQL gets a join on the
/// primary key (it planned `(id, attempts) IN (…)` as a scan of the whole table, finished jobs included); SQLite
/// probes the primary key for the `IN` list by itself and is slower with the join.
fn settle_attempts(backend: crate::Backend, set: &str) -> String {
    match backend {
        crate::Backend::Sqlite => format!(
            "UPDATE jobs SET {set} WHERE state = 'running' AND (id, attempts) IN
             (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($2))"
        ),
        crate::Backend::Postgres => format!(
            "UPDATE jobs SET {set} FROM (SELECT (value->>0)::bigint AS job_id, (value->>1)::bigint AS attempt
                                         FROM jsonb_array_elements($2::jsonb)) AS settled
             WHERE jobs.id = settled.job_id AND jobs.attempts = settled.attempt AND jobs.state = 'running'"
        ),
    }
}

/// Whether something throttled to once every `every_ms` may run at `now`; if so, `last` records it (one caller
/// wins when several ask at once).
fn due(last: &std::sync::atomic::AtomicI64, now: i64, every_ms: i64) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    let previous = last.load(Relaxed);
    now - previous >= every_ms
        && last
            .compare_exchange(previous, now, Relaxed, Relaxed)
            .is_ok()
}

/// The jobs' (id, attempt) pairs as one JSON text, so the statement is the same whatever their number.
fn attempts_json(jobs: &[Job]) -> String {
    let pairs: Vec<(i64, i64)> = jobs.iter().map(|job| (job.id, job.attempts)).collect();
    serde_json::to_string(&pairs).unwrap_or_default()
}

/// The oldest open (pending or running) jobs, oldest first: every key's head among them is its first row. SQLite
/// is told which index to walk: left to itself it sorted every pending job on each claim.
fn open_window(backend: crate::Backend) -> String {
    format!(
        "SELECT id, queue, job_key, state, run_at_ms, locked_until_ms, attempts, max_attempts FROM jobs {open}
         WHERE state IN ('pending', 'running') AND id >= $2 ORDER BY id LIMIT $1",
        open = index_hint(backend, "jobs_open"),
    )
}

/// Each key's head (its oldest open job), found key by key through `jobs_active_key` (a skip scan): for when the
/// window is mostly jobs queued behind their heads, such as one printer's long backlog.
fn key_heads(backend: crate::Backend) -> String {
    format!(
        "WITH RECURSIVE open_keys(job_key) AS (
            SELECT MIN(job_key) FROM jobs {keys} WHERE state IN ('pending', 'running')
            UNION ALL
            SELECT (SELECT MIN(j.job_key) FROM jobs j {keys}
                    WHERE j.state IN ('pending', 'running') AND j.job_key > open_keys.job_key)
            FROM open_keys WHERE open_keys.job_key IS NOT NULL
        )
        SELECT h.id, h.queue, h.job_key, h.state, h.run_at_ms, h.locked_until_ms, h.attempts, h.max_attempts
        FROM open_keys k JOIN jobs h ON h.id = (SELECT MIN(e.id) FROM jobs e {keys}
                                                WHERE e.job_key = k.job_key AND e.state IN ('pending', 'running'))
        WHERE k.job_key IS NOT NULL ORDER BY h.id",
        keys = index_hint(backend, "jobs_active_key"),
    )
}

/// SQLite's `INDEXED BY`; PostgreSQL plans these partial indexes by itself.
fn index_hint(backend: crate::Backend, index: &str) -> String {
    match backend {
        crate::Backend::Sqlite => format!("INDEXED BY {index}"),
        crate::Backend::Postgres => String::new(),
    }
}

/// A job is ready when it is pending and due, or held by a worker whose lease ran out with attempts left.
const READY: &str = "run_at_ms <= $1 AND (state = 'pending'
    OR (state = 'running' AND locked_until_ms < $1 AND attempts < max_attempts))";

/// An open job as the claim sees it.
#[derive(sqlx::FromRow)]
struct OpenJob {
    id: i64,
    queue: String,
    job_key: String,
    state: String,
    run_at_ms: i64,
    locked_until_ms: Option<i64>,
    attempts: i64,
    max_attempts: i64,
}

impl OpenJob {
    fn ready(&self, now: i64) -> bool {
        self.run_at_ms <= now
            && (self.state == "pending"
                || (self.locked_until_ms.is_some_and(|until| until < now)
                    && self.attempts < self.max_attempts))
    }
}

/// The runs to claim among `rows` (oldest first), at most `limit` runs: a key's first row is its head (every
/// older open job is in the window too); a ready head takes along the key's next rows while they are pending, due
/// and of its queue, up to the queue's run length. (id, key) pairs, oldest first.
fn ready_runs<'r>(
    rows: &'r [OpenJob],
    now: i64,
    limit: usize,
    run_length: &dyn Fn(&str) -> usize,
) -> Vec<(i64, &'r str)> {
    // Per key seen: how many more of its rows the run may take (0: none, the run ended or never began), and the
    // head's queue.
    let mut room: HashMap<&str, (usize, &str)> = HashMap::new();
    let mut runs = 0;
    let mut ids = Vec::new();
    for row in rows {
        match room.get_mut(row.job_key.as_str()) {
            None => {
                let take = row.ready(now) && runs < limit;
                if take {
                    runs += 1;
                    ids.push((row.id, row.job_key.as_str()));
                }
                let more = if take { run_length(&row.queue) - 1 } else { 0 };
                room.insert(row.job_key.as_str(), (more, row.queue.as_str()));
            }
            Some((more, queue)) if *more > 0 => {
                if row.state == "pending" && row.run_at_ms <= now && row.queue == *queue {
                    ids.push((row.id, row.job_key.as_str()));
                    *more -= 1;
                } else {
                    *more = 0;
                }
            }
            Some(_) => {}
        }
    }
    ids
}

/// Splits claimed jobs (oldest first) into runs: each key's jobs in order, keys in the order of their oldest job.
fn into_runs(jobs: Vec<Job>) -> Vec<Vec<Job>> {
    let mut runs: Vec<Vec<Job>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for job in jobs {
        match index.get(&job.job_key) {
            Some(&at) => runs[at].push(job),
            None => {
                index.insert(job.job_key.clone(), runs.len());
                runs.push(vec![job]);
            }
        }
    }
    runs
}

/// The queue: enqueue from anywhere, run registered handlers in the background.
#[derive(Clone)]
pub struct JobQueue {
    store: Store,
    wake: Arc<Notify>,
    lease_ms: i64,
    /// When abandoned jobs were last looked for: at most once a second, not on every claim.
    buried_ms: Arc<std::sync::atomic::AtomicI64>,
    /// The oldest open job's id at the last claim. The window starts there: below it are only finished jobs,
    /// whose index entries PostgreSQL keeps until vacuum and every scan from the start would walk again.
    /// Set back to 0 whenever abandoned jobs are looked for (each second) and when the window comes back empty.
    floor: Arc<std::sync::atomic::AtomicI64>,
    /// When every key was last walked for heads beyond the window.
    skip_scanned_ms: Arc<std::sync::atomic::AtomicI64>,
    /// How long a stopping runner waits for running handlers; `None`: until they finish.
    grace: Option<Duration>,
}

impl JobQueue {
    pub fn new(store: Store) -> Self {
        JobQueue {
            store,
            wake: Arc::new(Notify::new()),
            lease_ms: LEASE_MS,
            buried_ms: Arc::default(),
            floor: Arc::default(),
            skip_scanned_ms: Arc::default(),
            grace: None,
        }
    }

    /// The same queue with another lease length: how long a claimed job stays ours before a crashed worker's
    /// job is handed to another one. Must exceed the longest handler run, or jobs run twice.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease_ms = i64::try_from(lease.as_millis())
            .unwrap_or(i64::MAX)
            .clamp(1, i64::MAX / 2);
        self
    }

    /// The same queue whose runner, once told to stop, waits at most `grace` for running handlers; the leases of
    /// those still running then end at once, so a restarted (or another) instance takes them over without waiting
    /// out the lease.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Tells the runner new work is waiting (call after committing a transaction that enqueued jobs).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    pub async fn enqueue(&self, job: &NewJob) -> Result<i64, sqlx::Error> {
        let id: Result<i64, sqlx::Error> =
            write_tx!(&self.store, tx => (**tx).enqueue_job(job).await);
        self.notify();
        id
    }

    /// Claims ready jobs, oldest first, respecting per-key order: only a key's oldest open job can be claimed. A job
    /// whose worker died (its lease ran out) during its last attempt is dead instead: handing it out again would
    /// run it past its attempts, and a job that kills its worker every time would block its key for ever.
    ///
    /// The heads are found in the oldest [`CLAIM_WINDOW`] open jobs; only when that window is mostly jobs queued
    /// behind their heads (a long backlog of a few keys) are the keys walked one by one. Either way a claim costs
    /// about the window, not the backlog (a NOT EXISTS probe per pending row made one key's 18,000-job backlog
    /// drain at 8 jobs/s on PostgreSQL).
    pub async fn claim(&self, limit: i64) -> Result<Vec<Job>, sqlx::Error> {
        self.claim_runs(limit, &|_| 1).await
    }

    /// Claims up to `limit` runs: each a ready head and, up to its queue's `run_length`, the key's next jobs (see
    /// [`BackgroundJob::RUN_LENGTH`]). Oldest first.
    async fn claim_runs(
        &self,
        limit: i64,
        run_length: &(dyn Fn(&str) -> usize + Sync),
    ) -> Result<Vec<Job>, sqlx::Error> {
        let now = now_ms();
        self.bury_abandoned(now).await?;
        let limit = usize::try_from(limit).unwrap_or(0);
        let backend = self.store.backend();
        let floor = self.floor.load(std::sync::atomic::Ordering::Relaxed);
        let window: Vec<OpenJob> = read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(open_window(backend)))
            .bind(CLAIM_WINDOW)
            .bind(floor)
            .fetch_all(db)
            .await)?;
        self.floor.store(
            window.first().map_or(0, |oldest| oldest.id),
            std::sync::atomic::Ordering::Relaxed,
        );
        let mut wanted = ready_runs(&window, now, limit, run_length);
        let window_keys: HashSet<&str> = window.iter().map(|row| row.job_key.as_str()).collect();
        let runs = wanted
            .iter()
            .map(|(_, key)| *key)
            .collect::<HashSet<_>>()
            .len();
        // A full window of few keys is a backlog queued behind its heads; other keys' heads may lie beyond it. The
        // key walk costs more than the window, so it runs at most every SKIP_SCAN_EVERY_MS: meanwhile other keys
        // wait that long at most, and the backlog drains in runs.
        let beyond: Vec<OpenJob> = if runs < limit
            && window.len() as i64 == CLAIM_WINDOW
            && window_keys.len() < window.len() / 2
            && self.skip_scan_due(now)
        {
            read!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(key_heads(backend)))
                .fetch_all(db)
                .await)?
        } else {
            Vec::new()
        };
        wanted.extend(
            ready_runs(&beyond, now, limit, &|_| 1)
                .into_iter()
                .filter(|(_, key)| !window_keys.contains(key))
                .take(limit.saturating_sub(runs)),
        );
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        wanted.sort_unstable_by_key(|(id, _)| *id);
        let wanted_ids: Vec<i64> = wanted.iter().map(|(id, _)| *id).collect();
        // The ids travel as one JSON text so the statement is the same on both engines. Readiness is checked
        // again as the rows are updated: another instance may have claimed one meanwhile.
        let ids = serde_json::to_string(&wanted_ids).unwrap_or_default();
        // `= ANY(ARRAY(…))`: PostgreSQL planned `id IN (…)` as a scan of the whole table.
        let wanted_ids = match self.store.backend() {
            crate::Backend::Sqlite => "id IN (SELECT value FROM json_each($2))",
            crate::Backend::Postgres => {
                "id = ANY(ARRAY(SELECT jsonb_array_elements_text($2::jsonb)::bigint))"
            }
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until_ms = $1 + $3, updated_ms = $1
             WHERE {wanted_ids} AND {READY}
             RETURNING id, queue, job_key, payload, attempts, max_attempts"
        );
        let mut claimed: Vec<Job> = write!(&self.store, db => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(now)
            .bind(&ids)
            .bind(self.lease_ms)
            .fetch_all(db)
            .await)?;
        claimed.sort_by_key(|job| job.id);
        // Another instance may have taken a head meanwhile (its followers were still pending, so they were claimed
        // here): a run is kept only up to its first job not claimed, and the rest goes back unattempted.
        let got: HashSet<i64> = claimed.iter().map(|job| job.id).collect();
        let mut broken = HashSet::new();
        let mut keep = HashSet::new();
        for (id, key) in &wanted {
            if broken.contains(key) {
                continue;
            }
            if got.contains(id) {
                keep.insert(*id);
            } else {
                broken.insert(*key);
            }
        }
        let (kept, stray): (Vec<Job>, Vec<Job>) =
            claimed.into_iter().partition(|job| keep.contains(&job.id));
        self.release_all(&stray).await?;
        Ok(kept)
    }

    /// Whether the key walk may run now (at most every [`SKIP_SCAN_EVERY_MS`]).
    fn skip_scan_due(&self, now: i64) -> bool {
        due(&self.skip_scanned_ms, now, SKIP_SCAN_EVERY_MS)
    }

    /// Puts claimed jobs back unattempted (the rest of a run that stopped early, or a run whose head another
    /// instance took): pending again, the attempt their claim counted given back.
    async fn release_all(&self, jobs: &[Job]) -> Result<(), sqlx::Error> {
        self.settle_all(
            jobs,
            "state = 'pending', attempts = jobs.attempts - 1, updated_ms = $1",
        )
        .await
    }

    /// Applies `set` (with `$1` the time) to the given attempts of `jobs`, in one statement.
    async fn settle_all(&self, jobs: &[Job], set: &str) -> Result<(), sqlx::Error> {
        if jobs.is_empty() {
            return Ok(());
        }
        let sql = settle_attempts(self.store.backend(), set);
        write!(&self.store, db => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(now_ms())
            .bind(attempts_json(jobs))
            .execute(db)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn bury_abandoned(&self, now: i64) -> Result<(), sqlx::Error> {
        if !due(&self.buried_ms, now, 1000) {
            return Ok(());
        }
        // A job committed late with a lower id (PostgreSQL) is found by the next window from the start.
        self.floor.store(0, std::sync::atomic::Ordering::Relaxed);
        let buried: Vec<(i64, String)> = write!(&self.store, db => sqlx::query_as(
            "UPDATE jobs SET state = 'dead', updated_ms = $1,
             last_error = 'the worker stopped during the last attempt (its lease ran out)'
             WHERE state = 'running' AND locked_until_ms < $1 AND attempts >= max_attempts
             RETURNING id, queue",
        )
        .bind(now)
        .fetch_all(db)
        .await)?;
        for (id, queue) in buried {
            tracing::warn!(job = id, %queue, "job dead: its worker stopped during the last attempt");
            metrics::counter!("tillwire_jobs_total", "queue" => queue, "outcome" => "dead")
                .increment(1);
        }
        Ok(())
    }

    /// Marks a claimed job done. Like [`JobQueue::fail`], it only settles the attempt it was given: a worker
    /// whose lease expired and whose job was taken over cannot overwrite the newer attempt's outcome.
    pub async fn complete(&self, job: &Job) -> Result<(), sqlx::Error> {
        self.complete_all(std::slice::from_ref(job)).await
    }

    /// Marks claimed jobs done in one statement (the runner settles finished jobs in batches).
    async fn complete_all(&self, jobs: &[Job]) -> Result<(), sqlx::Error> {
        self.settle_all(jobs, "state = 'done', last_error = NULL, updated_ms = $1")
            .await
    }

    /// Records a failed attempt: back to `pending` after the default [`backoff`], or `dead` when attempts are
    /// spent.
    pub async fn fail(&self, job: &Job, failure: &JobFailure) -> Result<JobState, sqlx::Error> {
        self.fail_then_wait(job, failure, backoff(job.attempts))
            .await
    }

    /// Records a failed attempt whose retry waits `wait`.
    async fn fail_then_wait(
        &self,
        job: &Job,
        failure: &JobFailure,
        wait: Duration,
    ) -> Result<JobState, sqlx::Error> {
        let (message, fatal) = match failure {
            JobFailure::Retry(message) | JobFailure::RetryIn(message, _) => {
                (message.as_str(), false)
            }
            JobFailure::Fatal(message) => (message.as_str(), true),
            JobFailure::Defer(wait) => return self.defer(job, *wait).await,
        };
        let state = if fatal || job.attempts >= job.max_attempts {
            JobState::Dead
        } else {
            JobState::Pending
        };
        let now = now_ms();
        let run_at = now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2));
        write!(&self.store, db => sqlx::query(
            "UPDATE jobs SET state = $2, last_error = $3, run_at_ms = $4, updated_ms = $5
             WHERE id = $1 AND state = 'running' AND attempts = $6",
        )
        .bind(job.id)
        .bind(state.as_str())
        .bind(message)
        .bind(run_at)
        .bind(now)
        .bind(job.attempts)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(state)
    }

    /// Puts a claimed job back as not attempted, to run after `wait`.
    async fn defer(&self, job: &Job, wait: Duration) -> Result<JobState, sqlx::Error> {
        let now = now_ms();
        let run_at = now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2));
        write!(&self.store, db => sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = attempts - 1, run_at_ms = $2, updated_ms = $3
             WHERE id = $1 AND state = 'running' AND attempts = $4",
        )
        .bind(job.id)
        .bind(run_at)
        .bind(now)
        .bind(job.attempts)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(JobState::Pending)
    }

    /// The jobs of one key in one state, oldest first (a key's queue, or its dead letters).
    pub async fn of_key(&self, key: &str, state: JobState) -> Result<Vec<JobRow>, sqlx::Error> {
        read!(&self.store, db => sqlx::query_as::<_, JobRow>(
            "SELECT id, queue, job_key, state, attempts, max_attempts, run_at_ms, last_error, created_ms
             FROM jobs WHERE job_key = $1 AND state = $2 ORDER BY id",
        )
        .bind(key)
        .bind(state.as_str())
        .fetch_all(db)
        .await)
    }

    /// Deletes a job when it is of `key` and in `state` (dead letters; waiting jobs a caller withdrew); whether it
    /// did.
    pub async fn delete(&self, id: i64, key: &str, state: JobState) -> Result<bool, sqlx::Error> {
        let deleted = write!(&self.store, db => sqlx::query(
            "DELETE FROM jobs WHERE id = $1 AND job_key = $2 AND state = $3",
        )
        .bind(id)
        .bind(key)
        .bind(state.as_str())
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(deleted == 1)
    }

    /// Puts a dead job back in line with a fresh set of attempts.
    pub async fn retry(&self, id: i64) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let result = write!(&self.store, db => sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = 0, run_at_ms = $2, updated_ms = $2 WHERE id = $1 AND state = 'dead'",
        )
        .bind(id)
        .bind(now)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        self.notify();
        Ok(result == 1)
    }

    /// Makes the waiting jobs of one key runnable now instead of after their backoff (the printer is back).
    pub async fn run_now(&self, key: &str) -> Result<u64, sqlx::Error> {
        let now = now_ms();
        let woken = write!(&self.store, db => sqlx::query(
            "UPDATE jobs SET run_at_ms = $2, updated_ms = $2 WHERE job_key = $1 AND state = 'pending' AND run_at_ms > $2",
        )
        .bind(key)
        .bind(now)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        self.notify();
        Ok(woken)
    }

    /// Jobs waiting or running per key of the given queues: how far behind each key (e.g. each printer) is.
    pub async fn backlog(&self, queues: &[&str]) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let queues: Vec<String> = queues.iter().map(|q| (*q).to_owned()).collect();
        let queues = serde_json::to_string(&queues).unwrap_or_default();
        // The queue list travels as one JSON text so the query is the same on both engines.
        let sql = match self.store.backend() {
            crate::Backend::Sqlite => {
                "SELECT job_key, COUNT(*) FROM jobs WHERE state IN ('pending', 'running')
                 AND queue IN (SELECT value FROM json_each($1)) GROUP BY job_key"
            }
            crate::Backend::Postgres => {
                "SELECT job_key, COUNT(*) FROM jobs WHERE state IN ('pending', 'running')
                 AND queue IN (SELECT jsonb_array_elements_text($1::jsonb)) GROUP BY job_key"
            }
        };
        read!(&self.store, db => sqlx::query_as(sql).bind(&queues).fetch_all(db).await)
    }

    /// The most recent jobs, optionally only those in one state.
    pub async fn list(&self, state: Option<&str>, limit: i64) -> Result<Vec<JobRow>, sqlx::Error> {
        read!(&self.store, db => sqlx::query_as(
            "SELECT id, queue, job_key, state, attempts, max_attempts, run_at_ms, last_error, created_ms FROM jobs
             WHERE ($1 IS NULL OR state = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(state)
        .bind(limit)
        .fetch_all(db)
        .await)
    }

    /// Counts per state, for `/metrics` and the jobs page.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        read!(&self.store, db => sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
            .fetch_all(db)
            .await)
    }

    /// Deletes finished jobs older than `before_ms`.
    pub async fn purge_done(&self, before_ms: i64) -> Result<u64, sqlx::Error> {
        write!(&self.store, db => sqlx::query("DELETE FROM jobs WHERE state = 'done' AND updated_ms < $1")
            .bind(before_ms)
            .execute(db)
            .await
            .map(|r| r.rows_affected()))
    }

    /// Runs jobs with the registered handlers until `shutdown` resolves; in-flight jobs finish first.
    pub async fn run(
        self,
        registry: Arc<JobRegistry>,
        concurrency: usize,
        shutdown: impl Future<Output = ()>,
    ) {
        let permits = Arc::new(Semaphore::new(concurrency));
        // Outcomes go to one settling task, which records whatever has finished in one write: a write per job
        // capped a no-op queue at about a thousand jobs a second on SQLite.
        let (outcomes, settling) = mpsc::unbounded_channel();
        let settler = tokio::spawn(self.clone().settle(settling));
        let running: Arc<Running> = Arc::default();
        tokio::pin!(shutdown);
        loop {
            let free = permits.available_permits() as i64;
            let claimed = if free == 0 {
                Ok(Vec::new())
            } else {
                let registry = registry.clone();
                self.claim_runs(free.min(CLAIM_BATCH), &move |queue| {
                    registry.run_length(queue)
                })
                .await
            };
            let jobs = claimed.unwrap_or_else(|error| {
                tracing::warn!(%error, "could not claim jobs");
                Vec::new()
            });
            let idle = jobs.is_empty();
            for run in into_runs(jobs) {
                let permit = permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore open");
                let registry = registry.clone();
                let outcomes = outcomes.clone();
                let budget = Duration::from_millis(u64::try_from(self.lease_ms / 4).unwrap_or(0));
                let running = running.clone();
                tokio::spawn(async move {
                    run_in_order(&registry, run, budget, &outcomes, &running).await;
                    drop(permit);
                });
            }
            if idle {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
        }
        // Runs start no further job; wait for running handlers (up to the grace period), then for their outcomes
        // to be recorded.
        running
            .stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let finished = permits.acquire_many(concurrency as u32);
        let in_time = match self.grace {
            Some(grace) => tokio::time::timeout(grace, finished).await.is_ok(),
            None => finished.await.is_ok(),
        };
        if !in_time {
            let late: Vec<Job> = running
                .jobs
                .lock()
                .map(|jobs| jobs.values().cloned().collect())
                .unwrap_or_default();
            tracing::warn!(
                jobs = late.len(),
                "jobs still running at the end of the grace period; their leases end now"
            );
            if let Err(error) = self.end_leases(&late).await {
                tracing::error!(%error, "could not end the leases of the jobs still running");
            }
        }
        // Everything sent before this is recorded; what a late handler sends after is not (it runs again).
        let _ = outcomes.send(None);
        drop(outcomes);
        let _ = settler.await;
    }

    /// Ends the leases of jobs a stopping runner leaves running: they count the attempt and can be claimed at once.
    async fn end_leases(&self, jobs: &[Job]) -> Result<(), sqlx::Error> {
        self.settle_all(jobs, "locked_until_ms = $1 - 1, updated_ms = $1")
            .await
    }

    /// Records outcomes as they come, all that are waiting at once; then the keys' next jobs may be claimed.
    async fn settle(self, mut outcomes: mpsc::UnboundedReceiver<Option<Outcome>>) {
        let mut received = Vec::new();
        let mut closing = false;
        while !closing && outcomes.recv_many(&mut received, SETTLE_BATCH).await > 0 {
            // `None` closes: the runner stopped and what came before it is all that is recorded.
            let mut batch: Vec<Outcome> = Vec::with_capacity(received.len());
            for outcome in received.drain(..) {
                match outcome {
                    Some(outcome) if !closing => batch.push(outcome),
                    _ => closing = true,
                }
            }
            let (released, attempted): (Vec<Outcome>, Vec<Outcome>) =
                batch.drain(..).partition(|o| o.outcome.is_none());
            let (done, failed): (Vec<Outcome>, Vec<Outcome>) = attempted
                .into_iter()
                .partition(|o| matches!(o.outcome, Some(Ok(()))));
            let done: Vec<Job> = done.into_iter().map(|o| o.job).collect();
            match self.complete_all(&done).await {
                Ok(()) => {
                    for job in &done {
                        metrics::counter!("tillwire_jobs_total", "queue" => job.queue.clone(), "outcome" => "done")
                            .increment(1);
                    }
                }
                // The leases run out and the jobs run again: at-least-once.
                Err(error) => {
                    tracing::error!(%error, jobs = done.len(), "could not record finished jobs")
                }
            }
            for Outcome { job, outcome, wait } in failed {
                let Some(Err(failure)) = outcome else {
                    continue;
                };
                match self.fail_then_wait(&job, &failure, wait).await {
                    Ok(_) if matches!(failure, JobFailure::Defer(_)) => {}
                    Ok(state) => {
                        tracing::warn!(job = job.id, queue = %job.queue, attempt = job.attempts, state = state.as_str(), ?failure, "job failed");
                        metrics::counter!("tillwire_jobs_total", "queue" => job.queue.clone(), "outcome" => state.as_str())
                            .increment(1);
                    }
                    Err(error) => {
                        tracing::error!(%error, job = job.id, "could not record a job's outcome");
                    }
                }
            }
            // After the failed job of their run is recorded, so none of them can be claimed before it.
            let released: Vec<Job> = released.into_iter().map(|o| o.job).collect();
            if let Err(error) = self.release_all(&released).await {
                tracing::error!(%error, jobs = released.len(), "could not put back the rest of a run");
            }
            // Permits are free and the keys' next jobs may be ready: look again now, not after the idle poll.
            self.notify();
        }
    }
}

/// A finished attempt on its way to be recorded; `None`: not attempted, to go back to the queue.
struct Outcome {
    job: Job,
    outcome: Option<Result<(), JobFailure>>,
    wait: Duration,
}

/// What the runner's tasks share: the jobs handlers are running now, by id (what a runner stopping at its grace
/// period leaves behind), and whether it is stopping (a run then starts no further job).
#[derive(Default)]
struct Running {
    jobs: std::sync::Mutex<HashMap<i64, Job>>,
    stopping: std::sync::atomic::AtomicBool,
}

/// Runs one key's claimed jobs in order. After a failure, or once `budget` has passed (the lease must outlast
/// the run's last job), the rest goes back unattempted: a later job of the key never runs before an earlier one
/// succeeded.
async fn run_in_order(
    registry: &JobRegistry,
    run: Vec<Job>,
    budget: Duration,
    outcomes: &mpsc::UnboundedSender<Option<Outcome>>,
    running: &Running,
) {
    let started = std::time::Instant::now();
    let mut jobs = run.into_iter();
    while let Some(job) = jobs.next() {
        if let Ok(mut now_running) = running.jobs.lock() {
            now_running.insert(job.id, job.clone());
        }
        let span = tracing::info_span!("job", id = job.id, queue = %job.queue, key = %job.job_key, attempt = job.attempts);
        let (outcome, wait) = registry.run(&job).instrument(span).await;
        if let Ok(mut now_running) = running.jobs.lock() {
            now_running.remove(&job.id);
        }
        let stop = outcome.is_err()
            || started.elapsed() >= budget
            || running.stopping.load(std::sync::atomic::Ordering::Relaxed);
        let _ = outcomes.send(Some(Outcome {
            job,
            outcome: Some(outcome),
            wait,
        }));
        if stop {
            for job in jobs.by_ref() {
                let _ = outcomes.send(Some(Outcome {
                    job,
                    outcome: None,
                    wait: Duration::ZERO,
                }));
            }
        }
    }
}

/// 2^attempt seconds, capped at ten minutes, with up to 25 % jitter so a recovering printer is not stampeded.
pub fn backoff(attempt: i64) -> Duration {
    let base = 2u64.saturating_pow(attempt.clamp(0, 20) as u32).min(600);
    let jitter = rand::rng().random_range(0..=base * 250);
    Duration::from_millis(base * 1000 + jitter)
}
