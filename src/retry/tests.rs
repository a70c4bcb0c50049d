use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use futures_core::Stream;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

use super::*;
use crate::Format;
use crate::balance::{BalanceLayer, RoundRobin};
use crate::chat::{
    BlockDelta, ChatEvent, ChatRequest, ChatResponse, Message, MessageStart, Part, Role, Usage,
};
use crate::error::ErrorKind;
use crate::llm::{EventStream, LlmBody, LlmFuture, LlmRequest, LlmResponse, Route, Target};
use crate::wire::Map;

fn request(targets: &[&str]) -> LlmRequest {
    let mut req = LlmRequest::new(
        ChatRequest::new("g", vec![Message::text(Role::User, "x")]),
        Format::OpenAi,
    );
    req.ctx.route = Some(Route {
        name: "g".into(),
        targets: targets.iter().map(|t| Target::new(*t, "m")).collect(),
    });
    req
}

type Script = Arc<StdMutex<Vec<Result<(), ApiError>>>>;

/// Answers from a script (one entry per call; success when it runs out),
/// logging (deployment, time) of each call.
fn scripted(
    script: Vec<Result<(), ApiError>>,
    log: Arc<StdMutex<Vec<(String, Instant)>>>,
) -> impl Service<LlmRequest, Response = LlmResponse, Error = ApiError, Future = LlmFuture> + Clone
{
    let script: Script = Arc::new(StdMutex::new(script.into_iter().rev().collect()));
    service_fn(move |req: LlmRequest| -> LlmFuture {
        let provider = req
            .ctx
            .target
            .as_ref()
            .map(|t| t.provider.clone())
            .unwrap_or_default();
        log.lock().unwrap().push((provider, Instant::now()));
        let next = script.lock().unwrap().pop().unwrap_or(Ok(()));
        Box::pin(async move {
            next?;
            Ok(LlmResponse::complete(ChatResponse::default()))
        })
    })
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .jitter(0.0)
        .base(Duration::from_millis(100))
        .budget(1.0, 100, Duration::from_secs(10))
}

fn stack(
    policy: RetryPolicy,
    inner: impl Service<LlmRequest, Response = LlmResponse, Error = ApiError, Future = LlmFuture>
    + Clone
    + Send
    + 'static,
) -> impl Service<LlmRequest, Response = LlmResponse, Error = ApiError, Future = LlmFuture> + Clone
{
    RetryLayer::new(policy).layer(BalanceLayer::new(RoundRobin).layer(inner))
}

/// The providers called, and when, counted from `start`.
fn calls_since(log: &StdMutex<Vec<(String, Instant)>>, start: Instant) -> Vec<(String, Duration)> {
    log.lock()
        .unwrap()
        .iter()
        .map(|(p, t)| (p.clone(), *t - start))
        .collect()
}

fn e500() -> Result<(), ApiError> {
    Err(ApiError::from_upstream(500, b""))
}

#[test]
fn a_nan_jitter_means_none() {
    let p = RetryPolicy::default()
        .base(Duration::from_millis(100))
        .jitter(f64::NAN);
    assert_eq!(p.backoff(1), Duration::from_millis(100));
}

