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
#[cfg(feature = "client")]
pub use client::ClientOptions;
pub use client::{BoxError, HttpClient, UpstreamBody, UpstreamRequest};
#[cfg(any(feature = "client", feature = "config"))]
pub(crate) use client::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_IDLE_PER_HOST};
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
        if let Some(key) = ctx.target.as_ref().and_then(|t| t.api_key.clone()) {
            return Ok(Some((None, key)));
        }
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

/// The JSON body of an upstream request, written from its wire form. It
/// takes the wire request, which is gone once written.
pub(crate) fn json_body<T: serde::Serialize>(
    wire: T,
    hint: usize,
) -> Result<bytes::Bytes, ApiError> {
    crate::wire::to_json(&wire, hint)
        .map(bytes::Bytes::from)
        .map_err(|e| ApiError::api(format!("cannot encode the upstream request: {e}")))
}

/// Sends the request `build` makes of `body` for a key, with key failover:
/// when the upstream rejects or rate-limits one of the provider's own keys
/// (401, 403, 429) and another key of the pool is free, the request goes
/// again at once with that key. A deployment-level failure is one that
/// every free key saw. The body is let go once the upstream has answered
/// (with its headers): nothing holds it while the upstream generates.
pub(crate) async fn send_with_keys(
    credentials: &Credentials,
    client: &HttpClient,
    ctx: &RequestContext,
    body: bytes::Bytes,
    build: impl Fn(Option<&Secret>, &bytes::Bytes) -> Result<UpstreamRequest, ApiError>,
) -> Result<http::Response<UpstreamBody>, ApiError> {
    let mut sent_with = 0;
    loop {
        let key = credentials.select(ctx)?;
        let request = build(key.as_ref().map(|(_, k)| k), &body)?;
        let start = std::time::Instant::now();
        let sent = client.send(request).await;
        ctx.timing
            .add_upstream(client::upstream_wait(sent.as_ref().ok(), start.elapsed()));
        let resp = sent.map_err(|e| client::transport_error(&e))?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(resp);
        }
        let err = client::error_response(resp, &ctx.timing).await;
        let index = key.as_ref().and_then(|(i, _)| *i);
        credentials.report(index, &err, status);
        sent_with += 1;
        let pool = credentials.pool.as_ref();
        let another_key = index.is_some()
            && matches!(status, 401 | 403 | 429)
            && pool.is_some_and(|p| sent_with < p.len() && p.available() > 0);
        if !another_key {
            return Err(err);
        }
        tracing::debug!(status, "provider key refused; trying the next key");
    }
}

/// `path` under `base_url` (with or without its trailing slash), parsed once
/// when a provider is built: a bad base URL fails the build, not every call.
pub(crate) fn endpoint(base_url: &str, path: &str) -> Result<http::Uri, BoxError> {
    let url = format!("{}/{path}", base_url.trim_end_matches('/'));
    url.parse()
        .map_err(|e| format!("invalid base URL `{base_url}`: {e}").into())
}

/// A credential as a header value, marked sensitive so it stays out of logs.
pub(crate) fn secret_header(value: &str) -> Result<http::HeaderValue, ApiError> {
    let mut value = http::HeaderValue::try_from(value).map_err(|_| {
        ApiError::invalid_request("the API key holds characters not allowed in a header")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The request a provider sends upstream: a JSON POST of `body` to `uri`
/// that asks for SSE when `stream`, with the headers `own` adds (credential,
/// version), then the provider's configured `extra` headers, which win.
pub(crate) fn json_post(
    uri: &http::Uri,
    stream: bool,
    body: &bytes::Bytes,
    extra: &http::HeaderMap,
    own: impl FnOnce(&mut http::HeaderMap) -> Result<(), ApiError>,
) -> Result<http::Request<http_body_util::Full<bytes::Bytes>>, ApiError> {
    use http::HeaderValue;
    use http::header::{ACCEPT, CONTENT_TYPE};
    let mut request = http::Request::new(http_body_util::Full::new(body.clone()));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri.clone();
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let accept = if stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    headers.insert(ACCEPT, HeaderValue::from_static(accept));
    own(headers)?;
    for (name, value) in extra {
        headers.insert(name.clone(), value.clone());
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;
    use crate::Format;
    use crate::chat::{ChatRequest, Message, Role};
    use crate::llm::{BoxLlmService, LlmBody, LlmRequest};

    /// A provider sends its upstream body and lets go of it (and of the wire
    /// request it was written from) while the upstream answers: an answer
    /// can take minutes, and the body is as large as the client's.
    #[tokio::test]
    async fn the_upstream_body_is_let_go_while_the_upstream_answers() {
        let openai = r#"{"id":"c","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;
        let anthropic = r#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}"#;
        for (format, json) in [(Format::OpenAi, openai), (Format::Anthropic, anthropic)] {
            let sent: Arc<Mutex<Option<Bytes>>> = Arc::default();
            // The answer's body: one frame, when the test sends it.
            let (tx, answer) = tokio::sync::oneshot::channel::<Bytes>();
            let answer_body = http_body_util::StreamBody::new(futures_util::stream::once(async {
                Ok::<_, Infallible>(http_body::Frame::data(answer.await.unwrap_or_default()))
            }));
            let answer_body = Arc::new(Mutex::new(Some(answer_body)));
            let seen = sent.clone();
            let client = HttpClient::new(tower::service_fn(move |req: UpstreamRequest| {
                let seen = seen.clone();
                let body = answer_body.lock().unwrap().take().unwrap();
                async move {
                    let frame = req.into_body().frame().await.unwrap().unwrap();
                    *seen.lock().unwrap() = Some(frame.into_data().unwrap());
                    Ok::<_, Infallible>(http::Response::new(body))
                }
            }));
            let provider = match format {
                Format::OpenAi => BoxLlmService::new(
                    OpenAiProvider::builder("p", "http://upstream.test/v1")
                        .client(client)
                        .build(),
                ),
                _ => BoxLlmService::new(
                    AnthropicProvider::builder("p", "http://upstream.test/v1")
                        .client(client)
                        .build(),
                ),
            };
            let chat = ChatRequest::new("m", vec![Message::text(Role::User, "x".repeat(4096))]);
            let call = tokio::spawn(provider.oneshot(LlmRequest::new(chat, format)));
            // The call is waiting for the answer's body: only the test holds
            // what was sent.
            let mut turns = 0;
            loop {
                tokio::task::yield_now().await;
                turns += 1;
                let sent = sent.lock().unwrap();
                if sent.as_ref().is_some_and(Bytes::is_unique) || turns == 1000 {
                    break;
                }
            }
            let body = sent.lock().unwrap().take().expect("a request was sent");
            assert!(body.len() > 4096, "{format:?}");
            assert!(
                body.is_unique(),
                "{format:?}: the provider still holds its body"
            );
            tx.send(Bytes::from(json)).unwrap();
            let resp = call.await.unwrap().unwrap();
            assert!(matches!(resp.body, LlmBody::Complete(_)), "{format:?}");
        }
    }
}
