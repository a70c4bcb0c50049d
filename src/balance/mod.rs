//! Load balancing over the deployments of a model group.
//!
//! A resolved [`Route`] names a model group: its deployments (provider,
//! upstream model, optionally a key of their own, weight). [`BalanceLayer`]
//! picks one deployment per attempt and puts it in `ctx.target`:
//!
//! 1. deployments with weight 0 are out;
//! 2. a deployment this request already tried is not picked again while an
//!    untried one is available (so a retry fails over);
//! 3. a deployment cooling down is skipped (see below); when every one of
//!    them is, the request fails at once with `overloaded_error` and a
//!    `retry-after` of the shortest remaining cooldown — an outage does not
//!    turn into a stream of doomed requests;
//! 4. among the rest, a [`Strategy`] chooses: [`RoundRobin`], [`Weighted`],
//!    [`LeastInFlight`] or [`Latency`] (peak EWMA of time to first token for
//!    streams and of duration for complete responses, times the requests in
//!    flight + 1).
//!
//! **Health.** A deployment that answers 429 or overloaded is cooled down
//! for its `retry-after` (capped), or the base cooldown; other failures
//! (5xx, timeouts, connection errors, rejected keys) cool it down once they
//! reach `allowed_failures`, for a time that doubles with every further
//! failure up to a maximum. Failures decay (halve every `half_life`), and a
//! success clears them. Client errors (400, 404, …) are not the deployment's
//! fault and change nothing.
//!
//! **In flight** counts are held until the response ends: a stream counts
//! until its last event or until it is dropped.
//!
//! Groups defined up front ([`BalanceLayer::group`]) or met with two or more
//! targets are tracked; a one-target route that was not defined up front
//! (a `provider/model` name) passes through untracked, so clients cannot grow
//! the balancer's state. A [`BalanceHandle`] adds, removes and re-weights
//! deployments at runtime.
//!
//! In the default stack the layer sits below retry and hedging, above the
//! per-attempt timeouts.
//!
//! ```
//! use llmgate::balance::{BalanceLayer, Latency};
//! use llmgate::llm::Target;
//!
//! let layer = BalanceLayer::new(Latency::default())
//!     .group("big", [Target::new("openai", "gpt-4o").weight(3), Target::new("azure", "gpt-4o")]);
//! let handle = layer.handle();
//! handle.add("big", Target::new("backup", "gpt-4o"));
//! handle.set_weight("big", &Target::new("azure", "gpt-4o"), 0); // drain it
//! assert_eq!(handle.deployments("big").len(), 3);
//! ```

mod health;
mod strategy;

use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::time::Instant;
use tower::{Layer, Service};

pub use health::HealthConfig;
pub use strategy::{Candidate, Latency, LeastInFlight, RoundRobin, Strategy, Weighted};

use crate::chat::ChatEvent;
use crate::error::{ApiError, ErrorKind};
use crate::llm::{LlmBody, LlmFuture, LlmRequest, LlmResponse, Route, Target};
use crate::sync::{FastMap, lock, read, write};
use health::{Health, PeakEwma};

/// One deployment of a group, with its live state.
#[derive(Debug)]
struct Deployment {
    target: Target,
    weight: AtomicU32,
    in_flight: AtomicUsize,
    latency: Mutex<PeakEwma>,
    health: Mutex<Health>,
}

impl Deployment {
    fn new(target: Target) -> Self {
        Self {
            weight: AtomicU32::new(target.weight),
            target,
            in_flight: AtomicUsize::new(0),
            latency: Mutex::new(PeakEwma::default()),
            health: Mutex::new(Health::default()),
        }
    }
}

#[derive(Debug, Default)]
struct Group {
    deployments: RwLock<Vec<Arc<Deployment>>>,
    counter: AtomicUsize,
}

impl Group {
    fn with(targets: impl IntoIterator<Item = Target>) -> Self {
        Self {
            deployments: RwLock::new(
                targets
                    .into_iter()
                    .map(|t| Arc::new(Deployment::new(t)))
                    .collect(),
            ),
            counter: AtomicUsize::new(0),
        }
    }

