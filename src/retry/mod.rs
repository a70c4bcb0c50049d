//! Retries: bounded attempts, exponential backoff with jitter, `retry-after`
//! honoured, and a retry budget.
//!
//! [`RetryLayer`] sends an attempt; if it fails in a way another attempt may
//! fix, it tries again, up to [`RetryPolicy::attempts`] in all:
//!
//! - **Retryable**: failures of an upstream — connection errors, timeouts,
//!   408, 409, 429, 5xx, 529, and `overloaded_error`/`api_error` events
//!   before the stream's commit point. **Never** a client's mistake (400,
//!   401, 403, 404, 413, 422), a billing or quota error, or an error the
//!   gateway made itself (such as "every deployment is cooling down", which
//!   goes back to the client at once with its `retry-after`).
//! - **Streams** are retried until their commit point
//!   ([`EventStream::commit`](crate::llm::EventStream::commit)): the first
//!   content event. The events seen before it are held back, so a client
//!   never receives content twice; after it, a failure reaches the client as
//!   a terminal error event.
//! - **Where**: the balancer below sends each attempt to a deployment this
//!   request has not tried while one is left. Such a failover goes out at
//!   once; a retry of the same deployment waits the backoff
//!   (`base · 2^(n-1)`, at most `max_backoff`, minus up to `jitter` of it at
//!   random) or the upstream's `retry-after`, whichever is longer — and a
//!   `retry-after` longer than `max_retry_after` is not waited for: the
//!   error goes back to the client with it.
//! - **Budget**: retries may add at most `budget_percent` of the recent
//!   traffic (plus `budget_min_per_sec`), as tower's
//!   [`tower::retry::budget::TpsBudget`] counts it, so an outage
//!   cannot turn into a retry storm.
//!
//! Every retry counts in `llmgate_retries_total{model, reason}`; a retry the
//! budget refused in `llmgate_retry_budget_exhausted_total{model}`.
//!
//! ```
//! use llmgate::retry::{RetryLayer, RetryPolicy};
//! use std::time::Duration;
//!
//! let layer = RetryLayer::new(RetryPolicy::default().attempts(4).base(Duration::from_millis(100)));
//! # let _ = layer;
//! ```

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::retry::budget::{Budget, TpsBudget};
use tower::{Layer, Service, ServiceExt};

use crate::error::ApiError;
use crate::llm::{LlmBody, LlmFuture, LlmRequest, LlmResponse};

/// How [`RetryLayer`] retries.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included. Default 3.
    pub attempts: u32,
    /// The first backoff. Default 250 ms.
    pub base: Duration,
    /// The longest backoff. Default 8 s.
    pub max_backoff: Duration,
    /// The share of a backoff taken off at random (0 – 1). Default 0.2.
    pub jitter: f64,
    /// The longest `retry-after` waited for. Default 30 s.
    pub max_retry_after: Duration,
    /// Retries allowed as a share of recent requests. Default 0.2.
    pub budget_percent: f32,
    /// Retries allowed per second whatever the traffic. Default 10.
    pub budget_min_per_sec: u32,
    /// How long a request counts for the budget. Default 10 s.
    pub budget_window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            jitter: 0.2,
            max_retry_after: Duration::from_secs(30),
            budget_percent: 0.2,
            budget_min_per_sec: 10,
            budget_window: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Sets [`attempts`](Self::attempts).
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = n.max(1);
        self
    }

    /// Sets [`base`](Self::base).
    pub fn base(mut self, d: Duration) -> Self {
        self.base = d;
        self
    }

    /// Sets [`max_backoff`](Self::max_backoff).
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// Sets [`jitter`](Self::jitter).
    pub fn jitter(mut self, share: f64) -> Self {
        // NaN (which `clamp` keeps) would make every backoff panic.
        self.jitter = if share.is_nan() {
            0.0
        } else {
            share.clamp(0.0, 1.0)
        };
        self
    }

    /// Sets [`max_retry_after`](Self::max_retry_after).
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// Sets the budget: `percent` of recent traffic plus `min_per_sec`,
    /// over `window`.
    pub fn budget(mut self, percent: f32, min_per_sec: u32, window: Duration) -> Self {
        self.budget_percent = percent;
        self.budget_min_per_sec = min_per_sec;
        self.budget_window = window;
        self
    }

    /// The backoff before retry `n` (1 for the first retry), with jitter.
    pub fn backoff(&self, n: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << n.saturating_sub(1).min(20));
        let full = exp.min(self.max_backoff);
        if self.jitter <= 0.0 {
            return full;
        }
        full.mul_f64(1.0 - self.jitter * fastrand::f64())
    }
}

/// Whether another attempt may succeed where this one failed.
pub fn is_retryable(err: &ApiError) -> bool {
    err.upstream && err.kind.is_retryable()
}

