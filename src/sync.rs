//! Locks that outlive a panic elsewhere: the state they guard (counters,
//! health, deployment lists) stays usable, so a panic in one request cannot
//! take the gateway's bookkeeping down with it.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The hash map of the per-request lookups (providers, routes, groups,
/// metric series, requests in flight): keys are short names and ids, for
/// which SipHash costs more than the rest of the lookup. foldhash seeds each
/// map at random; the one map a client's choice of model can add keys to
/// (the metric series) is capped.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// An instant that threads can set and read without a lock (`None` until
/// set): nanoseconds since a process-wide origin, plus one, in an atomic.
#[derive(Debug, Default)]
pub(crate) struct AtomicInstant(std::sync::atomic::AtomicU64);

impl AtomicInstant {
    fn origin() -> std::time::Instant {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(std::time::Instant::now)
    }

    /// Sets it to now.
    pub(crate) fn set_now(&self) {
        let nanos = Self::origin().elapsed().as_nanos() as u64 + 1;
        self.0.store(nanos, std::sync::atomic::Ordering::Relaxed);
    }

    /// Unsets it.
    pub(crate) fn clear(&self) {
        self.0.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether it is set.
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed) > 0
    }

    /// Whether it is unset, or set no later than `other` (unset counts as
    /// the earliest).
    #[cfg(feature = "client")]
    pub(crate) fn not_after(&self, other: &AtomicInstant) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.0.load(Relaxed) <= other.0.load(Relaxed)
    }

    /// The instant, if set.
    pub(crate) fn get(&self) -> Option<std::time::Instant> {
        match self.0.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            n => Some(Self::origin() + std::time::Duration::from_nanos(n - 1)),
        }
    }
}
