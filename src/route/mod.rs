//! Model resolution: which deployments serve the model a client asked for.
//!
//! [`ResolveLayer`] looks the requested model up in a [`Resolver`] and puts
//! the [`Route`] in the request context, in this order:
//!
//! 1. an exact alias (`big`, `small`, `claude-sonnet-4-5`);
//! 2. a `provider/model` name whose prefix is a configured provider
//!    (`openai/gpt-4o` → provider `openai`, model `gpt-4o`);
//! 3. glob patterns, in the order given (`claude-*haiku*`; `*` matches any run
//!    of characters, `?` one character);
//! 4. the default provider, which gets the name as it was asked for.
//!
//! A model that matches nothing is a 404 `not_found_error` in the client's
//! format. In the default stack the layer sits after authentication; every
//! later layer can rely on `ctx.route` (the provider router refuses a request
//! without one).
//!
//! ```
//! use llmgate::route::Resolver;
//! use llmgate::llm::Target;
//!
//! let resolver = Resolver::new()
//!     .alias("big", [Target::new("openai", "gpt-4o")])
//!     .pattern("claude-*haiku*", [Target::new("local", "qwen3-8b")])
//!     .provider("openai")
//!     .provider("local");
//! assert_eq!(resolver.resolve("big").unwrap().targets[0].model, "gpt-4o");
//! assert_eq!(resolver.resolve("claude-3-5-haiku-latest").unwrap().targets[0].provider, "local");
//! assert_eq!(resolver.resolve("openai/o3").unwrap().targets[0].model, "o3");
//! assert!(resolver.resolve("mystery").is_err());
//! ```

mod glob;

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

pub use glob::glob_match;

use crate::error::{ApiError, ErrorKind};
use crate::llm::{LlmFuture, LlmRequest, LlmResponse, Route, Target};
use crate::sync::FastMap;

/// The model table: aliases, patterns, providers and a default.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    aliases: FastMap<String, Route>,
    patterns: Vec<(String, Route)>,
    providers: Vec<String>,
    default_provider: Option<String>,
}

impl Resolver {
    /// An empty table (every model is unknown).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an exact name.
    pub fn alias(
        mut self,
        name: impl Into<String>,
        targets: impl IntoIterator<Item = Target>,
    ) -> Self {
        let name = name.into();
        let route = Route {
            name: name.clone(),
            targets: targets.into_iter().collect(),
        };
        self.aliases.insert(name, route);
        self
    }

    /// Adds a glob pattern; patterns are tried in the order added.
    pub fn pattern(
        mut self,
        pattern: impl Into<String>,
        targets: impl IntoIterator<Item = Target>,
    ) -> Self {
        let pattern = pattern.into();
        let route = Route {
            name: pattern.clone(),
            targets: targets.into_iter().collect(),
        };
        self.patterns.push((pattern, route));
        self
    }

    /// Adds a name or a pattern, whichever `name` is (a pattern holds `*` or
    /// `?`).
    pub fn model(self, name: impl Into<String>, targets: impl IntoIterator<Item = Target>) -> Self {
        let name = name.into();
        if name.contains(['*', '?']) {
            self.pattern(name, targets)
        } else {
            self.alias(name, targets)
        }
    }

    /// Makes `provider/model` names resolve for this provider.
    pub fn provider(mut self, name: impl Into<String>) -> Self {
        self.providers.push(name.into());
        self
    }

    /// Sends models nothing else matches to this provider, under the name
    /// the client used.
    pub fn default_provider(mut self, name: impl Into<String>) -> Self {
        self.default_provider = Some(name.into());
        self
    }

    /// The route for `model`.
    pub fn resolve(&self, model: &str) -> Result<Route, ApiError> {
        if let Some(route) = self.aliases.get(model) {
            return Ok(route.clone());
        }
        if let Some((provider, upstream)) = model.split_once('/')
            && !upstream.is_empty()
            && self.providers.iter().any(|p| p == provider)
        {
            return Ok(Route {
                name: format!("{provider}/*"),
                targets: vec![Target::new(provider, upstream)],
            });
        }
        if let Some((_, route)) = self.patterns.iter().find(|(p, _)| glob_match(p, model)) {
            return Ok(route.clone());
        }
        if let Some(provider) = &self.default_provider {
            return Ok(Route {
                name: format!("{provider}/*"),
                targets: vec![Target::new(provider.clone(), model)],
            });
        }
        Err(ApiError::new(
            ErrorKind::NotFound,
            format!(
                "model `{}` is not served by this gateway",
                truncate(model, 200)
            ),
        )
        .with_param("model"))
    }

