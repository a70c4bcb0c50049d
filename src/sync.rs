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
