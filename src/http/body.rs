use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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

/// The room a frame's buffer starts with when its first event is encoded
/// (a dozen small events): from nothing it would be regrown, and copied,
/// about ten times on the way to a few kilobytes. Each frame takes its
/// buffer along, so a stream waiting for its next event still holds none.
const FRAME_START_BYTES: usize = 4 * 1024;

/// How many turns of the runtime without a new event the events gathered
/// may wait for more before they are written.
const COALESCE_TURNS: u32 = 2;

/// The longest the first of the events gathered waits for company, however
/// steadily more keep coming (only a saturated gateway sees an event every
/// turn). Measured at 64 streams on a saturated 2-core machine: 0.5 ms cost
/// a third of the events per second, 5 ms a tenth, against no bound.
const MAX_HOLD: Duration = Duration::from_millis(5);

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
    /// Turns of the runtime since the last event, while holding events.
    idle_turns: u32,
    /// When the events now held started waiting ([`MAX_HOLD`]).
    held_since: Option<Instant>,
    /// Whether content (a block's start or delta) was encoded / written.
    content_buffered: bool,
    content_written: bool,
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
                buf: BytesMut::new(),
                idle_turns: 0,
                held_since: None,
                content_buffered: false,
                content_written: false,
            })),
        }
    }
}

impl SseBody {
    /// Whether the events held may wait another turn ([`MAX_HOLD`]); the
    /// clock is read once per turn, and starts at the first hold.
    fn within_hold(&mut self) -> bool {
        match self.held_since {
            Some(since) => since.elapsed() < MAX_HOLD,
            None => {
                self.held_since = Some(Instant::now());
                true
            }
        }
    }

