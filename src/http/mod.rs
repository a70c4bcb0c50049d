//! The HTTP tier: an LLM-tier service served over HTTP, in both wire formats.
//!
//! [`HttpLayer`] turns any `Service<LlmRequest, Response = LlmResponse,
//! Error = ApiError>` into a `Service<http::Request<B>>` that hyper serves
//! directly and axum mounts with `route_service`:
//!
//! | route | format |
//! |---|---|
//! | `POST /v1/messages` | Anthropic Messages |
//! | `POST /v1/messages/count_tokens` | Anthropic token counting |
//! | `POST /v1/chat/completions` | OpenAI Chat Completions |
//! | `GET /v1/models` | the configured model names, in the Anthropic shape when the request carries `anthropic-version`, else the OpenAI shape |
//!
//! On the way in it checks the body (a size limit, default 32 MiB; a JSON
//! content type when one is given; valid JSON of the right shape, with the
//! path of the offending field in the message), decodes it into the canonical
//! model, and reads the client's credential (`x-api-key` or `Authorization:
//! Bearer`) and the `anthropic-version`/`anthropic-beta` headers into the
//! request context. On the way out it writes complete responses as JSON and
//! streams as server-sent events in the client's format, each event as soon
//! as it arrives (events that are already waiting go out in one write). The
//! response carries the model name the client asked for.
//!
//! Every error is mapped once, to the client's format and status
//! (conversion-spec §4), with `retry-after`/`retry-after-ms` kept and
//! `x-should-retry: false` on errors retrying cannot fix (billing, quota). An
//! error before the stream starts is a JSON error response with its status,
//! never a `200` event stream; after it started, a terminal error event; a
//! stream that ends without its last event gets one.
//!
//! Every response carries the request id (`request-id` for Anthropic
//! clients, `x-request-id` for OpenAI ones) and the gateway's own time so far
//! in `x-llmgate-overhead-ms` (for a stream: up to the headers): from the
//! call, or from when the request's first bytes were read if its connection
//! is an [`ArrivalIo`], to the response headers, minus the time spent on
//! upstreams. With the built-in client that is the time on the wire, from the
//! upstream connection's last write to its first read after it; encoding,
//! writing and parsing count as the gateway's. The clock cannot see the
//! wake-ups before a read, nor hyper writing the answer that carries it.
//!
//! ```
//! use llmgate::http::HttpLayer;
//! use llmgate::provider::MockProvider;
//! use llmgate::route::{ResolveLayer, Resolver};
//! use llmgate::provider::Providers;
//! use llmgate::llm::Target;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let gateway = ServiceBuilder::new()
//!     .layer(HttpLayer::new())
//!     .layer(ResolveLayer::new(Resolver::new().pattern("*", [Target::new("mock", "mock-1")])))
//!     .service(Providers::new().with("mock", MockProvider::new()));
//!
//! let req = http::Request::post("/v1/chat/completions")
//!     .header("content-type", "application/json")
//!     .body(http_body_util::Full::new(bytes::Bytes::from(
//!         r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
//!     )))
//!     .unwrap();
//! let resp = gateway.oneshot(req).await.unwrap();
//! assert_eq!(resp.status(), 200);
//! assert!(resp.headers().contains_key("x-request-id"));
//! # });
//! ```

mod arrival;
mod body;
mod decode;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body::Body;
use serde::Serialize;
use tower::{Layer, Service, ServiceExt};

pub use arrival::{Arrival, ArrivalIo};
pub use body::ResponseBody;

use crate::Format;
use crate::convert::{anthropic, openai};
use crate::error::{ApiError, ErrorKind};
use crate::llm::{LlmBody, LlmRequest, LlmResponse, RequestContext, Timing};
use crate::metrics::{Outcome, Recorder, Tracker};
use crate::provider::BoxError;

/// The default request body limit: 32 MiB, as the Anthropic API.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 << 20;

/// The response header with the gateway's own time, in milliseconds.
pub const OVERHEAD_HEADER: &str = "x-llmgate-overhead-ms";

/// Header names used on every request, made once: a lookup or insert by
/// `&str` parses and validates the name each time.
pub(crate) mod names {
    use http::HeaderName;

    pub(crate) const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
    pub(crate) const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
    pub(crate) const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");
    pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
    pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    pub(crate) const OVERHEAD: HeaderName = HeaderName::from_static(super::OVERHEAD_HEADER);
}

#[derive(Debug, Clone)]
struct HttpConfig {
    max_body_bytes: usize,
    models: Vec<String>,
    tracker: Option<Tracker>,
    echo_model: bool,
    reasoning_content: bool,
}

