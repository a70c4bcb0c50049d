use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tower::{Layer, Service};
use tracing::Instrument;

use super::{Outcome, Recorder, Tracker};
use crate::chat::{ChatEvent, StopReason};
use crate::error::ApiError;
use crate::llm::{LlmBody, LlmFuture, LlmRequest, LlmResponse};

/// Records every request in the [`Tracker`], the `metrics` facade and a
/// `tracing` span; see the [module docs](super).
///
/// It uses the request's [`Recorder`] when the HTTP tier made one, and makes
/// one otherwise. A complete response or an error ends the record at once; a
/// stream ends it at its last event (`MessageStop` → success, `Error` → its
/// outcome), or as a client disconnect when it is dropped before that.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct MetricsLayer {
    tracker: Tracker,
}

impl MetricsLayer {
    /// A layer recording into `tracker`.
    pub fn new(tracker: Tracker) -> Self {
        Self { tracker }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Metrics<S> {
        Metrics {
            inner,
            tracker: self.tracker.clone(),
        }
    }
}

/// The service of [`MetricsLayer`].
#[derive(Debug, Clone)]
pub struct Metrics<S> {
    inner: S,
    tracker: Tracker,
}

impl<S> Metrics<S> {
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

impl<S> Service<LlmRequest> for Metrics<S>
where
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = LlmResponse;
    type Error = ApiError;
    type Future = LlmFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ApiError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: LlmRequest) -> LlmFuture {
        let recorder = match &req.ctx.recorder {
            Some(r) => r.clone(),
            None => {
                let r = self
                    .tracker
                    .start(&req.ctx.id, req.ctx.inbound, &req.ctx.requested_model);
                if let Some(route) = &req.ctx.route {
                    r.set_route(&route.name);
                }
                req.ctx.recorder = Some(r.clone());
                r
            }
        };
        let inbound = req.ctx.inbound;
        let span = recorder.span().clone();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(
            async move {
                match inner.call(req).await {
                    Ok(mut resp) => {
                        match &resp.body {
                            LlmBody::Complete(r) => {
                                recorder.usage(&r.usage);
                                if let Some(reason) = &r.stop_reason {
                                    recorder.finish_reason(&stop_label(reason));
                                }
                                recorder.finish(Outcome::Success, 200);
                            }
                            LlmBody::TokenCount(_) => {
                                recorder.finish(Outcome::Success, 200);
                            }
                            LlmBody::Stream(_) => {
                                recorder.set_streaming();
                                let body =
                                    std::mem::replace(&mut resp.body, LlmBody::TokenCount(0));
                                if let LlmBody::Stream(stream) = body {
                                    let recorder = recorder.clone();
                                    resp.body =
                                        LlmBody::Stream(stream.map_inner(|inner| RecordedStream {
                                            inner,
                                            recorder,
                                            done: false,
                                        }));
                                }
                            }
                        }
                        Ok(resp)
                    }
                    Err(e) => {
                        let status = match inbound {
                            crate::Format::Anthropic => e.anthropic_status(),
                            crate::Format::OpenAi => e.openai_status(),
                        };
                        recorder.finish(Outcome::of_error(&e), status);
                        Err(e)
                    }
                }
            }
            .instrument(span),
        )
    }
}

fn stop_label(reason: &StopReason) -> String {
    crate::convert::stop_reason_to_anthropic(reason, true)
}

/// A stream that tells its recorder what passes: the first content, usage,
/// the end.
struct RecordedStream {
    inner: Pin<Box<dyn Stream<Item = ChatEvent> + Send>>,
    recorder: Recorder,
    done: bool,
}

impl Stream for RecordedStream {
    type Item = ChatEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(ev)) => {
                match ev {
                    ChatEvent::BlockStart { .. } | ChatEvent::BlockDelta { .. } => {
                        self.recorder.first_token();
                    }
                    ChatEvent::MessageStart { usage, .. } => self.recorder.usage(usage),
                    ChatEvent::MessageDelta {
                        usage, stop_reason, ..
                    } => {
                        self.recorder.usage(usage);
                        if let Some(reason) = stop_reason {
                            self.recorder.finish_reason(&stop_label(reason));
                        }
                    }
                    ChatEvent::MessageStop => {
                        self.done = true;
                        self.recorder.finish(Outcome::Success, 200);
                    }
                    ChatEvent::Error(e) => {
                        self.done = true;
                        // The HTTP status was 200 already; the outcome says
                        // where the failure came from.
                        self.recorder.finish(Outcome::of_error(e), 200);
                    }
                    _ => {}
                }
            }
            Poll::Ready(None) if !self.done => {
                self.done = true;
                // A stream that stopped without its last event was cut.
                self.recorder.finish(Outcome::UpstreamError, 200);
            }
            _ => {}
        }
        polled
    }
}
