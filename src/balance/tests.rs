use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use tower::{Service, ServiceExt, service_fn};

use super::*;
use crate::Format;
use crate::chat::{ChatRequest, ChatResponse, Message, MessageStart, Part, Role, Usage};
use crate::llm::{EventStream, LlmFuture, LlmRequest, LlmResponse, Route};
use crate::wire::Map;

fn targets(names: &[&str]) -> Vec<Target> {
    names.iter().map(|n| Target::new(*n, "m")).collect()
}

fn request(route: &str, names: &[&str]) -> LlmRequest {
    let mut req = LlmRequest::new(
        ChatRequest::new(route, vec![Message::text(Role::User, "x")]),
        Format::OpenAi,
    );
    req.ctx.route = Some(Route {
        name: route.into(),
        targets: targets(names),
    });
    req
}

/// An upstream whose answer depends on the deployment; records the order.
fn upstream(
    log: Arc<StdMutex<Vec<String>>>,
    answer: impl Fn(&str) -> Result<(), ApiError> + Clone + Send + Sync + 'static,
) -> impl Service<LlmRequest, Response = LlmResponse, Error = ApiError, Future = LlmFuture> + Clone
{
    service_fn(move |req: LlmRequest| -> LlmFuture {
        let provider = req
            .ctx
            .target
            .as_ref()
            .map(|t| t.provider.clone())
            .unwrap_or_default();
        log.lock().unwrap().push(provider.clone());
        let answer = answer.clone();
        Box::pin(async move {
            answer(&provider)?;
            Ok(LlmResponse::complete(ChatResponse::default()))
        })
    })
}

async fn picks(layer: &BalanceLayer, route: &str, names: &[&str], n: usize) -> Vec<String> {
    let log = Arc::new(StdMutex::new(Vec::new()));
    let svc = layer.layer(upstream(log.clone(), |_| Ok(())));
    for _ in 0..n {
        svc.clone().oneshot(request(route, names)).await.unwrap();
    }

    log.lock().unwrap().clone()
}

