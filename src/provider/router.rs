use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Service, ServiceExt};

use crate::error::ApiError;
use crate::llm::{LlmFuture, LlmRequest, LlmResponse};
use crate::sync::FastMap;

/// Routes each request to the provider its target names (the deployment a
/// balancer chose, else the first target of the resolved route), with the
/// request's model set to the target's upstream model.
///
/// A request without a route (no [`ResolveLayer`](crate::route::ResolveLayer)
/// in the stack) or naming an unknown provider is a gateway error, never a
/// panic.
///
/// ```
/// use llmgate::provider::{MockProvider, Providers};
///
/// let providers = Providers::new().with("mock", MockProvider::new());
/// assert!(providers.contains("mock"));
/// ```
#[derive(Clone, Default)]
pub struct Providers {
    map: Arc<FastMap<String, Arc<dyn Provide>>>,
}

/// A provider as the router holds it: each call readies and calls a clone
/// of its own, and hands on the provider's future. (A
/// `BoxCloneSyncService` took four allocations a call: the clone's box, the
/// router's box around `oneshot`, the boxed service's box around the
/// provider's future, and the provider's own.)
trait Provide: Send + Sync {
    fn call(&self, req: LlmRequest) -> LlmFuture;
}

struct Held<S>(S);

impl<S> Provide for Held<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    fn call(&self, req: LlmRequest) -> LlmFuture {
        let mut provider = self.0.clone();
        // Most providers are ready at once: their own future is then handed
        // on, without a box around it. One that is not is asked again from
        // the request's task, whose waker it then keeps.
        match provider.poll_ready(&mut Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(Ok(())) => crate::llm::boxed(provider.call(req)),
            Poll::Ready(Err(e)) => Box::pin(std::future::ready(Err(e))),
            Poll::Pending => Box::pin(async move { provider.ready().await?.call(req).await }),
        }
    }
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.map.keys().collect();
        names.sort();
        f.debug_struct("Providers").field("names", &names).finish()
    }
}

impl Providers {
    /// No providers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a provider under `name` (any LLM-tier service).
    pub fn with<S>(mut self, name: impl Into<String>, provider: S) -> Self
    where
        S: tower::Service<LlmRequest, Response = LlmResponse, Error = ApiError>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        Arc::make_mut(&mut self.map).insert(name.into(), Arc::new(Held(provider)));
        self
    }

    /// Whether a provider of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// The provider names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.map.keys().cloned().collect();
        names.sort();
        names
    }
}

impl Service<LlmRequest> for Providers {
    type Response = LlmResponse;
    type Error = ApiError;
    type Future = LlmFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ApiError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: LlmRequest) -> LlmFuture {
        // A balancer sets the target and records the attempts it sends;
        // without one, the route's first target is the one, recorded here
        // once its provider is known.
        let own = req.ctx.target.is_none();
        if own {
            let first = req.ctx.route.as_ref().and_then(|r| r.targets.first());
            req.ctx.target = first.cloned();
        }
        let Some(target) = req.ctx.target.as_ref() else {
            return Box::pin(std::future::ready(Err(ApiError::api(
                "the request has no route: put a ResolveLayer in front of the providers",
            ))));
        };
        let Some(provider) = self.map.get(&target.provider) else {
            return Box::pin(std::future::ready(Err(ApiError::api(format!(
                "the route names provider `{}`, which is not configured",
                target.provider
            )))));
        };
        if own {
            req.ctx.attempts.push(target.clone());
        }
        if let Some(recorder) = &req.ctx.recorder {
            recorder.set_target(&target.provider, &target.model);
        }
        // Reuses the model name's allocation when it fits.
        req.chat.model.clone_from(&target.model);
        provider.call(req)
    }
}

#[cfg(test)]
mod tests {
    use tower::service_fn;

    use super::*;
    use crate::Format;
    use crate::chat::{ChatRequest, ChatResponse, Message, Role};
    use crate::llm::{Route, Target};

    fn request(targets: &[Target]) -> LlmRequest {
        let mut req = LlmRequest::new(
            ChatRequest::new("alias", vec![Message::text(Role::User, "x")]),
            Format::OpenAi,
        );
        req.ctx.route = Some(Route {
            name: "alias".into(),
            targets: targets.to_vec(),
        });
        req
    }

    /// A provider that answers with the model it was sent, tagged with
    /// its name.
    fn provider(
        name: &'static str,
    ) -> impl Service<LlmRequest, Response = LlmResponse, Error = ApiError, Future = LlmFuture>
    + Clone
    + Send
    + Sync {
        service_fn(move |req: LlmRequest| -> LlmFuture {
            let model = format!("{name}:{}", req.chat.model);
            Box::pin(async move {
                Ok(LlmResponse::complete(ChatResponse {
                    model,
                    ..ChatResponse::default()
                }))
            })
        })
    }

