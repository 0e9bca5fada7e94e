//! One task per register: read the sales after the cursor, deliver each in commit order, move the cursor only
//! once the receipt is acknowledged. A register that fails (unreachable, slow, refusing) backs off with jitter
//! on its own task and never delays the others. Each pass also re-reads the overlap window behind the cursor and
//! sends what was not sent (a clock stepped back, a sale committed late); a receipt refused for good is parked.
//! Every instance runs every register's task, but only the holder of the register's lease reads it.

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use tillwire_platform::Leases;

use crate::alerts::Alerts;
use crate::config::{CashSource, Lookback, Overlap, Timer};
use crate::cursors::Cursors;
use crate::parked::Parked;
use crate::reader::{Batch, Cursor, Register, SaleReceipt};
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

/// Why a receipt was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Worth retrying as it is: the receiver is down, busy, or misconfigured in a way an admin fixes there.
    Transient(String),
    /// Sending it again as it is cannot help (an unknown register, a body the receiver cannot read): parked.
    Permanent(String),
}

/// Where receipts go: the kitchen in process, or an import endpoint over HTTP.
pub trait Sink: Send + Sync + 'static {
    fn deliver(&self, receipt: &SaleReceipt) -> impl Future<Output = Result<Ack, Refusal>> + Send;
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub timer: Timer,
    pub lookback: Lookback,
    /// Sales read per query while backfilling.
    pub batch: u32,
    /// The zone the registers' clocks run in (`None`: this machine's).
    pub zone: Option<Tz>,
    /// How far behind the cursor each pass looks again for sales it has not sent.
    pub overlap: Overlap,
}