#[tokio::test(start_paused = true)]
async fn round_robin_and_a_retry_never_repeats_a_deployment() {
    let layer = BalanceLayer::new(RoundRobin);
    assert_eq!(
        picks(&layer, "g", &["a", "b", "c"], 6).await,
        ["a", "b", "c", "a", "b", "c"]
    );
    // Attempts of one request: each goes to a deployment not yet tried.
    let log = Arc::new(StdMutex::new(Vec::new()));
    let svc = layer.layer(upstream(log.clone(), |_| {
        Err(ApiError::from_upstream(500, b""))
    }));
    let req = request("g", &["a", "b", "c"]);
    for _ in 0..3 {
        let _ = svc.clone().oneshot(req.clone()).await;
    }
    let mut tried = log.lock().unwrap().clone();
    tried.sort();
    assert_eq!(tried, ["a", "b", "c"]);
    assert_eq!(req.ctx.attempts.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn weighted_shares_follow_the_weights() {
    let layer = BalanceLayer::new(Weighted).group(
        "g",
        [
            Target::new("a", "m").weight(3),
            Target::new("b", "m").weight(1),
        ],
    );
    let got = picks(&layer, "g", &[], 400).await;
    let a = got.iter().filter(|p| *p == "a").count();
    assert_eq!(a, 300);
    // Interleaved, not 3 a's then 1 b in a block of 400.
    assert!(got[..8].iter().any(|p| p == "b"), "{:?}", &got[..8]);
}

#[tokio::test(start_paused = true)]
async fn least_in_flight_counts_open_streams() {
    let layer = BalanceLayer::new(LeastInFlight).group("g", targets(&["a", "b"]));
    let svc = layer.layer(service_fn(|_req: LlmRequest| async {
        let events = vec![
            ChatEvent::message_start(MessageStart {
                id: "m".into(),
                model: "x".into(),
                usage: Usage::default(),
                extra: Map::new(),
            }),
            ChatEvent::block_start(0, Part::text("")),
            ChatEvent::MessageStop,
        ];
        Ok::<_, ApiError>(LlmResponse::stream(EventStream::from_events(events, None)))
    }));
    let open = svc.clone().oneshot(request("g", &[])).await.unwrap();
    let handle = layer.handle();
    let in_flight = |h: &BalanceHandle| {
        h.deployments("g")
            .iter()
            .map(|d| d.in_flight)
            .collect::<Vec<_>>()
    };
    assert_eq!(in_flight(&handle), [1, 0], "held while the stream is open");
    let second = svc.clone().oneshot(request("g", &[])).await.unwrap();
    assert_eq!(in_flight(&handle), [1, 1], "the idle deployment got it");
    let LlmBody::Stream(mut s) = open.body else {
        panic!()
    };
    while std::future::poll_fn(|cx| Pin::new(&mut s).poll_next(cx))
        .await
        .is_some()
    {}
    assert_eq!(
        in_flight(&handle),
        [0, 1],
        "released at the end of the stream"
    );
    drop(second);
    assert_eq!(
        in_flight(&handle),
        [0, 0],
        "released when the stream is dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn latency_prefers_the_fast_deployment_after_measuring_all() {
    let layer = BalanceLayer::new(Latency).group("g", targets(&["slow", "fast"]));
    let svc = layer.layer(service_fn(|req: LlmRequest| async move {
        let slow = req.ctx.target.as_ref().unwrap().provider == "slow";
        tokio::time::sleep(Duration::from_millis(if slow { 500 } else { 50 })).await;
        Ok::<_, ApiError>(LlmResponse::complete(ChatResponse::default()))
    }));
    let mut order = Vec::new();
    for _ in 0..5 {
        let req = request("g", &[]);
        let attempts = req.ctx.attempts.clone();
        svc.clone().oneshot(req).await.unwrap();
        order.push(attempts.list()[0].provider.clone());
    }
    assert_eq!(
        order[..2].iter().filter(|p| *p == "slow").count(),
        1,
        "each measured once first"
    );
    assert!(order[2..].iter().all(|p| p == "fast"), "{order:?}");
    let status = layer.handle().deployments("g");
    assert_eq!(status[0].latency, Some(Duration::from_millis(500)));
}

#[test]
fn peak_ewma_jumps_up_and_decays_down() {
    let start = Instant::now();
    let mut e = PeakEwma::default();
    e.observe(Duration::from_millis(100), start);
    e.observe(Duration::from_millis(400), start + Duration::from_secs(1));
    assert_eq!(
        e.get(),
        Some(Duration::from_millis(400)),
        "a peak counts at once"
    );
    // Ten seconds (one time constant) later a 100 ms sample moves it
    // 1 - 1/e of the way down.
    e.observe(Duration::from_millis(100), start + Duration::from_secs(11));
    let v = e.get().unwrap().as_secs_f64();
    let expected = 0.4 * (-1f64).exp() + 0.1 * (1.0 - (-1f64).exp());
    assert!((v - expected).abs() < 1e-9, "{v} vs {expected}");
}

#[tokio::test(start_paused = true)]
async fn a_429_cools_the_deployment_for_its_retry_after() {
    let layer = BalanceLayer::new(RoundRobin).group("g", targets(&["a", "b"]));
    let limited = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = limited.clone();
    let log = Arc::new(StdMutex::new(Vec::new()));
    let svc = layer.layer(upstream(log.clone(), move |p| {
        if p == "a" && flag.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(ApiError::from_upstream(429, b"").with_retry_after(Duration::from_secs(2)));
        }
        Ok(())
    }));
    assert!(svc.clone().oneshot(request("g", &[])).await.is_err());
    let handle = layer.handle();
    assert_eq!(
        handle.deployments("g")[0].cooling_for,
        Some(Duration::from_secs(2))
    );
    for _ in 0..3 {
        svc.clone().oneshot(request("g", &[])).await.unwrap();
    }
    assert_eq!(
        log.lock().unwrap()[1..],
        ["b", "b", "b"],
        "a is skipped while it cools"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(handle.deployments("g")[0].cooling_for, None);
    svc.clone().oneshot(request("g", &[])).await.unwrap();
    svc.clone().oneshot(request("g", &[])).await.unwrap();
    assert!(
        log.lock().unwrap()[4..].contains(&"a".to_owned()),
        "a is back"
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_cool_after_allowed_failures_and_failures_decay() {
    let cfg = HealthConfig::default()
        .allowed_failures(2)
        .cooldown(Duration::from_secs(4))
        .half_life(Duration::from_secs(10));
    let mut h = Health::default();
    let err = ApiError::from_upstream(500, b"");
    let now = Instant::now();
    assert_eq!(h.failure(&cfg, now, &err), None, "one failure is allowed");
    assert_eq!(
        h.failure(&cfg, now, &err),
        Some(Duration::from_secs(4)),
        "the second starts the base cooldown"
    );
    assert_eq!(
        h.failure(&cfg, now, &err),
        Some(Duration::from_secs(8)),
        "then it doubles"
    );
    assert!(
        (h.failures(&cfg, now + Duration::from_secs(10)) - 1.5).abs() < 1e-9,
        "halved after a half-life"
    );
    assert!((h.failures(&cfg, now + Duration::from_secs(20)) - 0.75).abs() < 1e-9);
    // After decay, a new failure does not reach the threshold again.
    assert_eq!(h.failure(&cfg, now + Duration::from_secs(40), &err), None);
    h.success();
    assert_eq!(h.cooling(now), None);
    let capped = HealthConfig::default().max_cooldown(Duration::from_secs(3));
    let mut h = Health::default();
    let rl = ApiError::from_upstream(429, b"").with_retry_after(Duration::from_secs(30));
    assert_eq!(
        h.failure(&capped, now, &rl),
        Some(Duration::from_secs(3)),
        "retry-after is capped"
    );
}

#[tokio::test(start_paused = true)]
async fn client_errors_do_not_count_against_the_deployment() {
    let layer = BalanceLayer::new(RoundRobin)
        .group("g", targets(&["a"]))
        .health(HealthConfig::default().allowed_failures(1));
    let log = Arc::new(StdMutex::new(Vec::new()));
    let svc = layer.layer(upstream(log, |_| Err(ApiError::from_upstream(400, b""))));
    for _ in 0..3 {
        let _ = svc.clone().oneshot(request("g", &[])).await;
    }
    assert_eq!(layer.handle().deployments("g")[0].cooling_for, None);
}

#[tokio::test(start_paused = true)]
async fn when_every_deployment_cools_the_request_fails_fast_with_retry_after() {
    let layer = BalanceLayer::new(RoundRobin).group("g", targets(&["a", "b"]));
    let log = Arc::new(StdMutex::new(Vec::new()));
    let svc = layer.layer(upstream(log.clone(), |p| {
        let wait = if p == "a" { 3 } else { 7 };
        Err(ApiError::from_upstream(429, b"").with_retry_after(Duration::from_secs(wait)))
    }));
    let _ = svc.clone().oneshot(request("g", &[])).await;
    let _ = svc.clone().oneshot(request("g", &[])).await;
    let err = svc.clone().oneshot(request("g", &[])).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Overloaded);
    assert_eq!(err.retry_after, Some(Duration::from_secs(3)));
    assert_eq!(
        log.lock().unwrap().len(),
        2,
        "no upstream call while all cool"
    );
}

#[tokio::test(start_paused = true)]
async fn deployments_change_at_runtime() {
    let layer = BalanceLayer::new(RoundRobin).group("g", targets(&["a", "b"]));
    let handle = layer.handle();
    handle.add("g", Target::new("c", "m"));
    assert_eq!(picks(&layer, "g", &[], 3).await, ["a", "b", "c"]);
    assert!(handle.set_weight("g", &Target::new("a", "m"), 0));
    assert!(handle.remove("g", &Target::new("b", "m")));
    assert!(!handle.remove("g", &Target::new("zz", "m")));
    assert_eq!(picks(&layer, "g", &[], 3).await, ["c", "c", "c"]);
    handle.set_weight("g", &Target::new("a", "m"), 1);
    let got = picks(&layer, "g", &[], 4).await;
    assert!(got.contains(&"a".to_owned()) && got.contains(&"c".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn one_target_routes_that_were_not_defined_pass_through_untracked() {
    let layer = BalanceLayer::new(RoundRobin);
    assert_eq!(
        picks(&layer, "openai/*", &["openai"], 2).await,
        ["openai", "openai"]
    );
    assert!(layer.handle().deployments("openai/*").is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_error_event_in_a_stream_counts_as_a_failure() {
    let layer = BalanceLayer::new(RoundRobin).group("g", targets(&["a"]));
    let svc = layer.layer(service_fn(|_req: LlmRequest| async {
        let events = vec![
            ChatEvent::message_start(MessageStart {
                id: "m".into(),
                model: "x".into(),
                usage: Usage::default(),
                extra: Map::new(),
            }),
            ChatEvent::error(ApiError::new(ErrorKind::Overloaded, "busy").mark_upstream()),
        ];
        Ok::<_, ApiError>(LlmResponse::stream(EventStream::from_events(events, None)))
    }));
    let resp = svc.oneshot(request("g", &[])).await.unwrap();
    let LlmBody::Stream(s) = resp.body else {
        panic!()
    };
    assert!(s.commit().await.is_err());
    assert_eq!(
        layer.handle().deployments("g")[0].cooling_for,
        Some(Duration::from_secs(5))
    );
}
