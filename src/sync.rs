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

/// A duration that threads can set and read without a lock (`None` until
/// set): nanoseconds plus one in an atomic, zero while unset.
#[derive(Debug, Default)]
pub(crate) struct AtomicDuration(std::sync::atomic::AtomicU64);

impl AtomicDuration {
    /// Sets it (saturating at some 584 years).
    pub(crate) fn set(&self, d: std::time::Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1);
        self.0
            .store(nanos + 1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Unsets it.
    pub(crate) fn clear(&self) {
        self.0.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// The duration, if set.
    pub(crate) fn get(&self) -> Option<std::time::Duration> {
        self.0
            .load(std::sync::atomic::Ordering::Relaxed)
            .checked_sub(1)
            .map(std::time::Duration::from_nanos)
    }

    /// Whether it is unset, or set no longer than `other` (unset counts as
    /// the shortest).
    #[cfg(feature = "client")]
    fn not_longer(&self, other: &AtomicDuration) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.0.load(Relaxed) <= other.0.load(Relaxed)
    }
}

/// An instant that threads can set and read without a lock (`None` until
/// set): the time since a process-wide origin, in an [`AtomicDuration`].
#[derive(Debug, Default)]
pub(crate) struct AtomicInstant(AtomicDuration);

impl AtomicInstant {
    fn origin() -> std::time::Instant {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(std::time::Instant::now)
    }

    /// Sets it to now.
    pub(crate) fn set_now(&self) {
        self.0.set(Self::origin().elapsed());
    }

    /// Unsets it.
    pub(crate) fn clear(&self) {
        self.0.clear();
    }

    /// Whether it is set.
    pub(crate) fn is_set(&self) -> bool {
        self.0.get().is_some()
    }

    /// Whether it is unset, or set no later than `other` (unset counts as
    /// the earliest).
    #[cfg(feature = "client")]
    pub(crate) fn not_after(&self, other: &AtomicInstant) -> bool {
        self.0.not_longer(&other.0)
    }

    /// The instant, if set.
    pub(crate) fn get(&self) -> Option<std::time::Instant> {
        self.0.get().map(|d| Self::origin() + d)
    }
}
