//! A fast mock LLM upstream: a small hyper server speaking OpenAI Chat
//! Completions (`POST /v1/chat/completions`) and Anthropic Messages
//! (`POST /v1/messages`), complete or streamed. Used by the load benchmark
//! (`examples/mock_upstream.rs` runs it) and by the tests.
//!
//! What it answers is steered by the request body, so that a gateway in
//! front of it passes the options through untouched: `"stream": true`
//! streams; the text `mock:chunks=N` (in the user id or the message) sets the
//! number of content events (default 100), `mock:interval_ms=N` the pause
//! between them (default none), and `mock:delay_ms=N` how long a complete
//! answer waits (default none). Every content event carries the word `tok`.
//! Responses are prebuilt bytes; the request body is scanned, not parsed.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// The default number of content events of a stream.
pub const DEFAULT_CHUNKS: usize = 100;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    OpenAi,
    Anthropic,
}

const OPENAI_COMPLETE: &str = r#"{"id":"chatcmpl-mock","object":"chat.completion","created":1,"model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"tok tok tok tok tok tok tok tok","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}"#;
const ANTHROPIC_COMPLETE: &str = r#"{"id":"msg_mock","type":"message","role":"assistant","model":"mock","content":[{"type":"text","text":"tok tok tok tok tok tok tok tok"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":8}}"#;

const OPENAI_FIRST: &str = "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"mock\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n";
const OPENAI_CONTENT: &str = "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"mock\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"},\"finish_reason\":null}]}\n\n";
const OPENAI_LAST: &str = "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"mock\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"mock\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":100,\"total_tokens\":112}}\n\ndata: [DONE]\n\n";

const ANTHROPIC_FIRST: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"mock\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
const ANTHROPIC_CONTENT: &str = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"tok \"}}\n\n";
const ANTHROPIC_LAST: &str = "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":100}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

type Body = BoxBody<Bytes, Infallible>;

fn number_after(body: &[u8], key: &str) -> Option<u64> {
    let at = memchr::memmem::find(body, key.as_bytes())? + key.len();
    let digits: Vec<u8> = body[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn is_stream(body: &[u8]) -> bool {
    memchr::memmem::find(body, b"\"stream\":true").is_some()
        || memchr::memmem::find(body, b"\"stream\": true").is_some()
}

/// The frames of a stream, released one per `interval`.
struct Frames {
    first: Option<Bytes>,
    content: Bytes,
    left: usize,
    last: Option<Bytes>,
    interval: Option<Duration>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if self.left == 0 {
            return Poll::Ready(self.last.take().map(|b| Ok(Frame::data(b))));
        }
        if let Some(interval) = self.interval {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(self.content.clone()))))
    }
}

async fn handle(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let shape = match req.uri().path() {
        "/v1/chat/completions" => Shape::OpenAi,
        "/v1/messages" => Shape::Anthropic,
        "/health" => return Ok(Response::new(Full::new(Bytes::from_static(b"ok")).boxed())),
        _ => {
            let mut resp = Response::new(
                Full::new(Bytes::from_static(
                    b"{\"error\":{\"message\":\"not found\"}}",
                ))
                .boxed(),
            );
            *resp.status_mut() = StatusCode::NOT_FOUND;
            return Ok(resp);
        }
    };
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    if !is_stream(&body) {
        if let Some(ms) = number_after(&body, "mock:delay_ms=") {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let json = match shape {
            Shape::OpenAi => OPENAI_COMPLETE,
            Shape::Anthropic => ANTHROPIC_COMPLETE,
        };
        let mut resp = Response::new(Full::new(Bytes::from_static(json.as_bytes())).boxed());
        resp.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        return Ok(resp);
    }
    let chunks = number_after(&body, "mock:chunks=").map_or(DEFAULT_CHUNKS, |n| n as usize);
    let interval = number_after(&body, "mock:interval_ms=").map(Duration::from_millis);
    let (first, content, last) = match shape {
        Shape::OpenAi => (OPENAI_FIRST, OPENAI_CONTENT, OPENAI_LAST),
        Shape::Anthropic => (ANTHROPIC_FIRST, ANTHROPIC_CONTENT, ANTHROPIC_LAST),
    };
    let frames = Frames {
        first: Some(Bytes::from_static(first.as_bytes())),
        content: Bytes::from_static(content.as_bytes()),
        left: chunks,
        last: Some(Bytes::from_static(last.as_bytes())),
        interval,
        sleep: None,
    };
    let mut resp = Response::new(frames.boxed());
    resp.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("text/event-stream"),
    );
    Ok(resp)
}

/// Serves the mock on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(handle);
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .http1_only()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Starts the mock on a free loopback port, in the background.
#[allow(dead_code)]
pub async fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(serve(listener));
    addr
}
