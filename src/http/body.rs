use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};

use crate::chat::ChatEvent;
use crate::convert::{anthropic, openai};
use crate::error::ApiError;
use crate::llm::EventStream;
use crate::metrics::{Outcome, Recorder};

/// Stop gathering ready events into one write beyond this many bytes.
const BATCH_BYTES: usize = 16 * 1024;

/// The body of every response of the HTTP tier: a complete JSON body or an
/// event stream.
pub struct ResponseBody {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    Sse(Box<SseBody>),
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Full(b) => f
                .debug_tuple("Full")
                .field(&b.as_ref().map(Bytes::len))
                .finish(),
            Kind::Sse(_) => f.write_str("Sse(..)"),
        }
    }
}

// Boxed inside `SseBody` already; one per stream.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Encoder {
    Anthropic(anthropic::EventEncoder),
    OpenAi(openai::ChunkEncoder),
}

impl Encoder {
    fn encode(&mut self, event: ChatEvent, buf: &mut BytesMut) {
        match self {
            Encoder::Anthropic(e) => e.encode(event, buf),
            Encoder::OpenAi(e) => e.encode(event, buf),
        }
    }
}

struct SseBody {
    stream: Option<EventStream>,
    encoder: Encoder,
    model: Option<String>,
    recorder: Option<Recorder>,
    buf: BytesMut,
}

impl ResponseBody {
    /// A complete body.
    pub fn full(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Full(Some(bytes)),
        }
    }

    pub(crate) fn sse(
        stream: EventStream,
        encoder: Encoder,
        model: Option<String>,
        recorder: Option<Recorder>,
    ) -> Self {
        Self {
            kind: Kind::Sse(Box::new(SseBody {
                stream: Some(stream),
                encoder,
                model,
                recorder,
                buf: BytesMut::with_capacity(4096),
            })),
        }
    }
}

impl SseBody {
    /// Encodes one event; `true` when it ended the stream.
    fn push(&mut self, mut event: ChatEvent) -> bool {
        let mut end = false;
        match &mut event {
            ChatEvent::MessageStart { model, .. } => {
                if let Some(m) = &self.model {
                    model.clone_from(m);
                }
            }
            ChatEvent::MessageStop => {
                end = true;
                if let Some(r) = &self.recorder {
                    r.finish(Outcome::Success, 200);
                }
            }
            ChatEvent::Error(e) => {
                end = true;
                if let Some(r) = &self.recorder {
                    r.finish(Outcome::of_error(e), 200);
                }
            }
            _ => {}
        }
        self.encoder.encode(event, &mut self.buf);
        end
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let sse = match &mut self.kind {
            Kind::Full(bytes) => return Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Sse(sse) => sse,
        };
        while let Some(stream) = sse.stream.as_mut() {
            match Pin::new(stream).poll_next(cx) {
                Poll::Ready(Some(event)) => {
                    if sse.push(event) {
                        // Nothing may follow the last event; release the upstream.
                        sse.stream = None;
                    }
                }
                Poll::Ready(None) => {
                    // The stream stopped without its last event: say so
                    // rather than end cleanly.
                    sse.stream = None;
                    sse.push(ChatEvent::Error(
                        ApiError::api("upstream stream ended before completion").mark_upstream(),
                    ));
                }
                Poll::Pending => break,
            }
            if sse.buf.len() >= BATCH_BYTES {
                break;
            }
        }
        if !sse.buf.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(sse.buf.split().freeze()))));
        }
        if sse.stream.is_none() {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Sse(sse) => sse.stream.is_none() && sse.buf.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Sse(_) => SizeHint::default(),
        }
    }
}
