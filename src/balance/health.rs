use std::time::Duration;

use tokio::time::Instant;

use crate::error::{ApiError, ErrorKind};

/// How deployments cool down after failures.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct HealthConfig {
    /// The first cooldown after failures (and after a 429 without
    /// `retry-after`). Default 5 s.
    pub cooldown: Duration,
    /// The longest cooldown, `retry-after` included. Default 60 s.
    pub max_cooldown: Duration,
    /// Failures (other than 429/overloaded) before a first cooldown.
    /// Default 3.
    pub allowed_failures: u32,
    /// Failures count half after this long. Default 60 s.
    pub half_life: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            cooldown: Duration::from_secs(5),
            max_cooldown: Duration::from_secs(60),
            allowed_failures: 3,
            half_life: Duration::from_secs(60),
        }
    }
}

impl HealthConfig {
    /// Sets [`cooldown`](Self::cooldown).
    pub fn cooldown(mut self, d: Duration) -> Self {
        self.cooldown = d;
        self
    }

    /// Sets [`max_cooldown`](Self::max_cooldown).
    pub fn max_cooldown(mut self, d: Duration) -> Self {
        self.max_cooldown = d;
        self
    }

    /// Sets [`allowed_failures`](Self::allowed_failures).
    pub fn allowed_failures(mut self, n: u32) -> Self {
        self.allowed_failures = n;
        self
    }

    /// Sets [`half_life`](Self::half_life).
    pub fn half_life(mut self, d: Duration) -> Self {
        self.half_life = d;
        self
    }
}

/// A deployment's recent failures and cooldown.
#[derive(Debug)]
pub(super) struct Health {
    failures: f64,
    updated: Option<Instant>,
    until: Option<Instant>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            failures: 0.0,
            updated: None,
            until: None,
        }
    }
}

impl Health {
    fn decay(&mut self, cfg: &HealthConfig, now: Instant) {
        if let Some(at) = self.updated {
            let elapsed = now.saturating_duration_since(at).as_secs_f64();
            let half = cfg.half_life.as_secs_f64().max(f64::MIN_POSITIVE);
            self.failures *= 0.5f64.powf(elapsed / half);
        }
        self.updated = Some(now);
    }

    /// Counts a failure; returns the cooldown if one starts.
    pub(super) fn failure(
        &mut self,
        cfg: &HealthConfig,
        now: Instant,
        err: &ApiError,
    ) -> Option<Duration> {
        self.decay(cfg, now);
        self.failures += 1.0;
        let pushed_back = matches!(err.kind, ErrorKind::RateLimit | ErrorKind::Overloaded);
        let over = self.failures - f64::from(cfg.allowed_failures);
        if !pushed_back && over < 0.0 {
            return None;
        }
        let doublings = over.max(0.0).floor().min(16.0) as i32;
        let backoff = cfg.cooldown.mul_f64(2f64.powi(doublings));
        // The upstream's own `retry-after` wins, within the maximum.
        let cooldown = err.retry_after.unwrap_or(backoff).min(cfg.max_cooldown);
        if cooldown.is_zero() {
            return None;
        }
        let until = now + cooldown;
        self.until = Some(self.until.map_or(until, |u| u.max(until)));
        Some(cooldown)
    }

    /// A success: the deployment is well again.
    pub(super) fn success(&mut self) {
        self.failures = 0.0;
        self.until = None;
    }

    /// How much longer the deployment cools down.
    pub(super) fn cooling(&self, now: Instant) -> Option<Duration> {
        self.until
            .filter(|u| *u > now)
            .map(|u| u.saturating_duration_since(now))
    }

    #[cfg(test)]
    pub(super) fn failures(&mut self, cfg: &HealthConfig, now: Instant) -> f64 {
        self.decay(cfg, now);
        self.failures
    }
}

/// A peak-sensitive exponentially weighted moving average of latency: a
/// slower observation counts at once, faster ones pull the estimate down
/// gradually (time constant `tau`).
#[derive(Debug)]
pub(super) struct PeakEwma {
    value: Option<f64>,
    at: Option<Instant>,
    tau: Duration,
}

impl Default for PeakEwma {
    fn default() -> Self {
        Self {
            value: None,
            at: None,
            tau: Duration::from_secs(10),
        }
    }
}

impl PeakEwma {
    pub(super) fn observe(&mut self, rtt: Duration, now: Instant) {
        let x = rtt.as_secs_f64();
        self.value = Some(match (self.value, self.at) {
            (Some(v), _) if x >= v => x,
            (Some(v), Some(at)) => {
                let elapsed = now.saturating_duration_since(at).as_secs_f64();
                let w = (-elapsed / self.tau.as_secs_f64()).exp();
                v * w + x * (1.0 - w)
            }
            _ => x,
        });
        self.at = Some(now);
    }

    pub(super) fn get(&self) -> Option<Duration> {
        self.value.map(Duration::from_secs_f64)
    }
}
