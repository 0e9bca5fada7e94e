//! One task per register: read the sales after the cursor, deliver each in commit order, move the cursor only
//! once the receipt is acknowledged. A register that fails (unreachable, slow, refusing) backs off with jitter
//! on its own task and never delays the others.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{CashSource, Lookback, Timer};
use crate::cursors::Cursors;
use crate::reader::{Cursor, Register, SaleReceipt};
use crate::status::Reporter;

/// How the receiving side acknowledged a receipt. Each means "delivered": the cursor may move past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Registered {
        number: i64,
    },
    /// No production wares in it (ELQ's `0, "Nothing to register"`).
    NothingToRegister,
    /// Delivered before (the cursor was not saved in time); the import's de-duplication caught the repeat.
    AlreadyImported,
}

/// Where receipts go: the kitchen in process, or an import endpoint over HTTP. An `Err` is retried.
pub trait Sink: Send + Sync + 'static {
    fn deliver(&self, receipt: &SaleReceipt) -> impl Future<Output = Result<Ack, String>> + Send;
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub timer: Timer,
    pub lookback: Lookback,
    /// Sales read per query while backfilling.
    pub batch: u32,
    /// The zone the registers' clocks run in (`None`: this machine's).
    pub zone: Option<Tz>,
}

pub const DEFAULT_BATCH: u32 = 500;
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// The register's wall-clock time as an instant.
pub fn to_utc(local: NaiveDateTime, zone: Option<Tz>) -> DateTime<Utc> {
    let instant = match zone {
        Some(zone) => zone
            .from_local_datetime(&local)
            .earliest()
            .map(|t| t.to_utc()),
        None => chrono::Local
            .from_local_datetime(&local)
            .earliest()
            .map(|t| t.to_utc()),
    };
    // A wall-clock time skipped by a DST change: read it as UTC rather than fail.
    instant.unwrap_or_else(|| local.and_utc())
}

fn now_local(zone: Option<Tz>) -> NaiveDateTime {
    match zone {
        Some(zone) => Utc::now().with_timezone(&zone).naive_local(),
        None => chrono::Local::now().naive_local(),
    }
}

/// 1 s, 2 s, 4 s … up to 30 s, each scaled by a random 0.5–1.5 so registers that failed together spread out.
fn backoff(failures: u32) -> Duration {
    let base = Duration::from_secs(1 << failures.saturating_sub(1).min(5)).min(MAX_BACKOFF);
    base.mul_f64(rand::random_range(0.5..1.5))
}

/// Sleeps for `pause`; true when asked to stop meanwhile.
async fn sleep_or_stop(pause: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(pause) => {}
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
    *stop.borrow()
}

/// One register and where its sales go.
pub struct Task<S> {
    pub source: CashSource,
    /// The cursor's key: the register's name, prefixed by its unit in process.
    pub key: String,
    pub sink: S,
    pub cursors: Cursors,
    pub options: Options,
    pub reporter: Reporter,
}

/// The running tasks, each with its own stop signal. Stopping ends a task at once, even mid-pass: a receipt being
/// delivered is then either acknowledged or sent again next time (and de-duplicated), since the cursor only moves
/// after the acknowledgement.
#[derive(Default)]
pub struct Collectors {
    running: Vec<Running>,
}

struct Running {
    key: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Collectors {
    pub fn start<S: Sink>(tasks: Vec<Task<S>>) -> Self {
        let mut collectors = Collectors::default();
        for task in tasks {
            collectors.spawn(task);
        }
        collectors
    }

    pub(crate) fn spawn<S: Sink>(&mut self, task: Task<S>) {
        let (stop, stopped) = watch::channel(false);
        self.running.push(Running {
            key: task.key.clone(),
            stop,
            task: tokio::spawn(task.run(stopped)),
        });
    }

    /// Stops the tasks whose key is in `keys`; the others go on.
    pub(crate) async fn stop_keys(&mut self, keys: &[String]) {
        let (stopping, kept) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|running| keys.contains(&running.key));
        self.running = kept;
        finish(stopping).await;
    }

    pub async fn stop(self) {
        finish(self.running).await;
    }
}

async fn finish(running: Vec<Running>) {
    for task in &running {
        let _ = task.stop.send(true);
    }
    for task in running {
        let _ = task.task.await;
    }
}

/// Backfill progress: receipts done and remaining, and the rate, logged every few seconds.
struct Progress {
    started: Instant,
    logged: Instant,
    total: u64,
    done: u64,
}

