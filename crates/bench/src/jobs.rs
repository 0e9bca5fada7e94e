//! No-op jobs through the typed durable queue (`tillwire_platform::jobs`), in process on a fresh database of the
//! backend: enqueued up front in batches, then jobs/s from the runner's start until the last one is settled, with
//! 1, 100 and 10,000 distinct keys (one key is strict FIFO: one job at a time, claimed in runs).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tillwire_platform::area::Shutdown;
use tillwire_platform::jobs::{Attempt, BackgroundJob, EnqueueJob, JobQueue, JobRegistry, NewJob};
use tillwire_platform::{Store, write_tx};

use crate::Backend;
use crate::server::{FreshDatabase, Target};

const ENQUEUE_BATCH: usize = 1_000;

#[derive(Serialize, Deserialize)]
struct Noop {
    key: usize,
}

impl BackgroundJob for Noop {
    const QUEUE: &'static str = "bench.noop";
    const MAX_ATTEMPTS: i64 = 3;
    /// A no-op is as short as a job gets: one key's backlog is claimed in runs of a whole claim window.
    const RUN_LENGTH: usize = 256;

    fn key(&self) -> String {
        format!("k{}", self.key)
    }
}

pub async fn run(
    target: &Target,
    backend: Backend,
    jobs: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    for keys in [1, 100, 10_000] {
        let database = FreshDatabase::create(target, backend).await?;
        let store = Store::connect(&database.url).await?;
        store.migrate(&[tillwire_platform::MIGRATIONS]).await?;
        let rate = measure(&store, jobs, keys, concurrency).await;
        store.close().await;
        database.drop_database().await;
        let (jobs_per_second, elapsed) = rate?;
        println!(
            "jobs {backend:?}: {jobs} no-op jobs over {keys} keys, {concurrency} at once, in {:.2} s = {jobs_per_second:.0} jobs/s",
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}

async fn measure(
    store: &Store,
    jobs: usize,
    keys: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, Duration)> {
    let all: Vec<NewJob> = (0..jobs).map(|i| Noop { key: i % keys }.to_job()).collect();
    for batch in all.chunks(ENQUEUE_BATCH) {
        let enqueued: Result<(), sqlx::Error> =
            write_tx!(store, tx => (**tx).enqueue_jobs(batch).await);
        enqueued?;
    }
    let ran = Arc::new(AtomicUsize::new(0));
    let mut registry = JobRegistry::default();
    let counter = ran.clone();
    registry.register(move |_: Noop, _: Attempt| {
        counter.fetch_add(1, Ordering::Relaxed);
        std::future::ready(Ok(()))
    });
    let queue = JobQueue::new(store.clone());
    let (stop, mut shutdown) = Shutdown::channel();
    let started = Instant::now();
    let runner = tokio::spawn(
        queue
            .clone()
            .run(Arc::new(registry), concurrency, async move {
                shutdown.wait().await
            }),
    );
    // Every handler ran, then every outcome is recorded.
    while ran.load(Ordering::Relaxed) < jobs {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {} of {jobs} jobs ran in 10 minutes",
            ran.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    loop {
        let counts = queue.counts().await?;
        let done = counts
            .iter()
            .find(|(state, _)| state == "done")
            .map_or(0, |(_, n)| *n);
        if done as usize == jobs {
            break;
        }
        anyhow::ensure!(
            !counts.iter().any(|(state, n)| state == "dead" && *n > 0),
            "a no-op job died: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    runner.await?;
    Ok((jobs as f64 / elapsed.as_secs_f64(), elapsed))
}
