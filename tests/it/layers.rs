//! The layers call the service their `poll_ready` readied, at once, instead
//! of a clone of the stack below made per request and per layer (each clone
//! costs an atomic increment and decrement per `Arc` in that stack).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll};
use std::time::Duration;

use llmgate::auth::{AuthLayer, AuthMode};
use llmgate::balance::{BalanceLayer, RoundRobin};
use llmgate::chat::{ChatRequest, ChatResponse, Message, Role};
use llmgate::fallback::FallbackLayer;
use llmgate::llm::{LlmFuture, LlmRequest, LlmResponse, Target};
use llmgate::metrics::{MetricsLayer, Tracker};
use llmgate::preprocess::{Hooks, PreprocessLayer};
use llmgate::retry::{RetryLayer, RetryPolicy};
use llmgate::route::{ResolveLayer, Resolver};
use llmgate::timeout::TimeoutLayer;
use llmgate::{ApiError, Format};
use tower::{Layer, Service, ServiceExt};

#[derive(Default)]
struct Counts {
    clones: AtomicUsize,
    calls: AtomicUsize,
    unready_calls: AtomicUsize,
}

/// Answers every request; counts its clones, and the calls made without a
/// `poll_ready` first (a clone starts unready). With `pending_first`, each
/// instance answers its first `poll_ready` with `Pending` (waking the task)
/// and is ready at the next.
struct Upstream {
    counts: Arc<Counts>,
    pending_first: bool,
    polled: bool,
    ready: bool,
}

impl Upstream {
    fn new(counts: &Arc<Counts>, pending_first: bool) -> Self {
        Self {
            counts: counts.clone(),
            pending_first,
            polled: false,
            ready: false,
        }
    }
}

impl Clone for Upstream {
    fn clone(&self) -> Self {
        self.counts.clones.fetch_add(1, SeqCst);
        Self::new(&self.counts, self.pending_first)
    }
}

impl Service<LlmRequest> for Upstream {
    type Response = LlmResponse;
    type Error = ApiError;
    type Future = LlmFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ApiError>> {
        if self.pending_first && !std::mem::replace(&mut self.polled, true) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: LlmRequest) -> LlmFuture {
        if !std::mem::take(&mut self.ready) {
            self.counts.unready_calls.fetch_add(1, SeqCst);
        }
        self.counts.calls.fetch_add(1, SeqCst);
        Box::pin(async { Ok(LlmResponse::complete(ChatResponse::default())) })
    }
}

#[tokio::test]
async fn the_stack_is_not_cloned_per_layer_and_request() {
    let counts = Arc::new(Counts::default());
    let resolver = Resolver::new().alias("m", [Target::new("p", "up")]);
    let hooks = Hooks::new().request(|req: &mut LlmRequest| {
        req.chat.max_tokens = Some(16);
        Ok(())
    });
    let mut stack = AuthLayer::new(AuthMode::Open).layer(
        ResolveLayer::new(resolver.clone()).layer(
            PreprocessLayer::new(hooks).layer(
                MetricsLayer::new(Tracker::new()).layer(
                    TimeoutLayer::new().total(Duration::from_secs(5)).layer(
                        FallbackLayer::new(resolver).layer(
                            RetryLayer::new(RetryPolicy::default()).layer(
                                BalanceLayer::new(RoundRobin).layer(
                                    TimeoutLayer::new()
                                        .first_byte(Duration::from_secs(5))
                                        .layer(Upstream::new(&counts, false)),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    );
    for _ in 0..3 {
        let req = LlmRequest::new(
            ChatRequest::new("m", vec![Message::text(Role::User, "hi")]),
            Format::OpenAi,
        );
        let resp = stack.ready().await.unwrap().call(req).await;
        assert!(resp.is_ok(), "{resp:?}");
    }
    assert_eq!(counts.calls.load(SeqCst), 3);
    assert_eq!(
        counts.unready_calls.load(SeqCst),
        0,
        "a call without poll_ready"
    );
    // Retry keeps one clone per request for its attempts; no other layer
    // clones what is below it.
    assert_eq!(counts.clones.load(SeqCst), 3);
}

#[tokio::test]
async fn a_service_not_ready_at_once_is_readied_inside_the_request() {
    // The fallback layer answers ready at once and leaves each attempt to
    // wait for the service below inside the request's future (under the
    // deadlines above it): a service that is not ready at once is readied
    // there, on a clone, and called only once ready.
    let counts = Arc::new(Counts::default());
    let resolver = Resolver::new().alias("m", [Target::new("p", "up")]);
    let mut stack = TimeoutLayer::new()
        .total(Duration::from_secs(5))
        .layer(FallbackLayer::new(resolver).layer(Upstream::new(&counts, true)));
    let req = LlmRequest::new(
        ChatRequest::new("m", vec![Message::text(Role::User, "hi")]),
        Format::OpenAi,
    );
    let resp = stack.ready().await.unwrap().call(req).await;
    assert!(resp.is_ok(), "{resp:?}");
    assert_eq!(counts.calls.load(SeqCst), 1);
    assert_eq!(
        counts.unready_calls.load(SeqCst),
        0,
        "a call without poll_ready"
    );
    assert_eq!(
        counts.clones.load(SeqCst),
        1,
        "the first attempt went to a clone"
    );
}
