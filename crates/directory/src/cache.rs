//! Rendered `/units/` pages. Notification services and report workers ask for the first page of units all the
//! time, and the answer only changes when units or the directory do. A write through this process (the API, the
//! admin pages, the units pages) invalidates every page at once; a write by another process on the same database
//! (another instance, `tillwire directory import`) is seen here within `TTL`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;

use crate::input::Page;

const TTL: Duration = Duration::from_secs(2);
/// Bounds memory whatever limit/offset pairs clients send.
const CAPACITY: usize = 1024;

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Called after every directory write in this process has committed.
pub(crate) fn changed() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Changes whenever the directory or the units change in this process.
fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire) + tillwire_units::generation()
}

struct Entry {
    body: Bytes,
    generation: u64,
    at: Instant,
}

#[derive(Clone, Default)]
pub(crate) struct PageCache(Arc<Mutex<HashMap<(i64, i64), Entry>>>);

impl PageCache {
    /// The cached body of `page`, or `render`'s, cached under the generation read before it ran (so a write that
    /// lands while it reads leaves the entry already stale).
    pub(crate) async fn get_or_render<F, E>(&self, page: Page, render: F) -> Result<Bytes, E>
    where
        F: Future<Output = Result<Bytes, E>>,
    {
        let key = (page.limit, page.offset);
        let generation = generation();
        if let Some(entry) = self.0.lock().ok().and_then(|entries| {
            entries
                .get(&key)
                .filter(|e| e.generation == generation && e.at.elapsed() < TTL)
                .map(|e| e.body.clone())
        }) {
            return Ok(entry);
        }
        let body = render.await?;
        if let Ok(mut entries) = self.0.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            let entry = Entry {
                body: body.clone(),
                generation,
                at: Instant::now(),
            };
            entries.insert(key, entry);
        }
        Ok(body)
    }
}
