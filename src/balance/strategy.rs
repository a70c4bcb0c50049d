use std::time::Duration;

use crate::llm::Target;

/// A deployment the strategy may pick.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Candidate<'a> {
    /// The deployment.
    pub target: &'a Target,
    /// Its weight (> 0).
    pub weight: u32,
    /// Requests it serves now.
    pub in_flight: usize,
    /// Its latency estimate, once it has one.
    pub latency: Option<Duration>,
}

/// Chooses among healthy, untried deployments.
pub trait Strategy: Send + Sync + 'static {
    /// The index of the chosen candidate (never empty). `counter` grows by
    /// one per pick in the group, for rotations.
    fn pick(&self, candidates: &[Candidate<'_>], counter: usize) -> usize;
}

/// Each deployment in turn.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobin;

impl Strategy for RoundRobin {
    fn pick(&self, candidates: &[Candidate<'_>], counter: usize) -> usize {
        counter % candidates.len()
    }
}

/// In proportion to the weights, deterministically: over each cycle of
/// `sum(weights)` picks, each deployment gets its weight's share.
#[derive(Debug, Clone, Copy, Default)]
pub struct Weighted;

impl Strategy for Weighted {
    fn pick(&self, candidates: &[Candidate<'_>], counter: usize) -> usize {
        let total: u64 = candidates.iter().map(|c| u64::from(c.weight)).sum();
        if total == 0 {
            return 0;
        }
        // Interleave: the slot's position in the cycle, scaled by a prime
        // stride, avoids serving all of one deployment's share in a row.
        let slot = (counter as u64).wrapping_mul(7919) % total;
        let mut acc = 0u64;
        for (i, c) in candidates.iter().enumerate() {
            acc += u64::from(c.weight);
            if slot < acc {
                return i;
            }
        }
        candidates.len() - 1
    }
}

/// The deployment with the fewest requests in flight (ties in turn).
#[derive(Debug, Clone, Copy, Default)]
pub struct LeastInFlight;

impl Strategy for LeastInFlight {
    fn pick(&self, candidates: &[Candidate<'_>], counter: usize) -> usize {
        let min = candidates.iter().map(|c| c.in_flight).min().unwrap_or(0);
        let ties: Vec<usize> = (0..candidates.len())
            .filter(|&i| candidates[i].in_flight == min)
            .collect();
        ties[counter % ties.len()]
    }
}

/// The deployment with the lowest expected latency: its peak EWMA of time
/// to first token (streams) or duration (complete responses), times its
/// requests in flight + 1. A deployment without a measurement yet is tried
/// first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency;

impl Strategy for Latency {
    fn pick(&self, candidates: &[Candidate<'_>], counter: usize) -> usize {
        if let Some(i) = candidates.iter().position(|c| c.latency.is_none()) {
            // Explore unmeasured deployments, in turn.
            let unmeasured: Vec<usize> = (0..candidates.len())
                .filter(|&i| candidates[i].latency.is_none())
                .collect();
            return unmeasured
                .get(counter % unmeasured.len())
                .copied()
                .unwrap_or(i);
        }
        let cost = |c: &Candidate<'_>| {
            c.latency.unwrap_or_default().as_secs_f64() * (c.in_flight as f64 + 1.0)
        };
        let mut best = 0;
        for (i, c) in candidates.iter().enumerate() {
            if cost(c) < cost(&candidates[best]) {
                best = i;
            }
        }
        best
    }
}