    /// The exact names, for `GET /v1/models`.
    pub fn model_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.aliases.keys().cloned().collect();
        names.sort();
        names
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Resolves the requested model into `ctx.route`; see the [module
/// docs](self).
#[derive(Debug, Clone)]
#[must_use]
pub struct ResolveLayer {
    resolver: Arc<Resolver>,
}

impl ResolveLayer {
    /// A layer resolving with `resolver`.
    pub fn new(resolver: Resolver) -> Self {
        Self {
            resolver: Arc::new(resolver),
        }
    }
}

impl<S> Layer<S> for ResolveLayer {
    type Service = Resolve<S>;

    fn layer(&self, inner: S) -> Resolve<S> {
        Resolve {
            inner,
            resolver: self.resolver.clone(),
        }
    }
}

/// The service of [`ResolveLayer`].
#[derive(Debug, Clone)]
pub struct Resolve<S> {
    inner: S,
    resolver: Arc<Resolver>,
}

impl<S> Resolve<S> {
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

impl<S> Service<LlmRequest> for Resolve<S>
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
        match self.resolver.resolve(&req.chat.model) {
            Ok(route) => {
                if let Some(recorder) = &req.ctx.recorder {
                    recorder.set_route(&route.name);
                }
                req.ctx.route = Some(route);
            }
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        }
        // `poll_ready` readied `self.inner`: no clone of the stack below.
        crate::llm::boxed(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> Resolver {
        Resolver::new()
            .alias(
                "big",
                [
                    Target::new("openai", "gpt-4o"),
                    Target::new("backup", "gpt-4o"),
                ],
            )
            .alias("small", [Target::new("openai", "gpt-4o-mini")])
            .pattern("claude-*haiku*", [Target::new("local", "qwen3-8b")])
            .pattern("claude-*", [Target::new("anthropic", "claude-sonnet-4-5")])
            .provider("openai")
            .provider("anthropic")
    }

    #[test]
    fn aliases_win_over_patterns() {
        let r = resolver().alias("claude-3-haiku", [Target::new("x", "y")]);
        assert_eq!(
            r.resolve("claude-3-haiku").unwrap().targets[0].provider,
            "x"
        );
        assert_eq!(r.resolve("big").unwrap().targets.len(), 2);
        assert_eq!(r.resolve("big").unwrap().name, "big");
    }

    #[test]
    fn patterns_in_order() {
        let r = resolver();
        let route = r.resolve("claude-3-5-haiku-20241022").unwrap();
        assert_eq!(
            (route.name.as_str(), route.targets[0].model.as_str()),
            ("claude-*haiku*", "qwen3-8b")
        );
        assert_eq!(
            r.resolve("claude-opus-4").unwrap().targets[0].provider,
            "anthropic"
        );
    }

    #[test]
    fn provider_prefixes() {
        let r = resolver();
        let route = r.resolve("openai/gpt-4.1").unwrap();
        assert_eq!(route.targets, vec![Target::new("openai", "gpt-4.1")]);
        assert_eq!(route.name, "openai/*");
        // An unknown prefix is not a provider.
        assert!(r.resolve("meta/llama").is_err());
        assert!(r.resolve("openai/").is_err());
    }

    #[test]
    fn unknown_models_are_404_or_go_to_the_default() {
        let err = resolver().resolve("gpt-5").unwrap_err();
        assert_eq!(
            (err.kind, err.anthropic_status()),
            (ErrorKind::NotFound, 404)
        );
        assert_eq!(err.to_anthropic(None).1.error.kind, "not_found_error");
        let r = resolver().default_provider("openai");
        assert_eq!(
            r.resolve("gpt-5").unwrap().targets[0],
            Target::new("openai", "gpt-5")
        );
    }
}
