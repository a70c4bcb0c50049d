//! The whole stack over real loopback connections: a gateway built from a
//! TOML configuration, served by hyper, in front of a scriptable upstream
//! that replays the recorded fixtures in small pieces.

use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::capture;
use crate::common::{check_anthropic_stream, fixture, openai_frames};
use crate::fixtures::accumulate_openai;
use crate::support::*;

const OPENAI_UPSTREAM: &str = r#"
[[providers]]
name = "up"
kind = "openai"
base_url = "{upstream}"
api_keys = ["prov-key-1", "prov-key-2"]

[[models]]
name = "big"
targets = [{ provider = "up", model = "gpt-4o" }]

[[models]]
name = "claude-*haiku*"
targets = [{ provider = "up", model = "qwen3-8b" }]

[[models]]
name = "claude-*"
targets = [{ provider = "up", model = "gpt-4.1" }]
"#;

const ANTHROPIC_UPSTREAM: &str = r#"
[[providers]]
name = "claude"
kind = "anthropic"
base_url = "{upstream}"
api_keys = ["sk-ant-prov"]

[[models]]
name = "gpt-*"
targets = [{ provider = "claude", model = "claude-sonnet-4-5" }]
"#;

fn anthropic_request(model: &str, stream: bool) -> String {
    json!({
        "model": model, "max_tokens": 512, "stream": stream,
        "tools": [{"name": "GetWeatherArgs", "input_schema": {"type": "object"}},
                  {"name": "get_stock_price", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "Weather in Edinburgh and AAPL?"}]
    })
    .to_string()
}

fn openai_request(model: &str, stream: bool) -> String {
    json!({
        "model": model, "stream": stream, "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}]
    })
    .to_string()
    .replace(",\"stream_options\":null", "")
}

// === Anthropic client → OpenAI upstream ===

#[tokio::test]
async fn anthropic_client_streams_tool_calls_from_an_openai_upstream() {
    let up = Upstream::start(|_| {
        Reply::sse(
            &fixture("openai_stream_parallel_tool_calls_with_usage.sse"),
            7,
        )
    })
    .await;
    let gw = gateway(OPENAI_UPSTREAM, Some(&up)).await;
    let got = gw.messages(&anthropic_request("big", true)).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.headers["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert!(
        got.pieces > 1,
        "events are written as they arrive, not all at the end"
    );
    let checked = check_anthropic_stream(&got.body);
    let m = &checked.message;
    assert_eq!(m["model"], "big", "the client's model name is echoed");
    assert_eq!(
        m["content"][0]["input"],
        json!({"city": "Edinburgh", "country": "GB", "units": "c"})
    );
    assert_eq!(m["content"][1]["name"], "get_stock_price");
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(
        (
            m["usage"]["input_tokens"].as_u64(),
            m["usage"]["output_tokens"].as_u64()
        ),
        (Some(149), Some(60))
    );
    // What the upstream received: an OpenAI request for the resolved model.
    let sent = up.last();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["model"], "gpt-4o");
    assert_eq!(sent.body["stream_options"], json!({"include_usage": true}));
    assert_eq!(sent.body["max_completion_tokens"], 512);
    assert_eq!(sent.body["tools"][0]["function"]["name"], "GetWeatherArgs");
    assert_eq!(sent.headers["authorization"], "Bearer prov-key-1");
    assert!(
        sent.headers.get("anthropic-version").is_none(),
        "Anthropic headers stay with Anthropic upstreams"
    );
}

