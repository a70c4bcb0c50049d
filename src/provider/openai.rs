use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};
use tower::Service;

use super::client::{HttpClient, StreamDecoder, UpstreamEvents, passed_headers, read_body};
use super::{Credentials, endpoint, json_body, json_post, secret_header, send_with_keys};
use crate::Format;
use crate::auth::KeyPool;
use crate::chat::MaxTokensField;
use crate::convert::{ToolNames, estimate_input_tokens, openai};
use crate::error::ApiError;
use crate::llm::{EventStream, LlmFuture, LlmRequest, LlmResponse, Operation};
use crate::preprocess::{DropParams, Param};
use crate::route::glob_match;

/// An OpenAI-compatible Chat Completions upstream (OpenAI, OpenRouter, Groq,
/// vLLM, Ollama, LiteLLM, …).
///
/// ```
/// use llmgate::provider::{HttpClient, OpenAiProvider};
///
/// # fn client() -> HttpClient { HttpClient::new(tower::service_fn(|_req: llmgate::provider::UpstreamRequest| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
/// # })) }
/// let provider = OpenAiProvider::builder("groq", "https://api.groq.com/openai/v1")
///     .api_keys(["gsk-1", "gsk-2"])
///     .header("x-team", "search")
///     .reasoning_models(["o*", "gpt-5*"])
///     .client(client())
///     .build();
/// # let _ = provider;
/// ```
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    inner: Arc<Config>,
}

#[derive(Debug)]
struct Config {
    name: String,
    /// `{base_url}/chat/completions`.
    chat_uri: http::Uri,
    credentials: Credentials,
    headers: HeaderMap,
    client: HttpClient,
    options: openai::RequestOptions,
    reasoning_models: Vec<String>,
    drop: Option<DropParams>,
    buffer_tool_calls: bool,
    max_response_bytes: usize,
}

/// Builds an [`OpenAiProvider`].
#[derive(Debug)]
#[must_use]
pub struct OpenAiProviderBuilder {
    name: String,
    base_url: String,
    keys: Vec<String>,
    passthrough: bool,
    headers: HeaderMap,
    client: Option<HttpClient>,
    options: openai::RequestOptions,
    reasoning_models: Vec<String>,
    drop: Vec<Param>,
    buffer_tool_calls: bool,
    max_response_bytes: usize,
}

impl OpenAiProvider {
    /// A provider named `name` at `base_url` (the part before
    /// `/chat/completions`, e.g. `https://api.openai.com/v1`).
    pub fn builder(name: impl Into<String>, base_url: impl Into<String>) -> OpenAiProviderBuilder {
        OpenAiProviderBuilder {
            name: name.into(),
            base_url: base_url.into(),
            keys: Vec::new(),
            passthrough: false,
            headers: HeaderMap::new(),
            client: None,
            options: openai::RequestOptions::default(),
            reasoning_models: Vec::new(),
            drop: Vec::new(),
            buffer_tool_calls: false,
            max_response_bytes: 64 << 20,
        }
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

impl OpenAiProviderBuilder {
    /// One API key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(key.into());
        self
    }

    /// API keys, used round robin.
    pub fn api_keys<I: IntoIterator<Item = K>, K: Into<String>>(mut self, keys: I) -> Self {
        self.keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Send the client's own key instead of ours.
    pub fn passthrough(mut self, yes: bool) -> Self {
        self.passthrough = yes;
        self
    }

    /// An extra header on every request (ignored if the name or value is
    /// invalid).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.headers.insert(n, v);
        }
        self
    }

    /// The HTTP client (default: [`HttpClient::hyper`]).
    pub fn client(mut self, client: HttpClient) -> Self {
        self.client = Some(client);
        self
    }

    /// Options for requests that come from Anthropic clients.
    pub fn options(mut self, options: openai::RequestOptions) -> Self {
        self.options = options;
        self
    }

    /// The field for the output limit (for servers that only know
    /// `max_tokens`).
    pub fn max_tokens_field(mut self, field: MaxTokensField) -> Self {
        self.options = self.options.max_tokens_field(field);
        self
    }

