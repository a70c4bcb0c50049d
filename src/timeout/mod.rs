//! Timeouts: time to first byte, idle gap between stream events, total.
//!
//! [`TimeoutLayer`] bounds an attempt:
//!
//! - **first byte**: a streamed request must get its response (the
//!   upstream's headers) within this time. A request that is not streamed
//!   gets its whole answer at once, so only `total` bounds it;
//! - **idle**: no gap between two stream events may last longer;
//! - **total**: the whole request, stream included.
//!
//! A timeout before the response is an error (`timeout_error`, 504); during a
//! stream it is a terminal `timeout_error` event, and the upstream request
//! is dropped (its connection closed). Timeouts are retryable. Connection
//! timeouts belong to the HTTP client (10 s by default; the config's
//! `[timeouts] connect_ms`, or `ClientOptions::connect_timeout`).
//!
//! In the default stack one `TimeoutLayer` with first-byte and idle limits
//! sits right above the providers (so the balancer and the retry see a slow
//! deployment as a failing one), and one with the total limit sits above the
//! whole resilience stack.
//!
//! ```
//! use llmgate::timeout::TimeoutLayer;
//! use std::time::Duration;
//!
//! let per_attempt = TimeoutLayer::new()
//!     .first_byte(Duration::from_secs(60))
//!     .idle(Duration::from_secs(120));
//! let whole_request = TimeoutLayer::new().total(Duration::from_secs(900));
//! # let _ = (per_attempt, whole_request);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_core::Stream;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use crate::chat::ChatEvent;
use crate::error::{ApiError, ErrorKind};
use crate::llm::{LlmBody, LlmFuture, LlmRequest, LlmResponse};

/// Bounds attempts in time; see the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct TimeoutLayer {
    first_byte: Option<Duration>,
    idle: Option<Duration>,
    total: Option<Duration>,
}

impl TimeoutLayer {
    /// No limits (add them with the setters).
    pub fn new() -> Self {
        Self::default()
    }

    /// The longest wait for a streamed response's headers.
    pub fn first_byte(mut self, limit: Duration) -> Self {
        self.first_byte = Some(limit);
        self
    }

    /// The longest gap between two stream events.
    pub fn idle(mut self, limit: Duration) -> Self {
        self.idle = Some(limit);
        self
    }

    /// The longest a whole request may take.
    pub fn total(mut self, limit: Duration) -> Self {
        self.total = Some(limit);
        self
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            limits: *self,
        }
    }
}

/// The service of [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    limits: TimeoutLayer,
}

impl<S> Timeout<S> {
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

fn timeout_error(what: &str, limit: Duration) -> ApiError {
    ApiError::new(
        ErrorKind::Timeout,
        format!("{what} within {}", human(limit)),
    )
    .mark_upstream()
}

fn human(d: Duration) -> String {
    if d.as_millis() < 10_000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

impl<S> Service<LlmRequest> for Timeout<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = LlmResponse;
    type Error = ApiError;
    type Future = LlmFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ApiError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: LlmRequest) -> LlmFuture {
        let limits = self.limits;
        let deadline = limits.total.map(|d| (Instant::now() + d, d));
        // The first byte of a request that is not streamed is its whole answer.
        let first_byte = limits.first_byte.filter(|_| req.chat.is_stream());
        // `poll_ready` readied `self.inner`: call it now, not a clone later.
        let call = self.inner.call(req);
        Box::pin(async move {
            let wait = match (first_byte, deadline) {
                (Some(fb), Some((at, total))) if Instant::now() + fb > at => {
                    Some((at, "the request did not complete", total))
                }
                (Some(fb), _) => Some((Instant::now() + fb, "the upstream did not answer", fb)),
                (None, Some((at, total))) => Some((at, "the request did not complete", total)),
                (None, None) => None,
            };
            let mut resp = match wait {
                Some((at, what, limit)) => match tokio::time::timeout_at(at, call).await {
                    Ok(r) => r?,
                    Err(_) => return Err(timeout_error(what, limit)),
                },
                None => call.await?,
            };
            if limits.idle.is_none() && deadline.is_none() {
                return Ok(resp);
            }
            resp.body = match std::mem::replace(&mut resp.body, LlmBody::TokenCount(0)) {
                LlmBody::Stream(stream) => LlmBody::Stream(stream.map_inner(|inner| Watched {
                    inner: Some(inner),
                    idle: limits.idle,
                    idle_timer: None,
                    last_event: Instant::now(),
                    fresh: false,
                    deadline: deadline.map(|(at, limit)| (Alarm::new(at), limit)),
                })),
                other => other,
            };
            Ok(resp)
        })
    }
}

