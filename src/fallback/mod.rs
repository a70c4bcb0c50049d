//! Fallbacks across model groups.
//!
//! [`FallbackLayer`] sends a request to its model group; when that fails for
//! good (the retry layer below gave up), it sends it to the next group of the
//! route's chain — `big` → `small` — and so on:
//!
//! - after an upstream failure another attempt may fix (429, 5xx, timeouts,
//!   overload, connection errors), along the route's **fallbacks**;
//! - after a context-window overflow (`context_length_exceeded`, "prompt is
//!   too long"), along its **context-window fallbacks** (models with a larger
//!   window).
//!
//! Other errors (a bad request, a rejected key) go back to the client. A
//! stream falls back only before its commit point. Every fallback counts in
//! `llmgate_fallbacks_total{from, to, reason}`. The client still sees the
//! model name it asked for.
//!
//! In the default stack the layer sits above retry (each group gets its own
//! attempts) and below preprocessing and metrics.
//!
//! ```
//! use llmgate::fallback::FallbackLayer;
//! use llmgate::llm::Target;
//! use llmgate::route::Resolver;
//!
//! let resolver = Resolver::new()
//!     .alias("big", [Target::new("openai", "gpt-4o")])
//!     .alias("small", [Target::new("openai", "gpt-4o-mini")])
//!     .alias("long", [Target::new("google", "gemini-2.5-pro")]);
//! let layer = FallbackLayer::new(resolver)
//!     .fallbacks("big", ["small"])
//!     .context_window_fallbacks("big", ["long"]);
//! # let _ = layer;
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use crate::error::ApiError;
use crate::llm::{LlmFuture, LlmRequest, LlmResponse};
use crate::retry::{attempt, attempt_with, committed, is_retryable, ready_now};
use crate::route::Resolver;
use crate::sync::FastMap;

#[derive(Debug, Default, Clone)]
struct Chains {
    on_error: Vec<String>,
    on_context: Vec<String>,
}

/// Falls back to other model groups; see the [module docs](self).
#[derive(Debug, Clone)]
#[must_use]
pub struct FallbackLayer {
    resolver: Arc<Resolver>,
    chains: Arc<FastMap<String, Chains>>,
}

impl FallbackLayer {
    /// Fallbacks resolved with `resolver` (the same table as the
    /// [`ResolveLayer`](crate::route::ResolveLayer)'s).
    pub fn new(resolver: Resolver) -> Self {
        Self {
            resolver: Arc::new(resolver),
            chains: Arc::new(FastMap::default()),
        }
    }

    /// Models to try, in order, when `model`'s group fails.
    pub fn fallbacks<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        model: impl Into<String>,
        chain: I,
    ) -> Self {
        self.chains_of(model.into()).on_error = chain.into_iter().map(Into::into).collect();
        self
    }

    /// Models to try, in order, when `model`'s context window overflows.
    pub fn context_window_fallbacks<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        model: impl Into<String>,
        chain: I,
    ) -> Self {
        self.chains_of(model.into()).on_context = chain.into_iter().map(Into::into).collect();
        self
    }

    fn chains_of(&mut self, model: String) -> &mut Chains {
        Arc::make_mut(&mut self.chains).entry(model).or_default()
    }
}

impl<S> Layer<S> for FallbackLayer {
    type Service = Fallback<S>;

    fn layer(&self, inner: S) -> Fallback<S> {
        Fallback {
            inner,
            resolver: self.resolver.clone(),
            chains: self.chains.clone(),
        }
    }
}

/// The service of [`FallbackLayer`].
#[derive(Debug, Clone)]
pub struct Fallback<S> {
    inner: S,
    resolver: Arc<Resolver>,
    chains: Arc<FastMap<String, Chains>>,
}

impl<S> Fallback<S> {
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

impl<S> Service<LlmRequest> for Fallback<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = LlmResponse;
    type Error = ApiError;
    type Future = LlmFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ApiError>> {
        // Each attempt waits for the inner service's readiness itself, in
        // the request's future (under the deadlines above, and a refusal
        // there can fall back).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: LlmRequest) -> LlmFuture {
        let chains = req
            .ctx
            .route
            .as_ref()
            .and_then(|r| self.chains.get(&r.name))
            .cloned();
        let Some(chains) = chains else {
            return first_attempt(&mut self.inner, req);
        };
        let first = first_attempt(&mut self.inner, req.clone());
        let mut inner = self.inner.clone();
        let resolver = self.resolver.clone();
        Box::pin(async move {
            let from = req
                .ctx
                .route
                .as_ref()
                .map(|r| r.name.clone())
                .unwrap_or_default();
            let mut err = match first.await {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            let (chain, reason) =
                if err.is_context_length_exceeded() && !chains.on_context.is_empty() {
                    (&chains.on_context, "context_window")
                } else if is_retryable(&err) {
                    (&chains.on_error, "error")
                } else {
                    return Err(err);
                };
            for next in chain {
                let route = match resolver.resolve(next) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(fallback = %next, error = %e, "fallback model does not resolve; skipped");
                        continue;
                    }
                };
                ::metrics::counter!("llmgate_fallbacks_total", "from" => from.clone(), "to" => route.name.clone(), "reason" => reason)
                    .increment(1);
                tracing::info!(from = %from, to = %route.name, reason, error = %err, "falling back");
                let mut next_req = req.clone();
                if let Some(recorder) = &next_req.ctx.recorder {
                    recorder.set_route(&route.name);
                }
                next_req.ctx.route = Some(route);
                next_req.ctx.target = None;
                match attempt_with(&mut inner, next_req).await {
                    Ok(resp) => return Ok(resp),
                    Err(e) => {
                        let go_on = if reason == "context_window" {
                            e.is_context_length_exceeded() || is_retryable(&e)
                        } else {
                            is_retryable(&e)
                        };
                        err = e;
                        if !go_on {
                            break;
                        }
                    }
                }
            }
            Err(err)
        })
    }
}