    /// Encodes one event; `true` when it ended the stream.
    fn push(&mut self, mut event: ChatEvent) -> bool {
        let mut end = false;
        match &mut event {
            ChatEvent::MessageStart(start) => {
                if let Some(m) = &self.model {
                    start.model.clone_from(m);
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
        self.content_buffered |= event.is_content();
        if self.buf.capacity() == 0 {
            self.buf.reserve(FRAME_START_BYTES);
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
        let mut progress = false;
        while let Some(stream) = sse.stream.as_mut() {
            match Pin::new(stream).poll_next(cx) {
                Poll::Ready(Some(event)) => {
                    progress = true;
                    if sse.push(event) {
                        // Nothing may follow the last event; release the upstream.
                        sse.stream = None;
                    }
                }
                Poll::Ready(None) => {
                    // The stream stopped without its last event: say so
                    // rather than end cleanly.
                    sse.stream = None;
                    sse.push(ChatEvent::error(
                        ApiError::api("upstream stream ended before completion").mark_upstream(),
                    ));
                }
                Poll::Pending => break,
            }
            if sse.buf.len() >= BATCH_BYTES {
                break;
            }
        }
        if sse.buf.is_empty() {
            return if sse.stream.is_none() {
                Poll::Ready(None)
            } else {
                Poll::Pending
            };
        }
        if progress {
            sse.idle_turns = 0;
        } else {
            sse.idle_turns += 1;
        }
        if sse.content_written
            && sse.idle_turns < COALESCE_TURNS
            && sse.stream.is_some()
            && sse.buf.len() < BATCH_BYTES
            && sse.within_hold()
        {
            // The stream has nothing more this instant, but hyper hands an
            // upstream body over one chunk per turn of the connection's task
            // (a turn or two of the runtime later), so events that arrived
            // together would leave one write each. Give them those turns and
            // write when they bring nothing: what arrived together leaves
            // together, as through a proxy that writes what it read. The
            // first content is written at once (time to first token).
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        sse.idle_turns = 0;
        sse.held_since = None;
        sse.content_written |= sse.content_buffered;
        // The whole buffer goes out with the frame: a stream waiting for its
        // next event holds no buffer.
        Poll::Ready(Some(Ok(Frame::data(std::mem::take(&mut sse.buf).freeze()))))
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::task::Waker;

    use super::*;
    use crate::chat::{BlockDelta, MessageStart, Part, Usage};

    fn delta(text: &str) -> ChatEvent {
        ChatEvent::BlockDelta {
            index: 0,
            delta: BlockDelta::Text(text.into()),
        }
    }

    /// Events as hyper hands an upstream body over: each one a turn later
    /// (the stream is pending once before each, and wakes its task).
    struct OnePerTurn {
        events: VecDeque<ChatEvent>,
        ready: bool,
        /// Stay pending after this many events (an upstream gone quiet).
        quiet_after: Option<usize>,
        sent: usize,
    }

    impl Stream for OnePerTurn {
        type Item = ChatEvent;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
            if self.quiet_after == Some(self.sent) {
                return Poll::Pending;
            }
            if !self.ready {
                self.ready = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.ready = false;
            self.sent += 1;
            Poll::Ready(self.events.pop_front())
        }
    }

    fn body(quiet_after: Option<usize>) -> ResponseBody {
        let mut events: VecDeque<ChatEvent> = vec![
            ChatEvent::message_start(MessageStart {
                id: "msg_1".into(),
                model: "m".into(),
                usage: Usage::default(),
                extra: Default::default(),
            }),
            ChatEvent::block_start(0, Part::text("")),
        ]
        .into();
        events.extend((0..20).map(|i| delta(&format!("w{i} "))));
        events.extend([ChatEvent::BlockStop { index: 0 }, ChatEvent::MessageStop]);
        let stream = OnePerTurn {
            events,
            ready: false,
            quiet_after,
            sent: 0,
        };
        ResponseBody::sse(
            EventStream::new(stream, Some(crate::Format::Anthropic)),
            Encoder::Anthropic(anthropic::EventEncoder::new(Some(crate::Format::Anthropic))),
            None,
            None,
        )
    }

    /// Polls like a runtime would, up to `turns` times; the data frames.
    fn drain(body: &mut ResponseBody, turns: usize) -> Vec<String> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut frames = Vec::new();
        for _ in 0..turns {
            match Pin::new(&mut *body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    frames.push(String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap())
                }
                Poll::Ready(None) => break,
                Poll::Ready(Some(Err(e))) => match e {},
                Poll::Pending => {}
            }
        }
        frames
    }

    #[test]
    fn events_arriving_together_leave_together_after_the_first_content() {
        let mut body = body(None);
        let frames = drain(&mut body, 1000);
        assert!(body.is_end_stream());
        let all = frames.concat();
        assert_eq!(all.matches("event: content_block_delta").count(), 20);
        assert!(all.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
        // Up to the first content, each event is written at once...
        assert!(frames[0].contains("message_start"));
        assert!(frames[1].starts_with("event: content_block_start"));
        assert!(!frames[1].contains("content_block_delta"));
        // ...and the rest, handed over one per turn, in far fewer writes
        // than events.
        assert!(frames.len() <= 4, "{} frames", frames.len());
    }

    #[test]
    fn a_steady_trickle_is_not_held_past_the_longest_hold() {
        // An event every turn, 0.2 ms apart, never quiet for a turn: without
        // a bound they would all wait for the batch size.
        struct Slow(OnePerTurn);
        impl Stream for Slow {
            type Item = ChatEvent;
            fn poll_next(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Option<ChatEvent>> {
                let next = Pin::new(&mut self.0).poll_next(cx);
                if next.is_ready() {
                    std::thread::sleep(Duration::from_micros(200));
                }
                next
            }
        }
        let mut events: VecDeque<ChatEvent> =
            vec![ChatEvent::block_start(0, Part::text(""))].into();
        events.extend((0..100).map(|i| delta(&format!("w{i} "))));
        let stream = Slow(OnePerTurn {
            events,
            ready: false,
            quiet_after: None,
            sent: 0,
        });
        let mut body = ResponseBody::sse(
            EventStream::new(stream, Some(crate::Format::Anthropic)),
            Encoder::Anthropic(anthropic::EventEncoder::new(Some(crate::Format::Anthropic))),
            None,
            None,
        );
        let frames = drain(&mut body, 1000);
        let all = frames.concat();
        assert_eq!(all.matches("event: content_block_delta").count(), 100);
        // 100 events over at least 20 ms, held at most 5 ms at a time.
        assert!(frames.len() >= 5, "{} frames", frames.len());
    }

    #[test]
    fn held_events_are_written_when_the_upstream_goes_quiet() {
        // Five events, then nothing: what was gathered must not wait for
        // more (or for the end of the stream).
        let mut body = body(Some(5));
        let frames = drain(&mut body, 100);
        assert!(!body.is_end_stream());
        let all = frames.concat();
        assert_eq!(all.matches("event: content_block_delta").count(), 3);
        assert!(frames.len() >= 2);
    }
}
