use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::Format;
use crate::chat::ChatEvent;

/// A stream of [`ChatEvent`]s and the format of the upstream that produced
/// them (the owner of the events' `extra` fields).
///
/// It ends with `MessageStop` or `Error`; dropping it early cancels the
/// upstream request.
pub struct EventStream {
    inner: Pin<Box<dyn Stream<Item = ChatEvent> + Send>>,
    origin: Option<Format>,
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
        }
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
