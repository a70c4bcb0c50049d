use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_core::Stream;
use http::{HeaderMap, Response};
use http_body::Body;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt};

use crate::chat::ChatEvent;
use crate::convert::{anthropic, openai};
use crate::error::{ApiError, ErrorKind};
use crate::llm::Timing;
use crate::sse::{SseDecoder, SseEvent};
use crate::sync::AtomicInstant;

/// A boxed error of the upstream client.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of an upstream response.
pub type UpstreamBody = BoxBody<Bytes, BoxError>;

/// A request to an upstream.
pub type UpstreamRequest = http::Request<Full<Bytes>>;

/// The HTTP client providers use: any `Service` from
/// `http::Request<Full<Bytes>>` to `http::Response<impl Body>`, boxed. The
/// default ([`HttpClient::hyper`], feature `client`) is hyper-util's pooled
/// client with rustls.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<dyn Exchange>,
}

/// An upstream exchange in flight.
type Sending = Pin<Box<dyn Future<Output = Result<Response<UpstreamBody>, BoxError>> + Send>>;

/// A client as [`HttpClient`] holds it: each request readies and calls a
/// clone of its own, in one boxed future (a `BoxCloneSyncService` took one
/// allocation more a request: the clone's box).
trait Exchange: Send + Sync {
    fn send(&self, req: UpstreamRequest) -> Sending;
}

struct Held<S, B>(S, std::marker::PhantomData<fn() -> B>);

impl<S, B> Exchange for Held<S, B>
where
    S: Service<UpstreamRequest, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    fn send(&self, req: UpstreamRequest) -> Sending {
        let mut client = self.0.clone();
        Box::pin(async move {
            let resp = client.ready().await.map_err(Into::into)?.call(req).await;
            Ok(resp
                .map_err(Into::into)?
                .map(|b| b.map_err(Into::into).boxed()))
        })
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

/// The connect timeout of [`HttpClient::hyper`] and of the config's
/// `timeouts.connect_ms` default.
#[cfg(any(feature = "client", feature = "config"))]
pub(crate) const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Idle connections [`HttpClient::hyper`] keeps per upstream host and thread
/// (and the config's `pool.max_idle_per_host` default).
///
/// The cap trades memory for reconnects. An idle hyper connection keeps its
/// buffers (8 KiB of read buffer, 8 KiB for request heads): ~18 KiB live,
/// ~30 KiB of RSS measured with the allocator pages around it. When more of
/// a thread's connections to a host are idle at once than the cap, the
/// surplus is closed and the next burst opens new ones, each a TCP (and
/// TLS) handshake; hyper also starts a connection whenever a request finds
/// none idle, and pools it when it is ready. An LLM upstream keeps its
/// connections busy for seconds, so few are idle at once and 16 rarely
/// closes one; a fast upstream leaves most of them idle most of the time.
/// Measured with 32 client connections over two threads against the load
/// benchmark's mock (answers in ~0.1 ms): a cap of 16 opened 250–370
/// upstream connections a second, 24 or more at most ~6 once warm; 32
/// instead of 16 gave +8 % conversion requests/s in 6 of 6 alternating
/// rounds, but the load run's ratios moved less than their run-to-run spread
/// while idle RSS after the benchmark's 64 concurrent streams rose
/// 13.8 → 14.8 MiB, over the 15 MB target: 16 was kept. Size it to the idle
/// connections a thread needs between bursts to one host.
#[cfg(any(feature = "client", feature = "config"))]
pub(crate) const DEFAULT_MAX_IDLE_PER_HOST: usize = 16;

/// How long [`HttpClient::hyper`] keeps an idle connection (and the
/// config's `pool.idle_timeout_ms` default).
#[cfg(any(feature = "client", feature = "config"))]
pub(crate) const DEFAULT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// Options of [`HttpClient::hyper_with`]: the connect timeout and the
/// connection pool. The defaults are those of [`HttpClient::hyper`].
///
/// ```
/// use std::time::Duration;
/// use llmgate::provider::{ClientOptions, HttpClient};
///
/// let client = HttpClient::hyper_with(
///     ClientOptions::default()
///         .connect_timeout(Duration::from_secs(3))
///         .max_idle_per_host(64),
/// )?;
/// # Ok::<(), llmgate::provider::BoxError>(())
/// ```
#[cfg(feature = "client")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    connect_timeout: std::time::Duration,
    max_idle_per_host: usize,
    idle_timeout: std::time::Duration,
}

