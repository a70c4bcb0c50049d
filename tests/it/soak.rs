//! Soak: a few thousand requests, both formats, streamed and not, many at
//! once, against three deployments that fail at random in every way the
//! fault suite knows — and clients that walk away mid-stream. Asserted: every
//! request ends in exactly one outcome and the outcome counts add up with
//! what the clients saw; no client receives content twice or a stream that
//! ends cleanly after a cut; no upstream response, balancer slot or tracked
//! request is left behind.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::common::{check_anthropic_stream, openai_frames};
use crate::support::*;

const WORDS: usize = 20;

fn text() -> String {
    (1..=WORDS).map(|i| format!("w{i} ")).collect()
}

fn openai_sse(cut_after: Option<usize>, tail: &str) -> String {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-soak", "object": "chat.completion.chunk", "created": 1, "model": "up",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut out = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    for i in 1..=WORDS {
        if cut_after == Some(i - 1) {
            out.push_str(tail);
            return out;
        }
        out.push_str(&chunk(json!({"content": format!("w{i} ")}), Value::Null));
    }
    out.push_str(&chunk(json!({}), json!("stop")));
    out.push_str("data: {\"id\":\"chatcmpl-soak\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":20,\"total_tokens\":25}}\n\n");
    out.push_str("data: [DONE]\n\n");
    out
}

fn anthropic_sse(cut_after: Option<usize>, tail: &str) -> String {
    let ev = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap());
    let mut out = ev(
        json!({"type": "message_start", "message": {"id": "msg_soak", "type": "message", "role": "assistant",
        "model": "up", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 1}}}),
    );
    out.push_str(&ev(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})));
    for i in 1..=WORDS {
        if cut_after == Some(i - 1) {
            out.push_str(tail);
            return out;
        }
        out.push_str(&ev(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": format!("w{i} ")}})));
    }
    out.push_str(&ev(json!({"type": "content_block_stop", "index": 0})));
    out.push_str(&ev(json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 20}})));
    out.push_str(&ev(json!({"type": "message_stop"})));
    out
}

