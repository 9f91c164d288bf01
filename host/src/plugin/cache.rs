//! The per-storage cache adapters of WIT 0.2.0 and later import (`host-cache`): small values (an OAuth
//! access token until its expiry) that outlive one instance and are shared by concurrent ones.
//! Bounded, in memory, lost at restart; an adapter must work with an empty cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most entries kept per storage configuration.
pub const MAX_ENTRIES_PER_STORAGE: usize = 64;
/// Most entries kept in all: with [`MAX_VALUE_BYTES`], at most 16 MiB of host memory.
pub const MAX_ENTRIES: usize = 2048;
/// Largest value stored, bytes; larger ones are ignored.
pub const MAX_VALUE_BYTES: usize = 8 << 10;
/// Longest time-to-live honoured.
pub const MAX_TTL: Duration = Duration::from_secs(86_400);

/// A cache key: (namespace, key). The namespace is a SHA-256 of one storage's type and full
/// configuration, secrets included, so one storage never sees another's values.
type Id = ([u8; 32], String);

/// Entries by [`Id`]: the value and when it expires.
#[derive(Debug, Default)]
pub struct HostCache {
    entries: Mutex<HashMap<Id, (Vec<u8>, Instant)>>,
}

impl HostCache {
    /// The live value of `key` in `namespace`.
    pub fn get(&self, namespace: &[u8; 32], key: &str) -> Option<Vec<u8>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&(*namespace, key.to_string()))
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(v, _)| v.clone())
    }

    /// Stores `value` for `ttl` (capped at [`MAX_TTL`]); when the namespace or the cache is full,
    /// expired entries go first, then the one expiring soonest. Oversized values are dropped.
    pub fn set(&self, namespace: &[u8; 32], key: &str, value: Vec<u8>, ttl: Duration) {
        if value.len() > MAX_VALUE_BYTES || ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let id = (*namespace, key.to_string());
        if !entries.contains_key(&id) {
            let mine = entries.keys().filter(|(ns, _)| ns == namespace).count();
            if mine >= MAX_ENTRIES_PER_STORAGE || entries.len() >= MAX_ENTRIES {
                entries.retain(|_, (_, expires)| *expires > now);
            }
            let mine: Vec<_> = entries.iter().filter(|((ns, _), _)| ns == namespace).collect();
            let victim = if mine.len() >= MAX_ENTRIES_PER_STORAGE {
                mine.into_iter().min_by_key(|(_, (_, e))| *e).map(|(k, _)| k.clone())
            } else if entries.len() >= MAX_ENTRIES {
                entries.iter().min_by_key(|(_, (_, e))| *e).map(|(k, _)| k.clone())
            } else {
                None
            };
            if let Some(victim) = victim {
                entries.remove(&victim);
            }
        }
        entries.insert(id, (value, now + ttl.min(MAX_TTL)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_per_namespace_expire_and_are_bounded() {
        let cache = HostCache::default();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        cache.set(&a, "token", b"t-a".to_vec(), Duration::from_secs(60));
        assert_eq!(cache.get(&a, "token").as_deref(), Some(&b"t-a"[..]));
        assert_eq!(cache.get(&b, "token"), None);
        cache.set(&a, "gone", b"x".to_vec(), Duration::from_nanos(1));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(cache.get(&a, "gone"), None);
        cache.set(&a, "big", vec![0; MAX_VALUE_BYTES + 1], Duration::from_secs(60));
        assert_eq!(cache.get(&a, "big"), None);
        for i in 0..MAX_ENTRIES_PER_STORAGE + 10 {
            cache.set(&b, &format!("k{i}"), vec![1], Duration::from_secs(100 + i as u64));
        }
        let kept = (0..MAX_ENTRIES_PER_STORAGE + 10).filter(|i| cache.get(&b, &format!("k{i}")).is_some()).count();
        assert_eq!(kept, MAX_ENTRIES_PER_STORAGE);
        // The soonest-expiring went first; the newest stayed.
        assert_eq!(cache.get(&b, "k0"), None);
        assert!(cache.get(&b, &format!("k{}", MAX_ENTRIES_PER_STORAGE + 9)).is_some());
        assert_eq!(cache.get(&a, "token").as_deref(), Some(&b"t-a"[..]));
    }
}
