//! Hooks that rewrite requests before dispatch, and responses and stream
//! events after.
//!
//! [`PreprocessLayer`] runs a list of [`Hooks`]: request hooks (sync
//! [`RequestHook`]s and async [`AsyncRequestHook`]s, in the order added) see
//! the whole [`LlmRequest`] — the canonical request and its context, with the
//! resolved route — and may change it or refuse it with an error; response
//! hooks see each complete response and event hooks each stream event, with a
//! [`HookContext`]. Closures are hooks.
//!
//! Built-in hooks: [`SystemPrompt`] (prepend, append or replace the system
//! prompt), [`MaxTokensClamp`], and [`DropParams`] (remove parameters a
//! provider rejects). In the default stack the layer sits after model
//! resolution, so hooks can look at `ctx.route`.
//!
//! ```
//! use llmgate::preprocess::{Hooks, MaxTokensClamp, PreprocessLayer, SystemPrompt};
//! use llmgate::llm::LlmRequest;
//! use llmgate::ApiError;
//!
//! let layer = PreprocessLayer::new(
//!     Hooks::new()
//!         .request(SystemPrompt::prepend("Answer in French."))
//!         .request(MaxTokensClamp::new(4096))
//!         .request(|req: &mut LlmRequest| {
//!             if req.chat.messages.len() > 500 {
//!                 return Err(ApiError::invalid_request("conversation too long"));
//!             }
//!             Ok(())
//!         })
//!         .request_async(|req: LlmRequest| async move {
//!             // e.g. look something up before dispatch
//!             Ok(req)
//!         }),
//! );
//! # let _ = layer;
//! ```

mod builtin;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use tower::{Layer, Service};

pub use builtin::{DropParams, MaxTokensClamp, Param, SystemPrompt};

use crate::Format;
use crate::chat::{ChatEvent, ChatResponse};
use crate::error::ApiError;
use crate::llm::{LlmBody, LlmFuture, LlmRequest, LlmResponse, Route, Target};

/// A synchronous request hook.
pub trait RequestHook: Send + Sync + 'static {
    /// Rewrites the request, or refuses it.
    fn on_request(&self, req: &mut LlmRequest) -> Result<(), ApiError>;
}

impl<F> RequestHook for F
where
    F: Fn(&mut LlmRequest) -> Result<(), ApiError> + Send + Sync + 'static,
{
    fn on_request(&self, req: &mut LlmRequest) -> Result<(), ApiError> {
        self(req)
    }
}

/// A boxed future of an [`AsyncRequestHook`].
pub type HookFuture = Pin<Box<dyn Future<Output = Result<LlmRequest, ApiError>> + Send>>;

/// An asynchronous request hook: takes the request and gives it back
/// (changed), or refuses it.
pub trait AsyncRequestHook: Send + Sync + 'static {
    /// Rewrites the request, or refuses it.
    fn on_request(&self, req: LlmRequest) -> HookFuture;
}

impl<F, Fut> AsyncRequestHook for F
where
    F: Fn(LlmRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<LlmRequest, ApiError>> + Send + 'static,
{
    fn on_request(&self, req: LlmRequest) -> HookFuture {
        Box::pin(self(req))
    }
}

/// What response and event hooks know about the request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HookContext {
    /// The request id.
    pub id: String,
    /// The client's format.
    pub inbound: Format,
    /// The model the client asked for.
    pub requested_model: String,
    /// Where it was routed.
    pub route: Option<Route>,
    /// The deployment chosen, if known before dispatch.
    pub target: Option<Target>,
    /// The gateway key that authenticated the client.
    pub principal: Option<String>,
}

/// A hook on complete responses.
pub trait ResponseHook: Send + Sync + 'static {
    /// Rewrites the response.
    fn on_response(&self, resp: &mut ChatResponse, ctx: &HookContext);
}

impl<F> ResponseHook for F
where
    F: Fn(&mut ChatResponse, &HookContext) + Send + Sync + 'static,
{
    fn on_response(&self, resp: &mut ChatResponse, ctx: &HookContext) {
        self(resp, ctx)
    }
}

/// A hook on stream events.
pub trait EventHook: Send + Sync + 'static {
    /// Rewrites the event.
    fn on_event(&self, event: &mut ChatEvent, ctx: &HookContext);
}

impl<F> EventHook for F
where
    F: Fn(&mut ChatEvent, &HookContext) + Send + Sync + 'static,
{
    fn on_event(&self, event: &mut ChatEvent, ctx: &HookContext) {
        self(event, ctx)
    }
}

#[derive(Clone)]
enum Stage {
    Sync(Arc<dyn RequestHook>),
    Async(Arc<dyn AsyncRequestHook>),
}