#[cfg(feature = "client")]
impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_idle_per_host: DEFAULT_MAX_IDLE_PER_HOST,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

#[cfg(feature = "client")]
impl ClientOptions {
    /// How long connecting (TCP and TLS) may take; a connect timeout is a
    /// retryable `api_error`. Default 10 s.
    pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Idle connections kept per upstream host, per thread that sends (each
    /// thread has a pool of its own): a burst leaves no more than this open
    /// on each thread; the others close as they come back. Default 16. When
    /// more than this are idle at once between bursts (a fast upstream),
    /// connections close and reopen under load; each idle one keeps ~30 KiB
    /// of RSS; `llmgate_upstream_connects_total{host}` counts the connections
    /// opened. Zero turns pooling off: every request opens a connection of
    /// its own (and HTTP/2 connections are not shared either).
    pub fn max_idle_per_host(mut self, max: usize) -> Self {
        self.max_idle_per_host = max;
        self
    }

    /// How long an idle connection is kept. Default 90 s. Zero is taken as
    /// hyper's "no timer": an idle connection is then only found expired
    /// when a request next looks for one, so keep it above zero.
    pub fn idle_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }
}

impl HttpClient {
    /// Wraps any HTTP client service.
    pub fn new<S, B>(service: S) -> Self
    where
        S: Service<UpstreamRequest, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        Self {
            inner: Arc::new(Held(service, std::marker::PhantomData)),
        }
    }

    /// hyper-util's pooled client: HTTP/1.1 and HTTP/2 (ALPN) over rustls
    /// (ring, webpki roots) or plain TCP, a 10 s connect timeout, idle
    /// connections kept 90 s and at most 16 of them per host and thread (as
    /// nginx's `keepalive`: a burst of streams does not leave hundreds of
    /// connections open; see [`ClientOptions`] for all three), HTTP/1.1
    /// reads of at most 8 KiB (hyper's smallest; an idle pooled connection keeps its read buffer, and SSE
    /// events are far smaller). Each thread that sends gets a pool of its
    /// own, so a request and its upstream connection stay on one thread (no
    /// cross-thread wake-ups on the hot path; see the example gateway's
    /// thread-per-core servers). Fails only if the TLS provider supports no
    /// protocol version.
    #[cfg(feature = "client")]
    pub fn hyper() -> Result<Self, BoxError> {
        Self::hyper_with(ClientOptions::default())
    }

    /// [`hyper`](Self::hyper) with another connect timeout or pool.
    #[cfg(feature = "client")]
    pub fn hyper_with(options: ClientOptions) -> Result<Self, BoxError> {
        use hyper_util::client::legacy::connect::HttpConnector;

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(options.connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(per_thread::connector(http));
        Ok(Self::new(per_thread::PerThread {
            pools: Arc::default(),
            connector,
            options,
        }))
    }

    /// Sends a request.
    pub(crate) fn send(&self, req: UpstreamRequest) -> Sending {
        self.inner.send(req)
    }
}

/// The error a client gets when the upstream could not be reached or the
/// connection failed.
pub(crate) fn transport_error(err: &BoxError) -> ApiError {
    let mut message = String::from("upstream connection failed");
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err.as_ref());
    while let Some(e) = source {
        message.push_str(": ");
        message.push_str(&e.to_string());
        source = e.source();
        if message.len() > 400 {
            break;
        }
    }
    let mut e = ApiError::new(ErrorKind::Api, message).mark_upstream();
    e.status = Some(502);
    e
}