/// The first attempt: the service itself when it is ready at once (the
/// retry layer below it in the built stack always is), without a clone;
/// otherwise a clone that waits for readiness inside the future.
fn first_attempt<S>(inner: &mut S, req: LlmRequest) -> LlmFuture
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    if ready_now(inner) {
        Box::pin(committed(inner.call(req)))
    } else {
        Box::pin(attempt(inner.clone(), req))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::Format;
    use crate::chat::{ChatRequest, ChatResponse, Message, Role};
    use crate::llm::{LlmBody, Target};
    use crate::route::ResolveLayer;

    fn resolver() -> Resolver {
        Resolver::new()
            .alias("big", [Target::new("p", "big-model")])
            .alias("small", [Target::new("p", "small-model")])
            .alias("tiny", [Target::new("p", "tiny-model")])
            .alias("long", [Target::new("p", "long-model")])
    }

    /// Fails for the models in `failing` with their error; logs the models.
    fn upstream(
        failing: &'static [(&'static str, u16, &'static str)],
        log: Arc<StdMutex<Vec<String>>>,
    ) -> impl Service<LlmRequest, Response = LlmResponse, Error = ApiError, Future = LlmFuture> + Clone
    {
        service_fn(move |req: LlmRequest| -> LlmFuture {
            let model = req.ctx.route.as_ref().unwrap().targets[0].model.clone();
            log.lock().unwrap().push(model.clone());
            let fail = failing.iter().find(|(m, ..)| *m == model).copied();
            Box::pin(async move {
                if let Some((_, status, msg)) = fail {
                    return Err(ApiError::from_upstream(
                        status,
                        format!(r#"{{"error":{{"message":"{msg}"}}}}"#).as_bytes(),
                    ));
                }
                Ok(LlmResponse::complete(ChatResponse {
                    model,
                    ..ChatResponse::default()
                }))
            })
        })
    }

    async fn run(
        failing: &'static [(&'static str, u16, &'static str)],
    ) -> (Result<String, ApiError>, Vec<String>) {
        let log = Arc::new(StdMutex::new(Vec::new()));
        let layer = FallbackLayer::new(resolver())
            .fallbacks("big", ["small", "tiny"])
            .context_window_fallbacks("big", ["long"]);
        let svc = tower::ServiceBuilder::new()
            .layer(ResolveLayer::new(resolver()))
            .layer(layer)
            .service(upstream(failing, log.clone()));
        let req = LlmRequest::new(
            ChatRequest::new("big", vec![Message::text(Role::User, "x")]),
            Format::OpenAi,
        );
        let out = svc.oneshot(req).await.map(|r| match r.body {
            LlmBody::Complete(r) => r.model,
            _ => unreachable!(),
        });
        let calls = log.lock().unwrap().clone();
        (out, calls)
    }

    #[tokio::test]
    async fn a_failing_group_falls_back_along_the_chain() {
        let (out, calls) = run(&[("big-model", 503, "down"), ("small-model", 429, "busy")]).await;
        assert_eq!(out.unwrap(), "tiny-model");
        assert_eq!(calls, ["big-model", "small-model", "tiny-model"]);
    }

    #[tokio::test]
    async fn a_context_overflow_goes_to_the_larger_window() {
        let (out, calls) = run(&[(
            "big-model",
            400,
            "This model's maximum context length is 128000 tokens",
        )])
        .await;
        assert_eq!(out.unwrap(), "long-model");
        assert_eq!(calls, ["big-model", "long-model"]);
    }

    #[tokio::test]
    async fn client_errors_do_not_fall_back() {
        let (out, calls) = run(&[("big-model", 400, "bad tool schema")]).await;
        assert_eq!(out.unwrap_err().anthropic_status(), 400);
        assert_eq!(calls, ["big-model"]);
    }

    #[tokio::test]
    async fn when_everything_fails_the_last_error_is_returned() {
        let (out, calls) = run(&[
            ("big-model", 500, "a"),
            ("small-model", 500, "b"),
            ("tiny-model", 529, "c"),
        ])
        .await;
        assert_eq!(out.unwrap_err().message, "c");
        assert_eq!(calls.len(), 3);
    }
}