/// The hooks a [`PreprocessLayer`] runs.
#[derive(Clone, Default)]
pub struct Hooks {
    request: Vec<Stage>,
    response: Vec<Arc<dyn ResponseHook>>,
    event: Vec<Arc<dyn EventHook>>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("request", &self.request.len())
            .field("response", &self.response.len())
            .field("event", &self.event.len())
            .finish()
    }
}

impl Hooks {
    /// No hooks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a synchronous request hook.
    pub fn request(mut self, hook: impl RequestHook) -> Self {
        self.request.push(Stage::Sync(Arc::new(hook)));
        self
    }

    /// Adds an asynchronous request hook.
    pub fn request_async(mut self, hook: impl AsyncRequestHook) -> Self {
        self.request.push(Stage::Async(Arc::new(hook)));
        self
    }

    /// Adds a response hook.
    pub fn response(mut self, hook: impl ResponseHook) -> Self {
        self.response.push(Arc::new(hook));
        self
    }

    /// Adds a stream event hook.
    pub fn event(mut self, hook: impl EventHook) -> Self {
        self.event.push(Arc::new(hook));
        self
    }

    /// Whether there are no hooks at all.
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_empty() && self.event.is_empty()
    }
}

/// Runs [`Hooks`]; see the [module docs](self).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct PreprocessLayer {
    hooks: Arc<Hooks>,
}

impl PreprocessLayer {
    /// A layer running `hooks`.
    pub fn new(hooks: Hooks) -> Self {
        Self {
            hooks: Arc::new(hooks),
        }
    }
}

impl<S> Layer<S> for PreprocessLayer {
    type Service = Preprocess<S>;

    fn layer(&self, inner: S) -> Preprocess<S> {
        Preprocess {
            inner,
            hooks: self.hooks.clone(),
        }
    }
}

/// The service of [`PreprocessLayer`].
#[derive(Debug, Clone)]
pub struct Preprocess<S> {
    inner: S,
    hooks: Arc<Hooks>,
}

impl<S> Preprocess<S> {
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

impl<S> Service<LlmRequest> for Preprocess<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = LlmResponse;
    type Error = ApiError;
    type Future = LlmFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ApiError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: LlmRequest) -> LlmFuture {
        let hooks = self.hooks.clone();
        if hooks.request.iter().any(|s| matches!(s, Stage::Async(_))) {
            // An async hook runs before the call: the readied service goes
            // into the future and a clone stays for the next request.
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            return Box::pin(async move {
                for stage in &hooks.request {
                    match stage {
                        Stage::Sync(h) => h.on_request(&mut req)?,
                        Stage::Async(h) => req = h.on_request(req).await?,
                    }
                }
                call_with(&mut inner, req, hooks).await
            });
        }
        // Only synchronous hooks: run them now and call the service that
        // `poll_ready` readied, without a clone of the stack below.
        for stage in &hooks.request {
            if let Stage::Sync(h) = stage
                && let Err(e) = h.on_request(&mut req)
            {
                return Box::pin(std::future::ready(Err(e)));
            }
        }
        Box::pin(call_with(&mut self.inner, req, hooks))
    }
}

/// Calls `inner` with `req` (at once, before the future is first polled)
/// and runs the response and event hooks on what it answers.
fn call_with<S>(
    inner: &mut S,
    req: LlmRequest,
    hooks: Arc<Hooks>,
) -> impl Future<Output = Result<LlmResponse, ApiError>> + Send + 'static
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError>,
    S::Future: Send + 'static,
{
    let ctx = (!hooks.response.is_empty() || !hooks.event.is_empty()).then(|| HookContext {
        id: req.ctx.id.clone(),
        inbound: req.ctx.inbound,
        requested_model: req.ctx.requested_model.clone(),
        route: req.ctx.route.clone(),
        target: req.ctx.target.clone(),
        principal: req.ctx.principal.clone(),
    });
    let call = inner.call(req);
    async move {
        let mut resp = call.await?;
        let Some(ctx) = ctx else {
            return Ok(resp);
        };
        resp.body = match resp.body {
            LlmBody::Complete(mut r) => {
                for h in &hooks.response {
                    h.on_response(&mut r, &ctx);
                }
                LlmBody::Complete(r)
            }
            LlmBody::Stream(s) if !hooks.event.is_empty() => {
                LlmBody::Stream(s.map_inner(|inner| HookedStream { inner, hooks, ctx }))
            }
            other => other,
        };
        Ok(resp)
    }
}

struct HookedStream {
    inner: Pin<Box<dyn Stream<Item = ChatEvent> + Send>>,
    hooks: Arc<Hooks>,
    ctx: HookContext,
}

