//! The LLM tier's request and response: what every pipeline layer sees.
//!
//! An [`LlmRequest`] is a canonical [`ChatRequest`] and its
//! [`RequestContext`] (who asked, in which format, for which model, where it
//! was routed, how long it has taken). An [`LlmResponse`] is a complete
//! [`ChatResponse`], a stream of [`ChatEvent`](crate::chat::ChatEvent)s, or a token count. Every
//! layer of the LLM tier is a `Service<LlmRequest, Response = LlmResponse,
//! Error = ApiError>`: an error is already the error the client gets.

mod stream;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::HeaderMap;

pub use stream::EventStream;

use crate::Format;
use crate::chat::{ChatRequest, ChatResponse};
use crate::error::ApiError;
use crate::metrics::Recorder;

/// A request travelling through the LLM tier. Cloning it (for a retry or a
/// hedged attempt) shares the timing, the record and the list of attempts.
///
/// Both parts are boxed: every layer moves the request into its call and
/// its future, and unboxed it was 752 bytes copied each time (~15 % of the
/// instructions of a small request through the default stack were those
/// copies, by callgrind; boxed, with [`LlmBody::Complete`] boxed too, a
/// request costs ~9 % fewer instructions). Fields read and write through the
/// box as before (`req.chat.model`, `req.ctx.target`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LlmRequest {
    /// The request, in the canonical model.
    pub chat: Box<ChatRequest>,
    /// Everything the layers know about it.
    pub ctx: Box<RequestContext>,
}

impl LlmRequest {
    /// A chat request from a client speaking `inbound`.
    pub fn new(chat: ChatRequest, inbound: Format) -> Self {
        let ctx = RequestContext::new(inbound, chat.model.clone());
        Self {
            chat: Box::new(chat),
            ctx: Box::new(ctx),
        }
    }
}

/// What the request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// A chat completion (`/v1/messages`, `/v1/chat/completions`).
    Chat,
    /// Count the input tokens (`/v1/messages/count_tokens`).
    CountTokens,
}

/// The context of one request, filled in by the layers it passes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestContext {
    /// The gateway's id for the request (`req_…`), sent back in the
    /// `request-id`/`x-request-id` header and in logs.
    pub id: String,
    /// The client's wire format.
    pub inbound: Format,
    /// What the request asks for.
    pub operation: Operation,
    /// The model the client asked for (echoed back in responses).
    pub requested_model: String,
    /// The credential the client presented (`x-api-key` or
    /// `Authorization: Bearer`), if any.
    pub client_key: Option<Secret>,
    /// The name of the gateway key that authenticated the client.
    pub principal: Option<String>,
    /// Set by [`AuthLayer`](crate::auth::AuthLayer): the client's key may be
    /// forwarded to providers configured for passthrough.
    pub passthrough: bool,
    /// Where the model resolved to ([`ResolveLayer`](crate::route::ResolveLayer)).
    pub route: Option<Route>,
    /// The deployment chosen to serve it (the first target of the route
    /// unless a balancer chose another).
    pub target: Option<Target>,
    /// Every deployment an attempt of this request was sent to, in order
    /// (shared by the clones of the request, so retries and hedges see the
    /// attempts of each other).
    pub attempts: Attempts,
    /// Client headers a provider of the same family forwards
    /// (`anthropic-version`, `anthropic-beta`).
    pub forward_headers: HeaderMap,
    /// Timing, shared with the response.
    pub timing: Arc<Timing>,
    /// The request's metrics record, when metrics are on.
    pub recorder: Option<Recorder>,
    /// Anything else, for user layers and hooks.
    pub extensions: http::Extensions,
    /// The length of the client's body as read (0 for a request made in
    /// process): the upstream body's buffer starts from it rather than
    /// doubling its way there.
    pub(crate) body_len_hint: usize,
}

impl RequestContext {
    /// A fresh context.
    pub fn new(inbound: Format, requested_model: String) -> Self {
        Self::with_id(crate::convert::random_id("req_"), inbound, requested_model)
    }

    /// A fresh context with the id the HTTP tier already gave the request.
    pub(crate) fn with_id(id: String, inbound: Format, requested_model: String) -> Self {
        Self {
            id,
            inbound,
            operation: Operation::Chat,
            requested_model,
            client_key: None,
            principal: None,
            passthrough: false,
            route: None,
            target: None,
            attempts: Attempts::default(),
            forward_headers: HeaderMap::new(),
            timing: Arc::new(Timing::new()),
            recorder: None,
            extensions: http::Extensions::new(),
            body_len_hint: 0,
        }
    }
}