/// Serves an LLM-tier service over HTTP; see the [module docs](self).
#[derive(Debug, Clone)]
#[must_use]
pub struct HttpLayer {
    cfg: Arc<HttpConfig>,
}

impl Default for HttpLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpLayer {
    /// The HTTP tier with the default body limit, no model list and no
    /// tracker.
    pub fn new() -> Self {
        Self {
            cfg: Arc::new(HttpConfig {
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                models: Vec::new(),
                tracker: None,
                echo_model: true,
                reasoning_content: false,
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut HttpConfig)) -> Self {
        f(Arc::make_mut(&mut self.cfg));
        self
    }

    /// The largest request body accepted (413 beyond).
    pub fn max_body_bytes(self, bytes: usize) -> Self {
        self.with(|c| c.max_body_bytes = bytes)
    }

    /// The model names `GET /v1/models` lists.
    pub fn models<I: IntoIterator<Item = S>, S: Into<String>>(self, names: I) -> Self {
        self.with(|c| c.models = names.into_iter().map(Into::into).collect())
    }

    /// Records every request, including the ones refused before they reach
    /// the LLM tier, in `tracker`.
    pub fn tracker(self, tracker: Tracker) -> Self {
        self.with(|c| c.tracker = Some(tracker))
    }

    /// Whether responses carry the model the client asked for (default) or
    /// the one the upstream reported.
    pub fn echo_requested_model(self, yes: bool) -> Self {
        self.with(|c| c.echo_model = yes)
    }

    /// Send thinking from Anthropic upstreams to OpenAI clients as the
    /// non-standard `reasoning_content` (default off).
    pub fn reasoning_content(self, yes: bool) -> Self {
        self.with(|c| c.reasoning_content = yes)
    }
}

impl<S> Layer<S> for HttpLayer {
    type Service = HttpService<S>;

    fn layer(&self, inner: S) -> HttpService<S> {
        HttpService {
            inner,
            cfg: self.cfg.clone(),
        }
    }
}

/// The service of [`HttpLayer`].
#[derive(Debug, Clone)]
pub struct HttpService<S> {
    inner: S,
    cfg: Arc<HttpConfig>,
}

impl<S> HttpService<S> {
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

/// The future of [`HttpService`].
pub type HttpFuture =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

impl<S, B> Service<http::Request<B>> for HttpService<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = HttpFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is checked per request (`oneshot`), so that an inner
        // service that is not ready becomes an error response, not a stall.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> HttpFuture {
        let inner = self.inner.clone();
        let cfg = self.cfg.clone();
        Box::pin(async move { Ok(handle(inner, cfg, req).await) })
    }
}

async fn handle<S, B>(
    inner: S,
    cfg: Arc<HttpConfig>,
    req: http::Request<B>,
) -> Response<ResponseBody>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError> + Send + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    // From when the request began to arrive, if its connection says
    // ([`ArrivalIo`]), else from now.
    let timing = Arc::new(
        match req.extensions().get::<Arrival>().and_then(Arrival::started) {
            Some(at) => Timing::since(at),
            None => Timing::new(),
        },
    );
    let (parts, body) = req.into_parts();
    let id = crate::convert::random_id("req_");
    // Every request that reaches the HTTP tier is recorded, whatever it asks.
    let start = |format: Format| cfg.tracker.as_ref().map(|t| t.start(&id, format, ""));
    let endpoint = match decode::endpoint(&parts.method, parts.uri.path(), &parts.headers) {
        Ok(e) => e,
        Err((format, err)) => {
            let resp = error_response(format, &err, Some(&id), &timing);
            if let Some(r) = start(format) {
                r.finish(Outcome::of_error(&err), resp.status().as_u16());
            }
            return resp;
        }
    };
    let (format, operation) = match endpoint {
        decode::Endpoint::Models(format) => {
            if let Some(r) = start(format) {
                r.finish(Outcome::Success, 200);
            }
            return finish_headers(
                models_response(format, &cfg.models),
                format,
                &id,
                timing.overhead(),
            );
        }
        decode::Endpoint::Call(format, operation) => (format, operation),
    };
    let recorder = start(format);
    // An error's header carries the overhead as it stands when the error
    // is known (after the stack: what the recorder got).
    let fail = |err: ApiError, overhead: Duration| {
        let resp = error_response_with(format, &err, Some(&id), overhead);
        if let Some(r) = &recorder {
            r.finish(Outcome::of_error(&err), resp.status().as_u16());
        }
        resp
    };
    let declared = decode::declared_length(&parts.headers);
    let (chat, body_len) = match decode::request(
        format,
        operation,
        &parts.headers,
        declared,
        body,
        cfg.max_body_bytes,
    )
    .await
    {
        Ok(read) => read,
        Err(err) => return fail(err, timing.overhead()),
    };
    let mut ctx = RequestContext::with_id(id.clone(), format, chat.model.clone());
    ctx.operation = operation;
    ctx.client_key = decode::credential(&parts.headers);
    ctx.forward_headers = decode::forward_headers(&parts.headers);
    ctx.body_len_hint = body_len;
    ctx.timing = timing.clone();
    if let Some(r) = &recorder {
        r.set_requested_model(&chat.model);
        ctx.recorder = Some(r.clone());
    }
    let requested_model = chat.model.clone();
    let include_usage = chat.include_usage == Some(true);
    let span = recorder.as_ref().map(|r| r.span().clone());
    let call = inner.oneshot(LlmRequest {
        chat: Box::new(chat),
        ctx: Box::new(ctx),
    });
    let result = match span {
        Some(span) => tracing::Instrument::instrument(call, span).await,
        None => call.await,
    };
    let overhead = timing.settle();
    if let Some(r) = &recorder {
        r.set_overhead(overhead);
    }
    let resp = match result {
        Ok(resp) => {
            let echo = cfg.echo_model.then_some(requested_model);
            success_response(
                format,
                resp,
                echo,
                include_usage,
                cfg.reasoning_content,
                recorder.clone(),
            )
        }
        Err(err) => return fail(err, overhead),
    };
    // The header says what the recorder got.
    finish_headers(resp, format, &id, overhead)
}