#[test]
fn backoff_doubles_up_to_the_cap_and_jitter_only_shortens() {
    let p = RetryPolicy::default()
        .jitter(0.0)
        .base(Duration::from_millis(100))
        .max_backoff(Duration::from_millis(350));
    let got: Vec<u128> = (1..=4).map(|n| p.backoff(n).as_millis()).collect();
    assert_eq!(got, [100, 200, 350, 350]);
    let p = p.jitter(0.5);
    for _ in 0..100 {
        let d = p.backoff(2);
        assert!(
            d >= Duration::from_millis(100) && d <= Duration::from_millis(200),
            "{d:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_same_deployment_is_retried_after_the_backoff() {
    let log = Arc::new(StdMutex::new(Vec::new()));
    let svc = stack(policy(), scripted(vec![e500(), e500()], log.clone()));
    let start = Instant::now();
    svc.oneshot(request(&["a"])).await.unwrap();
    let times: Vec<Duration> = calls_since(&log, start)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(
        times,
        [
            Duration::ZERO,
            Duration::from_millis(100),
            Duration::from_millis(300)
        ]
    );
}

/// Each attempt but the last gets a copy of the request; the last gets the
/// request itself (seen by a marker in its extensions: a copy shares it).
#[tokio::test(start_paused = true)]
async fn only_the_last_attempt_takes_the_request_itself() {
    // (attempts, answers, requests holding the marker at each call besides
    // the test's).
    for (attempts, script, expected) in [
        (3, vec![e500(), e500(), e500()], vec![2, 2, 1]),
        (3, vec![e500()], vec![2, 2]),
        (1, vec![e500()], vec![1]),
    ] {
        let holders = Arc::new(StdMutex::new(Vec::new()));
        let seen = holders.clone();
        let mut script: Vec<_> = script.into_iter().rev().collect();
        let inner = service_fn(move |req: LlmRequest| -> LlmFuture {
            let marker = req.ctx.extensions.get::<Arc<()>>().unwrap();
            seen.lock().unwrap().push(Arc::strong_count(marker) - 1);
            let next = script.pop().unwrap_or(Ok(()));
            Box::pin(async move {
                next?;
                Ok(LlmResponse::complete(ChatResponse::default()))
            })
        });
        let svc = stack(policy().attempts(attempts), inner);
        let marker = Arc::new(());
        let mut req = request(&["a"]);
        req.ctx.extensions.insert(marker.clone());
        let _ = svc.oneshot(req).await;
        assert_eq!(*holders.lock().unwrap(), expected, "{attempts} attempts");
        assert_eq!(Arc::strong_count(&marker), 1);
    }
}

/// An attempt the gateway refuses after an upstream failure (every
/// deployment cooling down) answers with the upstream's error and the later
/// of the two `retry-after`s, whether it was the last attempt allowed or not.
#[tokio::test(start_paused = true)]
async fn a_refused_attempt_answers_with_the_upstream_error() {
    for attempts in [2, 3] {
        let log = Arc::new(StdMutex::new(Vec::new()));
        let refused = ApiError::api("every deployment is cooling down")
            .with_retry_after(Duration::from_secs(5));
        assert!(!refused.upstream);
        let svc = stack(
            policy().attempts(attempts),
            scripted(vec![e500(), Err(refused)], log.clone()),
        );
        let err = svc.oneshot(request(&["a"])).await.unwrap_err();
        assert!(err.upstream, "{attempts} attempts: {err:?}");
        assert!(
            !err.message.contains("cooling"),
            "{attempts} attempts: {err:?}"
        );
        assert_eq!(err.retry_after, Some(Duration::from_secs(5)));
        assert_eq!(log.lock().unwrap().len(), 2, "{attempts} attempts");
    }
}

#[tokio::test(start_paused = true)]
async fn a_drained_deployment_is_no_failover_so_the_backoff_applies() {
    // b is in the route but drained (weight 0): the balancer sends the
    // retry to a again, so it must wait its backoff, not go at once.
    let log = Arc::new(StdMutex::new(Vec::new()));
    let svc = stack(policy(), scripted(vec![e500()], log.clone()));
    let start = Instant::now();
    let mut req = request(&["a", "b"]);
    if let Some(route) = req.ctx.route.as_mut() {
        route.targets[1].weight = 0;
    }
    svc.oneshot(req).await.unwrap();
    let calls = calls_since(&log, start);
    assert_eq!(
        calls,
        [
            ("a".to_owned(), Duration::ZERO),
            ("a".to_owned(), Duration::from_millis(100))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn another_deployment_is_tried_at_once() {
    let log = Arc::new(StdMutex::new(Vec::new()));
    let svc = stack(policy(), scripted(vec![e500()], log.clone()));
    let start = Instant::now();
    svc.oneshot(request(&["a", "b"])).await.unwrap();
    let calls = calls_since(&log, start);
    assert_eq!(
        calls,
        [("a".into(), Duration::ZERO), ("b".into(), Duration::ZERO)]
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_and_capped() {
    let limited =
        || Err(ApiError::from_upstream(429, b"").with_retry_after(Duration::from_secs(2)));
    let log = Arc::new(StdMutex::new(Vec::new()));
    let svc = stack(policy(), scripted(vec![limited()], log.clone()));
    let start = Instant::now();
    svc.oneshot(request(&["a"])).await.unwrap();
    assert_eq!(calls_since(&log, start)[1].1, Duration::from_secs(2));

    let log = Arc::new(StdMutex::new(Vec::new()));
    let svc = stack(
        policy().max_retry_after(Duration::from_secs(1)),
        scripted(vec![limited()], log.clone()),
    );
    let err = svc.oneshot(request(&["a"])).await.unwrap_err();
    assert_eq!(
        (err.kind, err.retry_after),
        (ErrorKind::RateLimit, Some(Duration::from_secs(2)))
    );
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "a retry-after beyond the cap is not waited for"
    );
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_never_retried_and_attempts_are_bounded() {
    for status in [400u16, 401, 403, 404, 413, 422] {
        let log = Arc::new(StdMutex::new(Vec::new()));
        let svc = stack(
            policy(),
            scripted(vec![Err(ApiError::from_upstream(status, b""))], log.clone()),
        );
        assert!(svc.oneshot(request(&["a", "b"])).await.is_err());
        assert_eq!(log.lock().unwrap().len(), 1, "{status}");
    }
    for status in [408u16, 409, 429, 500, 502, 503, 504, 529] {
        let log = Arc::new(StdMutex::new(Vec::new()));
        let svc = stack(
            policy().attempts(3),
            scripted(
                vec![Err(ApiError::from_upstream(status, b"")); 10],
                log.clone(),
            ),
        );
        assert!(svc.oneshot(request(&["a"])).await.is_err());
        assert_eq!(log.lock().unwrap().len(), 3, "{status}");
    }
    // The gateway's own errors are not retried either.
    let log = Arc::new(StdMutex::new(Vec::new()));
    let svc = stack(
        policy(),
        scripted(vec![Err(ApiError::api("config"))], log.clone()),
    );
    assert!(svc.oneshot(request(&["a"])).await.is_err());
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_budget_keeps_an_outage_from_becoming_a_retry_storm() {
    let log = Arc::new(StdMutex::new(Vec::new()));
    let always = vec![e500(); 10_000];
    let svc = stack(
        RetryPolicy::default()
            .jitter(0.0)
            .base(Duration::ZERO)
            .attempts(5)
            .budget(0.2, 1, Duration::from_secs(10)),
        scripted(always, log.clone()),
    );
    for _ in 0..100 {
        let _ = svc.clone().oneshot(request(&["a"])).await;
    }
    let retries = log.lock().unwrap().len() - 100;
    // 20 % of 100 requests plus a reserve of 1/s over the 10 s window.
    assert!(retries <= 20 + 10 + 1, "{retries} retries");
    assert!(retries >= 10, "the budget still allows some: {retries}");
}

fn stream_of(events: Vec<ChatEvent>) -> LlmResponse {
    LlmResponse::stream(EventStream::from_events(events, None))
}

fn start() -> ChatEvent {
    ChatEvent::message_start(MessageStart {
        id: "m".into(),
        model: "x".into(),
        usage: Usage::default(),
        extra: Map::new(),
    })
}

#[tokio::test(start_paused = true)]
async fn streams_are_retried_before_their_commit_point_only() {
    let calls = Arc::new(StdMutex::new(0));
    let counter = calls.clone();
    let overloaded =
        || ChatEvent::error(ApiError::new(ErrorKind::Overloaded, "busy").mark_upstream());
    let svc = RetryLayer::new(policy()).layer(BalanceLayer::new(RoundRobin).layer(service_fn(
        move |_req: LlmRequest| {
            let n = {
                let mut c = counter.lock().unwrap();
                *c += 1;
                *c
            };
            async move {
                Ok::<_, ApiError>(match n {
                    // An error before any content: the attempt failed.
                    1 => stream_of(vec![start(), ChatEvent::Ping, overloaded()]),
                    // Content, then an error: committed; the error is the client's.
                    _ => stream_of(vec![
                        start(),
                        ChatEvent::block_start(0, Part::text("")),
                        ChatEvent::BlockDelta {
                            index: 0,
                            delta: BlockDelta::Text("partial".into()),
                        },
                        overloaded(),
                    ]),
                })
            }
        },
    )));
    let resp = svc.oneshot(request(&["a", "b"])).await.unwrap();
    let LlmBody::Stream(mut s) = resp.body else {
        panic!()
    };
    let mut events = Vec::new();
    while let Some(ev) = std::future::poll_fn(|cx| Pin::new(&mut s).poll_next(cx)).await {
        events.push(ev);
    }
    assert_eq!(*calls.lock().unwrap(), 2);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ChatEvent::MessageStart(_)))
            .count(),
        1,
        "one message start"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ChatEvent::BlockDelta { .. }))
            .count(),
        1,
        "content once"
    );
    assert!(matches!(events.last(), Some(ChatEvent::Error(e)) if e.kind == ErrorKind::Overloaded));
}