impl Stream for HookedStream {
    type Item = ChatEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(mut ev)) => {
                for h in &self.hooks.event {
                    h.on_event(&mut ev, &self.ctx);
                }
                Poll::Ready(Some(ev))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{BlockDelta, ChatRequest, Message, MessageStart, Part, Role, Usage};
    use crate::llm::EventStream;
    use crate::wire::Map;
    use tower::{ServiceExt, service_fn};

    fn request() -> LlmRequest {
        LlmRequest::new(
            ChatRequest::new("m", vec![Message::text(Role::User, "hi")]),
            Format::OpenAi,
        )
    }

    /// Answers with the system prompt it received, as text; streams when asked.
    fn echo_system()
    -> impl Service<LlmRequest, Response = LlmResponse, Error = ApiError, Future = LlmFuture> + Clone
    {
        service_fn(|req: LlmRequest| -> LlmFuture {
            Box::pin(async move {
                let text = req
                    .chat
                    .system
                    .as_ref()
                    .map(|s| s.joined_text("|"))
                    .unwrap_or_default();
                if req.chat.is_stream() {
                    return Ok(LlmResponse::stream(EventStream::from_events(
                        vec![
                            ChatEvent::message_start(MessageStart {
                                id: "m".into(),
                                model: "x".into(),
                                usage: Usage::default(),
                                extra: Map::new(),
                            }),
                            ChatEvent::block_start(0, Part::text("")),
                            ChatEvent::BlockDelta {
                                index: 0,
                                delta: BlockDelta::Text(text),
                            },
                            ChatEvent::BlockStop { index: 0 },
                            ChatEvent::MessageStop,
                        ],
                        None,
                    )));
                }
                Ok(LlmResponse::complete(ChatResponse {
                    content: vec![Part::text(text)],
                    ..ChatResponse::default()
                }))
            })
        })
    }

    async fn text_of(resp: LlmResponse) -> String {
        match resp.body {
            LlmBody::Complete(r) => r
                .content
                .iter()
                .map(|p| match p {
                    Part::Text(t) => t.text.clone(),
                    _ => String::new(),
                })
                .collect(),
            LlmBody::Stream(mut s) => {
                let mut out = String::new();
                while let Some(ev) = std::future::poll_fn(|cx| Pin::new(&mut s).poll_next(cx)).await
                {
                    if let ChatEvent::BlockDelta {
                        delta: BlockDelta::Text(t),
                        ..
                    } = ev
                    {
                        out.push_str(&t);
                    }
                }
                out
            }
            _ => unreachable!(),
        }
    }

    #[tokio::test]
    async fn request_hooks_run_in_order_sync_and_async() {
        let hooks = Hooks::new()
            .request(SystemPrompt::replace("one"))
            .request_async(|mut req: LlmRequest| async move {
                tokio::task::yield_now().await;
                req.chat
                    .system
                    .as_mut()
                    .unwrap()
                    .parts
                    .push(Part::text("two"));
                Ok(req)
            })
            .request(SystemPrompt::append("three"));
        let svc = PreprocessLayer::new(hooks).layer(echo_system());
        assert_eq!(
            text_of(svc.oneshot(request()).await.unwrap()).await,
            "one|two|three"
        );
    }

    #[tokio::test]
    async fn a_hook_can_refuse_and_the_inner_service_is_not_called() {
        let called = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = called.clone();
        let inner = service_fn(move |_req: LlmRequest| {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
            async { Ok::<_, ApiError>(LlmResponse::complete(ChatResponse::default())) }
        });
        let svc = PreprocessLayer::new(
            Hooks::new().request(|_: &mut LlmRequest| Err(ApiError::invalid_request("no"))),
        )
        .layer(inner);
        let err = svc.oneshot(request()).await.unwrap_err();
        assert_eq!(err.message, "no");
        assert!(!called.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn response_and_event_hooks_see_every_answer() {
        let hooks = Hooks::new()
            .request(SystemPrompt::replace("sys"))
            .response(|r: &mut ChatResponse, ctx: &HookContext| {
                r.content
                    .push(Part::text(format!("+{}", ctx.requested_model)));
            })
            .event(|ev: &mut ChatEvent, _: &HookContext| {
                if let ChatEvent::BlockDelta {
                    delta: BlockDelta::Text(t),
                    ..
                } = ev
                {
                    *t = t.to_uppercase();
                }
            });
        let svc = PreprocessLayer::new(hooks).layer(echo_system());
        assert_eq!(
            text_of(svc.clone().oneshot(request()).await.unwrap()).await,
            "sys+m"
        );
        let mut req = request();
        req.chat.stream = Some(true);
        assert_eq!(text_of(svc.oneshot(req).await.unwrap()).await, "SYS");
    }
}
