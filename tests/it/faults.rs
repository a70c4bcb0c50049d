//! Fault injection: a model group of two deployments on two local upstreams,
//! the first misbehaving on command. For each fault: what the client
//! receives, which deployments were tried, and what the metrics recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::capture;
use crate::common::{check_anthropic_stream, fixture};
use crate::support::*;

/// Two OpenAI-compatible deployments `{p}-a` (faulty) and `{p}-b` (healthy)
/// behind model `m`; round robin, so the first attempt goes to `a`.
async fn farm(
    p: &str,
    faulty: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    extra: &str,
) -> (Upstream, Upstream, TestGateway) {
    capture::install();
    let a = Upstream::start(faulty).await;
    let b = Upstream::start(healthy).await;
    let toml = format!(
        r#"
        {extra}
        [balance]
        strategy = "round_robin"
        [timeouts]
        first_byte_ms = 500
        idle_ms = 400
        [[providers]]
        name = "{p}-a"
        kind = "openai"
        base_url = "{a}"
        [[providers]]
        name = "{p}-b"
        kind = "openai"
        base_url = "{b}"
        [[models]]
        name = "{p}"
        targets = [{{ provider = "{p}-a", model = "up-a" }}, {{ provider = "{p}-b", model = "up-b" }}]
        "#,
        a = a.base_url(),
        b = b.base_url(),
    );
    let gw = gateway(&toml, None).await;
    (a, b, gw)
}

fn healthy(r: &Received) -> Reply {
    if r.body["stream"] == true {
        Reply::sse(&fixture("openai_stream_text_with_usage.sse"), 64)
    } else {
        Reply::json(200, fixture("openai_nonstream_parallel_tool_calls.json"))
    }
}

const FULL_TEXT: &str = "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, I recommend checking a reliable weather website or a weather app.";

fn request(model: &str, stream: bool) -> String {
    json!({"model": model, "max_tokens": 100, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}).to_string()
}

/// The text stream up to its `n`th chunk, then `rest`.
fn text_prefix_then(n: usize, rest: &str) -> String {
    let body = fixture("openai_stream_text_with_usage.sse");
    let cut = body.match_indices("data:").nth(n).unwrap().0;
    format!("{}{rest}", &body[..cut])
}

fn attempts(gw: &TestGateway) -> Vec<String> {
    gw.gateway.tracker.snapshot().recent[0].attempts.clone()
}

fn retries(p: &str, reason: &str) -> u64 {
    capture::counter("llmgate_retries_total", &[("model", p), ("reason", reason)])
}

fn cooldowns(p: &str) -> u64 {
    capture::counter(
        "llmgate_cooldowns_total",
        &[("provider", &format!("{p}-a"))],
    )
}

fn outcome(gw: &TestGateway) -> String {
    format!("{:?}", gw.gateway.tracker.snapshot().recent[0].outcome)
}

#[tokio::test]
async fn fault_429_with_retry_after_fails_over_and_cools_the_deployment() {
    let (a, b, gw) = farm(
        "f429",
        |_| {
            Reply::json(
                429,
                r#"{"error":{"message":"slow down","type":"requests"}}"#,
            )
            .header("retry-after", "30")
        },
        "",
    )
    .await;
    let got = gw.post("/v1/messages", &[], &request("f429", false)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["content"][0]["name"], "GetWeatherArgs");
    assert_eq!(attempts(&gw), ["f429-a/up-a", "f429-b/up-b"]);
    assert_eq!((a.requests().len(), b.requests().len()), (1, 1));
    assert_eq!(cooldowns("f429"), 1);
    let status = gw.gateway.balance.deployments("f429");
    assert!(
        status[0].cooling_for.unwrap() > Duration::from_secs(25),
        "cooling for its retry-after"
    );
    // While a cools, every request goes straight to b.
    for _ in 0..3 {
        assert_eq!(
            gw.post("/v1/messages", &[], &request("f429", false))
                .await
                .status,
            200
        );
    }
    assert_eq!((a.requests().len(), b.requests().len()), (1, 4));
    assert_eq!(outcome(&gw), "Success");
}

