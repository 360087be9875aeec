//! Rendered responses kept in memory: vector tiles and pages of features, by request.
//!
//! Only responses that are the same for every user who may see them are cached (never a grid
//! worker's households). A change of the data clears the cache ([`ByteCache::clear`]); a
//! response rendered from the data before the change and offered after it is not kept, since
//! every clear starts a new generation and [`ByteCache::put`] takes the generation the
//! rendering started in.
//!
//! A cache is bounded by entries and by bytes: every entry counts its bytes plus
//! [`ENTRY_OVERHEAD`] (its key and slot), so that empty tiles (0 bytes) cannot grow it without
//! bound either.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use axum::body::Bytes;

struct Entries<K> {
    map: HashMap<K, Bytes>,
    bytes: usize,
    generation: u64,
}

/// Bytes an entry counts besides its own (key, hash slot, reference count).
pub const ENTRY_OVERHEAD: usize = 64;

/// What an entry of `len` bytes counts against the cache's bytes.
fn cost(len: usize) -> usize {
    len.saturating_add(ENTRY_OVERHEAD)
}

/// Bytes by key, at most `max_entries` entries and `max_bytes` in all (counting
/// [`ENTRY_OVERHEAD`] per entry); emptied when full: the keys that matter come back at once,
/// which a simple clear serves as well as an LRU at a fraction of the bookkeeping.
pub struct ByteCache<K> {
    inner: Mutex<Entries<K>>,
    max_bytes: usize,
    max_entries: usize,
}

impl<K: Hash + Eq> ByteCache<K> {
    /// An empty cache of at most `max_bytes` and `max_entries`.
    pub fn new(max_bytes: usize, max_entries: usize) -> Self {
        ByteCache {
            inner: Mutex::new(Entries { map: HashMap::new(), bytes: 0, generation: 0 }),
            max_bytes,
            max_entries,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<K>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets every entry and starts a new generation.
    pub fn clear(&self) {
        let mut g = self.lock();
        g.map.clear();
        g.bytes = 0;
        g.generation += 1;
    }

    /// The generation now: take it before rendering, give it to [`ByteCache::put`].
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Bytes held, counting [`ENTRY_OVERHEAD`] per entry.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry of `k`.
    pub fn get(&self, k: &K) -> Option<Bytes> {
        self.lock().map.get(k).cloned()
    }

    /// Keeps `v` under `k` if the cache has not been cleared since `generation`. An entry
    /// larger than the whole cache is not kept; when the new entry would pass either bound the
    /// cache is emptied first.
    pub fn put(&self, k: K, v: Bytes, generation: u64) {
        if cost(v.len()) > self.max_bytes || self.max_entries == 0 {
            return;
        }
        let mut g = self.lock();
        if g.generation != generation {
            return;
        }
        let replacing = g.map.get(&k).map(|old| cost(old.len()));
        let entries_after = g.map.len() + usize::from(replacing.is_none());
        let bytes_after = (g.bytes - replacing.unwrap_or(0)).saturating_add(cost(v.len()));
        if entries_after > self.max_entries || bytes_after > self.max_bytes {
            g.map.clear();
            g.bytes = 0;
        }
        if let Some(old) = g.map.insert(k, v.clone()) {
            g.bytes -= cost(old.len());
        }
        g.bytes += cost(v.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: usize = ENTRY_OVERHEAD;

    #[test]
    fn keeps_counts_and_bounds_bytes() {
        let c = ByteCache::new(3 * O + 10, 100);
        let g = c.generation();
        c.put("a", Bytes::from_static(b"1234"), g);
        c.put("b", Bytes::from_static(b"5678"), g);
        assert_eq!((c.len(), c.bytes()), (2, 2 * O + 8));
        assert_eq!(c.get(&"a").as_deref(), Some(&b"1234"[..]));
        // Replacing counts the difference.
        c.put("a", Bytes::from_static(b"12"), g);
        assert_eq!(c.bytes(), 2 * O + 6);
        // Over the bound: emptied, then the new entry kept.
        c.put("c", Bytes::from_static(b"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789"), g);
        assert_eq!((c.len(), c.bytes()), (1, O + 72));
        assert!(c.get(&"a").is_none());
        // Larger than the whole cache: not kept, nothing lost.
        c.put("d", Bytes::from(vec![0u8; 3 * O]), g);
        assert_eq!((c.len(), c.bytes()), (1, O + 72));
    }

    #[test]
    fn empty_entries_are_bounded_by_count_and_overhead() {
        // A million empty tiles never hold more than the entry bound.
        let c = ByteCache::new(1 << 30, 1000);
        let g = c.generation();
        for i in 0..1_000_000u32 {
            c.put(i, Bytes::new(), g);
            assert!(c.len() <= 1000);
        }
        assert_eq!(c.bytes(), c.len() * O);
        // And by bytes: each empty entry counts its overhead.
        let c = ByteCache::new(10 * O, 1_000_000);
        for i in 0..10_000u32 {
            c.put(i, Bytes::new(), g);
            assert!(c.bytes() <= 10 * O && c.len() <= 10);
        }
        // Replacing a key when full does not empty the cache.
        let c = ByteCache::new(1 << 20, 2);
        c.put(1u32, Bytes::new(), g);
        c.put(2u32, Bytes::new(), g);
        c.put(2u32, Bytes::from_static(b"x"), g);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_rendering_from_before_a_clear_is_not_kept() {
        let c = ByteCache::new(1000, 10);
        let before = c.generation();
        c.clear();
        c.put("stale", Bytes::from_static(b"old data"), before);
        assert!(c.is_empty());
        c.put("fresh", Bytes::from_static(b"new data"), c.generation());
        assert_eq!(c.len(), 1);
    }
}