/// When an HTTP/1 upstream connection began its last exchange (its first
/// write after a read) and first read after that, kept by the built-in
/// client's TCP connections and attached to each response (its extensions).
/// The wait between the two is the upstream's own time: the network hop, the
/// upload of a large body, the upstream's work, the wake-up when the answer
/// arrives. Everything around it, encoding the request, hyper's hand-offs
/// between the connection's task and the request's, TLS, parsing the answer,
/// is the gateway's, and counts in its overhead (`x-llmgate-overhead-ms`);
/// timed around the whole call, those were counted as upstream time.
///
/// A connection's first request is timed around the whole call, as before:
/// it includes connecting and the TLS handshake, whose records (and TLS 1.3's
/// session tickets, which arrive after the request went out) cannot be told
/// from the answer below TLS. HTTP/2 connections interleave requests: their
/// clock is not read either.
#[derive(Debug, Default)]
pub(crate) struct WireClock {
    times: Arc<WireTimes>,
    /// The exchange's wait when this copy was taken; `None` for the
    /// connection's first response. hyper-util copies the clock into each
    /// response it carries while the connection is still the response's (a
    /// test holds it to that), so a copy is not disturbed by the next
    /// request on the connection.
    wait: Option<std::time::Duration>,
}

#[derive(Debug, Default)]
struct WireTimes {
    wrote: AtomicInstant,
    read: AtomicInstant,
    /// Whether a copy was taken for a response already.
    responded: std::sync::atomic::AtomicBool,
}

impl Clone for WireClock {
    fn clone(&self) -> Self {
        let first = !self
            .times
            .responded
            .swap(true, std::sync::atomic::Ordering::Relaxed);
        Self {
            times: self.times.clone(),
            wait: if first { None } else { self.times.wait() },
        }
    }
}

impl WireClock {
    /// A handle on the same times, for the connection's metadata (not a
    /// response's copy).
    #[cfg(feature = "client")]
    pub(crate) fn handle(&self) -> Self {
        Self {
            times: self.times.clone(),
            wait: None,
        }
    }

    /// The wait of the exchange this copy was taken for.
    pub(crate) fn wait(&self) -> Option<std::time::Duration> {
        self.wait
    }
}

#[cfg(feature = "client")]
impl crate::io::Watch for WireClock {
    /// The first read after a write is when the answer began to arrive
    /// (later ones do not read the clock).
    fn read(&self) {
        if self.times.read.not_after(&self.times.wrote) {
            self.times.read.set_now();
        }
    }

    /// The first write after a read begins an exchange (later ones do not
    /// read the clock).
    fn wrote(&self) {
        if self.times.wrote.not_after(&self.times.read) {
            self.times.wrote.set_now();
        }
    }
}

impl WireTimes {
    /// From the exchange's first write to the first read after it; `None`
    /// when nothing was read since.
    fn wait(&self) -> Option<std::time::Duration> {
        let (wrote, read) = (self.wrote.get()?, self.read.get()?);
        (read > wrote).then(|| read - wrote)
    }
}

/// How long a call that took `elapsed` waited on its upstream: the wire
/// time of the response's connection ([`WireClock`]) when it kept one,
/// else the whole call.
pub(crate) fn upstream_wait<B>(
    response: Option<&Response<B>>,
    elapsed: std::time::Duration,
) -> std::time::Duration {
    response
        // An HTTP/2 connection interleaves requests: its clock is no one's.
        .filter(|r| r.version() < http::Version::HTTP_2)
        .and_then(|r| r.extensions().get::<WireClock>())
        .and_then(WireClock::wait)
        .map_or(elapsed, |wait| wait.min(elapsed))
}