fn finish_headers(
    mut resp: Response<ResponseBody>,
    format: Format,
    id: &str,
    overhead: Duration,
) -> Response<ResponseBody> {
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::try_from(id) {
        headers.insert(request_id_header(format), v);
    }
    if let Ok(v) = HeaderValue::try_from(millis(overhead)) {
        headers.insert(names::OVERHEAD, v);
    }
    resp
}

/// `d` in milliseconds to the nearest microsecond ("0.046"), written as
/// integers: a float's exact formatting, or even `format!`'s machinery,
/// costs more than the rest of [`finish_headers`].
fn millis(d: Duration) -> String {
    let micros = u64::try_from((d.as_nanos() + 500) / 1000).unwrap_or(u64::MAX);
    let mut whole = itoa::Buffer::new();
    let whole = whole.format(micros / 1000);
    let frac = micros % 1000;
    let mut out = String::with_capacity(whole.len() + 4);
    out.push_str(whole);
    out.push('.');
    for digit in [frac / 100, frac / 10 % 10, frac % 10] {
        out.push(char::from(b'0' + digit as u8));
    }
    out
}

fn request_id_header(format: Format) -> HeaderName {
    match format {
        Format::Anthropic => names::REQUEST_ID,
        Format::OpenAi => names::X_REQUEST_ID,
    }
}

/// The size hint of a JSON answer's buffer ([`crate::wire::to_json`] adds
/// half as much again for sonic-rs: 1.5 KiB). Without one, a small answer (a
/// few hundred bytes) started at 128 bytes and was grown twice on its way:
/// sonic-rs reserves six bytes a string byte plus 35 before each string. The
/// buffer lives only until hyper has written it.
const ANSWER_HINT: usize = 1024;