/// Where a model name resolved: a model group and its deployments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The group's name (the alias or pattern that matched, or the
    /// `provider/model` asked for); a bounded metrics label.
    pub name: String,
    /// The deployments that can serve it, in order of preference.
    pub targets: Vec<Target>,
}

/// One deployment: a provider, the model name it knows, and optionally a
/// key of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The provider's configured name.
    pub provider: String,
    /// The upstream model.
    pub model: String,
    /// Relative weight among the group's targets.
    pub weight: u32,
    /// A key for this deployment only (else the provider's keys).
    pub api_key: Option<Secret>,
}

impl Target {
    /// A target of weight 1.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            model: model.into(),
            weight: 1,
            api_key: None,
        }
    }

    /// Sets the weight.
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Gives the deployment a key of its own.
    pub fn api_key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.api_key = Some(Secret::new(key));
        self
    }

    /// Whether two targets are the same deployment (provider, model, key;
    /// the weight aside).
    pub fn same_deployment(&self, other: &Target) -> bool {
        self.provider == other.provider
            && self.model == other.model
            && self.api_key == other.api_key
    }

    /// `provider/model`, for labels and logs.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

/// The deployments a request's attempts went to; shared by its clones.
#[derive(Debug, Clone, Default)]
pub struct Attempts(Arc<std::sync::Mutex<AttemptLog>>);

#[derive(Debug, Default)]
struct AttemptLog {
    targets: Vec<Target>,
    /// What the balancer saw at its last pick: whether a deployment it
    /// would send a next attempt to (live, not cooling down, not tried) was
    /// left.
    fresh_left: Option<bool>,
}

impl AttemptLog {
    fn tried(&self, target: &Target) -> bool {
        self.targets.iter().any(|t| t.same_deployment(target))
    }
}

impl Attempts {
    fn lock(&self) -> std::sync::MutexGuard<'_, AttemptLog> {
        crate::sync::lock(&self.0)
    }

    /// Records an attempt to `target`.
    pub fn push(&self, target: Target) {
        self.lock().targets.push(target);
    }

    /// The attempts so far.
    pub fn list(&self) -> Vec<Target> {
        self.lock().targets.clone()
    }

    /// How many attempts so far.
    pub fn len(&self) -> usize {
        self.lock().targets.len()
    }

    /// Whether there was no attempt yet.
    pub fn is_empty(&self) -> bool {
        self.lock().targets.is_empty()
    }

    /// Whether an attempt went to that deployment.
    pub fn tried(&self, target: &Target) -> bool {
        self.lock().tried(target)
    }

    /// Whether a next attempt would go to a deployment not tried yet (a
    /// failover rather than a retry of the same one): as the balancer last
    /// saw it (drained and cooling deployments do not count), or without a
    /// balancer, whether one of `route`'s targets is untried.
    pub fn untried_left(&self, route: Option<&Route>) -> bool {
        let log = self.lock();
        log.fresh_left
            .unwrap_or_else(|| route.is_some_and(|r| r.targets.iter().any(|t| !log.tried(t))))
    }

    /// Records what the balancer saw when it picked (see
    /// [`untried_left`](Self::untried_left)).
    pub(crate) fn set_fresh_left(&self, left: bool) {
        self.lock().fresh_left = Some(left);
    }

    /// Forgets the attempts (a fallback to another model group starts afresh).
    pub fn clear(&self) {
        *self.lock() = AttemptLog::default();
    }
}

/// A secret (an API key): compared in constant time, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with `other` in time that depends only on the lengths.
    pub fn ct_eq(&self, other: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"…\")")
    }
}

/// When a request started and how long it has spent waiting on upstreams;
/// the difference is the gateway's own overhead.
#[derive(Debug)]
pub struct Timing {
    start: Instant,
    upstream_nanos: AtomicU64,
    /// Set once the overhead is reported (the response headers): waits
    /// after that are no longer counted.
    settled: AtomicBool,
}

impl Default for Timing {
    fn default() -> Self {
        Self::new()
    }
}