    fn list(&self) -> Vec<Arc<Deployment>> {
        read(&self.deployments).clone()
    }
}

struct State {
    groups: RwLock<FastMap<String, Arc<Group>>>,
    strategy: Box<dyn Strategy>,
    health: RwLock<HealthConfig>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalanceState").finish_non_exhaustive()
    }
}

impl State {
    fn group(&self, name: &str) -> Option<Arc<Group>> {
        read(&self.groups).get(name).cloned()
    }

    /// The tracked group of a route: defined up front, or created for a
    /// route with two or more targets.
    fn group_for(&self, route: &Route) -> Option<Arc<Group>> {
        if let Some(g) = self.group(&route.name) {
            return Some(g);
        }
        if route.targets.len() < 2 {
            return None;
        }
        let mut groups = write(&self.groups);
        Some(
            groups
                .entry(route.name.clone())
                .or_insert_with(|| Arc::new(Group::with(route.targets.iter().cloned())))
                .clone(),
        )
    }

    fn pick(
        &self,
        group: &Group,
        route: &str,
        req: &LlmRequest,
    ) -> Result<(Arc<Deployment>, bool), ApiError> {
        let now = Instant::now();
        // The pool is gathered under the group's lock without a list per
        // step; the strategy (user code) runs after the lock is released.
        let tried = |d: &Arc<Deployment>| req.ctx.attempts.tried(&d.target);
        let cooling = |d: &Arc<Deployment>| lock(&d.health).cooling(now);
        let (pool, fresh_left, wait) = {
            let deployments = read(&group.deployments);
            let live = || {
                deployments
                    .iter()
                    .filter(|d| d.weight.load(Ordering::Relaxed) > 0)
            };
            if live().next().is_none() {
                return Err(ApiError::new(
                    ErrorKind::Overloaded,
                    format!("model `{route}` has no deployment to serve it"),
                ));
            }
            // The healthy untried deployments, or else the healthy tried ones.
            let untried: Vec<Arc<Deployment>> = live()
                .filter(|d| !tried(d) && cooling(d).is_none())
                .cloned()
                .collect();
            // After this pick, is a fresh deployment left for a next attempt?
            let fresh_left = untried.len() > 1;
            let pool: Vec<Arc<Deployment>> = if untried.is_empty() {
                live()
                    .filter(|d| tried(d) && cooling(d).is_none())
                    .cloned()
                    .collect()
            } else {
                untried
            };
            let wait = pool
                .is_empty()
                .then(|| live().filter_map(cooling).min().unwrap_or(Duration::ZERO));
            (pool, fresh_left, wait)
        };
        if let Some(wait) = wait {
            return Err(ApiError::new(
                ErrorKind::Overloaded,
                format!("every deployment of model `{route}` is cooling down after failures"),
            )
            .with_retry_after(wait));
        }
        let candidates: Vec<Candidate<'_>> = pool
            .iter()
            .map(|d| Candidate {
                target: &d.target,
                weight: d.weight.load(Ordering::Relaxed),
                in_flight: d.in_flight.load(Ordering::Relaxed),
                latency: lock(&d.latency).get(),
            })
            .collect();
        let counter = group.counter.fetch_add(1, Ordering::Relaxed);
        let i = self.strategy.pick(&candidates, counter).min(pool.len() - 1);
        Ok((pool[i].clone(), fresh_left))
    }

    fn failure(&self, d: &Deployment, err: &ApiError) {
        if !counts_against(err) {
            return;
        }
        let config = *read(&self.health);
        let started = lock(&d.health).failure(&config, Instant::now(), err);
        if let Some(cooldown) = started {
            ::metrics::counter!("llmgate_cooldowns_total",
                "provider" => d.target.provider.clone(), "model" => d.target.model.clone())
            .increment(1);
            tracing::info!(deployment = %d.target.label(), cooldown_ms = cooldown.as_millis() as u64, error = %err, "deployment cooling down");
        }
    }

