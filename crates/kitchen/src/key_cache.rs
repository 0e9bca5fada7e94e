//! Remembers which unit a device key means. Every import asks, and the answer only changes when an admin edits
//! units or keys: such a write in this process invalidates the cache at once ([`generation`]);
//! a write by another instance on the same database is seen here within `TTL`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tillwire_units::UnitId;

const TTL: Duration = Duration::from_secs(10);
/// Bounds memory however many distinct keys are presented; only known keys are stored.
const CAPACITY: usize = 4096;

/// The unit, the units generation it was read under, and when.
type Entry = (UnitId, u64, Instant);

/// Changes whenever a unit or a token is written in this process (both counters only grow).
pub(crate) fn generation() -> u64 {
    tillwire_units::generation() + tillwire_platform::tokens::generation()
}

#[derive(Clone, Default)]
pub(crate) struct KeyCache(Arc<Mutex<HashMap<String, Entry>>>);

impl KeyCache {
    /// `hash` is the key's SHA-256, so no device key is kept in memory longer than its request.
    pub(crate) fn get(&self, hash: &str) -> Option<UnitId> {
        let entries = self.0.lock().ok()?;
        let (unit, generation, at) = entries.get(hash)?;
        (*generation == self::generation() && at.elapsed() < TTL).then_some(*unit)
    }

    pub(crate) fn put(&self, hash: String, unit: UnitId, generation: u64) {
        if let Ok(mut entries) = self.0.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(hash, (unit, generation, Instant::now()));
        }
    }
}
