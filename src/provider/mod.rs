//! Provider leaves: the innermost services, which encode a request in the
//! provider's wire format, send it, and decode the answer.
//!
//! - [`OpenAiProvider`]: any OpenAI-compatible Chat Completions API (OpenAI,
//!   OpenRouter, Groq, vLLM, Ollama, LiteLLM, …): base URL, keys, extra
//!   headers, capability options.
//! - [`AnthropicProvider`]: the Anthropic Messages API (`x-api-key`,
//!   `anthropic-version`, the client's `anthropic-beta` passed on).
//! - [`MockProvider`]: a deterministic built-in model for running offline.
//! - [`Providers`]: routes a request to the provider its target names.
//!
//! Providers send through an [`HttpClient`]: hyper-util's pooled client with
//! rustls by default (feature `client`), or any `tower::Service` over
//! `http::Request<Full<Bytes>>`.
//!
//! A provider's own keys rotate through a [`crate::auth::KeyPool`];
//! a provider configured for passthrough sends the client's key instead (and
//! refuses a request that has none with a 401).
//!
//! Upstream error responses become [`ApiError`]s (conversion-spec §4.3) with
//! their `retry-after`; a stream is returned once the upstream answered 2xx,
//! and every later failure (a cut, a malformed chunk, a connection reset)
//! arrives as the stream's final error event.

mod anthropic;
mod client;
mod mock;
mod openai;
mod router;

pub use anthropic::{AnthropicProvider, AnthropicProviderBuilder, DEFAULT_ANTHROPIC_VERSION};
pub use client::{BoxError, HttpClient, UpstreamBody, UpstreamRequest};
pub use mock::MockProvider;
pub use openai::{OpenAiProvider, OpenAiProviderBuilder};
pub use router::Providers;

use crate::auth::KeyPool;
use crate::error::{ApiError, ErrorKind};
use crate::llm::{RequestContext, Secret};

/// How a provider authenticates to its upstream.
#[derive(Debug)]
pub(crate) struct Credentials {
    pub(crate) pool: Option<KeyPool>,
    pub(crate) passthrough: bool,
}

impl Credentials {
    /// The key for this request, and its pool index when it is one of ours.
    pub(crate) fn select(
        &self,
        ctx: &RequestContext,
    ) -> Result<Option<(Option<usize>, Secret)>, ApiError> {
        if self.passthrough {
            return match (&ctx.client_key, ctx.passthrough) {
                (Some(key), true) => Ok(Some((None, key.clone()))),
                _ => Err(ApiError::new(
                    ErrorKind::Authentication,
                    "this model needs your own provider API key in `x-api-key` or `Authorization: Bearer`",
                )),
            };
        }
        Ok(self
            .pool
            .as_ref()
            .and_then(KeyPool::pick)
            .map(|(i, k)| (Some(i), k)))
    }

    /// Tells the pool how the upstream answered a key of ours.
    pub(crate) fn report(&self, index: Option<usize>, err: &ApiError, status: u16) {
        if let (Some(pool), Some(i)) = (&self.pool, index) {
            pool.report(i, status, err.retry_after);
        }
    }
}

/// The base URL without a trailing slash.
pub(crate) fn trim_base(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}
