use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Service, ServiceExt};

use crate::error::ApiError;
use crate::llm::{BoxLlmService, LlmFuture, LlmRequest, LlmResponse};
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
    map: Arc<FastMap<String, BoxLlmService>>,
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
        Arc::make_mut(&mut self.map).insert(name.into(), BoxLlmService::new(provider));
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
        let Some(provider) = self.map.get(&target.provider).cloned() else {
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
        Box::pin(provider.oneshot(req))
    }
}
