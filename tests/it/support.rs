//! Real servers on loopback for the pipeline tests: a scriptable upstream
//! (replays fixtures with controlled chunking, errors, cuts and resets on
//! command, and records what it received), a gateway served by hyper, and a
//! plain HTTP client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use llmgate::config::{Config, Gateway};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// How a scripted response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A clean end of the body.
    Close,
    /// The connection breaks: the body fails mid-way.
    Reset,
    /// The upstream goes silent and never ends the body.
    Stall,
}

/// A scripted upstream response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub chunks: Vec<Bytes>,
    /// Between chunks.
    pub delay: Duration,
    /// Before the response headers.
    pub head_delay: Duration,
    pub end: End,
}

impl Reply {
    /// A JSON response.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks: vec![Bytes::from(body.into())],
            delay: Duration::ZERO,
            head_delay: Duration::ZERO,
            end: End::Close,
        }
    }

    /// An SSE body cut into pieces of `piece` bytes.
    pub fn sse(body: &str, piece: usize) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            chunks: body
                .as_bytes()
                .chunks(piece.max(1))
                .map(Bytes::copy_from_slice)
                .collect(),
            delay: Duration::from_millis(1),
            head_delay: Duration::ZERO,
            end: End::Close,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn end(mut self, end: End) -> Self {
        self.end = end;
        self
    }

    pub fn head_delay(mut self, d: Duration) -> Self {
        self.head_delay = d;
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// What the upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body's bytes as sent (read by the key-order test).
    pub raw: Bytes,
}

type Handler = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

#[derive(Default)]
struct UpstreamState {
    received: Mutex<Vec<Received>>,
    aborted: Mutex<u32>,
    open: AtomicUsize,
    /// Connections accepted, and those of them not yet closed.
    accepted: AtomicUsize,
    connected: AtomicUsize,
}

/// A scriptable upstream on loopback.
pub struct Upstream {
    pub addr: SocketAddr,
    state: Arc<UpstreamState>,
}

impl Upstream {
    pub async fn start(handler: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(UpstreamState::default());
        let handler: Handler = Arc::new(handler);
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (handler, state) = (handler.clone(), shared.clone());
                state.accepted.fetch_add(1, Ordering::SeqCst);
                state.connected.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let conn_state = state.clone();
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (handler, state) = (handler.clone(), state.clone());
                        async move { Ok::<_, Infallible>(respond(req, handler, state).await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                    conn_state.connected.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn last(&self) -> Received {
        self.requests()
            .pop()
            .expect("the upstream received a request")
    }

    /// Responses the gateway stopped reading before their end.
    pub fn aborted(&self) -> u32 {
        *self.state.aborted.lock().unwrap()
    }

    /// Responses whose body is still being sent.
    pub fn open(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }

    /// Connections the gateway opened to this upstream.
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Connections the gateway still holds open to this upstream.
    pub fn connected(&self) -> usize {
        self.state.connected.load(Ordering::SeqCst)
    }
}

/// Counts a response body as open until dropped.
struct Open(Arc<UpstreamState>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn respond(
    req: Request<Incoming>,
    handler: Handler,
    state: Arc<UpstreamState>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let received = Received {
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw: bytes,
    };
    let reply = handler(&received);
    state.received.lock().unwrap().push(received);
    if !reply.head_delay.is_zero() {
        tokio::time::sleep(reply.head_delay).await;
    }
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
    state.open.fetch_add(1, Ordering::SeqCst);
    let open = Open(state.clone());
    tokio::spawn(async move {
        let _open = open;
        for chunk in reply.chunks {
            if tx.send(Ok(Frame::data(chunk))).await.is_err() {
                *state.aborted.lock().unwrap() += 1;
                return;
            }
            if !reply.delay.is_zero() {
                tokio::time::sleep(reply.delay).await;
            }
        }
        match reply.end {
            End::Close => {}
            End::Reset => {
                let _ = tx
                    .send(Err("connection reset by the test upstream".into()))
                    .await;
            }
            End::Stall => {
                // Keep the body open until the gateway gives up on it.
                tx.closed().await;
                *state.aborted.lock().unwrap() += 1;
            }
        }
    });
    let body = StreamBody::new(tokio_stream_from(rx)).boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (k, v) in reply.headers {
        resp.headers_mut().append(
            http::HeaderName::try_from(k).unwrap(),
            http::HeaderValue::try_from(v).unwrap(),
        );
    }
    resp
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, BoxError>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The gateway built from `toml` (with `{upstream}` replaced by the
/// upstream's base URL), served on loopback.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub gateway: Gateway,
}

pub async fn gateway(toml: &str, upstream: Option<&Upstream>) -> TestGateway {
    let toml = match upstream {
        Some(u) => toml.replace("{upstream}", &u.base_url()),
        None => toml.to_owned(),
    };
    let config = Config::from_toml(&toml).unwrap();
    let gateway = config.build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = gateway.http.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = TowerToHyperService::new(http.clone());
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    TestGateway { addr, gateway }
}

/// A response as the client saw it.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body's pieces as they arrived.
    pub pieces: usize,
}

impl Got {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

impl TestGateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs `body` to `/v1/messages` as an Anthropic client does.
    pub async fn messages(&self, body: &str) -> Got {
        self.post("/v1/messages", &[("anthropic-version", "2023-06-01")], body)
            .await
    }

    /// POSTs `body` with `headers`, reading the whole response.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Got {
        let mut req = Request::post(self.url(path)).header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = client()
            .request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        let mut pieces = 0;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("the body arrives whole").into_data() {
                pieces += 1;
                buf.extend_from_slice(&data);
            }
        }
        Got {
            status,
            headers,
            body: Bytes::from(buf),
            pieces,
        }
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Got {
        let mut req = Request::get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = client()
            .request(req.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Got {
            status,
            headers,
            body,
            pieces: 1,
        }
    }

    /// Starts a streaming POST and returns the body to read piece by piece.
    pub async fn open_stream(&self, path: &str, body: &str) -> (u16, Incoming) {
        let req = Request::post(self.url(path))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let resp = client().request(req).await.unwrap();
        (resp.status().as_u16(), resp.into_body())
    }
}

/// Waits until `f` holds (polling), or panics after a few seconds.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Reads pieces of a body until `n` bytes arrived.
pub async fn read_at_least(body: &mut Incoming, n: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    while buf.len() < n {
        match body.frame().await {
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    buf.extend_from_slice(&d);
                }
            }
            _ => break,
        }
    }
    buf
}
