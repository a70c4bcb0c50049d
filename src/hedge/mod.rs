//! Hedged requests: a second attempt to another deployment when the first
//! is slow, first success wins.
//!
//! [`HedgeLayer`] sends an attempt; if it has not reached its commit point
//! (a complete response, or a stream's first content) after `delay`, it
//! sends another to a deployment this request has not tried (the balancer
//! below picks it), and so on up to `legs` attempts at once. The first to
//! succeed wins; the others are dropped — their upstream connections closed
//! — and counted in `llmgate_hedges_total{model, outcome}` (`launched`,
//! `won_by_hedge`, `cancelled`). With `delay` zero, all legs go out at once
//! (a race). When no untried deployment is left, no hedge is sent.
//!
//! A leg that fails does not end the race while another is running; when
//! every leg failed, the last error is returned (for the retry layer above to
//! judge).
//!
//! In the default stack the layer sits between retry and the balancer, and
//! is off unless configured.
//!
//! ```
//! use llmgate::hedge::HedgeLayer;
//! use std::time::Duration;
//!
//! let hedge = HedgeLayer::new(Duration::from_millis(800)); // two legs
//! let race = HedgeLayer::new(Duration::ZERO).legs(3); // three at once
//! # let _ = (hedge, race);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use crate::error::ApiError;
use crate::llm::{LlmFuture, LlmRequest, LlmResponse};
use crate::retry::attempt;

/// Sends hedged attempts; see the [module docs](self).
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct HedgeLayer {
    delay: Duration,
    legs: usize,
}

impl HedgeLayer {
    /// Hedge with a second attempt after `delay`.
    pub fn new(delay: Duration) -> Self {
        Self { delay, legs: 2 }
    }

    /// At most `legs` attempts at once (2 by default; 1 turns hedging off).
    pub fn legs(mut self, legs: usize) -> Self {
        self.legs = legs.max(1);
        self
    }
}

impl<S> Layer<S> for HedgeLayer {
    type Service = Hedge<S>;

    fn layer(&self, inner: S) -> Hedge<S> {
        Hedge {
            inner,
            delay: self.delay,
            legs: self.legs,
        }
    }
}

/// The service of [`HedgeLayer`].
#[derive(Debug, Clone)]
pub struct Hedge<S> {
    inner: S,
    delay: Duration,
    legs: usize,
}

