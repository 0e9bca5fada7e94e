//! What OilMat's clients ask over and over (`/alive`, and which integration a request is for) answered from
//! memory: an answer is kept for at most a second, and dropped at once when this process writes what it was
//! read from (the store's generation moved on). Another instance's change is seen within the second.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an answer may be kept when nothing in this process changed it.
const FRESH: Duration = Duration::from_secs(1);
/// Entries kept at most; past it the map starts over (integrations are few; this bounds a flood of unknown names).
const MOST: usize = 4_096;

struct Kept<V> {
    at: Instant,
    generation: u64,
    value: V,
}

pub struct Recent<K, V> {
    entries: Mutex<HashMap<K, Kept<V>>>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Recent {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    /// The value kept for `key`, when it was read at `generation` less than a second ago.
    pub fn get(&self, key: &K, generation: u64) -> Option<V> {
        let entries = self
            .entries
            .lock()
            .expect("the cache lock is never poisoned");
        entries
            .get(key)
            .filter(|kept| kept.generation == generation && kept.at.elapsed() < FRESH)
            .map(|kept| kept.value.clone())
    }

    /// Keeps `value`, read at `generation` (taken before the read, so a write during it is not hidden).
    pub fn put(&self, key: K, generation: u64, value: V) {
        let mut entries = self
            .entries
            .lock()
            .expect("the cache lock is never poisoned");
        if entries.len() >= MOST {
            entries.clear();
        }
        entries.insert(
            key,
            Kept {
                at: Instant::now(),
                generation,
                value,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_drops_what_was_kept() {
        let recent: Recent<u8, &str> = Recent::default();
        recent.put(1, 7, "read at 7");
        assert_eq!(recent.get(&1, 7), Some("read at 7"));
        assert_eq!(recent.get(&1, 8), None, "kept past a write");
        assert_eq!(recent.get(&2, 7), None);
    }
}