    fn model(resp: LlmResponse) -> String {
        match resp.body {
            crate::llm::LlmBody::Complete(r) => r.model,
            _ => panic!("not a complete answer"),
        }
    }

    #[tokio::test]
    async fn a_request_goes_to_its_targets_provider_with_the_upstream_model() {
        let providers = Providers::new()
            .with("a", provider("a"))
            .with("b", provider("b"));
        let targets = [Target::new("b", "big-1"), Target::new("a", "small-1")];
        // Without a balancer: the route's first target, recorded as tried.
        let req = request(&targets);
        let attempts = req.ctx.attempts.clone();
        let resp = providers.clone().oneshot(req).await.unwrap();
        assert_eq!(model(resp), "b:big-1");
        assert_eq!(attempts.list(), [Target::new("b", "big-1")]);
        // With a target set (a balancer's pick): that one.
        let mut req = request(&targets);
        req.ctx.target = Some(Target::new("a", "small-1"));
        let resp = providers.oneshot(req).await.unwrap();
        assert_eq!(model(resp), "a:small-1");
    }

    #[tokio::test]
    async fn a_ready_providers_future_is_handed_on_without_a_box_around_it() {
        let made = Arc::new(std::sync::Mutex::new(None));
        let seen = made.clone();
        let mut providers = Providers::new().with(
            "a",
            service_fn(move |_: LlmRequest| -> LlmFuture {
                let fut: LlmFuture = Box::pin(async { Ok(LlmResponse::token_count(3)) });
                *seen.lock().unwrap() = Some(std::ptr::from_ref(&*fut).cast::<()>().addr());
                fut
            }),
        );
        let fut = providers.call(request(&[Target::new("a", "m")]));
        let at = std::ptr::from_ref(&*fut).cast::<()>().addr();
        assert_eq!(*made.lock().unwrap(), Some(at));
        assert!(matches!(
            fut.await.unwrap().body,
            crate::llm::LlmBody::TokenCount(3)
        ));
    }

    #[tokio::test]
    async fn an_unknown_provider_or_no_route_is_a_gateway_error() {
        let providers = Providers::new().with("a", provider("a"));
        let err = providers
            .clone()
            .oneshot(request(&[Target::new("nope", "m")]))
            .await
            .unwrap_err();
        assert!(err.message.contains("`nope`"), "{}", err.message);
        let mut req = request(&[]);
        req.ctx.route = None;
        let err = providers.oneshot(req).await.unwrap_err();
        assert!(err.message.contains("no route"), "{}", err.message);
    }

    /// A provider that is not ready when first asked (it wakes the task
    /// and is ready the next time), and refuses a call it was not readied
    /// for, as tower's contract allows.
    #[derive(Clone, Default)]
    struct Reluctant {
        asked: bool,
        readied: bool,
        /// Fails readiness (after the first `Pending`) instead.
        broken: bool,
    }

    impl Service<LlmRequest> for Reluctant {
        type Response = LlmResponse;
        type Error = ApiError;
        type Future = LlmFuture;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ApiError>> {
            if !std::mem::replace(&mut self.asked, true) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if self.broken {
                return Poll::Ready(Err(ApiError::api("the provider is broken")));
            }
            self.readied = true;
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _req: LlmRequest) -> LlmFuture {
            // A broken provider answers a call made anyway: only a
            // readiness error that is passed on keeps this out.
            let readied = std::mem::take(&mut self.readied) || self.broken;
            Box::pin(async move {
                if !readied {
                    return Err(ApiError::api("called without poll_ready"));
                }
                Ok(LlmResponse::complete(ChatResponse::default()))
            })
        }
    }

    #[tokio::test]
    async fn a_provider_is_readied_before_each_call() {
        let providers = Providers::new().with("a", Reluctant::default());
        for _ in 0..2 {
            let resp = providers
                .clone()
                .oneshot(request(&[Target::new("a", "m")]))
                .await;
            assert!(resp.is_ok(), "{:?}", resp.err());
        }
        let broken = Reluctant {
            broken: true,
            ..Reluctant::default()
        };
        let err = Providers::new()
            .with("a", broken)
            .oneshot(request(&[Target::new("a", "m")]))
            .await
            .unwrap_err();
        assert_eq!(err.message, "the provider is broken");
    }
}