/// Reads a whole upstream body, at most `limit` bytes, counting the wait as
/// upstream time.
pub(crate) async fn read_body(
    mut body: UpstreamBody,
    limit: usize,
    timing: &Timing,
) -> Result<Bytes, ApiError> {
    let start = Instant::now();
    let mut buf = bytes::BytesMut::new();
    let result = loop {
        match body.frame().await {
            None => break Ok(buf.freeze()),
            Some(Err(e)) => break Err(transport_error(&e)),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > limit {
                        break Err(ApiError::api(format!(
                            "the upstream response is larger than {limit} bytes"
                        ))
                        .mark_upstream());
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    };
    timing.add_upstream(start.elapsed());
    result
}

/// The error of a non-2xx upstream response.
pub(crate) async fn error_response(resp: Response<UpstreamBody>, timing: &Timing) -> ApiError {
    let (parts, body) = resp.into_parts();
    let bytes = read_body(body, 1 << 20, timing).await.unwrap_or_default();
    ApiError::from_upstream_response(parts.status.as_u16(), &parts.headers, &bytes)
}

/// Upstream response headers worth passing to the client: rate-limit state.
pub(crate) fn passed_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        let n = name.as_str();
        if n.starts_with("x-ratelimit-") || n.starts_with("anthropic-ratelimit-") {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The wire format decoder of an upstream stream.
// One per stream, never moved after the stream is built.
#[allow(clippy::large_enum_variant)]
pub(crate) enum StreamDecoder {
    OpenAi(openai::ChunkDecoder),
    Anthropic(anthropic::EventDecoder),
}

impl StreamDecoder {
    fn push(&mut self, data: &str, out: &mut Vec<ChatEvent>) {
        match self {
            StreamDecoder::OpenAi(d) => d.push_data(data, out),
            StreamDecoder::Anthropic(d) => d.push_data(data, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<ChatEvent>) {
        match self {
            StreamDecoder::OpenAi(d) => d.finish(out),
            StreamDecoder::Anthropic(d) => d.finish(out),
        }
    }

    fn is_done(&self) -> bool {
        match self {
            StreamDecoder::OpenAi(d) => d.is_done(),
            StreamDecoder::Anthropic(d) => d.is_done(),
        }
    }
}

/// An upstream SSE body decoded into canonical events as it arrives. A body
/// that fails or ends early ends the stream with an error event. Dropping
/// the stream drops the body, which closes the upstream connection.
pub(crate) struct UpstreamEvents {
    body: Option<UpstreamBody>,
    sse: SseDecoder,
    decoder: StreamDecoder,
    frames: Vec<SseEvent>,
    /// Events decoded, in order, waiting for `pending` to empty.
    events: Vec<ChatEvent>,
    /// Events to hand out, last first (`pop` takes the next). The decoders
    /// write into `events`, which becomes `pending` by a swap (and a
    /// reverse in place) when `pending` is empty, instead of each event
    /// being moved into a second buffer.
    pending: Vec<ChatEvent>,
    timing: Arc<Timing>,
    waiting_since: Option<Instant>,
}

impl UpstreamEvents {
    pub(crate) fn new(body: UpstreamBody, decoder: StreamDecoder, timing: Arc<Timing>) -> Self {
        Self {
            body: Some(body),
            sse: SseDecoder::new(),
            decoder,
            frames: Vec::new(),
            events: Vec::new(),
            pending: Vec::new(),
            timing,
            waiting_since: None,
        }
    }

    fn decode_frames(&mut self) {
        for frame in self.frames.drain(..) {
            self.decoder.push(&frame.data, &mut self.events);
            self.sse.recycle(frame.data);
        }
    }

    /// The next event decoded, if any.
    fn next_event(&mut self) -> Option<ChatEvent> {
        if self.pending.is_empty() && !self.events.is_empty() {
            std::mem::swap(&mut self.pending, &mut self.events);
            self.pending.reverse();
        }
        self.pending.pop()
    }

    fn end(&mut self, err: Option<ApiError>) {
        self.body = None;
        match err {
            Some(e) if !self.decoder.is_done() => self.events.push(ChatEvent::error(e)),
            _ => {
                if self.sse.finish(&mut self.frames).is_ok() {
                    self.decode_frames();
                }
                self.decoder.finish(&mut self.events);
            }
        }
    }
}

impl Stream for UpstreamEvents {
    type Item = ChatEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        let this = &mut *self;
        loop {
            if let Some(ev) = this.next_event() {
                return Poll::Ready(Some(ev));
            }
            let Some(body) = this.body.as_mut() else {
                return Poll::Ready(None);
            };
            if this.decoder.is_done() {
                // The message ended: stop reading (dropping the body releases
                // the connection).
                this.body = None;
                continue;
            }
            let polled = Pin::new(body).poll_frame(cx);
            match polled {
                Poll::Pending => {
                    // Upstream time counts until the overhead is reported
                    // (the response headers); after that, spare the clock.
                    if this.waiting_since.is_none() && !this.timing.is_settled() {
                        this.waiting_since = Some(Instant::now());
                    }
                    return Poll::Pending;
                }
                Poll::Ready(_) => {
                    if let Some(since) = this.waiting_since.take() {
                        this.timing.add_upstream(since.elapsed());
                    }
                }
            }
            match polled {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers
                    };
                    match this.sse.feed(&data, &mut this.frames) {
                        Ok(()) => this.decode_frames(),
                        Err(e) => {
                            this.decode_frames();
                            let err = ApiError::api(format!("malformed upstream stream: {e}"))
                                .mark_upstream();
                            this.end(Some(err));
                        }
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let err = transport_error(&e);
                    let err = ApiError::api(format!("upstream stream failed: {}", err.message))
                        .mark_upstream();
                    this.end(Some(err));
                }
                Poll::Ready(None) => this.end(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(feature = "client")]
mod per_thread {
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_rustls::HttpsConnector;
    use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
    use hyper_util::client::legacy::{Client, ResponseFuture};
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use thread_local::ThreadLocal;
    use tokio::net::TcpStream;
    use tower::util::{MapRequest, MapResponse};

    use super::{UpstreamRequest, WireClock};
    use crate::io::Watched;

    type Hyper = Client<HttpsConnector<Connector>, Full<Bytes>>;

    /// The client's TCP connector: it counts the connections it opens, by
    /// upstream host, `llmgate_upstream_connects_total{host}` (a host and
    /// port of a configured provider; against the requests sent, it shows
    /// whether the pool keeps enough idle connections,
    /// [`super::ClientOptions`]), and each keeps a [`WireClock`]
    /// ([`ClockedTcp`]).
    pub(super) type Connector = MapResponse<
        MapRequest<HttpConnector, fn(http::Uri) -> http::Uri>,
        fn(TokioIo<TcpStream>) -> TokioIo<ClockedTcp>,
    >;

    pub(super) fn connector(http: HttpConnector) -> Connector {
        MapResponse::new(MapRequest::new(http, count_connect), clocked)
    }

    fn count_connect(uri: http::Uri) -> http::Uri {
        // Host and port only: an authority may carry credentials.
        let host = match (uri.host(), uri.port_u16()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => String::new(),
        };
        ::metrics::counter!("llmgate_upstream_connects_total", "host" => host).increment(1);
        uri
    }

    fn clocked(io: TokioIo<TcpStream>) -> TokioIo<ClockedTcp> {
        TokioIo::new(Watched {
            io: io.into_inner(),
            watch: WireClock::default(),
        })
    }

    /// An upstream TCP connection that keeps a [`WireClock`] of its reads
    /// and writes (below TLS, so encryption counts as the gateway's work),
    /// and attaches it to the responses it carries.
    pub(super) type ClockedTcp = Watched<TcpStream, WireClock>;

    impl Connection for ClockedTcp {
        fn connected(&self) -> Connected {
            self.io.connected().extra(self.watch.handle())
        }
    }

    /// The most an upstream connection buffers of what it reads.
    const READ_BUFFER_MAX: usize = 8 * 1024;

    /// A hyper-util client whose connection pool is per thread. The pools
    /// live as long as the client's last clone.
    #[derive(Clone)]
    pub(super) struct PerThread {
        pub(super) pools: Arc<ThreadLocal<Hyper>>,
        pub(super) connector: HttpsConnector<Connector>,
        pub(super) options: super::ClientOptions,
    }

    impl PerThread {
        fn client(&self) -> &Hyper {
            self.pools.get_or(|| {
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(self.options.idle_timeout)
                    .pool_max_idle_per_host(self.options.max_idle_per_host)
                    // hyper grows a connection's read buffer while reads fill
                    // it, and a pooled connection keeps it: bursts of stream
                    // events left idle connections holding ~50 KiB each.
                    // Capped at hyper's minimum, 8 KiB: reads of a stream's
                    // small events never need more (measured: no change in
                    // events/s; 1,000 open streams 57 → 55 MB, idle 17 → 15).
                    .http1_max_buf_size(READ_BUFFER_MAX)
                    .pool_timer(TokioTimer::new())
                    .build::<_, Full<Bytes>>(self.connector.clone())
            })
        }
    }

    impl tower::Service<UpstreamRequest> for PerThread {
        type Response = http::Response<hyper::body::Incoming>;
        type Error = hyper_util::client::legacy::Error;
        type Future = ResponseFuture;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: UpstreamRequest) -> ResponseFuture {
            self.client().request(req)
        }
    }
}

#[cfg(all(test, feature = "client"))]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A client that is not ready when first asked (it wakes the task and
    /// is ready the next time), and fails a call it was not readied for.
    #[derive(Clone, Default)]
    struct Reluctant {
        asked: bool,
        readied: bool,
        /// Fails readiness (after the first `Pending`) instead.
        broken: bool,
    }

    impl Service<UpstreamRequest> for Reluctant {
        type Response = Response<Full<Bytes>>;
        type Error = BoxError;
        type Future = std::future::Ready<Result<Response<Full<Bytes>>, BoxError>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            if !std::mem::replace(&mut self.asked, true) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if self.broken {
                return Poll::Ready(Err("the client is broken".into()));
            }
            self.readied = true;
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _req: UpstreamRequest) -> Self::Future {
            std::future::ready(if std::mem::take(&mut self.readied) || self.broken {
                // A broken client answers a call made anyway: only a
                // readiness error that is passed on keeps this out.
                Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
            } else {
                Err("called without poll_ready".into())
            })
        }
    }

    /// An OpenAI stream chunk with `text` as its content, as an SSE event.
    fn text_chunk(text: &str) -> String {
        format!(
            "data: {{\"id\":\"c\",\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n"
        )
    }

    /// The events an OpenAI upstream body of these reads makes.
    async fn upstream_events(reads: Vec<Result<Bytes, BoxError>>) -> Vec<ChatEvent> {
        use futures_util::StreamExt as _;

        let frames = reads.into_iter().map(|r| r.map(http_body::Frame::data));
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
        UpstreamEvents::new(
            BodyExt::boxed(body),
            StreamDecoder::OpenAi(openai::ChunkDecoder::new(Default::default())),
            Arc::new(Timing::new()),
        )
        .collect()
        .await
    }

    /// The text deltas among `events`, and the message of the error that
    /// ends them (if one does).
    fn texts_and_error(events: &[ChatEvent]) -> (Vec<&str>, Option<&str>) {
        let texts = events
            .iter()
            .filter_map(|e| match e {
                ChatEvent::BlockDelta {
                    delta: crate::chat::BlockDelta::Text(t),
                    ..
                } => Some(t.as_str()),
                _ => None,
            })
            .collect();
        let error = match events.last() {
            Some(ChatEvent::Error(e)) => Some(e.message.as_str()),
            _ => None,
        };
        (texts, error)
    }

    #[tokio::test]
    async fn upstream_events_come_out_in_order_across_reads_and_before_a_failure() {
        // Three events in one read, one in the next, then the connection fails.
        let events = upstream_events(vec![
            Ok(Bytes::from(
                text_chunk("a") + &text_chunk("b") + &text_chunk("c"),
            )),
            Ok(Bytes::from(text_chunk("d"))),
            Err("connection reset".into()),
        ])
        .await;
        let (texts, error) = texts_and_error(&events);
        assert_eq!(texts, ["a", "b", "c", "d"]);
        assert!(
            error.is_some_and(|m| m.contains("connection reset")),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn the_client_is_readied_before_each_request() {
        let client = HttpClient::new(Reluctant::default());
        for _ in 0..2 {
            let resp = client.send(UpstreamRequest::default()).await;
            let body = resp.unwrap().into_body().collect().await.unwrap();
            assert_eq!(body.to_bytes(), "ok");
        }
        let broken = HttpClient::new(Reluctant {
            broken: true,
            ..Reluctant::default()
        });
        let err = broken.send(UpstreamRequest::default()).await.unwrap_err();
        assert_eq!(err.to_string(), "the client is broken");
    }

    #[tokio::test]
    async fn a_framing_error_comes_after_the_events_read_before_it() {
        // Two events and a line that is not UTF-8, in one read.
        let mut read = (text_chunk("a") + &text_chunk("b")).into_bytes();
        read.extend_from_slice(b"data: \xff\n\n");
        let events = upstream_events(vec![Ok(Bytes::from(read))]).await;
        let (texts, error) = texts_and_error(&events);
        assert_eq!(texts, ["a", "b"]);
        assert!(error.is_some_and(|m| m.contains("malformed")), "{events:?}");
    }

    fn answered(clock: Option<WireClock>, version: http::Version) -> Response<()> {
        let mut resp = Response::new(());
        *resp.version_mut() = version;
        if let Some(clock) = clock {
            resp.extensions_mut().insert(clock);
        }
        resp
    }

    #[test]
    fn the_wire_clock_times_from_an_exchanges_first_write_to_the_first_read_after_it() {
        use crate::io::Watch as _;

        let clock = WireClock::default();
        let times = || clock.times.wait();
        assert_eq!(times(), None, "nothing written");
        clock.read();
        assert_eq!(times(), None, "a read before any write");
        clock.wrote();
        let began = clock.times.wrote.get();
        assert_eq!(times(), None, "nothing read since the write");
        clock.wrote();
        assert_eq!(
            clock.times.wrote.get(),
            began,
            "later writes keep the first"
        );
        clock.read();
        let first = times().expect("a read after the write");
        clock.read();
        assert_eq!(times(), Some(first), "later reads keep the first");
        clock.wrote();
        assert_eq!(times(), None, "a new exchange waits for its answer");
        clock.read();
        assert!(times().is_some());

        // A response's copy: the connection's first is not timed on the
        // wire (it connected); later ones carry their exchange's wait.
        let conn = clock.handle();
        assert_eq!(conn.clone().wait(), None, "the first response");
        let copy = conn.clone();
        assert_eq!(copy.wait(), times());
        clock.wrote();
        assert_eq!(times(), None, "the next exchange began");
        assert!(copy.wait().is_some(), "a copy keeps its exchange");

        // The wait of a response with a clock, never more than the call;
        // the whole call without one, or on HTTP/2.
        let call = Duration::from_secs(3600);
        let wait = copy.wait().unwrap();
        let http1 = answered(
            Some(WireClock {
                times: copy.times.clone(),
                wait: copy.wait,
            }),
            http::Version::HTTP_11,
        );
        assert_eq!(upstream_wait(Some(&http1), call), wait);
        assert_eq!(upstream_wait(Some(&http1), Duration::ZERO), Duration::ZERO);
        let h2 = answered(Some(copy), http::Version::HTTP_2);
        assert_eq!(upstream_wait(Some(&h2), call), call);
        assert_eq!(
            upstream_wait(Some(&answered(None, http::Version::HTTP_11)), call),
            call
        );
        assert_eq!(upstream_wait::<()>(None, call), call);
    }

    /// The built-in client's connections attach their clock to every
    /// response, each with its own exchange (a pooled connection is reused).
    #[tokio::test]
    async fn the_built_in_client_clocks_each_exchange_on_the_wire() {
        use hyper_util::rt::TokioIo;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let svc = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("ok"))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
        let client = HttpClient::hyper().unwrap();
        let mut waits = Vec::new();
        for _ in 0..3 {
            let req = http::Request::get(format!("http://{addr}/"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let start = Instant::now();
            let resp = client.send(req).await.unwrap();
            let elapsed = start.elapsed();
            let clock = resp.extensions().get::<WireClock>().expect("a clock");
            let wait = clock.wait;
            assert_eq!(upstream_wait(Some(&resp), elapsed), wait.unwrap_or(elapsed));
            waits.push((clock.times.clone(), wait));
            let _ = resp.into_body().collect().await.unwrap();
        }
        // One connection (the listener accepts one), three exchanges: the
        // first timed around the call (it connected), the next on the wire.
        assert!(Arc::ptr_eq(&waits[0].0, &waits[2].0));
        assert_eq!(waits[0].1, None, "the connection's first request");
        assert!(waits[1].1.is_some() && waits[2].1.is_some(), "{waits:?}");
    }
}