pub const DEFAULT_BATCH: u32 = 500;
/// How long a register stays with the instance reading it without a renewal; another instance takes it over
/// after that, so within `LEASE_TTL + LEASE_RENEW` of the holder dying.
const LEASE_TTL: Duration = Duration::from_secs(20);
const LEASE_RENEW: Duration = Duration::from_secs(5);
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
    /// Where receipts refused for good are set aside: the same database as the cursors.
    pub parked: Parked,
    /// Who reads the register: only the instance holding its lease.
    pub leases: Leases,
    pub options: Options,
    pub reporter: Reporter,
    /// Whom to tell when the register is not collected for a while (in process, with alerts on).
    pub alerts: Option<Alerts>,
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
    fn lease(&self) -> String {
        format!("collector: {}", self.key)
    }

    /// Waits for the register's lease, reads while holding it, and gives it up on a clean stop.
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let name = self.source.name();
        let lease = self.lease();
        tracing::info!(register = %name, holder = self.leases.holder(), "collecting");
        loop {
            match self.leases.hold(&lease, LEASE_TTL).await {
                Ok(true) => {}
                Ok(false) => {
                    let holder = self.leases.holder_of(&lease).await.ok().flatten();
                    self.reporter.standby(holder.as_deref().unwrap_or("?"));
                    if sleep_or_stop(LEASE_RENEW, &mut stop).await {
                        break;
                    }
                    continue;
                }
                Err(error) => {
                    self.reporter
                        .failed(&format!("taking the register's lease: {error}"));
                    if sleep_or_stop(backoff(3), &mut stop).await {
                        break;
                    }
                    continue;
                }
            }
            tracing::info!(register = %name, holder = self.leases.holder(), "reading the register");
            self.reporter.owned();
            let lost = tokio::select! {
                _ = self.work(&mut stop) => false,
                _ = self.keep_lease(&lease) => true,
            };
            if !lost {
                break;
            }
            tracing::warn!(register = %name, "lost the register's lease; another instance reads it now");
        }
        if let Err(error) = self.leases.release(&lease).await {
            tracing::warn!(register = %name, %error, "giving up the register's lease failed");
        }
        tracing::info!(register = %name, "collector stopped");
    }

    /// Renews the lease until it cannot: another instance took it, or the database did not answer for so long
    /// that the lease may have run out.
    async fn keep_lease(&self, lease: &str) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(LEASE_RENEW).await;
            match self.leases.hold(lease, LEASE_TTL).await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(register = %self.source.name(), %error, "renewing the register's lease failed");
                    if renewed.elapsed() + LEASE_RENEW >= LEASE_TTL {
                        return;
                    }
                }
            }
        }
    }

    /// Passes and pauses until asked to stop.
    async fn work(&self, stop: &mut watch::Receiver<bool>) {
        let name = self.source.name();
        let mut register = None;
        let mut cursor = None;
        let mut progress = None;
        let mut failures = 0;
        // Since when passes fail (Unix ms), and whether the alert about it is out (as stored: an earlier holder
        // may have raised it).
        let mut failing_since = None;
        let mut alerted = match &self.alerts {
            Some(alerts) => alerts.raised(&self.key).await.unwrap_or(false),
            None => false,
        };
        let mut stopping = stop.clone();
        while !*stop.borrow() {
            let outcome = tokio::select! {
                outcome = self.pass(&mut register, &mut cursor, &mut progress, stop) => outcome,
                _ = stopping.wait_for(|stopped| *stopped) => break,
            };
            if outcome.is_ok() {
                failing_since = None;
                if alerted && let Some(alerts) = &self.alerts {
                    match alerts.end(&self.key, &name).await {
                        Ok(()) => alerted = false,
                        Err(error) => {
                            tracing::warn!(register = %name, %error, "could not end the collector alert")
                        }
                    }
                }
            }
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
                    let since = *failing_since.get_or_insert_with(tillwire_platform::now_ms);
                    if let Some(alerts) = &self.alerts
                        && !alerted
                        && tillwire_platform::now_ms() - since >= alerts.after.as_millis() as i64
                    {
                        match alerts.raise(&self.key, &name, since, &error).await {
                            Ok(()) => alerted = true,
                            Err(error) => {
                                tracing::warn!(register = %name, %error, "could not raise the collector alert")
                            }
                        }
                    }
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
            if sleep_or_stop(pause, stop).await {
                break;
            }
        }
        if let Some(register) = register {
            register.close().await;
        }
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
        if !self.send(&batch, cursor, progress, stop).await? {
            return Ok(false);
        }
        if !batch.more {
            if let Some(progress) = progress.take() {
                progress.finish(&self.source.name());
            }
            if self.source.sql.is_none() {
                self.reread_overlap(connection, cursor, stop).await?;
            }
            self.retry_parked(cursor, stop).await?;
            self.reporter.idle();
        }
        Ok(batch.more)
    }

    /// Delivers a batch in order, moving the cursor after each sale; false when asked to stop meanwhile.
    async fn send(
        &self,
        batch: &Batch,
        cursor: &mut Option<Cursor>,
        progress: &mut Option<Progress>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, String> {
        let started = *cursor;
        for receipt in &batch.receipts {
            let Some(outcome) = self.deliver(receipt, stop).await else {
                return Ok(false);
            };
            match outcome {
                Ok(ack) => {
                    if let Ack::Registered { number } = ack {
                        tracing::debug!(register = %self.source.name(), number, cash = receipt.cash_id, check = receipt.check_id, "registered receipt");
                    }
                }
                Err(reason) => self.park(receipt, &reason).await?,
            }
            let lag_ms = receipt.position.map(|position| {
                (Utc::now() - to_utc(position.commit, self.options.zone)).num_milliseconds()
            });
            if let Some(position) = receipt.position {
                self.save(cursor, position).await?;
            }
            let shown = cursor.map(|c| c.to_string()).unwrap_or_default();
            self.reporter.delivered(&shown, lag_ms);
            if let Some(progress) = progress.as_mut() {
                progress.tick(&self.source.name());
            }
        }
        for skipped in &batch.skipped {
            self.save(cursor, *skipped).await?;
        }
        // Only a cursor that moved needs storing, and only then does the window behind it move on: an idle pass
        // writes nothing.
        if let Some(reached) = *cursor
            && *cursor != started
        {
            self.cursors
                .advance(&self.key, reached)
                .await
                .map_err(|e| format!("saving the cursor: {e}"))?;
            self.cursors
                .prune(&self.key, self.window_start(reached))
                .await
                .map_err(|e| format!("pruning the delivered sales: {e}"))?;
        }
        Ok(true)
    }

    /// The oldest commit a pass looks at again behind `cursor` (the cursor itself with no overlap window).
    fn window_start(&self, cursor: Cursor) -> Cursor {
        Cursor::before(cursor.commit - self.options.overlap.get().unwrap_or_default())
    }

    /// Records `position` as delivered; the cursor follows unless it is already past it.
    async fn save(&self, cursor: &mut Option<Cursor>, position: Cursor) -> Result<(), String> {
        self.cursors
            .delivered(&self.key, position)
            .await
            .map_err(|e| format!("saving the cursor: {e}"))?;
        *cursor = (*cursor).max(Some(position));
        Ok(())
    }

    /// Sends the sales of the overlap window behind the cursor that were never sent: committed late behind a
    /// newer sale, or stamped by a clock that stepped back.
    async fn reread_overlap(
        &self,
        connection: &mut Register,
        cursor: &mut Option<Cursor>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let Some(to) = cursor.filter(|_| self.options.overlap.get().is_some()) else {
            return Ok(());
        };
        let from = self.window_start(to);
        let window = connection
            .positions_between(from, to)
            .await
            .map_err(|e| e.to_string())?;
        let sent = self
            .cursors
            .delivered_since(&self.key, from)
            .await
            .map_err(|e| format!("reading the delivered sales: {e}"))?;
        let missed: Vec<i64> = window
            .iter()
            .map(|position| position.purchase_id)
            .filter(|id| !sent.contains(id))
            .collect();
        if !missed.is_empty() {
            tracing::info!(register = %self.source.name(), sales = missed.len(), behind = %to,
                "sales found behind the cursor (committed late or under an earlier clock)");
            let late = connection
                .purchases(&missed)
                .await
                .map_err(|e| e.to_string())?;
            self.send(&late, cursor, &mut None, stop).await?;
        }
        Ok(())
    }

    /// Sets a receipt refused for good aside, so the register moves on.
    async fn park(&self, receipt: &SaleReceipt, reason: &str) -> Result<(), String> {
        let Some(position) = receipt.position else {
            // Without a position (a custom query without cursor columns) it is read again next pass anyway.
            self.reporter.failed(reason);
            return Ok(());
        };
        tracing::warn!(register = %self.source.name(), cash = receipt.cash_id, shift = receipt.shift_id,
            check = receipt.check_id, reason, "receipt refused for good; parked");
        self.parked
            .park(&self.key, receipt, position, reason)
            .await
            .map_err(|e| format!("parking a refused receipt: {e}"))?;
        self.reporter.parked(reason);
        Ok(())
    }

    /// Sends the parked receipts someone asked to retry on the collector page.
    async fn retry_parked(
        &self,
        cursor: &mut Option<Cursor>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let due = self
            .parked
            .to_retry(&self.key)
            .await
            .map_err(|e| format!("reading the parked receipts: {e}"))?;
        for row in due {
            let sale = row
                .sale()
                .map_err(|e| format!("parked receipt {}: {e}", row.id))?;
            let Some(outcome) = self.deliver(&sale, stop).await else {
                return Ok(());
            };
            match outcome {
                Ok(_) => {
                    tracing::info!(register = %self.source.name(), check = sale.check_id, "parked receipt delivered on retry");
                    self.parked
                        .remove(row.id)
                        .await
                        .map_err(|e| format!("settling a parked receipt: {e}"))?;
                    if let Some(position) = sale.position {
                        self.save(cursor, position).await?;
                    }
                }
                Err(reason) => self.park(&sale, &reason).await?,
            }
        }
        Ok(())
    }

    /// Delivers one receipt, retrying transient refusals with backoff until it is acknowledged or refused for
    /// good (the reason); `None` when asked to stop.
    async fn deliver(
        &self,
        receipt: &SaleReceipt,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Result<Ack, String>> {
        let mut failures = 0;
        loop {
            match self.sink.deliver(receipt).await {
                Ok(ack) => return Some(Ok(ack)),
                Err(Refusal::Permanent(reason)) => return Some(Err(reason)),
                Err(Refusal::Transient(error)) => {
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