    fn success(&self, d: &Deployment) {
        lock(&d.health).success();
    }
}

/// Whether a failure is the deployment's: upstream rate limits, overload,
/// server errors, timeouts, connection errors, rejected keys.
fn counts_against(err: &ApiError) -> bool {
    err.upstream
        && (err.kind.is_retryable()
            || matches!(
                err.kind,
                ErrorKind::Authentication | ErrorKind::PermissionDenied
            ))
}

/// Picks a deployment per attempt; see the [module docs](self).
#[derive(Clone, Debug)]
#[must_use]
pub struct BalanceLayer {
    state: Arc<State>,
}

impl BalanceLayer {
    /// A balancer choosing with `strategy`, with the default health
    /// settings.
    pub fn new(strategy: impl Strategy) -> Self {
        Self {
            state: Arc::new(State {
                groups: RwLock::new(FastMap::default()),
                strategy: Box::new(strategy),
                health: RwLock::new(HealthConfig::default()),
            }),
        }
    }

    /// Sets the health settings (for this layer and its handles).
    pub fn health(self, health: HealthConfig) -> Self {
        *write(&self.state.health) = health;
        self
    }

    /// Defines a model group up front (the route name it answers to, and its
    /// deployments).
    pub fn group(self, name: impl Into<String>, targets: impl IntoIterator<Item = Target>) -> Self {
        let group = Arc::new(Group::with(targets));
        write(&self.state.groups).insert(name.into(), group);
        self
    }

    /// A handle to change the groups at runtime.
    pub fn handle(&self) -> BalanceHandle {
        BalanceHandle {
            state: self.state.clone(),
        }
    }
}

impl<S> Layer<S> for BalanceLayer {
    type Service = Balance<S>;

    fn layer(&self, inner: S) -> Balance<S> {
        Balance {
            inner,
            state: self.state.clone(),
        }
    }
}

/// Changes a balancer's groups at runtime, without a restart.
#[derive(Clone, Debug)]
pub struct BalanceHandle {
    state: Arc<State>,
}

/// A deployment as the balancer sees it now.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeploymentStatus {
    /// The deployment.
    pub target: Target,
    /// Its current weight.
    pub weight: u32,
    /// Requests it is serving now.
    pub in_flight: usize,
    /// Its latency estimate.
    pub latency: Option<Duration>,
    /// How much longer it cools down.
    pub cooling_for: Option<Duration>,
}

impl BalanceHandle {
    /// Adds a deployment to a group (creating the group).
    pub fn add(&self, group: &str, target: Target) {
        let mut groups = write(&self.state.groups);
        let g = groups.entry(group.to_owned()).or_default();
        let mut list = write(&g.deployments);
        match list.iter().position(|d| d.target.same_deployment(&target)) {
            Some(i) => list[i].weight.store(target.weight, Ordering::Relaxed),
            None => list.push(Arc::new(Deployment::new(target))),
        }
    }

    /// Removes a deployment; `false` if it was not there. Requests it is
    /// serving finish normally.
    pub fn remove(&self, group: &str, target: &Target) -> bool {
        let Some(g) = self.state.group(group) else {
            return false;
        };
        let mut list = write(&g.deployments);
        let before = list.len();
        list.retain(|d| !d.target.same_deployment(target));
        list.len() != before
    }