    /// Upstream models (globs) that reason: thinking becomes
    /// `reasoning_effort`, and `temperature`/`top_p` are not sent.
    pub fn reasoning_models<I: IntoIterator<Item = P>, P: Into<String>>(
        mut self,
        patterns: I,
    ) -> Self {
        self.reasoning_models
            .extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Parameters this upstream rejects, removed from every request.
    pub fn drop_params(mut self, params: impl IntoIterator<Item = Param>) -> Self {
        self.drop.extend(params);
        self
    }

    /// Hold streamed tool calls until complete (for upstreams that interleave
    /// parallel calls).
    pub fn buffer_tool_calls(mut self, yes: bool) -> Self {
        self.buffer_tool_calls = yes;
        self
    }

    /// The largest complete response accepted (default 64 MiB).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Builds the provider. Without a client set, the default client is
    /// built (feature `client`); that fails if TLS cannot be set up. A base
    /// URL that does not make a valid URI fails here too, not on each call.
    pub fn try_build(self) -> Result<OpenAiProvider, super::BoxError> {
        let client = match self.client {
            Some(c) => c,
            None => default_client()?,
        };
        Ok(OpenAiProvider {
            inner: Arc::new(Config {
                name: self.name,
                chat_uri: endpoint(&self.base_url, "chat/completions")?,
                credentials: Credentials {
                    pool: (!self.keys.is_empty()).then(|| KeyPool::new(self.keys)),
                    passthrough: self.passthrough,
                },
                headers: self.headers,
                client,
                options: self.options,
                reasoning_models: self.reasoning_models,
                drop: (!self.drop.is_empty()).then(|| DropParams::new(self.drop)),
                buffer_tool_calls: self.buffer_tool_calls,
                max_response_bytes: self.max_response_bytes,
            }),
        })
    }

    /// Builds the provider with the client given to [`client`](Self::client).
    ///
    /// # Panics
    ///
    /// Without a client and without the `client` feature, if TLS cannot be
    /// set up, or if the base URL is not a valid URI; use
    /// [`try_build`](Self::try_build) to handle that.
    pub fn build(self) -> OpenAiProvider {
        match self.try_build() {
            Ok(p) => p,
            Err(e) => panic!("cannot build the provider: {e}"),
        }
    }
}

#[cfg(feature = "client")]
fn default_client() -> Result<HttpClient, super::BoxError> {
    HttpClient::hyper()
}

#[cfg(not(feature = "client"))]
fn default_client() -> Result<HttpClient, super::BoxError> {
    Err("no HTTP client: enable the `client` feature or set one".into())
}

impl Service<LlmRequest> for OpenAiProvider {
    type Response = LlmResponse;
    type Error = ApiError;
    type Future = LlmFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ApiError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: LlmRequest) -> LlmFuture {
        let cfg = self.inner.clone();
        Box::pin(call(cfg, req))
    }
}

async fn call(cfg: Arc<Config>, req: LlmRequest) -> Result<LlmResponse, ApiError> {
    let LlmRequest { mut chat, ctx } = req;
    if ctx.operation == Operation::CountTokens {
        // Chat Completions has no token counting endpoint: estimate.
        return Ok(LlmResponse::token_count(estimate_input_tokens(&chat)));
    }
    if let Some(drop) = &cfg.drop {
        drop.apply(&mut chat);
    }
    let mut options = cfg.options.clone();
    if cfg
        .reasoning_models
        .iter()
        .any(|p| glob_match(p, &chat.model))
    {
        options = options.reasoning_model(true);
    }
    let stream = chat.is_stream();
    let decoder = stream.then(|| {
        openai::DecoderOptions::for_request(&chat).buffer_tool_calls(cfg.buffer_tool_calls)
    });
    let names = if stream {
        ToolNames::default()
    } else {
        ToolNames::for_request(&chat)
    };
    let body = json_body(openai::request_to_wire(*chat, &options)?, ctx.body_len_hint)?;
    let resp = send_with_keys(&cfg.credentials, &cfg.client, &ctx, body, |key, body| {
        json_post(&cfg.chat_uri, stream, body, &cfg.headers, |headers| {
            if let Some(key) = key {
                let value = secret_header(&format!("Bearer {}", key.expose()))?;
                headers.insert(AUTHORIZATION, value);
            }
            Ok(())
        })
    })
    .await?;
    let headers = passed_headers(resp.headers());
    let body = resp.into_body();
    let mut response = match decoder {
        Some(opts) => LlmResponse::stream(EventStream::new(
            UpstreamEvents::new(
                body,
                StreamDecoder::OpenAi(openai::ChunkDecoder::new(opts)),
                ctx.timing.clone(),
            ),
            Some(Format::OpenAi),
        )),
        None => {
            let bytes = read_body(body, cfg.max_response_bytes, &ctx.timing).await?;
            let wire = crate::wire::from_json(&bytes).map_err(|e| {
                ApiError::api(format!("the upstream sent an invalid response: {e}")).mark_upstream()
            })?;
            LlmResponse::complete(openai::response_from_wire(wire, &names)?)
        }
    };
    response.headers = headers;
    Ok(response)
}