impl Timing {
    /// Starts the clock now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            upstream_nanos: AtomicU64::new(0),
            settled: AtomicBool::new(false),
        }
    }

    /// Starts the clock at `start` (when the request began to arrive).
    pub(crate) fn since(start: Instant) -> Self {
        Self {
            start,
            ..Self::new()
        }
    }

    /// When the request arrived.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Time since the request arrived.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Adds time spent waiting on an upstream.
    pub fn add_upstream(&self, waited: Duration) {
        self.upstream_nanos
            .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Total time spent waiting on upstreams so far. Behind the HTTP tier
    /// ([`crate::http`]), a stream's waits after the response headers (when
    /// the overhead is reported) are not counted.
    pub fn upstream(&self) -> Duration {
        Duration::from_nanos(self.upstream_nanos.load(Ordering::Relaxed))
    }

    /// Elapsed time minus upstream time: the gateway's own work so far.
    /// Meaningful up to the response headers; see [`upstream`](Self::upstream).
    pub fn overhead(&self) -> Duration {
        self.elapsed().saturating_sub(self.upstream())
    }

    /// The overhead as reported with the response headers (header and
    /// metric); a stream's later waits on its upstream are not timed.
    pub(crate) fn settle(&self) -> Duration {
        self.settled.store(true, Ordering::Relaxed);
        self.overhead()
    }

    /// Whether [`settle`](Self::settle) was called: the crate reads the
    /// upstream time no more.
    pub(crate) fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Relaxed)
    }
}

/// What the LLM tier answers.
#[derive(Debug)]
#[non_exhaustive]
pub struct LlmResponse {
    /// The answer.
    pub body: LlmBody,
    /// Upstream headers worth passing on (rate-limit headers).
    pub headers: HeaderMap,
}

impl LlmResponse {
    /// A complete response.
    pub fn complete(response: ChatResponse) -> Self {
        Self {
            body: LlmBody::Complete(Box::new(response)),
            headers: HeaderMap::new(),
        }
    }

    /// A streamed response.
    pub fn stream(stream: EventStream) -> Self {
        Self {
            body: LlmBody::Stream(stream),
            headers: HeaderMap::new(),
        }
    }

    /// A token count.
    pub fn token_count(input_tokens: u64) -> Self {
        Self {
            body: LlmBody::TokenCount(input_tokens),
            headers: HeaderMap::new(),
        }
    }
}

/// The body of an [`LlmResponse`].
#[non_exhaustive]
pub enum LlmBody {
    /// A complete response (boxed: it travels back through every layer, and
    /// one allocation costs less than its 272 bytes copied at each).
    Complete(Box<ChatResponse>),
    /// A stream of events; it ends with `MessageStop` or `Error`.
    Stream(EventStream),
    /// The input tokens of a count-tokens request.
    TokenCount(u64),
}

impl fmt::Debug for LlmBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LlmBody::Complete(r) => f.debug_tuple("Complete").field(r).finish(),
            LlmBody::Stream(_) => f.write_str("Stream(..)"),
            LlmBody::TokenCount(n) => f.debug_tuple("TokenCount").field(n).finish(),
        }
    }
}

/// The future of an LLM-tier service.
pub type LlmFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<LlmResponse, ApiError>> + Send + 'static>,
>;

/// `fut` as an [`LlmFuture`]: boxed, unless it is one already. A layer that
/// hands its inner service's future on would otherwise box a box, one
/// allocation more per request and one more indirection per poll. (The
/// check is on types known at compile time, so it costs nothing at run
/// time; axum's `try_downcast` does the same.)
pub(crate) fn boxed<F>(fut: F) -> LlmFuture
where
    F: std::future::Future<Output = Result<LlmResponse, ApiError>> + Send + 'static,
{
    let mut slot = Some(fut);
    let any: &mut dyn std::any::Any = &mut slot;
    if let Some(already) = any
        .downcast_mut::<Option<LlmFuture>>()
        .and_then(Option::take)
    {
        return already;
    }
    match slot {
        Some(fut) => Box::pin(fut),
        // Taken above only when it was an `LlmFuture`, and then returned:
        // not reached, and an error rather than a panic if it ever were.
        None => Box::pin(std::future::ready(Err(ApiError::api(
            "a layer's future went missing",
        )))),
    }
}

/// A type-erased, cloneable LLM-tier service.
pub type BoxLlmService = tower::util::BoxCloneSyncService<LlmRequest, LlmResponse, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn address(fut: &LlmFuture) -> *const () {
        std::ptr::from_ref(&**fut).cast()
    }

    #[tokio::test]
    async fn a_boxed_future_is_handed_on_and_another_is_boxed() {
        let already: LlmFuture = Box::pin(async { Ok(LlmResponse::token_count(7)) });
        let at = address(&already);
        let handed = boxed(already);
        assert_eq!(address(&handed), at, "an `LlmFuture` is not boxed again");
        assert!(matches!(handed.await.unwrap().body, LlmBody::TokenCount(7)));

        let other = boxed(async { Err(ApiError::api("no")) });
        assert_eq!(other.await.unwrap_err().message, "no");
    }
}