impl<S: Sink> Task<S> {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let name = self.source.name();
        tracing::info!(register = %name, "collecting");
        let mut register = None;
        let mut cursor = None;
        let mut progress = None;
        let mut failures = 0;
        let mut stopping = stop.clone();
        while !*stop.borrow() {
            let outcome = tokio::select! {
                outcome = self.pass(&mut register, &mut cursor, &mut progress, &mut stop) => outcome,
                _ = stopping.wait_for(|stopped| *stopped) => break,
            };
            let pause = match outcome {
                Ok(true) => {
                    failures = 0;
                    continue;
                }
                Ok(false) => {
                    failures = 0;
                    self.options.timer.get()
                }
                Err(error) => {
                    failures += 1;
                    // Start over from a fresh connection and the stored cursor.
                    if let Some(register) = register.take() {
                        register.close().await;
                    }
                    cursor = None;
                    progress = None;
                    let pause = backoff(failures);
                    tracing::warn!(register = %name, %error, retry_in_ms = pause.as_millis() as u64, "collector pass failed");
                    self.reporter.failed(&error);
                    pause
                }
            };
            if sleep_or_stop(pause, &mut stop).await {
                break;
            }
        }
        if let Some(register) = register {
            register.close().await;
        }
        tracing::info!(register = %name, "collector stopped");
    }

    /// Reads one batch and delivers it; true when more sales are waiting.
    async fn pass(
        &self,
        register: &mut Option<Register>,
        cursor: &mut Option<Cursor>,
        progress: &mut Option<Progress>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, String> {
        let after = match *cursor {
            Some(after) => after,
            None => self
                .cursors
                .load(&self.key)
                .await
                .map_err(|e| format!("loading the cursor: {e}"))?
                .unwrap_or_else(|| {
                    Cursor::before(self.options.lookback.start(now_local(self.options.zone)))
                }),
        };
        *cursor = Some(after);
        let connection = match register {
            Some(connection) => connection,
            None => register.insert(
                Register::connect(&self.source)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        };
        let batch = match &self.source.sql {
            Some(sql) => connection.custom_batch(sql, after).await,
            None => connection.next_batch(after, self.options.batch).await,
        }
        .map_err(|e| e.to_string())?;
        if batch.more && progress.is_none() {
            let total = connection
                .remaining(after)
                .await
                .map_err(|e| e.to_string())?;
            let total = u64::try_from(total).unwrap_or(0);
            tracing::info!(register = %self.source.name(), remaining = total, from = %after, "backfilling");
            self.reporter.backlog(total);
            *progress = Some(Progress {
                started: Instant::now(),
                logged: Instant::now(),
                total,
                done: 0,
            });
        }
        for receipt in &batch.receipts {
            let Some(ack) = self.deliver(receipt, stop).await else {
                return Ok(false);
            };
            let lag_ms = receipt.position.map(|position| {
                (Utc::now() - to_utc(position.commit, self.options.zone)).num_milliseconds()
            });
            if let Some(position) = receipt.position {
                self.save(cursor, position).await?;
            }
            if let Ack::Registered { number } = ack {
                tracing::debug!(register = %self.source.name(), number, cash = receipt.cash_id, check = receipt.check_id, "registered receipt");
            }
            let shown = cursor.map(|c| c.to_string()).unwrap_or_default();
            self.reporter.delivered(&shown, lag_ms);
            if let Some(progress) = progress.as_mut() {
                progress.tick(&self.source.name());
            }
        }
        if let Some(skipped) = batch.skipped_up_to.filter(|s| Some(*s) > *cursor) {
            self.save(cursor, skipped).await?;
        }
        if !batch.more {
            if let Some(progress) = progress.take() {
                progress.finish(&self.source.name());
            }
            self.reporter.idle();
        }
        Ok(batch.more)
    }

    async fn save(&self, cursor: &mut Option<Cursor>, position: Cursor) -> Result<(), String> {
        self.cursors
            .save(&self.key, position)
            .await
            .map_err(|e| format!("saving the cursor: {e}"))?;
        *cursor = Some(position);
        Ok(())
    }

    /// Delivers one receipt, retrying with backoff until it is acknowledged; `None` when asked to stop.
    async fn deliver(
        &self,
        receipt: &SaleReceipt,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Ack> {
        let mut failures = 0;
        loop {
            match self.sink.deliver(receipt).await {
                Ok(ack) => return Some(ack),
                Err(error) => {
                    failures += 1;
                    let pause = backoff(failures);
                    tracing::warn!(register = %self.source.name(), cash = receipt.cash_id, shift = receipt.shift_id,
                        check = receipt.check_id, %error, retry_in_ms = pause.as_millis() as u64, "receipt not accepted");
                    self.reporter.failed(&error);
                    if sleep_or_stop(pause, stop).await {
                        return None;
                    }
                }
            }
        }
    }
}

impl Progress {
    fn tick(&mut self, register: &str) {
        self.done += 1;
        if self.logged.elapsed() >= PROGRESS_EVERY {
            self.logged = Instant::now();
            tracing::info!(
                register,
                done = self.done,
                remaining = self.total.saturating_sub(self.done),
                per_second = self.rate(),
                "backfill progress"
            );
        }
    }

    fn finish(self, register: &str) {
        tracing::info!(
            register,
            done = self.done,
            seconds = self.started.elapsed().as_secs_f64(),
            per_second = self.rate(),
            "backfill done, caught up"
        );
    }

    fn rate(&self) -> u64 {
        (self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3)) as u64
    }
}
