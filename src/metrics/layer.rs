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
    S: Service<LlmRequest, Response = LlmResponse, Error = ApiError> + Send + 'static,
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
        recorder.set_attempts(req.ctx.attempts.clone());
        let inbound = req.ctx.inbound;
        let span = recorder.span().clone();
        // `poll_ready` readied `self.inner`: call it now, in the request's
        // span as the rest of the call runs, rather than a clone later.
        let call = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                match call.await {
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
                    ChatEvent::MessageStart(start) => self.recorder.usage(&start.usage),
                    ChatEvent::MessageDelta(delta) => {
                        self.recorder.usage(&delta.usage);
                        if let Some(reason) = &delta.stop_reason {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;
    use crate::chat::{
        BlockDelta, ChatRequest, Message, MessageDelta, MessageStart, Part, Role, Usage,
    };
    use crate::llm::EventStream;
    use crate::wire::Map;
    use tower::{ServiceExt, service_fn};

    fn events(last: ChatEvent) -> Vec<ChatEvent> {
        vec![
            ChatEvent::message_start(MessageStart {
                id: "m".into(),
                model: "x".into(),
                usage: Usage {
                    input_tokens: Some(5),
                    ..Usage::default()
                },
                extra: Map::new(),
            }),
            ChatEvent::block_start(0, Part::text("")),
            ChatEvent::BlockDelta {
                index: 0,
                delta: BlockDelta::Text("hi".into()),
            },
            ChatEvent::BlockStop { index: 0 },
            ChatEvent::message_delta(MessageDelta {
                stop_reason: None,
                stop_sequence: None,
                usage: Usage {
                    output_tokens: Some(2),
                    ..Usage::default()
                },
                extra: Map::new(),
            }),
            last,
        ]
    }

    async fn run(tracker: &Tracker, body: Vec<ChatEvent>, read: usize) {
        let svc =
            MetricsLayer::new(tracker.clone()).layer(service_fn(move |_req: LlmRequest| {
                let body = body.clone();
                async move {
                    Ok::<_, ApiError>(LlmResponse::stream(EventStream::from_events(body, None)))
                }
            }));
        let req = LlmRequest::new(
            ChatRequest::new("m", vec![Message::text(Role::User, "x")]),
            Format::Anthropic,
        );
        let resp = svc.oneshot(req).await.unwrap();
        let LlmBody::Stream(mut s) = resp.body else {
            panic!()
        };
        for _ in 0..read {
            if std::future::poll_fn(|cx| Pin::new(&mut s).poll_next(cx))
                .await
                .is_none()
            {
                break;
            }
        }
    }

    #[tokio::test]
    async fn streams_end_in_one_outcome_each() {
        let tracker = Tracker::new();
        run(&tracker, events(ChatEvent::MessageStop), usize::MAX).await;
        run(
            &tracker,
            events(ChatEvent::error(ApiError::api("cut").mark_upstream())),
            usize::MAX,
        )
        .await;
        run(&tracker, events(ChatEvent::MessageStop), 2).await; // the client left early
        let t = tracker.snapshot().totals;
        assert_eq!(
            (t.started, t.success, t.upstream_error, t.client_disconnect),
            (3, 1, 1, 1)
        );
        let done = &tracker.snapshot().recent[2];
        assert_eq!((done.input_tokens, done.output_tokens), (Some(5), Some(2)));
        assert!(done.ttft_ms.is_some());
    }

    #[tokio::test]
    async fn errors_are_recorded_by_origin() {
        let tracker = Tracker::new();
        for err in [
            ApiError::invalid_request("bad"),
            ApiError::from_upstream(500, b""),
        ] {
            let svc =
                MetricsLayer::new(tracker.clone()).layer(service_fn(move |_req: LlmRequest| {
                    let err = err.clone();
                    async move { Err::<LlmResponse, _>(err) }
                }));
            let req = LlmRequest::new(ChatRequest::new("m", vec![]), Format::OpenAi);
            assert!(svc.oneshot(req).await.is_err());
        }
        let t = tracker.snapshot().totals;
        assert_eq!((t.gateway_error, t.upstream_error), (1, 1));
    }
}