    /// Sets a deployment's weight (0 drains it); `false` if it is not there.
    pub fn set_weight(&self, group: &str, target: &Target, weight: u32) -> bool {
        let Some(g) = self.state.group(group) else {
            return false;
        };
        let list = g.list();
        match list.iter().find(|d| d.target.same_deployment(target)) {
            Some(d) => {
                d.weight.store(weight, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// The deployments of a group, as the balancer sees them now.
    pub fn deployments(&self, group: &str) -> Vec<DeploymentStatus> {
        let now = Instant::now();
        self.state
            .group(group)
            .map(|g| g.list())
            .unwrap_or_default()
            .iter()
            .map(|d| DeploymentStatus {
                target: d.target.clone(),
                weight: d.weight.load(Ordering::Relaxed),
                in_flight: d.in_flight.load(Ordering::Relaxed),
                latency: lock(&d.latency).get(),
                cooling_for: lock(&d.health).cooling(now),
            })
            .collect()
    }
}

/// The service of [`BalanceLayer`].
#[derive(Clone, Debug)]
pub struct Balance<S> {
    inner: S,
    state: Arc<State>,
}

impl<S> Balance<S> {
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

/// Counts a request in flight on a deployment until dropped.
struct InFlight(Arc<Deployment>);

impl InFlight {
    fn new(d: Arc<Deployment>) -> Self {
        d.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(d)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S> Service<LlmRequest> for Balance<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = LlmResponse;
    type Error = ApiError;
    type Future = LlmFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ApiError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: LlmRequest) -> LlmFuture {
        // `poll_ready` readied `self.inner`, which is called below rather
        // than a clone of it (a clone per request costs an atomic increment
        // and decrement per `Arc` in the stack below).
        let Some(route) = req.ctx.route.as_ref() else {
            return Box::pin(std::future::ready(Err(ApiError::api(
                "the request has no route: put a ResolveLayer in front of the balancer",
            ))));
        };
        let Some(group) = self.state.group_for(route) else {
            // One deployment, not tracked: nothing to choose.
            if let Some(target) = route.targets.first().cloned() {
                req.ctx.attempts.push(target.clone());
                req.ctx.attempts.set_fresh_left(false);
                req.ctx.target = Some(target);
            }
            return crate::llm::boxed(self.inner.call(req));
        };
        let (deployment, fresh_left) = match self.state.pick(&group, &route.name, &req) {
            Ok(picked) => picked,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        req.ctx.attempts.push(deployment.target.clone());
        req.ctx.attempts.set_fresh_left(fresh_left);
        req.ctx.target = Some(deployment.target.clone());
        let state = self.state.clone();
        let guard = InFlight::new(deployment.clone());
        let start = Instant::now();
        let call = self.inner.call(req);
        Box::pin(async move {
            match call.await {
                Ok(mut resp) => {
                    resp.body = match resp.body {
                        LlmBody::Complete(r) => {
                            lock(&deployment.latency).observe(start.elapsed(), Instant::now());
                            state.success(&deployment);
                            LlmBody::Complete(r)
                        }
                        LlmBody::Stream(s) => LlmBody::Stream(s.map_inner(|inner| Observed {
                            inner,
                            state,
                            guard: Some(guard),
                            start,
                            content: false,
                        })),
                        other => other,
                    };
                    Ok(resp)
                }
                Err(e) => {
                    state.failure(&deployment, &e);
                    Err(e)
                }
            }
        })
    }
}

/// A stream that reports to its deployment: latency at the first content,
/// failure on an error event, in flight until it ends.
struct Observed {
    inner: Pin<Box<dyn Stream<Item = ChatEvent> + Send>>,
    state: Arc<State>,
    guard: Option<InFlight>,
    start: Instant,
    content: bool,
}

impl Stream for Observed {
    type Item = ChatEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        let this = &mut *self;
        let polled = this.inner.as_mut().poll_next(cx);
        let (Poll::Ready(next), Some(guard)) = (&polled, &this.guard) else {
            return polled;
        };
        let deployment = &guard.0;
        let release = match next {
            Some(ChatEvent::BlockStart { .. } | ChatEvent::BlockDelta { .. }) if !this.content => {
                this.content = true;
                lock(&deployment.latency).observe(this.start.elapsed(), Instant::now());
                this.state.success(deployment);
                false
            }
            Some(ChatEvent::Error(e)) => {
                this.state.failure(deployment, e);
                true
            }
            Some(ChatEvent::MessageStop) | None => {
                if !this.content {
                    this.state.success(deployment);
                }
                true
            }
            _ => false,
        };
        if release {
            this.guard = None;
        }
        polled
    }
}

#[cfg(test)]
mod tests;
