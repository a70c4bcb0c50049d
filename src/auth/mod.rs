//! Client authentication and provider keys.
//!
//! [`AuthLayer`] decides whether a client may use the gateway, from the
//! credential the HTTP tier read into
//! [`RequestContext::client_key`](crate::llm::RequestContext::client_key)
//! (`x-api-key` or `Authorization: Bearer`):
//!
//! - [`AuthMode::Keys`]: the credential must be one of the gateway's keys
//!   (compared in constant time); it is the gateway's, never forwarded.
//! - [`AuthMode::Passthrough`]: the credential is the client's own provider
//!   key; it is forwarded to a provider configured for passthrough, and only
//!   to it. A request without one is refused.
//! - [`AuthMode::Open`]: no check (local use); a key the client sends is still
//!   forwarded to passthrough providers.
//!
//! A refusal is a 401 `authentication_error` in the client's format. In the
//! default stack the layer sits first in the LLM tier.
//!
//! [`KeyPool`] is the other side: a provider's own keys, used round robin,
//! with a key that got a 429 or 401 skipped for a while.
//!
//! ```
//! use llmgate::auth::{AuthLayer, AuthMode};
//! use llmgate::chat::{ChatRequest, ChatResponse, Message, Role};
//! use llmgate::llm::{LlmRequest, LlmResponse, Secret};
//! use llmgate::{ApiError, Format};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio_test_block_on(async {
//! let svc = ServiceBuilder::new()
//!     .layer(AuthLayer::new(AuthMode::keys([("team-a", "sk-gateway-1")])))
//!     .service(service_fn(|_req: LlmRequest| async {
//!         Ok::<_, ApiError>(LlmResponse::complete(ChatResponse::default()))
//!     }));
//!
//! let chat = ChatRequest::new("big", vec![Message::text(Role::User, "hi")]);
//! let mut req = LlmRequest::new(chat, Format::OpenAi);
//! req.ctx.client_key = Some(Secret::new("sk-wrong"));
//! let err = svc.oneshot(req).await.unwrap_err();
//! assert_eq!(err.openai_status(), 401);
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod keys;

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

pub use keys::KeyPool;

use crate::error::{ApiError, ErrorKind};
use crate::llm::{LlmFuture, LlmRequest, LlmResponse, Secret};

/// How clients authenticate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AuthMode {
    /// No check.
    Open,
    /// The client must present one of these gateway keys (name, key).
    Keys(Arc<[(String, Secret)]>),
    /// The client presents its own provider key, which is forwarded.
    Passthrough,
}

impl AuthMode {
    /// Gateway keys, each with a name for metrics and logs.
    pub fn keys<I, N, K>(keys: I) -> Self
    where
        I: IntoIterator<Item = (N, K)>,
        N: Into<String>,
        K: Into<Arc<str>>,
    {
        AuthMode::Keys(
            keys.into_iter()
                .map(|(n, k)| (n.into(), Secret::new(k)))
                .collect(),
        )
    }
}

/// Applies an [`AuthMode`]; see the [module docs](self).
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthLayer {
    mode: AuthMode,
}

impl AuthLayer {
    /// A layer that authenticates with `mode`.
    pub fn new(mode: AuthMode) -> Self {
        Self { mode }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            mode: self.mode.clone(),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    mode: AuthMode,
}

impl<S> Auth<S> {
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

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorKind::Authentication, message)
}