/// The `x-llmgate-overhead-ms` header of a response, in milliseconds.
fn overhead_header(got: &Got) -> f64 {
    got.headers["x-llmgate-overhead-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Whether two milliseconds agree to the microsecond the header gives.
fn same_microsecond(a_ms: f64, b_ms: f64) -> bool {
    (a_ms - b_ms).abs() <= 0.000_501
}

/// Asserts that `llmgate_gateway_overhead_seconds{inbound}` holds a sample
/// of `ms` (a header's value).
fn assert_overhead_recorded(inbound: &str, ms: f64) {
    let recorded = capture::histogram("llmgate_gateway_overhead_seconds", &[("inbound", inbound)]);
    assert!(
        recorded.iter().any(|s| same_microsecond(s * 1e3, ms)),
        "no overhead sample of {ms} ms in {recorded:?}"
    );
}

#[tokio::test]
async fn anthropic_client_gets_a_complete_message_from_an_openai_upstream() {
    capture::install();
    let up =
        Upstream::start(|_| Reply::json(200, fixture("openai_nonstream_parallel_tool_calls.json")))
            .await;
    let gw = gateway(OPENAI_UPSTREAM, Some(&up)).await;
    let got = gw
        .post("/v1/messages", &[], &anthropic_request("big", false))
        .await;
    assert_eq!(got.status, 200);
    let body = got.json();
    assert_eq!(body["id"], "msg_ABfvyvfNWKcl7Ohqos4UFrmMs1v4C");
    assert_eq!(body["model"], "big");
    assert_eq!(
        body["content"][1]["input"],
        json!({"ticker": "AAPL", "exchange": "NASDAQ"})
    );
    assert_eq!(body["stop_reason"], "tool_use");
    assert!(
        got.headers["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let overhead = overhead_header(&got);
    assert!(overhead >= 0.0);
    // The histogram records the same overhead, before the response leaves
    // the HTTP tier.
    assert_overhead_recorded("anthropic", overhead);
    // Keys rotate: the second request uses the second key.
    gw.post("/v1/messages", &[], &anthropic_request("big", false))
        .await;
    let keys: Vec<String> = up
        .requests()
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["Bearer prov-key-1", "Bearer prov-key-2"]);
}

// === OpenAI client → Anthropic upstream ===

#[tokio::test]
async fn openai_client_streams_tool_calls_from_an_anthropic_upstream() {
    let up =
        Upstream::start(|_| Reply::sse(&fixture("anthropic_stream_tool_use_response.sse"), 11))
            .await;
    let gw = gateway(ANTHROPIC_UPSTREAM, Some(&up)).await;
    let got = gw
        .post("/v1/chat/completions", &[], &openai_request("gpt-4o", true))
        .await;
    assert_eq!(got.status, 200);
    let frames = openai_frames(&got.body);
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let acc = accumulate_openai(&got.body);
    assert_eq!(
        acc["text"],
        "I'll check the current weather in Paris for you."
    );
    assert_eq!(acc["tool_calls"][0]["id"], "toolu_01NRLabsLyVHZPKxbKvkfSMn");
    assert_eq!(
        serde_json::from_str::<Value>(acc["tool_calls"][0]["arguments"].as_str().unwrap()).unwrap(),
        json!({"location": "Paris"})
    );
    assert_eq!(acc["finish_reason"], "tool_calls");
    assert_eq!(acc["usage"]["prompt_tokens"], 377);
    assert_eq!(acc["model"], "gpt-4o");
    assert!(
        got.headers["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let sent = up.last();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], "sk-ant-prov");
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert_eq!(sent.body["system"], "Be brief.");
    assert_eq!(sent.body["model"], "claude-sonnet-4-5");
    assert_eq!(
        sent.body["max_tokens"], 4096,
        "Anthropic needs max_tokens: the default"
    );
}

#[tokio::test]
async fn openai_client_gets_a_complete_response_from_an_anthropic_upstream() {
    let cassette: Value = serde_json::from_str(&fixture(
        "anthropic_nonstream_tool_use_roundtrip_recorded_cassette.json",
    ))
    .unwrap();
    let body = cassette["exchanges"][0]["response_body"].to_string();
    let up = Upstream::start(move |_| Reply::json(200, body.clone())).await;
    let gw = gateway(ANTHROPIC_UPSTREAM, Some(&up)).await;
    let got = gw
        .post(
            "/v1/chat/completions",
            &[],
            &openai_request("gpt-4o-mini", false),
        )
        .await;
    assert_eq!(got.status, 200);
    let body = got.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"location\":\"SF\",\"units\":\"c\"}"
    );
    assert_eq!(body["usage"]["prompt_tokens"], 597);
}

#[tokio::test]
async fn anthropic_client_to_anthropic_upstream_passes_through_and_forwards_betas() {
    let up = Upstream::start(|_| {
        Reply::sse(
            &fixture("anthropic_stream_thinking_signature_refusal.sse"),
            50,
        )
    })
    .await;
    let gw = gateway(
        r#"
        [[providers]]
        name = "claude"
        kind = "anthropic"
        base_url = "{upstream}"
        api_keys = ["sk-ant-prov"]
        [[models]]
        name = "claude-*"
        targets = [{ provider = "claude", model = "claude-fable-5" }]
        "#,
        Some(&up),
    )
    .await;
    let req = json!({"model": "claude-x", "max_tokens": 100, "stream": true, "thinking": {"type": "enabled", "budget_tokens": 2000},
                     "messages": [{"role": "user", "content": "what is an eclipse?"}], "x_future_field": 1});
    let got = gw
        .post(
            "/v1/messages",
            &[
                ("anthropic-version", "2024-01-01"),
                ("anthropic-beta", "interleaved-thinking-2025-05-14"),
            ],
            &req.to_string(),
        )
        .await;
    let checked = check_anthropic_stream(&got.body);
    assert_eq!(
        checked.message["content"][0]["signature"],
        "c3ludGhldGljLXNpZ25hdHVyZS1maXh0dXJlLWEtbm90LWEtcmVhbC1zaWduYXR1cmU="
    );
    assert_eq!(checked.message["stop_reason"], "refusal");
    let sent = up.last();
    assert_eq!(sent.headers["anthropic-version"], "2024-01-01");
    assert_eq!(
        sent.headers["anthropic-beta"],
        "interleaved-thinking-2025-05-14"
    );
    // Same format: unknown fields reach the upstream untouched.
    assert_eq!(sent.body["x_future_field"], 1);
    assert_eq!(
        sent.body["thinking"],
        json!({"type": "enabled", "budget_tokens": 2000})
    );
}

// === Authentication ===

#[tokio::test]
async fn gateway_keys_are_checked_and_never_forwarded() {
    let up =
        Upstream::start(|_| Reply::json(200, fixture("openai_nonstream_parallel_tool_calls.json")))
            .await;
    let toml = format!(
        "[auth]\nmode = \"keys\"\nkeys = [{{ name = \"ci\", key = \"gw-secret\" }}]\n{OPENAI_UPSTREAM}"
    );
    let gw = gateway(&toml, Some(&up)).await;
    let ok = gw
        .post(
            "/v1/messages",
            &[("x-api-key", "gw-secret")],
            &anthropic_request("big", false),
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(up.last().headers["authorization"], "Bearer prov-key-1");
    let bad = gw
        .post(
            "/v1/messages",
            &[("x-api-key", "wrong")],
            &anthropic_request("big", false),
        )
        .await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["error"]["type"], "authentication_error");
    let none = gw
        .post("/v1/chat/completions", &[], &openai_request("big", false))
        .await;
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error"]["code"], "invalid_api_key");
    let bearer = gw
        .post(
            "/v1/chat/completions",
            &[("authorization", "Bearer gw-secret")],
            &openai_request("big", false),
        )
        .await;
    assert_eq!(bearer.status, 200);
    assert_eq!(
        up.requests().len(),
        2,
        "refused requests never reach the upstream"
    );
    assert!(
        up.requests()
            .iter()
            .all(|r| !format!("{:?}", r.headers).contains("gw-secret"))
    );
    let snap = gw.gateway.tracker.snapshot();
    assert_eq!((snap.totals.success, snap.totals.gateway_error), (2, 2));
}

#[tokio::test]
async fn passthrough_forwards_the_clients_key_to_that_provider_only() {
    let up =
        Upstream::start(|_| Reply::json(200, fixture("openai_nonstream_parallel_tool_calls.json")))
            .await;
    let toml = r#"
        [auth]
        mode = "passthrough"
        [[providers]]
        name = "byok"
        kind = "openai"
        base_url = "{upstream}"
        passthrough = true
        [[providers]]
        name = "house"
        kind = "openai"
        base_url = "{upstream}"
        api_keys = ["house-key"]
        [[models]]
        name = "byok-model"
        targets = [{ provider = "byok", model = "m1" }]
        [[models]]
        name = "house-model"
        targets = [{ provider = "house", model = "m2" }]
    "#;
    let gw = gateway(toml, Some(&up)).await;
    let got = gw
        .post(
            "/v1/chat/completions",
            &[("authorization", "Bearer sk-client-own")],
            &openai_request("byok-model", false),
        )
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(up.last().headers["authorization"], "Bearer sk-client-own");
    let got = gw
        .post(
            "/v1/chat/completions",
            &[("authorization", "Bearer sk-client-own")],
            &openai_request("house-model", false),
        )
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(
        up.last().headers["authorization"],
        "Bearer house-key",
        "the client's key goes only to passthrough providers"
    );
    let missing = gw
        .post("/v1/messages", &[], &anthropic_request("byok-model", false))
        .await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["type"], "error");
    assert_eq!(up.requests().len(), 2);
}

// === Model resolution ===

#[tokio::test]
async fn aliases_globs_prefixes_and_unknown_models() {
    let up =
        Upstream::start(|_| Reply::json(200, fixture("openai_nonstream_parallel_tool_calls.json")))
            .await;
    let gw = gateway(OPENAI_UPSTREAM, Some(&up)).await;
    for (asked, upstream_model) in [
        ("big", "gpt-4o"),
        ("claude-3-5-haiku-latest", "qwen3-8b"),
        ("claude-opus-4", "gpt-4.1"),
        ("up/o3-mini", "o3-mini"),
    ] {
        let got = gw
            .post("/v1/messages", &[], &anthropic_request(asked, false))
            .await;
        assert_eq!(got.status, 200, "{asked}");
        assert_eq!(got.json()["model"], asked);
        assert_eq!(up.last().body["model"], upstream_model, "{asked}");
    }
    let got = gw
        .post("/v1/messages", &[], &anthropic_request("gpt-9", false))
        .await;
    assert_eq!(got.status, 404);
    assert_eq!(got.json()["error"]["type"], "not_found_error");
    let got = gw
        .post("/v1/chat/completions", &[], &openai_request("gpt-9", false))
        .await;
    assert_eq!(got.status, 404);
    assert_eq!(got.json()["error"]["code"], "model_not_found");
    let models = gw.get("/v1/models", &[]).await.json();
    assert_eq!(models["data"][0]["id"], "big");
    let models = gw
        .get("/v1/models", &[("anthropic-version", "2023-06-01")])
        .await
        .json();
    assert_eq!(models["data"][0]["type"], "model");
}

// === Errors before and after the stream starts ===

#[tokio::test]
async fn an_upstream_429_before_the_stream_is_a_429_with_retry_after() {
    let up = Upstream::start(|_| {
        Reply::json(429, r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#)
            .header("retry-after", "7")
            .header("x-ratelimit-remaining-requests", "0")
    })
    .await;
    // A retry-after longer than the gateway waits for goes back to the client.
    let toml = format!("[retry]\nmax_retry_after_ms = 5000\n{OPENAI_UPSTREAM}");
    let gw = gateway(&toml, Some(&up)).await;
    let got = gw
        .post("/v1/messages", &[], &anthropic_request("big", true))
        .await;
    assert_eq!(got.status, 429);
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["retry-after"], "7");
    assert_eq!(got.json()["error"]["type"], "rate_limit_error");
    let snap = gw.gateway.tracker.snapshot();
    assert_eq!(snap.totals.upstream_error, 1);
}

#[tokio::test]
async fn an_upstream_400_before_the_stream_is_a_400_json_error() {
    capture::install();
    let up = Upstream::start(|_| {
        Reply::json(400, r#"{"error":{"message":"Unsupported parameter: 'max_tokens'","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}"#)
    })
    .await;
    let gw = gateway(OPENAI_UPSTREAM, Some(&up)).await;
    let got = gw
        .post("/v1/messages", &[], &anthropic_request("big", true))
        .await;
    assert_eq!(got.status, 400);
    assert_eq!(got.json()["error"]["type"], "invalid_request_error");
    assert!(
        got.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
    // An error carries the overhead the recorder got: the header, the
    // histogram and the tracker's record agree.
    let header = overhead_header(&got);
    let id = got.headers["request-id"].to_str().unwrap();
    let snap = gw.gateway.tracker.snapshot();
    let record = snap.recent.iter().find(|f| f.id == id).unwrap();
    let tracked = record.overhead_ms.expect("the record has the overhead");
    assert!(same_microsecond(tracked, header), "{tracked} vs {header}");
    assert_overhead_recorded("anthropic", header);
}

#[tokio::test]
async fn an_upstream_503_is_a_529_for_anthropic_clients_and_503_for_openai_ones() {
    let up = Upstream::start(|_| Reply::json(503, "Service Unavailable")).await;
    let gw = gateway(OPENAI_UPSTREAM, Some(&up)).await;
    let got = gw
        .post("/v1/messages", &[], &anthropic_request("big", false))
        .await;
    assert_eq!(
        (got.status, got.json()["error"]["type"].as_str()),
        (529, Some("overloaded_error"))
    );
    let got = gw
        .post("/v1/chat/completions", &[], &openai_request("big", false))
        .await;
    assert_eq!(got.status, 503);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_api_error() {
    let toml = OPENAI_UPSTREAM.replace("{upstream}", "http://127.0.0.1:9/v1");
    let gw = gateway(&toml, None).await;
    let got = gw
        .post("/v1/messages", &[], &anthropic_request("big", false))
        .await;
    assert_eq!(got.status, 502);
    assert_eq!(got.json()["error"]["type"], "api_error");
    assert!(
        got.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream connection failed")
    );
}

fn openai_prefix_then(rest: &str) -> String {
    let body = fixture("openai_stream_text_with_usage.sse");
    let cut = body.match_indices("data:").nth(4).unwrap().0;
    format!("{}{rest}", &body[..cut])
}

#[tokio::test]
async fn an_error_chunk_after_the_stream_started_is_a_terminal_error_event() {
    let body = openai_prefix_then(
        "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"code\":\"server_is_overloaded\"}}\n\n",
    );
    let up = Upstream::start(move |_| Reply::sse(&body, 40)).await;
    let gw = gateway(OPENAI_UPSTREAM, Some(&up)).await;
    let got = gw
        .post("/v1/messages", &[], &anthropic_request("big", true))
        .await;
    assert_eq!(got.status, 200);
    let checked = check_anthropic_stream(&got.body);
    assert_eq!(checked.error.unwrap()["type"], "overloaded_error");
    assert_eq!(checked.message["content"][0]["text"], "I'm unable to");
    // OpenAI client: the error chunk, and no [DONE]. (A fresh gateway: the
    // overload cooled the deployment of the first one down.)
    let gw = gateway(OPENAI_UPSTREAM, Some(&up)).await;
    let got = gw
        .post("/v1/chat/completions", &[], &openai_request("big", true))
        .await;
    let frames = openai_frames(&got.body);
    assert_eq!(
        frames.last().unwrap()["error"]["code"],
        "server_is_overloaded"
    );
    assert!(!frames.iter().any(|f| f == "[DONE]"));
    assert_eq!(gw.gateway.tracker.snapshot().totals.upstream_error, 1);
}

#[tokio::test]
async fn a_stream_cut_short_or_reset_ends_in_an_error_event_never_a_clean_end() {
    for end in [End::Close, End::Reset] {
        let body = openai_prefix_then("");
        let up = Upstream::start(move |_| Reply::sse(&body, 40).end(end)).await;
        let gw = gateway(OPENAI_UPSTREAM, Some(&up)).await;
        let got = gw
            .post("/v1/messages", &[], &anthropic_request("big", true))
            .await;
        let checked = check_anthropic_stream(&got.body);
        let err = checked
            .error
            .unwrap_or_else(|| panic!("{end:?}: an error event"));
        assert_eq!(err["type"], "api_error", "{end:?}");
        assert!(
            checked.message["stop_reason"].is_null(),
            "{end:?}: no message_delta"
        );
    }
}

#[tokio::test]
async fn a_client_that_goes_away_is_recorded_and_the_upstream_request_cancelled() {
    // An upstream that streams slowly, forever.
    let up = Upstream::start(|_| {
        let mut reply = Reply::sse(&openai_prefix_then(""), 8);
        reply.delay = Duration::from_millis(20);
        reply.end(End::Stall)
    })
    .await;
    let gw = gateway(OPENAI_UPSTREAM, Some(&up)).await;
    let (status, mut body) = gw
        .open_stream("/v1/messages", &anthropic_request("big", true))
        .await;
    assert_eq!(status, 200);
    let first = read_at_least(&mut body, 50).await;
    assert!(String::from_utf8_lossy(&first).contains("message_start"));
    drop(body);
    let tracker = gw.gateway.tracker.clone();
    eventually("the disconnect is recorded", || {
        tracker.snapshot().totals.client_disconnect == 1
    })
    .await;
    let snap = tracker.snapshot();
    assert_eq!(snap.recent[0].status, 499);
    assert!(snap.in_flight.is_empty());
    eventually("the upstream response is abandoned", || up.aborted() == 1).await;
    eventually("the upstream body is closed", || up.open() == 0).await;
}

// === Bad input ===

#[tokio::test]
async fn bad_requests_get_clear_errors_in_the_clients_format() {
    let gw = gateway(
        OPENAI_UPSTREAM
            .replace("{upstream}", "http://127.0.0.1:9/v1")
            .as_str(),
        None,
    )
    .await;
    let got = gw.post("/v1/messages", &[], "{not json").await;
    assert_eq!(got.status, 400);
    assert_eq!(got.json()["error"]["type"], "invalid_request_error");
    let got = gw
        .post(
            "/v1/messages",
            &[],
            r#"{"model":"big","messages":[{"role":"user","content":"x"}]}"#,
        )
        .await;
    assert_eq!(
        (got.status, got.json()["error"]["message"].as_str()),
        (400, Some("max_tokens: Field required"))
    );
    let got = gw
        .post(
            "/v1/chat/completions",
            &[],
            r#"{"model":"big","messages":[{"role":"robot","content":"x"}]}"#,
        )
        .await;
    assert_eq!(got.status, 400);
    assert!(
        got.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("messages[0].role")
    );
    let got = gw.post("/v1/chat/completions", &[], "").await;
    assert_eq!(got.status, 400);
    let big = format!(
        "{{\"model\":\"big\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "x".repeat(33 << 20)
    );
    let got = gw.post("/v1/chat/completions", &[], &big).await;
    assert_eq!(got.status, 413);
    let mut req =
        http::Request::post(gw.url("/v1/chat/completions")).header("content-type", "text/plain");
    req = req.header("x", "y");
    let resp = client()
        .request(
            req.body(http_body_util::Full::new(bytes::Bytes::from("{}")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let got = gw.post("/v1/nothing", &[], "{}").await;
    assert_eq!(got.status, 404);
    let got = gw.get("/v1/messages", &[]).await;
    assert_eq!(got.status, 405);
    let bytes = vec![0xff, 0xfe, b'{'];
    let resp = client()
        .request(
            http::Request::post(gw.url("/v1/messages"))
                .body(http_body_util::Full::new(bytes::Bytes::from(bytes)))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let _ = resp.into_body().collect().await;
    // Every request is recorded, route errors (404, 405) included.
    assert_eq!(gw.gateway.tracker.snapshot().totals.gateway_error, 9);
}

// === count_tokens ===

#[tokio::test]
async fn count_tokens_is_estimated_for_openai_upstreams_and_forwarded_to_anthropic_ones() {
    let body =
        r#"{"model":"big","messages":[{"role":"user","content":"How many tokens is this?"}]}"#;
    let up = Upstream::start(|_| Reply::json(200, "{}")).await;
    let gw = gateway(OPENAI_UPSTREAM, Some(&up)).await;
    let got = gw.post("/v1/messages/count_tokens", &[], body).await;
    assert_eq!(got.status, 200);
    assert!(got.json()["input_tokens"].as_u64().unwrap() > 0);
    assert!(up.requests().is_empty(), "estimated locally");

    let up = Upstream::start(|_| Reply::json(200, r#"{"input_tokens":42}"#)).await;
    let gw = gateway(
        r#"
        [[providers]]
        name = "claude"
        kind = "anthropic"
        base_url = "{upstream}"
        [[models]]
        name = "big"
        targets = [{ provider = "claude", model = "claude-sonnet-4-5" }]
        "#,
        Some(&up),
    )
    .await;
    let got = gw.post("/v1/messages/count_tokens", &[], body).await;
    assert_eq!(got.json(), json!({"input_tokens": 42}));
    let sent = up.last();
    assert_eq!(sent.path, "/v1/messages/count_tokens");
    assert!(sent.body.get("max_tokens").is_none());
}

#[tokio::test]
async fn a_provider_key_that_got_a_429_is_skipped_for_a_while() {
    let up = Upstream::start(|r| {
        if r.headers["authorization"] == "Bearer prov-key-1" {
            Reply::json(
                429,
                r#"{"error":{"message":"slow down","type":"requests"}}"#,
            )
            .header("retry-after", "60")
        } else {
            Reply::json(200, fixture("openai_nonstream_parallel_tool_calls.json"))
        }
    })
    .await;
    let gw = gateway(OPENAI_UPSTREAM, Some(&up)).await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(
                gw.post("/v1/messages", &[], &anthropic_request("big", false))
                    .await
                    .status,
            );
        }
        v
    };
    // Key 1 is refused once: the provider tries key 2 at once, and key 1
    // rests (its retry-after) while key 2 serves everything.
    assert_eq!(statuses, [200, 200, 200, 200]);
    let keys: Vec<String> = up
        .requests()
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        keys,
        [
            "Bearer prov-key-1",
            "Bearer prov-key-2",
            "Bearer prov-key-2",
            "Bearer prov-key-2",
            "Bearer prov-key-2"
        ]
    );
}

// === The upstream connection pool ===

/// `[pool] max_idle_per_host`: a burst of concurrent requests opens a
/// connection each; when they are done, the pool keeps that many of them and
/// closes the rest. (The test runtime has one thread, so one pool.)
/// An upstream slow enough that a burst's requests are all in flight at
/// once, and a gateway whose pool keeps `max_idle` connections.
async fn pooled_gateway(max_idle: usize) -> (Upstream, TestGateway) {
    let completion = fixture("openai_nonstream_parallel_tool_calls.json");
    let up = Upstream::start(move |_| {
        Reply::json(200, completion.clone()).head_delay(Duration::from_millis(300))
    })
    .await;
    let toml = format!("{OPENAI_UPSTREAM}\n[pool]\nmax_idle_per_host = {max_idle}\n");
    let gw = gateway(&toml, Some(&up)).await;
    (up, gw)
}

/// Sends `n` requests at once; each must succeed.
async fn burst(gw: &TestGateway, n: usize) {
    let body = anthropic_request("big", false);
    let sent = (0..n).map(|_| gw.messages(&body));
    for got in futures_util::future::join_all(sent).await {
        assert_eq!(got.status, 200);
    }
}

#[tokio::test]
async fn the_pool_keeps_at_most_max_idle_per_host_connections() {
    let (up, gw) = pooled_gateway(2).await;
    burst(&gw, 5).await;
    // One connection per request in flight at once (all five, unless one
    // was slow enough to find another's connection back in the pool).
    let opened = up.accepted();
    assert!(opened > 2, "the burst opened {opened} connections");
    eventually("the pool closes all but 2 idle connections", || {
        up.connected() == 2
    })
    .await;
    // The two kept are reused: one more request opens no connection.
    burst(&gw, 1).await;
    assert_eq!(up.accepted(), opened);
}

/// A pool whose cap covers a burst keeps the burst's connections: bursts
/// that come back reuse what the first one opened. (With a cap of 16, each
/// burst of 24 closed 8 connections and the next opened them again.)
#[tokio::test]
async fn a_pool_as_large_as_a_burst_keeps_its_connections_for_the_next() {
    crate::capture::install();
    let (up, gw) = pooled_gateway(32).await;
    for _ in 0..3 {
        burst(&gw, 24).await;
    }
    // 24 at most in flight at once, and a few more when a request finding
    // every pooled connection busy starts one; a pool that closed the
    // surplus would reopen a third of them for each burst (40 or more).
    let total = up.accepted();
    assert!(total <= 28, "three bursts of 24 opened {total} connections");
    // The connections opened are counted by host, one for each the upstream
    // accepted (those started for a request that found another first are
    // still connecting a moment after).
    let host = up.addr.to_string();
    let connects =
        || crate::capture::counter("llmgate_upstream_connects_total", &[("host", &host)]);
    eventually("every connection opened is counted", || {
        connects() == up.accepted() as u64
    })
    .await;
}

#[tokio::test]
async fn json_objects_keep_their_key_order_through_the_gateway() {
    /// Where `needle` first occurs in `hay` (panics when it does not).
    fn at(hay: &[u8], needle: &str) -> usize {
        hay.windows(needle.len())
            .position(|w| w == needle.as_bytes())
            .unwrap_or_else(|| panic!("{needle} not in {}", String::from_utf8_lossy(hay)))
    }
    // A schema's property order is the order a model writes the fields in
    // (OpenAI's structured outputs say so), so a gateway must not sort keys:
    // not in tool schemas, not in `response_format`, not in tool inputs,
    // in either direction. They are kept as their text, whatever the
    // build's serde_json map.
    let up = Upstream::start(|_| {
        Reply::json(
            200,
            r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"answer","arguments":"{\"zeta\":1,\"alpha\":2}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}"#,
        )
    })
    .await;
    let gw = gateway(OPENAI_UPSTREAM, Some(&up)).await;

    // Anthropic client → OpenAI upstream.
    let got = gw.messages(r#"{"model":"big","max_tokens":64,
                "output_config":{"format":{"type":"json_schema","schema":{"type":"object","properties":{"zz":{"type":"string"},"aa":{"type":"string"}}}}},
                "tools":[{"name":"answer","input_schema":{"type":"object","properties":{"reasoning":{"type":"string"},"answer":{"type":"string"}},"required":["reasoning","answer"]}}],
                "messages":[{"role":"user","content":"q"},
                  {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"answer","input":{"reasoning":"r","answer":"a"}}]},
                  {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"ok"}]},
                  {"role":"assistant","content":[{"id":"toolu_2","name":"answer","input":{"yy":"r","bb":"a"},"type":"tool_use"}]},
                  {"role":"user","content":[{"tool_use_id":"toolu_2","content":"ok","type":"tool_result"}]}]}"#)
        .await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    let sent = up.last().raw;
    assert!(at(&sent, r#""reasoning":{"#) < at(&sent, r#""answer":{"#));
    at(&sent, r#"{\"reasoning\":\"r\",\"answer\":\"a\"}"#);
    // A block whose `type` comes last (as the Go SDKs write it).
    at(&sent, r#"{\"yy\":\"r\",\"bb\":\"a\"}"#);
    at(
        &sent,
        r#""response_format":{"type":"json_schema","json_schema":{"name":"response","schema":{"type":"object","properties":{"zz":{"type":"string"},"aa":{"type":"string"}}}}}"#,
    );
    at(&got.body, r#""input":{"zeta":1,"alpha":2}"#);

    // OpenAI client → OpenAI upstream: fields the model does not name.
    let got = gw
        .post(
            "/v1/chat/completions",
            &[],
            r#"{"model":"big","messages":[{"role":"user","content":"q"}],
                "vendor_options":{"zz":1,"aa":{"y":2,"b":3}},
                "tools":[{"function":{"name":"f","parameters":{"properties":{"zz":{},"aa":{}}}},"type":"function"}],
                "response_format":{"type":"json_schema","json_schema":{"name":"a","strict":true,
                  "schema":{"type":"object","properties":{"reasoning":{"type":"string"},"answer":{"type":"string"}},
                            "required":["reasoning","answer"],"additionalProperties":false}}}}"#,
        )
        .await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    let sent = up.last().raw;
    assert!(at(&sent, r#""reasoning":{"#) < at(&sent, r#""answer":{"#));
    assert!(at(&sent, r#""type":"object""#) < at(&sent, r#""additionalProperties""#));
    at(&sent, r#""parameters":{"properties":{"zz":{},"aa":{}}}"#);
    at(&got.body, r#"{\"zeta\":1,\"alpha\":2}"#);
    // A field the model does not name is held as a `serde_json::Value`:
    // its keys keep their order with the `preserve-order` feature only.
    if cfg!(feature = "preserve-order") {
        at(&sent, r#""vendor_options":{"zz":1,"aa":{"y":2,"b":3}}"#);
    } else {
        at(&sent, r#""vendor_options":{"aa":{"b":3,"y":2},"zz":1}"#);
    }
}
