//! Rendered pages of the hot reads: `/units/` (notification services and report workers resolve units through
//! its first page all the time) and the notification fan-out `/report-routes/telegram-chats/`. Their answers only
//! change when units or the directory do. A write through this process (the API, the
//! admin pages, the units pages) invalidates every page at once; a write by another process on the same database
//! (another instance, `tillwire directory import`) is seen here within `TTL`, as for the kitchen's device-key cache:
//! routing a report a few seconds late after a change elsewhere is harmless, and the fan-out is asked per unit, so
//! a short TTL would send most of those requests to the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;

const TTL: Duration = Duration::from_secs(10);

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

/// Bodies by their request's checked parameters `K`, at most `capacity` of them (whatever parameters clients
/// send, memory stays bounded: a full cache starts over).
#[derive(Clone)]
pub(crate) struct PageCache<K> {
    entries: Arc<Mutex<HashMap<K, Entry>>>,
    capacity: usize,
}

impl<K: std::hash::Hash + Eq> PageCache<K> {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        PageCache {
            entries: Arc::default(),
            capacity,
        }
    }

    /// The cached body for `key`, or `render`'s, cached under the generation read before it ran (so a write that
    /// lands while it reads leaves the entry already stale).
    pub(crate) async fn get_or_render<F, E>(&self, key: K, render: F) -> Result<Bytes, E>
    where
        F: Future<Output = Result<Bytes, E>>,
    {
        let generation = generation();
        if let Some(entry) = self.entries.lock().ok().and_then(|entries| {
            entries
                .get(&key)
                .filter(|e| e.generation == generation && e.at.elapsed() < TTL)
                .map(|e| e.body.clone())
        }) {
            return Ok(entry);
        }
        let body = render.await?;
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity {
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