#[tokio::test]
async fn fault_500_fails_over() {
    let (a, b, gw) = farm(
        "f500",
        |_| Reply::json(500, r#"{"error":{"message":"boom","type":"server_error"}}"#),
        "",
    )
    .await;
    let got = gw
        .post("/v1/chat/completions", &[], &request("f500", false))
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(attempts(&gw), ["f500-a/up-a", "f500-b/up-b"]);
    assert_eq!((a.requests().len(), b.requests().len()), (1, 1));
    assert_eq!(retries("f500", "api_error"), 1);
    assert_eq!(
        cooldowns("f500"),
        0,
        "one 500 is within the allowed failures"
    );
}

#[tokio::test]
async fn fault_529_overloaded_fails_over() {
    let (_, b, gw) = farm(
        "f529",
        |_| {
            Reply::json(
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            )
        },
        "",
    )
    .await;
    let got = gw.post("/v1/messages", &[], &request("f529", true)).await;
    assert_eq!(got.status, 200);
    let checked = check_anthropic_stream(&got.body);
    assert_eq!(checked.message["content"][0]["text"], FULL_TEXT);
    assert_eq!(attempts(&gw), ["f529-a/up-a", "f529-b/up-b"]);
    assert_eq!(b.requests().len(), 1);
    assert_eq!(cooldowns("f529"), 1, "overload cools at once");
}

#[tokio::test]
async fn fault_connection_refused_fails_over() {
    capture::install();
    let b = Upstream::start(healthy).await;
    let toml = format!(
        r#"
        [balance]
        strategy = "round_robin"
        [[providers]]
        name = "fref-a"
        kind = "openai"
        base_url = "http://127.0.0.1:9/v1"
        [[providers]]
        name = "fref-b"
        kind = "openai"
        base_url = "{}"
        [[models]]
        name = "fref"
        targets = [{{ provider = "fref-a", model = "up-a" }}, {{ provider = "fref-b", model = "up-b" }}]
        "#,
        b.base_url()
    );
    let gw = gateway(&toml, None).await;
    let got = gw.post("/v1/messages", &[], &request("fref", false)).await;
    assert_eq!(got.status, 200);
    assert_eq!(attempts(&gw), ["fref-a/up-a", "fref-b/up-b"]);
    assert_eq!(retries("fref", "api_error"), 1);
}

#[tokio::test]
async fn fault_reset_mid_stream_after_content_is_a_terminal_error_event() {
    let (a, b, gw) = farm(
        "frst",
        |_| Reply::sse(&text_prefix_then(4, ""), 40).end(End::Reset),
        "",
    )
    .await;
    let got = gw.post("/v1/messages", &[], &request("frst", true)).await;
    assert_eq!(got.status, 200);
    let checked = check_anthropic_stream(&got.body);
    assert_eq!(checked.error.unwrap()["type"], "api_error");
    assert_eq!(
        checked.message["content"][0]["text"], "I'm unable to",
        "what arrived, once"
    );
    assert_eq!(
        attempts(&gw),
        ["frst-a/up-a"],
        "no retry after the commit point"
    );
    assert_eq!((a.requests().len(), b.requests().len()), (1, 0));
    assert_eq!(outcome(&gw), "UpstreamError");
}

#[tokio::test]
async fn fault_reset_before_content_is_retried_elsewhere() {
    // The role chunk only (no content), then the connection breaks.
    let (_, b, gw) = farm(
        "frst0",
        |_| Reply::sse(&text_prefix_then(1, ""), 40).end(End::Reset),
        "",
    )
    .await;
    let got = gw
        .post("/v1/chat/completions", &[], &request("frst0", true))
        .await;
    assert_eq!(got.status, 200);
    let acc = crate::fixtures::accumulate_openai(&got.body);
    assert_eq!(acc["text"], FULL_TEXT, "the whole answer, once, from b");
    assert_eq!(attempts(&gw), ["frst0-a/up-a", "frst0-b/up-b"]);
    assert_eq!(b.requests().len(), 1);
}

#[tokio::test]
async fn fault_stall_mid_stream_ends_in_a_timeout_event() {
    let (a, _, gw) = farm(
        "fstall",
        |_| Reply::sse(&text_prefix_then(4, ""), 40).end(End::Stall),
        "",
    )
    .await;
    let got = gw.post("/v1/messages", &[], &request("fstall", true)).await;
    let checked = check_anthropic_stream(&got.body);
    assert_eq!(checked.error.unwrap()["type"], "timeout_error");
    assert_eq!(checked.message["content"][0]["text"], "I'm unable to");
    assert_eq!(attempts(&gw), ["fstall-a/up-a"]);
    eventually("the stalled upstream response is dropped", || a.open() == 0).await;
}

#[tokio::test]
async fn fault_stall_before_content_is_retried_elsewhere() {
    let (a, _, gw) = farm(
        "fstall0",
        |_| Reply::sse(&text_prefix_then(1, ""), 40).end(End::Stall),
        "",
    )
    .await;
    let got = gw
        .post("/v1/messages", &[], &request("fstall0", true))
        .await;
    let checked = check_anthropic_stream(&got.body);
    assert!(checked.error.is_none());
    assert_eq!(checked.message["content"][0]["text"], FULL_TEXT);
    assert_eq!(attempts(&gw), ["fstall0-a/up-a", "fstall0-b/up-b"]);
    assert_eq!(retries("fstall0", "timeout_error"), 1);
    eventually("the stalled upstream response is dropped", || a.open() == 0).await;
}

#[tokio::test]
async fn fault_malformed_chunk() {
    // Before any content: retried elsewhere.
    let (_, _, gw) = farm("fmal0", |_| Reply::sse("data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: {not json}\n\n", 16), "").await;
    let got = gw.post("/v1/messages", &[], &request("fmal0", true)).await;
    assert_eq!(
        check_anthropic_stream(&got.body).message["content"][0]["text"],
        FULL_TEXT
    );
    assert_eq!(attempts(&gw), ["fmal0-a/up-a", "fmal0-b/up-b"]);
    // After content: a terminal error event.
    let (_, _, gw) = farm(
        "fmal1",
        |_| Reply::sse(&text_prefix_then(3, "data: {not json}\n\n"), 16),
        "",
    )
    .await;
    let got = gw.post("/v1/messages", &[], &request("fmal1", true)).await;
    let checked = check_anthropic_stream(&got.body);
    assert_eq!(checked.error.unwrap()["type"], "api_error");
    assert_eq!(attempts(&gw), ["fmal1-a/up-a"]);
}

#[tokio::test]
async fn fault_error_event_inside_a_200_stream() {
    let overloaded = "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"code\":\"server_is_overloaded\"}}\n\n";
    // Before content: a failure like any other, retried elsewhere.
    let (_, _, gw) = farm(
        "ferr0",
        move |_| Reply::sse(&text_prefix_then(1, overloaded), 40),
        "",
    )
    .await;
    let got = gw
        .post("/v1/chat/completions", &[], &request("ferr0", true))
        .await;
    assert_eq!(
        crate::fixtures::accumulate_openai(&got.body)["text"],
        FULL_TEXT
    );
    assert_eq!(attempts(&gw), ["ferr0-a/up-a", "ferr0-b/up-b"]);
    assert_eq!(retries("ferr0", "overloaded_error"), 1);
    // After content: the client's error.
    let (_, _, gw) = farm(
        "ferr1",
        move |_| Reply::sse(&text_prefix_then(4, overloaded), 40),
        "",
    )
    .await;
    let got = gw.post("/v1/messages", &[], &request("ferr1", true)).await;
    let checked = check_anthropic_stream(&got.body);
    assert_eq!(checked.error.unwrap()["type"], "overloaded_error");
    assert_eq!(attempts(&gw), ["ferr1-a/up-a"]);
}

#[tokio::test]
async fn fault_slow_first_byte_times_out_and_fails_over() {
    let (a, _, gw) = farm(
        "fslow",
        |r| healthy(r).head_delay(Duration::from_secs(3)),
        "",
    )
    .await;
    let got = gw.post("/v1/messages", &[], &request("fslow", true)).await;
    assert_eq!(
        check_anthropic_stream(&got.body).message["content"][0]["text"],
        FULL_TEXT
    );
    assert_eq!(attempts(&gw), ["fslow-a/up-a", "fslow-b/up-b"]);
    assert_eq!(retries("fslow", "timeout_error"), 1);
    assert_eq!(a.requests().len(), 1);
}

#[tokio::test]
async fn fault_slow_first_byte_is_hedged_and_the_slow_attempt_cancelled() {
    let (a, _, gw) = farm(
        "fhedge",
        |r| healthy(r).head_delay(Duration::from_millis(450)),
        "[hedge]\ndelay_ms = 50",
    )
    .await;
    let got = gw
        .post("/v1/messages", &[], &request("fhedge", false))
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(attempts(&gw), ["fhedge-a/up-a", "fhedge-b/up-b"]);
    assert_eq!(
        capture::counter(
            "llmgate_hedges_total",
            &[("model", "fhedge"), ("outcome", "won_by_hedge")]
        ),
        1
    );
    assert_eq!(
        capture::counter(
            "llmgate_hedges_total",
            &[("model", "fhedge"), ("outcome", "cancelled")]
        ),
        1
    );
    eventually("the slow attempt is gone", || a.open() == 0).await;
}

#[tokio::test]
async fn all_deployments_failing_returns_the_error_with_its_status() {
    capture::install();
    let a = Upstream::start(|_| Reply::json(503, "down")).await;
    let toml = format!(
        r#"
        [retry]
        backoff_base_ms = 10
        [[providers]]
        name = "fall-a"
        kind = "openai"
        base_url = "{}"
        [[models]]
        name = "fall"
        targets = [{{ provider = "fall-a", model = "up-a" }}]
        "#,
        a.base_url()
    );
    let gw = gateway(&toml, None).await;
    let got = gw.post("/v1/messages", &[], &request("fall", false)).await;
    assert_eq!(got.status, 529);
    assert_eq!(got.json()["error"]["type"], "overloaded_error");
    // The first 503 cools the only deployment: the second attempt is not sent.
    assert_eq!(a.requests().len(), 1);
    assert!(
        got.headers.contains_key("retry-after"),
        "the client learns when to come back"
    );
    assert_eq!(outcome(&gw), "UpstreamError");
}

#[tokio::test]
async fn fallback_to_another_model_group_and_context_window_fallback() {
    capture::install();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let big = Upstream::start(move |r| {
        c.fetch_add(1, Ordering::SeqCst);
        if r.body["messages"][0]["content"] == "long" {
            Reply::json(400, r#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","code":"context_length_exceeded"}}"#)
        } else {
            Reply::json(500, r#"{"error":{"message":"down"}}"#)
        }
    })
    .await;
    let small = Upstream::start(healthy).await;
    let long = Upstream::start(healthy).await;
    let toml = format!(
        r#"
        [retry]
        attempts = 2
        backoff_base_ms = 10
        [[providers]]
        name = "fb-big"
        kind = "openai"
        base_url = "{}"
        [[providers]]
        name = "fb-small"
        kind = "openai"
        base_url = "{}"
        [[providers]]
        name = "fb-long"
        kind = "openai"
        base_url = "{}"
        [[models]]
        name = "fbbig"
        targets = [{{ provider = "fb-big", model = "big" }}]
        fallbacks = ["fbsmall"]
        context_window_fallbacks = ["fblong"]
        [[models]]
        name = "fbsmall"
        targets = [{{ provider = "fb-small", model = "small" }}]
        [[models]]
        name = "fblong"
        targets = [{{ provider = "fb-long", model = "long" }}]
        "#,
        big.base_url(),
        small.base_url(),
        long.base_url()
    );
    let gw = gateway(&toml, None).await;
    let req = |text: &str| {
        json!({"model": "fbbig", "max_tokens": 10, "messages": [{"role": "user", "content": text}]})
            .to_string()
    };
    let got = gw.post("/v1/messages", &[], &req("hi")).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.json()["model"],
        "fbbig",
        "the client still sees its model"
    );
    assert_eq!(
        attempts(&gw),
        ["fb-big/big", "fb-big/big", "fb-small/small"]
    );
    assert_eq!(
        capture::counter(
            "llmgate_fallbacks_total",
            &[("from", "fbbig"), ("to", "fbsmall"), ("reason", "error")]
        ),
        1
    );
    let got = gw.post("/v1/messages", &[], &req("long")).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        attempts(&gw),
        ["fb-big/big", "fb-long/long"],
        "a context overflow is not retried, it falls back"
    );
    assert_eq!(
        capture::counter(
            "llmgate_fallbacks_total",
            &[
                ("from", "fbbig"),
                ("to", "fblong"),
                ("reason", "context_window")
            ]
        ),
        1
    );
    assert_eq!(small.requests().len(), 1);
    assert_eq!(long.requests().len(), 1);
}
