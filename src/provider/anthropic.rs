use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderName, HeaderValue};
use tower::Service;

use super::client::{HttpClient, StreamDecoder, UpstreamEvents, passed_headers, read_body};
use super::{Credentials, endpoint, json_body, json_post, secret_header, send_with_keys};
use crate::Format;
use crate::auth::KeyPool;
use crate::convert::anthropic;
use crate::error::ApiError;
use crate::http::names;
use crate::llm::{EventStream, LlmFuture, LlmRequest, LlmResponse, Operation};
use crate::preprocess::{DropParams, Param};
use crate::wire::anthropic::CountTokensResponse;

/// The `anthropic-version` sent when the client gave none.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// The Anthropic Messages API (or a compatible one).
///
/// Sends `x-api-key` and `anthropic-version` (the client's, when the client
/// speaks Anthropic, else 2023-06-01) and passes on the client's
/// `anthropic-beta`. `count_tokens` requests go to the upstream's own
/// endpoint.
///
/// ```
/// use llmgate::provider::AnthropicProvider;
///
/// # fn client() -> llmgate::provider::HttpClient { llmgate::provider::HttpClient::new(tower::service_fn(|_req: llmgate::provider::UpstreamRequest| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
/// # })) }
/// let provider = AnthropicProvider::builder("anthropic", "https://api.anthropic.com/v1")
///     .api_key("sk-ant-…")
///     .client(client())
///     .build();
/// # let _ = provider;
/// ```
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    inner: Arc<Config>,
}

#[derive(Debug)]
struct Config {
    name: String,
    /// `{base_url}/messages`.
    messages_uri: http::Uri,
    /// `{base_url}/messages/count_tokens`.
    count_tokens_uri: http::Uri,
    credentials: Credentials,
    headers: HeaderMap,
    client: HttpClient,
    options: anthropic::RequestOptions,
    drop: Option<DropParams>,
    max_response_bytes: usize,
}

/// Builds an [`AnthropicProvider`].
#[derive(Debug)]
#[must_use]
pub struct AnthropicProviderBuilder {
    name: String,
    base_url: String,
    keys: Vec<String>,
    passthrough: bool,
    headers: HeaderMap,
    client: Option<HttpClient>,
    options: anthropic::RequestOptions,
    drop: Vec<Param>,
    max_response_bytes: usize,
}

impl AnthropicProvider {
    /// A provider named `name` at `base_url` (the part before `/messages`,
    /// e.g. `https://api.anthropic.com/v1`).
    pub fn builder(
        name: impl Into<String>,
        base_url: impl Into<String>,
    ) -> AnthropicProviderBuilder {
        AnthropicProviderBuilder {
            name: name.into(),
            base_url: base_url.into(),
            keys: Vec::new(),
            passthrough: false,
            headers: HeaderMap::new(),
            client: None,
            options: anthropic::RequestOptions::default(),
            drop: Vec::new(),
            max_response_bytes: 64 << 20,
        }
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

impl AnthropicProviderBuilder {
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

    /// An extra header on every request (ignored if invalid).
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

    /// Options for requests that come from OpenAI clients.
    pub fn options(mut self, options: anthropic::RequestOptions) -> Self {
        self.options = options;
        self
    }

    /// Parameters this upstream rejects, removed from every request.
    pub fn drop_params(mut self, params: impl IntoIterator<Item = Param>) -> Self {
        self.drop.extend(params);
        self
    }

    /// The largest complete response accepted (default 64 MiB).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Builds the provider; see [`OpenAiProviderBuilder::try_build`](super::OpenAiProviderBuilder::try_build).
    pub fn try_build(self) -> Result<AnthropicProvider, super::BoxError> {
        let client = match self.client {
            Some(c) => c,
            None => default_client()?,
        };
        Ok(AnthropicProvider {
            inner: Arc::new(Config {
                name: self.name,
                messages_uri: endpoint(&self.base_url, "messages")?,
                count_tokens_uri: endpoint(&self.base_url, "messages/count_tokens")?,
                credentials: Credentials {
                    pool: (!self.keys.is_empty()).then(|| KeyPool::new(self.keys)),
                    passthrough: self.passthrough,
                },
                headers: self.headers,
                client,
                options: self.options,
                drop: (!self.drop.is_empty()).then(|| DropParams::new(self.drop)),
                max_response_bytes: self.max_response_bytes,
            }),
        })
    }

    /// Builds the provider.
    ///
    /// # Panics
    ///
    /// As [`OpenAiProviderBuilder::build`](super::OpenAiProviderBuilder::build).
    pub fn build(self) -> AnthropicProvider {
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

impl Service<LlmRequest> for AnthropicProvider {
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
    if let Some(drop) = &cfg.drop {
        drop.apply(&mut chat);
    }
    let count = ctx.operation == Operation::CountTokens;
    let stream = !count && chat.is_stream();
    let mut wire = anthropic::request_to_wire(*chat, &cfg.options)?;
    if count {
        // count_tokens takes the request without the generation parameters.
        wire.max_tokens = None;
        wire.stream = None;
        wire.stop_sequences = None;
        wire.temperature = None;
        wire.top_p = None;
        wire.top_k = None;
        wire.metadata = None;
    }
    let body = json_body(wire, ctx.body_len_hint)?;
    let uri = if count {
        &cfg.count_tokens_uri
    } else {
        &cfg.messages_uri
    };

    let version = match (
        ctx.inbound,
        ctx.forward_headers.get(names::ANTHROPIC_VERSION),
    ) {
        (Format::Anthropic, Some(v)) => v.clone(),
        _ => HeaderValue::from_static(DEFAULT_ANTHROPIC_VERSION),
    };
    let resp = send_with_keys(&cfg.credentials, &cfg.client, &ctx, body, |key, body| {
        json_post(uri, stream, body, &cfg.headers, |headers| {
            headers.insert(names::ANTHROPIC_VERSION, version.clone());
            if ctx.inbound == Format::Anthropic {
                for beta in ctx.forward_headers.get_all(names::ANTHROPIC_BETA) {
                    headers.append(names::ANTHROPIC_BETA, beta.clone());
                }
            }
            if let Some(key) = key {
                headers.insert(names::X_API_KEY, secret_header(key.expose())?);
            }
            Ok(())
        })
    })
    .await?;
    let headers = passed_headers(resp.headers());
    let body = resp.into_body();
    let mut response = if stream {
        LlmResponse::stream(EventStream::new(
            UpstreamEvents::new(
                body,
                StreamDecoder::Anthropic(anthropic::EventDecoder::new()),
                ctx.timing.clone(),
            ),
            Some(Format::Anthropic),
        ))
    } else {
        let bytes = read_body(body, cfg.max_response_bytes, &ctx.timing).await?;
        let invalid = |e: serde_json::Error| {
            ApiError::api(format!("the upstream sent an invalid response: {e}")).mark_upstream()
        };
        if count {
            let counted: CountTokensResponse = crate::wire::from_json(&bytes).map_err(invalid)?;
            LlmResponse::token_count(counted.input_tokens)
        } else {
            let wire = crate::wire::from_json(&bytes).map_err(invalid)?;
            LlmResponse::complete(anthropic::response_from_wire(wire))
        }
    };
    response.headers = headers;
    Ok(response)
}
