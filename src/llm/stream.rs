use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::Format;
use crate::chat::ChatEvent;
use crate::error::ApiError;

/// A stream of [`ChatEvent`]s and the format of the upstream that produced
/// them (the owner of the events' `extra` fields).
///
/// It ends with `MessageStop` or `Error`; dropping it early cancels the
/// upstream request.
pub struct EventStream {
    inner: Pin<Box<dyn Stream<Item = ChatEvent> + Send>>,
    origin: Option<Format>,
    committed: bool,
}

impl EventStream {
    /// Wraps a stream of events from an upstream speaking `origin`.
    pub fn new<S>(stream: S, origin: Option<Format>) -> Self
    where
        S: Stream<Item = ChatEvent> + Send + 'static,
    {
        Self {
            inner: Box::pin(stream),
            origin,
            committed: false,
        }
    }

    /// A stream of the given events.
    pub fn from_events(events: Vec<ChatEvent>, origin: Option<Format>) -> Self {
        Self::new(Iter(events.into_iter()), origin)
    }

    /// The upstream's format.
    pub fn origin(&self) -> Option<Format> {
        self.origin
    }

    /// Replaces the stream, keeping the origin (for layers that wrap it).
    pub fn map_inner<F, S>(self, f: F) -> Self
    where
        F: FnOnce(Pin<Box<dyn Stream<Item = ChatEvent> + Send>>) -> S,
        S: Stream<Item = ChatEvent> + Send + 'static,
    {
        Self {
            inner: Box::pin(f(self.inner)),
            origin: self.origin,
            committed: self.committed,
        }
    }

    /// Whether the stream passed its commit point ([`commit`](Self::commit)).
    pub fn is_committed(&self) -> bool {
        self.committed
    }

    /// Waits for the stream's commit point: its first content (a block
    /// start or delta), or its successful end. Until then the request may
    /// still be retried or sent elsewhere, so an error event or a premature
    /// end is returned as an error, and the events seen so far (message
    /// start, pings) are held back; after it, they are replayed first and
    /// every later failure reaches the client as a terminal error event.
    ///
    /// A stream that already passed its commit point is returned as is.
    pub async fn commit(mut self) -> Result<EventStream, ApiError> {
        if self.committed {
            return Ok(self);
        }
        let mut prefix = VecDeque::new();
        loop {
            let next = std::future::poll_fn(|cx| self.inner.as_mut().poll_next(cx)).await;
            match next {
                Some(ChatEvent::Error(e)) => return Err(*e),
                Some(
                    ev @ (ChatEvent::BlockStart { .. }
                    | ChatEvent::BlockDelta { .. }
                    | ChatEvent::MessageDelta { .. }
                    | ChatEvent::MessageStop),
                ) => {
                    prefix.push_back(ev);
                    break;
                }
                Some(ev) => prefix.push_back(ev),
                None => {
                    return Err(
                        ApiError::api("upstream stream ended before completion").mark_upstream()
                    );
                }
            }
        }
        Ok(EventStream {
            inner: Box::pin(Prefixed {
                prefix,
                rest: self.inner,
            }),
            origin: self.origin,
            committed: true,
        })
    }
}

impl Stream for EventStream {
    type Item = ChatEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

struct Iter(std::vec::IntoIter<ChatEvent>);

impl Stream for Iter {
    type Item = ChatEvent;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        Poll::Ready(self.0.next())
    }
}

/// Held-back events, then the rest of the stream.
struct Prefixed {
    prefix: VecDeque<ChatEvent>,
    rest: Pin<Box<dyn Stream<Item = ChatEvent> + Send>>,
}

impl Stream for Prefixed {
    type Item = ChatEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        if let Some(ev) = self.prefix.pop_front() {
            return Poll::Ready(Some(ev));
        }
        self.rest.as_mut().poll_next(cx)
    }
}