/// Retries failed attempts; see the [module docs](self).
#[derive(Clone, Debug)]
#[must_use]
pub struct RetryLayer {
    policy: RetryPolicy,
    budget: Arc<TpsBudget>,
}

impl RetryLayer {
    /// A layer retrying with `policy` (and its budget, shared by the
    /// services this layer makes).
    pub fn new(policy: RetryPolicy) -> Self {
        let budget = TpsBudget::new(
            policy.budget_window,
            policy.budget_min_per_sec,
            policy.budget_percent,
        );
        Self {
            policy,
            budget: Arc::new(budget),
        }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            inner,
            policy: self.policy,
            budget: self.budget.clone(),
        }
    }
}

/// The service of [`RetryLayer`].
#[derive(Clone, Debug)]
pub struct Retry<S> {
    inner: S,
    policy: RetryPolicy,
    budget: Arc<TpsBudget>,
}

impl<S> Retry<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Runs one attempt to its commit point: a complete response, or a stream
/// past its first content.
pub(crate) async fn attempt<S>(svc: S, req: LlmRequest) -> Result<LlmResponse, ApiError>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError>,
{
    committed(svc.oneshot(req)).await
}

/// [`attempt`] on a service kept for the next one (no clone per attempt).
pub(crate) async fn attempt_with<S>(svc: &mut S, req: LlmRequest) -> Result<LlmResponse, ApiError>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError>,
{
    committed(svc.ready().await?.call(req)).await
}

/// The error of an attempt the gateway refused after an upstream failed
/// (every deployment cooling down): the client learns what the upstream
/// said, and when to come back.
fn refused(upstream_err: Option<ApiError>, err: ApiError) -> ApiError {
    match upstream_err {
        Some(mut prev) => {
            prev.retry_after = prev.retry_after.max(err.retry_after);
            prev
        }
        None => err,
    }
}

/// Whether `svc` is ready at once. It is polled with a waker that wakes
/// nothing: a service not ready yet is readied again, with the task's own
/// waker, on a clone (`attempt`), so no wake-up is lost.
pub(crate) fn ready_now<S, R>(svc: &mut S) -> bool
where
    S: Service<R>,
{
    let mut cx = Context::from_waker(std::task::Waker::noop());
    matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(())))
}

/// The response of `call` at its commit point.
pub(crate) async fn committed<F>(call: F) -> Result<LlmResponse, ApiError>
where
    F: Future<Output = Result<LlmResponse, ApiError>>,
{
    let mut resp = call.await?;
    resp.body = match resp.body {
        LlmBody::Stream(s) => LlmBody::Stream(s.commit().await?),
        other => other,
    };
    Ok(resp)
}

impl<S> Service<LlmRequest> for Retry<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = LlmResponse;
    type Error = ApiError;
    type Future = LlmFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ApiError>> {
        // Each attempt waits for the inner service's readiness itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: LlmRequest) -> LlmFuture {
        // One clone for every attempt of this request (each readies it).
        let mut inner = self.inner.clone();
        let policy = self.policy;
        let budget = self.budget.clone();
        Box::pin(async move {
            budget.deposit();
            let group = req
                .ctx
                .route
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), |r| r.name.clone());
            let mut n = 1;
            let mut upstream_err: Option<ApiError> = None;
            // Every attempt but the last the policy allows takes a copy; the
            // last takes the request itself.
            while n < policy.attempts {
                let err = match attempt_with(&mut inner, req.clone()).await {
                    Ok(resp) => return Ok(resp),
                    Err(e) => e,
                };
                if !err.upstream {
                    return Err(refused(upstream_err, err));
                }
                if !is_retryable(&err) {
                    return Err(err);
                }
                upstream_err = Some(err.clone());
                // Another deployment left to try: go there at once.
                let failover = req.ctx.attempts.untried_left(req.ctx.route.as_ref());
                let delay = if failover {
                    Duration::ZERO
                } else {
                    match err.retry_after {
                        Some(asked) if asked > policy.max_retry_after => return Err(err),
                        Some(asked) => asked.max(policy.backoff(n)),
                        None => policy.backoff(n),
                    }
                };
                if !budget.withdraw() {
                    ::metrics::counter!("llmgate_retry_budget_exhausted_total", "model" => group.clone()).increment(1);
                    tracing::warn!(error = %err, "retry budget exhausted; not retrying");
                    return Err(err);
                }
                ::metrics::counter!("llmgate_retries_total", "model" => group.clone(), "reason" => err.kind.anthropic_type())
                    .increment(1);
                tracing::info!(attempt = n + 1, delay_ms = delay.as_millis() as u64, error = %err, failover, "retrying");
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                n += 1;
            }
            match attempt_with(&mut inner, req).await {
                Ok(resp) => Ok(resp),
                Err(err) if !err.upstream => Err(refused(upstream_err, err)),
                Err(err) => Err(err),
            }
        })
    }
}

#[cfg(test)]
mod tests;