impl<S> Hedge<S> {
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

type Leg = Pin<Box<dyn Future<Output = Result<LlmResponse, ApiError>> + Send>>;

impl<S> Service<LlmRequest> for Hedge<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = LlmResponse;
    type Error = ApiError;
    type Future = LlmFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ApiError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: LlmRequest) -> LlmFuture {
        let inner = self.inner.clone();
        let (delay, max_legs) = (self.delay, self.legs);
        if max_legs <= 1 {
            return Box::pin(attempt(inner, req));
        }
        Box::pin(async move {
            let group = req
                .ctx
                .route
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), |r| r.name.clone());
            let can_hedge =
                |req: &LlmRequest| req.ctx.attempts.untried_left(req.ctx.route.as_ref());
            let mut legs: Vec<(usize, Leg)> =
                vec![(0, Box::pin(attempt(inner.clone(), req.clone())))];
            let mut launched = 1;
            let mut timer: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep(delay));
            let mut last_err: Option<ApiError> = None;
            let label = group.clone();
            // The closure owns everything it touches, so the future is Send
            // without asking the inner service to be Sync.
            let (winner, resp, cancelled) = std::future::poll_fn(move |cx| {
                // Launch the next leg when its time has come.
                while launched < max_legs && timer.as_mut().poll(cx).is_ready() {
                    if !can_hedge(&req) {
                        // Nowhere left to send another leg: stop checking.
                        launched = max_legs;
                        break;
                    }
                    ::metrics::counter!("llmgate_hedges_total", "model" => label.clone(), "outcome" => "launched")
                        .increment(1);
                    tracing::debug!(leg = launched + 1, "hedging: another attempt");
                    legs.push((launched, Box::pin(attempt(inner.clone(), req.clone()))));
                    launched += 1;
                    timer.as_mut().reset(Instant::now() + delay);
                }
                let mut i = 0;
                while i < legs.len() {
                    match legs[i].1.as_mut().poll(cx) {
                        Poll::Ready(Ok(resp)) => {
                            let winner = legs[i].0;
                            // The other legs are dropped with the closure,
                            // which cancels them.
                            return Poll::Ready(Ok((winner, resp, legs.len() - 1)));
                        }
                        Poll::Ready(Err(e)) => {
                            last_err = Some(e);
                            drop(legs.swap_remove(i));
                        }
                        Poll::Pending => i += 1,
                    }
                }
                if legs.is_empty() {
                    // Every leg sent so far failed: let the retry layer judge.
                    let err = last_err.take().unwrap_or_else(|| ApiError::api("no attempt was made"));
                    return Poll::Ready(Err(err));
                }
                Poll::Pending
            })
            .await?;
            if winner > 0 {
                ::metrics::counter!("llmgate_hedges_total", "model" => group.clone(), "outcome" => "won_by_hedge")
                    .increment(1);
            }
            if cancelled > 0 {
                ::metrics::counter!("llmgate_hedges_total", "model" => group, "outcome" => "cancelled")
                    .increment(cancelled as u64);
                tracing::debug!(cancelled, winner, "hedging: slower attempts cancelled");
            }
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::Mutex as StdMutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::Format;
    use crate::balance::{BalanceLayer, RoundRobin};
    use crate::chat::{ChatRequest, ChatResponse, Message, Role};
    use crate::llm::{LlmBody, Route, Target};

    fn request(targets: &[&str]) -> LlmRequest {
        let mut req = LlmRequest::new(
            ChatRequest::new("g", vec![Message::text(Role::User, "x")]),
            Format::OpenAi,
        );
        req.ctx.route = Some(Route {
            name: "g".into(),
            targets: targets.iter().map(|t| Target::new(*t, "m")).collect(),
        });
        req
    }

    /// Each deployment answers after its own delay (its id); counts the
    /// attempts that were dropped before they finished.
    fn upstream(
        delays: &'static [(&'static str, u64)],
        started: Arc<StdMutex<Vec<(String, Instant)>>>,
        dropped: Arc<AtomicUsize>,
    ) -> impl Service<LlmRequest, Response = LlmResponse, Error = ApiError, Future = LlmFuture> + Clone
    {
        service_fn(move |req: LlmRequest| -> LlmFuture {
            let p = req.ctx.target.as_ref().unwrap().provider.clone();
            started.lock().unwrap().push((p.clone(), Instant::now()));
            let ms = delays.iter().find(|(n, _)| *n == p).map_or(0, |(_, d)| *d);
            let dropped = dropped.clone();
            Box::pin(async move {
                struct OnDrop(Arc<AtomicUsize>, bool);
                impl Drop for OnDrop {
                    fn drop(&mut self) {
                        if !self.1 {
                            self.0.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                let mut guard = OnDrop(dropped, false);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                guard.1 = true;
                Ok(LlmResponse::complete(ChatResponse {
                    id: p,
                    ..ChatResponse::default()
                }))
            })
        })
    }

    async fn run(
        layer: HedgeLayer,
        delays: &'static [(&'static str, u64)],
        targets: &[&str],
    ) -> (String, Vec<(String, Duration)>, usize, Duration) {
        let started = Arc::new(StdMutex::new(Vec::new()));
        let dropped = Arc::new(AtomicUsize::new(0));
        let svc = layer.layer(BalanceLayer::new(RoundRobin).layer(upstream(
            delays,
            started.clone(),
            dropped.clone(),
        )));
        let t0 = Instant::now();
        let resp = svc.oneshot(request(targets)).await.unwrap();
        let took = t0.elapsed();
        let LlmBody::Complete(r) = resp.body else {
            panic!()
        };
        let starts = started
            .lock()
            .unwrap()
            .iter()
            .map(|(p, t)| (p.clone(), *t - t0))
            .collect();
        (r.id, starts, dropped.load(Ordering::SeqCst), took)
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_first_attempt_is_hedged_after_the_delay_and_the_loser_cancelled() {
        let (winner, starts, dropped, took) = run(
            HedgeLayer::new(Duration::from_millis(100)),
            &[("a", 1000), ("b", 50)],
            &["a", "b"],
        )
        .await;
        assert_eq!(winner, "b");
        assert_eq!(
            starts,
            [
                ("a".into(), Duration::ZERO),
                ("b".into(), Duration::from_millis(100))
            ]
        );
        assert_eq!(took, Duration::from_millis(150));
        assert_eq!(dropped, 1, "the slow attempt was cancelled");
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_first_attempt_sends_no_hedge() {
        let (winner, starts, dropped, _) = run(
            HedgeLayer::new(Duration::from_millis(100)),
            &[("a", 30), ("b", 10)],
            &["a", "b"],
        )
        .await;
        assert_eq!((winner.as_str(), starts.len(), dropped), ("a", 1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_delay_races_every_leg_at_once() {
        let (winner, starts, dropped, took) = run(
            HedgeLayer::new(Duration::ZERO).legs(3),
            &[("a", 300), ("b", 200), ("c", 100)],
            &["a", "b", "c"],
        )
        .await;
        assert_eq!(winner, "c");
        assert!(starts.iter().all(|(_, t)| t.is_zero()));
        assert_eq!(
            (starts.len(), dropped, took),
            (3, 2, Duration::from_millis(100))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_hedge_without_another_deployment() {
        let (_, starts, _, took) = run(
            HedgeLayer::new(Duration::from_millis(10)),
            &[("a", 500)],
            &["a"],
        )
        .await;
        assert_eq!((starts.len(), took), (1, Duration::from_millis(500)));
    }
}