impl<S> Service<LlmRequest> for Auth<S>
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
        let checked = match &self.mode {
            AuthMode::Open => {
                req.ctx.passthrough = req.ctx.client_key.is_some();
                Ok(())
            }
            AuthMode::Passthrough => match &req.ctx.client_key {
                Some(_) => {
                    req.ctx.passthrough = true;
                    Ok(())
                }
                None => Err(unauthorized(
                    "an API key is required: send your provider key in `x-api-key` or `Authorization: Bearer`",
                )),
            },
            AuthMode::Keys(keys) => match &req.ctx.client_key {
                None => Err(unauthorized(
                    "an API key is required in `x-api-key` or `Authorization: Bearer`",
                )),
                Some(presented) => {
                    // Compare against every key so that the time taken does
                    // not tell which one (or how much of one) matched.
                    let mut matched: Option<&str> = None;
                    for (name, key) in keys.iter() {
                        if key.ct_eq(presented.expose()) {
                            matched = Some(name);
                        }
                    }
                    match matched {
                        Some(name) => {
                            req.ctx.principal = Some(name.to_owned());
                            // The gateway's key is not the client's provider key.
                            req.ctx.passthrough = false;
                            Ok(())
                        }
                        None => Err(unauthorized("invalid API key")),
                    }
                }
            },
        };
        if let Err(e) = checked {
            return Box::pin(std::future::ready(Err(e)));
        }
        // `poll_ready` readied `self.inner`: call it now rather than a clone
        // later (a clone of the stack below costs an atomic increment and
        // decrement per `Arc` in it, on every request).
        crate::llm::boxed(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;
    use crate::chat::{ChatRequest, ChatResponse, Message, Role};
    use tower::{ServiceExt, service_fn};

    fn request(key: Option<&str>) -> LlmRequest {
        let chat = ChatRequest::new("m", vec![Message::text(Role::User, "hi")]);
        let mut req = LlmRequest::new(chat, Format::Anthropic);
        req.ctx.client_key = key.map(Secret::new);
        req
    }

    /// Answers with the context's principal and passthrough flag.
    fn echo()
    -> impl Service<LlmRequest, Response = LlmResponse, Error = ApiError, Future = LlmFuture> + Clone
    {
        service_fn(|req: LlmRequest| -> LlmFuture {
            Box::pin(async move {
                Ok(LlmResponse::complete(ChatResponse {
                    id: format!("{:?}/{}", req.ctx.principal, req.ctx.passthrough),
                    ..ChatResponse::default()
                }))
            })
        })
    }

    async fn run(mode: AuthMode, key: Option<&str>) -> Result<String, ApiError> {
        let svc = AuthLayer::new(mode).layer(echo());
        match svc.oneshot(request(key)).await?.body {
            crate::llm::LlmBody::Complete(r) => Ok(r.id),
            _ => unreachable!(),
        }
    }

    #[tokio::test]
    async fn gateway_keys_accept_any_listed_key_and_name_it() {
        let mode = AuthMode::keys([("a", "k1"), ("b", "k2")]);
        assert_eq!(
            run(mode.clone(), Some("k2")).await.unwrap(),
            "Some(\"b\")/false"
        );
        assert_eq!(
            run(mode.clone(), Some("k1")).await.unwrap(),
            "Some(\"a\")/false"
        );
        let err = run(mode.clone(), Some("k3")).await.unwrap_err();
        assert_eq!(
            (err.kind, err.anthropic_status()),
            (ErrorKind::Authentication, 401)
        );
        assert!(
            !err.message.contains("k3"),
            "the key never appears in errors"
        );
        assert_eq!(
            run(mode, None).await.unwrap_err().kind,
            ErrorKind::Authentication
        );
        // A prefix of a key is not the key.
        let err = run(AuthMode::keys([("a", "k1")]), Some("k"))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Authentication);
    }

    #[tokio::test]
    async fn passthrough_requires_a_key_and_marks_it_forwardable() {
        assert_eq!(
            run(AuthMode::Passthrough, Some("sk-x")).await.unwrap(),
            "None/true"
        );
        assert_eq!(
            run(AuthMode::Passthrough, None).await.unwrap_err().kind,
            ErrorKind::Authentication
        );
    }

    #[tokio::test]
    async fn open_mode_lets_everyone_in() {
        assert_eq!(run(AuthMode::Open, None).await.unwrap(), "None/false");
        assert_eq!(run(AuthMode::Open, Some("sk")).await.unwrap(), "None/true");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("sk-very-secret");
        assert!(!format!("{s:?}").contains("secret"));
    }
}