/// A stream with an idle limit between events and a deadline.
///
/// The idle timer is armed once and moved lazily: events only mark that
/// they came, the clock is read when the stream next has nothing (right
/// after the last event while the client keeps reading; if the client stops
/// reading, when it reads again), and when the timer fires early it is set
/// again from that time. A stream of many events costs one timer and one
/// clock read per burst, not one per event.
struct Watched {
    inner: Option<Pin<Box<dyn Stream<Item = ChatEvent> + Send>>>,
    idle: Option<Duration>,
    idle_timer: Option<Alarm>,
    last_event: Instant,
    /// Events came since `last_event` was read.
    fresh: bool,
    deadline: Option<(Alarm, Duration)>,
}

impl Stream for Watched {
    type Item = ChatEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(ev)) => {
                // An event: the idle clock starts again (read once the
                // stream has nothing more this instant, not per event).
                this.fresh = true;
                if matches!(ev, ChatEvent::MessageStop | ChatEvent::Error(_)) {
                    this.inner = None;
                }
                return Poll::Ready(Some(ev));
            }
            Poll::Ready(None) => {
                this.inner = None;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if let Some((alarm, limit)) = this.deadline.as_mut()
            && alarm.rang(cx)
        {
            let limit = *limit;
            this.inner = None;
            return Poll::Ready(Some(ChatEvent::error(timeout_error(
                "the request did not complete",
                limit,
            ))));
        }
        if let Some(idle) = this.idle {
            if std::mem::take(&mut this.fresh) {
                this.last_event = Instant::now();
            }
            let due = this.last_event + idle;
            let timer = this.idle_timer.get_or_insert_with(|| Alarm::new(due));
            if timer.rang(cx) && timer.deadline() < due {
                // Fired for an earlier event: count from the last one.
                timer.reset(due);
            }
            if timer.deadline() >= due && timer.rang(cx) {
                this.inner = None;
                return Poll::Ready(Some(ChatEvent::error(timeout_error(
                    "the upstream stream sent nothing",
                    idle,
                ))));
            }
        }
        Poll::Pending
    }
}

/// A timer that a stream checks each time it has nothing, polled only when
/// that is needed: to leave the task's waker with it (at first, after a
/// reset, or when another task polls the stream) and once it has fired.
/// Otherwise it is an atomic load. Polling a `Sleep` every time registers
/// the same waker again and spends the task's cooperative budget (~500
/// instructions per stream event with both timeouts of the default stack).
struct Alarm {
    sleep: Pin<Box<Sleep>>,
    /// The waker the timer holds: set only after a poll that did register
    /// it (a poll with no cooperative budget left returns before it does).
    holds: Option<Waker>,
}

impl Alarm {
    fn new(at: Instant) -> Self {
        Alarm {
            sleep: Box::pin(tokio::time::sleep_until(at)),
            holds: None,
        }
    }

    fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }

    /// Whether the timer has fired; if not, it will wake this task when it
    /// does.
    fn rang(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(waker) = &self.holds
            && waker.will_wake(cx.waker())
            && !self.sleep.is_elapsed()
        {
            return false;
        }
        // A poll with no cooperative budget left returns before the timer
        // takes the waker. So does one made while tokio takes a task dump
        // (`--cfg tokio_taskdump`), which nothing here can see: in such a
        // build the timer is polled every time.
        let registers = !cfg!(tokio_taskdump) && tokio::task::coop::has_budget_remaining();
        if self.sleep.as_mut().poll(cx).is_ready() {
            return true;
        }
        if registers {
            match &mut self.holds {
                Some(waker) => waker.clone_from(cx.waker()),
                None => self.holds = Some(cx.waker().clone()),
            }
        }
        false
    }

    /// Sets a new deadline; the next check registers the waker again (a
    /// timer that fired no longer holds one).
    fn reset(&mut self, at: Instant) {
        self.sleep.as_mut().reset(at);
        self.holds = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;
    use crate::chat::{BlockDelta, ChatRequest, ChatResponse, Message, MessageStart, Role, Usage};
    use crate::llm::EventStream;
    use crate::wire::Map;
    use tower::{ServiceExt, service_fn};

    /// Answers after `delay`; streams one event every `gap`, `events` of them.
    fn slow(
        delay: Duration,
        gap: Duration,
        events: usize,
    ) -> impl Service<LlmRequest, Response = LlmResponse, Error = ApiError, Future = LlmFuture> + Clone
    {
        service_fn(move |req: LlmRequest| -> LlmFuture {
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                if !req.chat.is_stream() {
                    return Ok(LlmResponse::complete(ChatResponse::default()));
                }
                let s = futures_stream(gap, events);
                Ok(LlmResponse::stream(EventStream::new(s, None)))
            })
        })
    }

    fn futures_stream(gap: Duration, n: usize) -> impl Stream<Item = ChatEvent> + Send {
        struct S {
            sent: usize,
            n: usize,
            gap: Duration,
            sleep: Option<Pin<Box<Sleep>>>,
        }
        impl Stream for S {
            type Item = ChatEvent;
            fn poll_next(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Option<ChatEvent>> {
                let gap = self.gap;
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(gap)));
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
                let i = self.sent;
                self.sent += 1;
                Poll::Ready(match i {
                    0 => Some(ChatEvent::message_start(MessageStart {
                        id: "m".into(),
                        model: "x".into(),
                        usage: Usage::default(),
                        extra: Map::new(),
                    })),
                    i if i <= self.n => Some(ChatEvent::BlockDelta {
                        index: 0,
                        delta: BlockDelta::Text("x".into()),
                    }),
                    i if i == self.n + 1 => Some(ChatEvent::MessageStop),
                    _ => None,
                })
            }
        }
        S {
            sent: 0,
            n,
            gap,
            sleep: None,
        }
    }

    fn request(stream: bool) -> LlmRequest {
        let mut chat = ChatRequest::new("m", vec![Message::text(Role::User, "x")]);
        chat.stream = Some(stream);
        LlmRequest::new(chat, Format::Anthropic)
    }

    async fn collect(resp: LlmResponse) -> Vec<ChatEvent> {
        let LlmBody::Stream(mut s) = resp.body else {
            panic!("a stream")
        };
        let mut out = Vec::new();
        while let Some(ev) = std::future::poll_fn(|cx| Pin::new(&mut s).poll_next(cx)).await {
            out.push(ev);
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn first_byte_applies_to_streams_only() {
        let layer = TimeoutLayer::new().first_byte(Duration::from_secs(5));
        let svc = layer.layer(slow(Duration::from_secs(10), Duration::ZERO, 0));
        let err = svc.clone().oneshot(request(true)).await.unwrap_err();
        assert_eq!(
            (err.kind, err.anthropic_status()),
            (ErrorKind::Timeout, 504)
        );
        assert!(err.upstream && err.kind.is_retryable());
        assert!(
            svc.oneshot(request(false)).await.is_ok(),
            "a complete answer is bounded by total only"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_gap_between_events_ends_the_stream_with_a_timeout_event() {
        let svc = TimeoutLayer::new().idle(Duration::from_secs(3)).layer(slow(
            Duration::ZERO,
            Duration::from_secs(2),
            3,
        ));
        let events = collect(svc.oneshot(request(true)).await.unwrap()).await;
        assert!(
            matches!(events.last(), Some(ChatEvent::MessageStop)),
            "2 s gaps are fine"
        );

        let svc = TimeoutLayer::new().idle(Duration::from_secs(3)).layer(slow(
            Duration::ZERO,
            Duration::from_secs(4),
            3,
        ));
        let events = collect(svc.oneshot(request(true)).await.unwrap()).await;
        assert_eq!(events.len(), 1);
        let ChatEvent::Error(e) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(e.kind, ErrorKind::Timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_made_with_no_budget_left_still_arms_the_timer() {
        for layer in [
            TimeoutLayer::new().idle(Duration::from_secs(3)),
            TimeoutLayer::new().total(Duration::from_secs(3)),
        ] {
            // An upstream that says nothing for an hour.
            let svc = layer.layer(slow(Duration::ZERO, Duration::from_secs(3600), 1));
            let LlmBody::Stream(mut s) = svc.oneshot(request(true)).await.unwrap().body else {
                panic!("a stream")
            };
            // The first check runs with the task's cooperative budget spent:
            // the timer returns before it takes the waker, so the next
            // check must give it again.
            while tokio::task::coop::has_budget_remaining() {
                tokio::task::coop::consume_budget().await;
            }
            let started = Instant::now();
            let first = std::future::poll_fn(|cx| Pin::new(&mut s).poll_next(cx)).await;
            let Some(ChatEvent::Error(e)) = &first else {
                panic!("{first:?}")
            };
            assert_eq!(e.kind, ErrorKind::Timeout);
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "fired at its time, not when the upstream spoke: {:?}",
                started.elapsed()
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_polled_from_another_task_still_times_out() {
        let svc = TimeoutLayer::new().idle(Duration::from_secs(3)).layer(slow(
            Duration::ZERO,
            Duration::from_secs(3600),
            1,
        ));
        let LlmBody::Stream(mut s) = svc.oneshot(request(true)).await.unwrap().body else {
            panic!("a stream")
        };
        // Checked once here, where the timer takes this task's waker ...
        let quiet = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut s).poll_next(cx))).await;
        assert!(quiet.is_pending());
        // ... then read to its end by another task, which the timer must wake.
        let started = Instant::now();
        let first =
            tokio::spawn(
                async move { std::future::poll_fn(|cx| Pin::new(&mut s).poll_next(cx)).await },
            )
            .await
            .unwrap();
        let Some(ChatEvent::Error(e)) = &first else {
            panic!("{first:?}")
        };
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn the_total_limit_covers_the_stream() {
        let svc = TimeoutLayer::new()
            .total(Duration::from_secs(10))
            .layer(slow(Duration::from_secs(1), Duration::from_secs(2), 100));
        let events = collect(svc.oneshot(request(true)).await.unwrap()).await;
        let ChatEvent::Error(e) = events.last().unwrap() else {
            panic!()
        };
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(
            events.len() >= 4 && events.len() <= 6,
            "cut after about 10 s: {}",
            events.len()
        );
    }
}
