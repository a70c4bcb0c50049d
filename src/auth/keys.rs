use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::llm::Secret;

/// A provider's API keys, used round robin; a key that the provider rejected
/// (401/403) or rate limited (429) is skipped until its cooldown ends.
///
/// When every key is cooling down the pool still answers, with the key whose
/// cooldown ends first: a request that may fail beats one refused outright.
///
/// ```
/// use llmgate::auth::KeyPool;
/// use std::time::Duration;
///
/// let pool = KeyPool::new(["k1", "k2"]);
/// let (first, key) = pool.pick().unwrap();
/// assert_eq!(key.expose(), "k1");
/// pool.report(first, 429, Some(Duration::from_secs(30)));
/// // k1 is cooling down: k2 twice.
/// assert_eq!(pool.pick().unwrap().1.expose(), "k2");
/// assert_eq!(pool.pick().unwrap().1.expose(), "k2");
/// ```
#[derive(Debug)]
pub struct KeyPool {
    keys: Vec<Secret>,
    next: AtomicUsize,
    /// Per key: the end of its cooldown, in milliseconds since `epoch`.
    cooldown_until: Vec<AtomicU64>,
    epoch: Instant,
    rate_limit_cooldown: Duration,
    rejected_cooldown: Duration,
}

impl KeyPool {
    /// A pool of `keys` with the default cooldowns (30 s after a 429 without
    /// `retry-after`, 5 min after a 401/403).
    pub fn new<I, K>(keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<std::sync::Arc<str>>,
    {
        let keys: Vec<Secret> = keys.into_iter().map(Secret::new).collect();
        let cooldown_until = keys.iter().map(|_| AtomicU64::new(0)).collect();
        Self {
            keys,
            next: AtomicUsize::new(0),
            cooldown_until,
            epoch: Instant::now(),
            rate_limit_cooldown: Duration::from_secs(30),
            rejected_cooldown: Duration::from_secs(300),
        }
    }

    /// Sets how long a key rests after a 429 without `retry-after`.
    pub fn rate_limit_cooldown(mut self, cooldown: Duration) -> Self {
        self.rate_limit_cooldown = cooldown;
        self
    }

    /// Sets how long a key rests after a 401 or 403.
    pub fn rejected_cooldown(mut self, cooldown: Duration) -> Self {
        self.rejected_cooldown = cooldown;
        self
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the pool has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The next usable key and its index (for [`report`](Self::report)).
    pub fn pick(&self) -> Option<(usize, Secret)> {
        let n = self.keys.len();
        if n == 0 {
            return None;
        }
        let now = self.now_ms();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut soonest = (u64::MAX, start % n);
        for step in 0..n {
            let i = (start + step) % n;
            let until = self.cooldown_until[i].load(Ordering::Relaxed);
            if until <= now {
                if step > 0 {
                    // Continue the rotation after the key we used.
                    self.next.store(i + 1, Ordering::Relaxed);
                }
                return Some((i, self.keys[i].clone()));
            }
            if until < soonest.0 {
                soonest = (until, i);
            }
        }
        Some((soonest.1, self.keys[soonest.1].clone()))
    }

    /// Tells the pool how the provider answered a request made with key
    /// `index`: a 429 rests the key for `retry_after` (or the rate-limit
    /// cooldown), a 401/403 for the rejected-key cooldown.
    pub fn report(&self, index: usize, status: u16, retry_after: Option<Duration>) {
        let rest = match status {
            429 => retry_after.unwrap_or(self.rate_limit_cooldown),
            401 | 403 => self.rejected_cooldown,
            _ => return,
        };
        if let Some(slot) = self.cooldown_until.get(index) {
            let until = self.now_ms() + rest.as_millis() as u64;
            slot.fetch_max(until, Ordering::Relaxed);
        }
    }

    /// How many keys are not cooling down.
    pub fn available(&self) -> usize {
        let now = self.now_ms();
        self.cooldown_until
            .iter()
            .filter(|u| u.load(Ordering::Relaxed) <= now)
            .count()
    }

    /// Whether key `index` is cooling down.
    pub fn is_cooling(&self, index: usize) -> bool {
        self.cooldown_until
            .get(index)
            .is_some_and(|u| u.load(Ordering::Relaxed) > self.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_over_keys() {
        let pool = KeyPool::new(["a", "b", "c"]);
        let picked: Vec<String> = (0..6)
            .map(|_| pool.pick().unwrap().1.expose().to_owned())
            .collect();
        assert_eq!(picked, ["a", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn rejected_and_rate_limited_keys_are_skipped() {
        let pool = KeyPool::new(["a", "b", "c"]);
        pool.report(1, 401, None);
        assert!(pool.is_cooling(1));
        let picked: Vec<String> = (0..4)
            .map(|_| pool.pick().unwrap().1.expose().to_owned())
            .collect();
        assert_eq!(picked, ["a", "c", "a", "c"]);
        pool.report(0, 500, None);
        assert!(!pool.is_cooling(0), "a 500 is not the key's fault");
    }

    #[test]
    fn all_cooling_gives_the_one_that_recovers_first() {
        let pool = KeyPool::new(["a", "b"]);
        pool.report(0, 429, Some(Duration::from_secs(60)));
        pool.report(1, 429, Some(Duration::from_secs(5)));
        assert_eq!(pool.pick().unwrap().1.expose(), "b");
        assert!(KeyPool::new(Vec::<String>::new()).pick().is_none());
    }

    #[test]
    fn a_zero_cooldown_does_not_rest_the_key() {
        let pool = KeyPool::new(["a", "b"]).rate_limit_cooldown(Duration::ZERO);
        pool.report(0, 429, None);
        assert!(!pool.is_cooling(0));
    }
}
