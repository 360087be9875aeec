//! Rendered responses kept in memory: vector tiles and pages of features, by request.
//!
//! Only responses that are the same for every user who may see them are cached (never a grid
//! worker's households). A change of the data clears the cache ([`ByteCache::clear`]); a
//! response rendered from the data before the change and offered after it is not kept, since
//! every clear starts a new generation and [`ByteCache::put`] takes the generation the
//! rendering started in.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use axum::body::Bytes;

struct Entries<K> {
    map: HashMap<K, Bytes>,
    bytes: usize,
    generation: u64,
}

/// Bytes by key, at most `max_bytes` in all (emptied when full: the keys that matter come back
/// at once, which a simple clear serves as well as an LRU at a fraction of the bookkeeping).
pub struct ByteCache<K> {
    inner: Mutex<Entries<K>>,
    max_bytes: usize,
}

impl<K: Hash + Eq> ByteCache<K> {
    /// An empty cache of at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        ByteCache { inner: Mutex::new(Entries { map: HashMap::new(), bytes: 0, generation: 0 }), max_bytes }
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

    /// Bytes held.
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
    /// larger than the whole cache is not kept.
    pub fn put(&self, k: K, v: Bytes, generation: u64) {
        if v.len() > self.max_bytes {
            return;
        }
        let mut g = self.lock();
        if g.generation != generation {
            return;
        }
        if g.bytes + v.len() > self.max_bytes {
            g.map.clear();
            g.bytes = 0;
        }
        g.bytes += v.len();
        if let Some(old) = g.map.insert(k, v) {
            g.bytes -= old.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_counts_and_bounds_bytes() {
        let c = ByteCache::new(10);
        let g = c.generation();
        c.put("a", Bytes::from_static(b"1234"), g);
        c.put("b", Bytes::from_static(b"5678"), g);
        assert_eq!((c.len(), c.bytes()), (2, 8));
        assert_eq!(c.get(&"a").as_deref(), Some(&b"1234"[..]));
        // Replacing counts the difference.
        c.put("a", Bytes::from_static(b"12"), g);
        assert_eq!(c.bytes(), 6);
        // Over the bound: emptied, then the new entry kept.
        c.put("c", Bytes::from_static(b"abcdefg"), g);
        assert_eq!((c.len(), c.bytes()), (1, 7));
        assert!(c.get(&"a").is_none());
        // Larger than the whole cache: not kept, nothing lost.
        c.put("d", Bytes::from_static(b"01234567890"), g);
        assert_eq!((c.len(), c.bytes()), (1, 7));
    }

    #[test]
    fn a_rendering_from_before_a_clear_is_not_kept() {
        let c = ByteCache::new(100);
        let before = c.generation();
        c.clear();
        c.put("stale", Bytes::from_static(b"old data"), before);
        assert!(c.is_empty());
        c.put("fresh", Bytes::from_static(b"new data"), c.generation());
        assert_eq!(c.len(), 1);
    }
}