fn json_response<T: Serialize>(status: u16, value: &T) -> Response<ResponseBody> {
    let (status, bytes) = match crate::wire::to_json(value, ANSWER_HINT) {
        Ok(b) => (status, b),
        // Serialising our own types cannot fail; answer something valid anyway.
        Err(_) => (
            500,
            br#"{"error":{"message":"response encoding failed","type":"server_error"}}"#.to_vec(),
        ),
    };
    let mut resp = Response::new(ResponseBody::full(Bytes::from(bytes)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The error response a client of `format` gets for `err`.
pub fn error_response(
    format: Format,
    err: &ApiError,
    id: Option<&str>,
    timing: &Timing,
) -> Response<ResponseBody> {
    error_response_with(format, err, id, timing.overhead())
}

/// [`error_response`] with the overhead its header reports.
fn error_response_with(
    format: Format,
    err: &ApiError,
    id: Option<&str>,
    overhead: Duration,
) -> Response<ResponseBody> {
    let mut resp = match format {
        Format::Anthropic => {
            let (status, body) = err.to_anthropic(id);
            json_response(status, &body)
        }
        Format::OpenAi => {
            let (status, body) = err.to_openai();
            json_response(status, &body)
        }
    };
    let headers = resp.headers_mut();
    for (name, value) in err.retry_after_headers() {
        headers.insert(name, value);
    }
    if err.kind == ErrorKind::Billing {
        headers.insert("x-should-retry", HeaderValue::from_static("false"));
    }
    match id {
        Some(id) => finish_headers(resp, format, id, overhead),
        None => resp,
    }
}

fn success_response(
    format: Format,
    resp: LlmResponse,
    echo_model: Option<String>,
    include_usage: bool,
    reasoning_content: bool,
    recorder: Option<Recorder>,
) -> Response<ResponseBody> {
    let LlmResponse { body, headers } = resp;
    let mut out = match body {
        LlmBody::Complete(mut r) => {
            if let Some(model) = echo_model {
                r.model = model;
            }
            if let Some(rec) = &recorder {
                rec.usage(&r.usage);
                rec.finish(Outcome::Success, 200);
            }
            match format {
                Format::Anthropic => json_response(200, &anthropic::response_to_wire(*r)),
                Format::OpenAi => {
                    let opts =
                        openai::ResponseOptions::default().reasoning_content(reasoning_content);
                    json_response(200, &openai::response_to_wire(*r, &opts))
                }
            }
        }
        LlmBody::TokenCount(n) => {
            if let Some(rec) = &recorder {
                rec.finish(Outcome::Success, 200);
            }
            json_response(200, &serde_json::json!({ "input_tokens": n }))
        }
        LlmBody::Stream(stream) => {
            if let Some(rec) = &recorder {
                rec.set_streaming();
            }
            let encoder = match format {
                Format::Anthropic => {
                    body::Encoder::Anthropic(anthropic::EventEncoder::new(stream.origin()))
                }
                Format::OpenAi => body::Encoder::OpenAi(openai::ChunkEncoder::new(
                    openai::EncoderOptions::default()
                        .include_usage(include_usage)
                        .reasoning_content(reasoning_content),
                    stream.origin(),
                )),
            };
            let mut resp = Response::new(ResponseBody::sse(stream, encoder, echo_model, recorder));
            let h = resp.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream; charset=utf-8"),
            );
            h.insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache"),
            );
            h.insert("x-accel-buffering", HeaderValue::from_static("no"));
            resp
        }
    };
    for (name, value) in &headers {
        out.headers_mut().append(name.clone(), value.clone());
    }
    out
}

fn models_response(format: Format, models: &[String]) -> Response<ResponseBody> {
    match format {
        Format::Anthropic => {
            let data: Vec<serde_json::Value> = models
                .iter()
                .map(|m| {
                    serde_json::json!({"type": "model", "id": m, "display_name": m,
                                       "created_at": "2025-01-01T00:00:00Z"})
                })
                .collect();
            json_response(
                200,
                &serde_json::json!({"data": data, "has_more": false,
                    "first_id": models.first(), "last_id": models.last()}),
            )
        }
        Format::OpenAi => {
            let data: Vec<serde_json::Value> = models
                .iter()
                .map(|m| serde_json::json!({"id": m, "object": "model", "created": 0, "owned_by": "llmgate"}))
                .collect();
            json_response(200, &serde_json::json!({"object": "list", "data": data}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overhead_header_reads_milliseconds_to_the_microsecond() {
        assert_eq!(millis(Duration::ZERO), "0.000");
        assert_eq!(millis(Duration::from_nanos(45_499)), "0.045");
        assert_eq!(millis(Duration::from_nanos(45_500)), "0.046");
        assert_eq!(millis(Duration::from_micros(1_234)), "1.234");
        assert_eq!(millis(Duration::from_nanos(999_999_600)), "1000.000");
        assert_eq!(millis(Duration::from_secs(61)), "61000.000");
        // Beyond 584,542 years it saturates.
        assert_eq!(millis(Duration::MAX), "18446744073709551.615");
    }

    /// The clock starts when the request began to arrive on its connection
    /// (an `Arrival` in its extensions), else at the call.
    #[tokio::test]
    async fn the_clock_starts_when_the_request_began_to_arrive() {
        use std::sync::Mutex;

        let seen: Arc<Mutex<Vec<std::time::Instant>>> = Arc::default();
        let log = seen.clone();
        let inner = tower::service_fn(move |req: LlmRequest| {
            log.lock().unwrap().push(req.ctx.timing.start());
            async { Err::<LlmResponse, _>(ApiError::api("stop here")) }
        });
        let http = HttpLayer::new().layer(inner);
        let request = || {
            http::Request::post("/v1/chat/completions")
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(Bytes::from_static(
                    br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
                )))
                .unwrap()
        };

        let arrival = Arrival::default();
        crate::io::Watch::read(&arrival);
        let arrived = arrival.started().unwrap();
        let mut req = request();
        req.extensions_mut().insert(arrival);
        let before_call = std::time::Instant::now();
        let _ = http.clone().oneshot(req).await.unwrap();
        let _ = http.clone().oneshot(request()).await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0], arrived, "from the arrival");
        assert!(
            seen[1] >= before_call,
            "from the call when no arrival is known"
        );
    }
}