fn complete(anthropic: bool) -> String {
    if anthropic {
        json!({"id": "msg_soak", "type": "message", "role": "assistant", "model": "up", "content": [{"type": "text", "text": text()}],
               "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 20}})
        .to_string()
    } else {
        json!({"id": "chatcmpl-soak", "object": "chat.completion", "created": 1, "model": "up",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": text()}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 5, "completion_tokens": 20, "total_tokens": 25}})
        .to_string()
    }
}

/// A random fault (or none) for one upstream request.
fn behave(rng: &Mutex<fastrand::Rng>, anthropic: bool, r: &Received) -> Reply {
    let roll = rng.lock().unwrap().u32(0..100);
    let stream = r.body["stream"] == true;
    let sse = |cut: Option<usize>, tail: &str| {
        let body = if anthropic {
            anthropic_sse(cut, tail)
        } else {
            openai_sse(cut, tail)
        };
        Reply::sse(&body, 97).delay(Duration::ZERO)
    };
    let in_band = if anthropic {
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
    } else {
        "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"code\":\"server_is_overloaded\"}}\n\n"
    };
    let healthy = || {
        if stream {
            sse(None, "")
        } else {
            Reply::json(200, complete(anthropic))
        }
    };
    match roll {
        0..=7 => Reply::json(
            429,
            r#"{"error":{"message":"slow down","type":"requests"}}"#,
        )
        .header("retry-after", "1"),
        8..=15 => Reply::json(500, r#"{"error":{"message":"boom","type":"server_error"}}"#),
        16..=21 => Reply::json(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
        22..=27 if stream => sse(Some(0), "").end(End::Reset),
        28..=33 if stream => sse(Some(5), "").end(End::Reset),
        34..=37 if stream => sse(Some(0), "").end(End::Stall),
        38..=41 if stream => sse(Some(5), "").end(End::Stall),
        42..=45 if stream => sse(Some(3), "data: {not json\n\n"),
        46..=51 if stream => sse(Some(6), in_band),
        52..=55 => healthy().head_delay(Duration::from_millis(if stream { 400 } else { 0 })),
        22..=51 => Reply::json(500, r#"{"error":{"message":"boom","type":"server_error"}}"#),
        _ => healthy(),
    }
}

#[derive(Default)]
struct Seen {
    ok: AtomicUsize,
    err: AtomicUsize,
    dropped: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_random_faults_and_concurrent_streams() {
    const REQUESTS: usize = 4000;
    const CONCURRENCY: usize = 48;
    crate::capture::install();
    let rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(7)));
    let (r1, r2, r3) = (rng.clone(), rng.clone(), rng.clone());
    let a = Upstream::start(move |r| behave(&r1, false, r)).await;
    let b = Upstream::start(move |r| behave(&r2, false, r)).await;
    let c = Upstream::start(move |r| behave(&r3, true, r)).await;
    let toml = format!(
        r#"
        [retry]
        attempts = 3
        backoff_base_ms = 5
        backoff_max_ms = 20
        max_retry_after_ms = 50
        [balance]
        strategy = "least_in_flight"
        cooldown_ms = 50
        max_cooldown_ms = 200
        [timeouts]
        first_byte_ms = 300
        idle_ms = 200
        total_ms = 3000
        [[providers]]
        name = "soak-a"
        kind = "openai"
        base_url = "{}"
        [[providers]]
        name = "soak-b"
        kind = "openai"
        base_url = "{}"
        [[providers]]
        name = "soak-c"
        kind = "anthropic"
        base_url = "{}"
        [[models]]
        name = "soak"
        targets = [{{ provider = "soak-a", model = "up" }}, {{ provider = "soak-b", model = "up" }}, {{ provider = "soak-c", model = "up" }}]
        "#,
        a.base_url(),
        b.base_url(),
        c.base_url()
    );
    let gw = Arc::new(gateway(&toml, None).await);
    let seen = Arc::new(Seen::default());
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..CONCURRENCY {
        let (gw, seen, next) = (gw.clone(), seen.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(1000 + w as u64);
            let client = client();
            while next.fetch_add(1, Ordering::SeqCst) < REQUESTS {
                one(&client, &gw, &mut rng, &seen).await;
            }
        }));
    }
    for w in workers {
        w.await.expect("no client task panicked");
    }

    let tracker = gw.gateway.tracker.clone();
    eventually("every request has ended", || {
        tracker.snapshot().in_flight.is_empty()
    })
    .await;
    let t = tracker.snapshot().totals;
    let (ok, err, dropped) = (
        seen.ok.load(Ordering::SeqCst),
        seen.err.load(Ordering::SeqCst),
        seen.dropped.load(Ordering::SeqCst),
    );
    eprintln!("soak: {t:?}; clients saw ok={ok} err={err} dropped={dropped}");
    assert_eq!(t.started as usize, REQUESTS);
    let errors = (t.upstream_error + t.gateway_error) as usize;
    assert_eq!(
        t.success as usize + errors + t.client_disconnect as usize,
        REQUESTS,
        "one outcome each"
    );
    assert!(
        t.success as usize >= ok && errors >= err,
        "what clients saw is what was recorded"
    );
    assert_eq!(
        (t.success as usize - ok) + (errors - err) + t.client_disconnect as usize,
        dropped
    );
    // Successes, errors and disconnects all happened. How many succeed
    // depends on timing (cooldowns of 50 ms, retries with backoff): on one
    // VM, 21 runs gave clients 1,273–1,631 successful answers of 4,000 (6
    // before the layers stopped cloning the stack, 15 after), so a third
    // was too tight a bound for "exercised".
    assert!(
        ok > REQUESTS / 5 && err > 10 && t.client_disconnect > 0,
        "the mix was exercised"
    );
    for up in [&a, &b, &c] {
        eventually("no upstream response left open", || up.open() == 0).await;
    }
    let balance = gw.gateway.balance.clone();
    eventually("no balancer slot left taken", || {
        balance.deployments("soak").iter().all(|d| d.in_flight == 0)
    })
    .await;
}

async fn one(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    gw: &TestGateway,
    rng: &mut fastrand::Rng,
    seen: &Seen,
) {
    let anthropic = rng.bool();
    let stream = rng.u8(0..10) < 7;
    let walk_away = stream && rng.u8(0..10) == 0;
    let path = if anthropic {
        "/v1/messages"
    } else {
        "/v1/chat/completions"
    };
    let body = json!({"model": "soak", "max_tokens": 50, "stream": stream, "messages": [{"role": "user", "content": "go"}]});
    let req = http::Request::post(gw.url(path))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client
        .request(req)
        .await
        .expect("every request gets a response");
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    if walk_away && status == 200 {
        // Read until some content has arrived, then hang up.
        let mut buf = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                buf.extend_from_slice(&d);
            }
            if String::from_utf8_lossy(&buf).contains("w1 ") {
                break;
            }
        }
        drop(body);
        seen.dropped.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let bytes = body
        .collect()
        .await
        .expect("the body arrives whole")
        .to_bytes();
    if status != 200 {
        let v: Value = serde_json::from_slice(&bytes).expect("errors are JSON");
        assert!(v["error"]["message"].is_string(), "{v}");
        seen.err.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let full = text();
    let (got, failed) = match (stream, anthropic) {
        (false, true) => {
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            (v["content"][0]["text"].as_str().unwrap().to_owned(), false)
        }
        (false, false) => {
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            (
                v["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                false,
            )
        }
        (true, true) => {
            let checked = check_anthropic_stream(&bytes);
            let text = checked.message["content"]
                .get(0)
                .and_then(|b| b["text"].as_str())
                .unwrap_or("")
                .to_owned();
            (text, checked.error.is_some())
        }
        (true, false) => {
            let frames = openai_frames(&bytes);
            let done = frames.last() == Some(&Value::String("[DONE]".into()));
            let error = frames.last().is_some_and(|f| f.get("error").is_some());
            assert!(
                done ^ error,
                "an OpenAI stream ends with [DONE] or an error, never just stops"
            );
            let text: String = frames
                .iter()
                .filter_map(|f| f["choices"][0]["delta"]["content"].as_str())
                .collect();
            (text, error)
        }
    };
    if failed {
        assert!(
            full.starts_with(&got),
            "content arrives once, in order: {got:?}"
        );
        seen.err.fetch_add(1, Ordering::SeqCst);
    } else {
        assert_eq!(got, full, "a successful answer is whole and not repeated");
        seen.ok.fetch_add(1, Ordering::SeqCst);
    }
}
