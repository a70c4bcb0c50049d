//! Every file of `tests/fixtures/` replayed: decoded, re-encoded (the wire
//! types lose nothing), converted through the canonical model into the same
//! format (identity) and into the other one, and checked field by field
//! against what conversion-spec.md says. The files in `expected/` are a
//! second opinion; where they differ from the spec, the test says so.

use llmgate::Format;
use llmgate::chat::ChatEvent;
use llmgate::convert::{anthropic, openai};
use llmgate::wire::{anthropic as aw, openai as ow};
use serde_json::{Value, json};

use crate::common::*;

const ANTHROPIC_STREAMS: [&str; 7] = [
    "anthropic_stream_basic_response.sse",
    "anthropic_stream_incomplete_partial_json_response.sse",
    "anthropic_stream_refusal_response.sse",
    "anthropic_stream_text_after_tool_result_recorded_cassette.sse",
    "anthropic_stream_thinking_signature_refusal.sse",
    "anthropic_stream_tool_use_recorded_cassette.sse",
    "anthropic_stream_tool_use_response.sse",
];

const OPENAI_STREAMS: [&str; 5] = [
    "openai_stream_finish_length.sse",
    "openai_stream_parallel_tool_calls_with_usage.sse",
    "openai_stream_refusal_delta.sse",
    "openai_stream_single_tool_call_role_in_same_chunk.sse",
    "openai_stream_text_with_usage.sse",
];

// === The wire types lose nothing ===

#[test]
fn anthropic_stream_events_reserialise_to_the_same_json() {
    for name in ANTHROPIC_STREAMS {
        for ev in sse_events(fixture(name).as_bytes()) {
            let original: Value = serde_json::from_str(&ev.data).unwrap();
            let parsed: aw::StreamEvent = serde_json::from_str(&ev.data)
                .unwrap_or_else(|e| panic!("{name}: {e}: {}", ev.data));
            assert!(
                !matches!(parsed, aw::StreamEvent::Other(_)),
                "{name}: every event type is known"
            );
            assert_eq!(serde_json::to_value(&parsed).unwrap(), original, "{name}");
            assert_eq!(
                parsed.type_tag(),
                ev.event.as_deref(),
                "{name}: event name = type"
            );
        }
    }
}

#[test]
fn openai_chunks_reserialise_to_the_same_json() {
    for name in OPENAI_STREAMS {
        let events = sse_events(fixture(name).as_bytes());
        assert_eq!(
            events.last().unwrap().data,
            "[DONE]",
            "{name} ends with [DONE]"
        );
        for ev in &events[..events.len() - 1] {
            let original: Value = serde_json::from_str(&ev.data).unwrap();
            let parsed: ow::ChatCompletionChunk = serde_json::from_str(&ev.data).unwrap();
            assert_eq!(serde_json::to_value(&parsed).unwrap(), original, "{name}");
        }
    }
}

#[test]
fn json_fixtures_reserialise_to_the_same_json() {
    let cassette: Value = serde_json::from_str(&fixture(
        "anthropic_nonstream_tool_use_roundtrip_recorded_cassette.json",
    ))
    .unwrap();
    for exchange in cassette["exchanges"].as_array().unwrap() {
        let req: aw::MessagesRequest =
            serde_json::from_value(exchange["request_body"].clone()).unwrap();
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            exchange["request_body"]
        );
        let resp: aw::MessagesResponse =
            serde_json::from_value(exchange["response_body"].clone()).unwrap();
        assert_eq!(
            serde_json::to_value(&resp).unwrap(),
            exchange["response_body"]
        );
    }
    let raw = fixture("anthropic_request_with_tool_result_recorded_cassette.json");
    let req: aw::MessagesRequest = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        serde_json::from_str::<Value>(&raw).unwrap()
    );
    let raw = fixture("openai_nonstream_parallel_tool_calls.json");
    let resp: ow::ChatCompletion = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        serde_json::to_value(&resp).unwrap(),
        serde_json::from_str::<Value>(&raw).unwrap()
    );
}

// === Same format through the canonical model: identity ===

#[test]
fn anthropic_streams_pass_through_unchanged() {
    for name in ANTHROPIC_STREAMS {
        let body = fixture(name);
        let original: Vec<Value> = named_json_events(body.as_bytes())
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let out = events_to_anthropic_sse(anthropic_body_to_events(&body), Some(Format::Anthropic));
        check_anthropic_stream(&out);
        let replayed: Vec<Value> = named_json_events(&out)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        if name == "anthropic_stream_incomplete_partial_json_response.sse" {
            // The SDK fixture never closes its truncated tool block. The gateway
            // guarantees inv. 5 (every block closed before message_delta), so
            // exactly one content_block_stop is added there and nothing else changes.
            let at = original
                .iter()
                .position(|e| e["type"] == "message_delta")
                .unwrap();
            let mut want = original.clone();
            want.insert(at, json!({"type": "content_block_stop", "index": 1}));
            assert_eq!(replayed, want, "{name}");
        } else {
            assert_eq!(replayed, original, "{name}");
        }
    }
}

#[test]
fn anthropic_json_fixtures_round_trip_through_chat() {
    let cassette: Value = serde_json::from_str(&fixture(
        "anthropic_nonstream_tool_use_roundtrip_recorded_cassette.json",
    ))
    .unwrap();
    for exchange in cassette["exchanges"].as_array().unwrap() {
        let req: aw::MessagesRequest =
            serde_json::from_value(exchange["request_body"].clone()).unwrap();
        let chat = anthropic::request_from_wire(req).unwrap();
        let back = anthropic::request_to_wire(chat, &Default::default()).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            exchange["request_body"]
        );
        let resp: aw::MessagesResponse =
            serde_json::from_value(exchange["response_body"].clone()).unwrap();
        let back = anthropic::response_to_wire(anthropic::response_from_wire(resp));
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            exchange["response_body"]
        );
    }
    let raw = fixture("anthropic_request_with_tool_result_recorded_cassette.json");
    let chat = anthropic::request_from_wire(serde_json::from_str(&raw).unwrap()).unwrap();
    let back = anthropic::request_to_wire(chat, &Default::default()).unwrap();
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::from_str::<Value>(&raw).unwrap()
    );
}

#[test]
fn openai_response_fixture_round_trips_through_chat() {
    let raw = fixture("openai_nonstream_parallel_tool_calls.json");
    let resp: ow::ChatCompletion = serde_json::from_str(&raw).unwrap();
    let chat = openai::response_from_wire(resp, &Default::default()).unwrap();
    let back = openai::response_to_wire(chat, &Default::default());
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::from_str::<Value>(&raw).unwrap()
    );
}

#[test]
fn openai_streams_pass_through_with_the_same_content() {
    // OpenAI → chat → OpenAI keeps what a client accumulates (text, tool
    // calls with ids/names/arguments, finish reason, usage); chunk boundaries
    // are those of the block-structured model, not the upstream's.
    for name in OPENAI_STREAMS {
        let body = fixture(name);
        let events = openai_body_to_events(&body, Default::default());
        let out = events_to_openai_sse(
            events,
            openai::EncoderOptions::default().include_usage(true),
            Some(Format::OpenAi),
        );
        assert_eq!(
            accumulate_openai(&out),
            accumulate_openai(body.as_bytes()),
            "{name}"
        );
    }
}

/// What the OpenAI SDK's stream accumulator builds: text, refusal, tool
/// calls by index, finish reason, usage, id, model.
pub fn accumulate_openai(body: &[u8]) -> Value {
    let mut text = String::new();
    let mut refusal = String::new();
    let mut calls: Vec<Value> = Vec::new();
    let mut finish = Value::Null;
    let mut usage = Value::Null;
    let mut id = Value::Null;
    let mut model = Value::Null;
    for frame in openai_frames(body) {
        if frame == "[DONE]" {
            continue;
        }
        id = frame["id"].clone();
        model = frame["model"].clone();
        if !frame["usage"].is_null() {
            usage = frame["usage"].clone();
        }
        for choice in frame["choices"].as_array().into_iter().flatten() {
            let d = &choice["delta"];
            text += d["content"].as_str().unwrap_or("");
            refusal += d["refusal"].as_str().unwrap_or("");
            for tc in d["tool_calls"].as_array().into_iter().flatten() {
                let i = tc["index"].as_u64().expect("tool call index") as usize;
                if calls.len() <= i {
                    calls.resize(i + 1, json!({"id": null, "name": "", "arguments": ""}));
                }
                if let Some(tid) = tc["id"].as_str() {
                    calls[i]["id"] = json!(tid);
                }
                let f = &tc["function"];
                let name = calls[i]["name"].as_str().unwrap().to_owned()
                    + f["name"].as_str().unwrap_or("");
                let args = calls[i]["arguments"].as_str().unwrap().to_owned()
                    + f["arguments"].as_str().unwrap_or("");
                calls[i]["name"] = json!(name);
                calls[i]["arguments"] = json!(args);
            }
            if !choice["finish_reason"].is_null() {
                finish = choice["finish_reason"].clone();
            }
        }
    }
    json!({"id": id, "model": model, "text": text, "refusal": refusal, "tool_calls": calls,
           "finish_reason": finish, "usage": usage})
}

// === Anthropic streams → OpenAI chunks (conversion-spec §3.4) ===

fn a2o(name: &str) -> Vec<Value> {
    let events = anthropic_body_to_events(&fixture(name));
    let out = events_to_openai_sse(
        events,
        openai::EncoderOptions::default().include_usage(true),
        Some(Format::Anthropic),
    );
    openai_frames(&out)
}

/// Every chunk carries the envelope of §3.4: a `chatcmpl-` id derived from
/// the message id, `chat.completion.chunk`, a creation time and the model;
/// the same in every chunk.
fn assert_envelope(frames: &[Value], msg_id: &str, model: &str) {
    for f in frames.iter().filter(|f| f.is_object()) {
        assert_eq!(
            f["id"],
            json!(format!("chatcmpl-{}", msg_id.strip_prefix("msg_").unwrap()))
        );
        assert_eq!(f["object"], "chat.completion.chunk");
        assert!(f["created"].as_u64().unwrap() > 1_700_000_000);
        assert_eq!(f["model"], model);
    }
}

fn second_opinion(frames: &[Value], expected: &str) -> (Vec<Value>, Vec<Value>) {
    let got: Vec<Value> = frames.iter().cloned().map(strip_envelope).collect();
    (got, expected_lines(expected))
}

#[test]
fn a2o_basic_text_stream() {
    let frames = a2o("anthropic_stream_basic_response.sse");
    assert_envelope(
        &frames,
        "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK",
        "claude-3-opus-latest",
    );
    let (got, want) = second_opinion(
        &frames,
        "anthropic_stream_basic_response.openai_chunks.jsonl",
    );
    assert_eq!(got, want);
    assert_eq!(
        got[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(got.last().unwrap(), "[DONE]");
}

#[test]
fn a2o_incomplete_partial_json_stream() {
    let frames = a2o("anthropic_stream_incomplete_partial_json_response.sse");
    assert_envelope(
        &frames,
        "msg_01UdjYBBipA9omjYhicnevgq",
        "claude-3-7-sonnet-20250219",
    );
    let (got, want) = second_opinion(
        &frames,
        "anthropic_stream_incomplete_partial_json_response.openai_chunks.jsonl",
    );
    assert_eq!(got, want);
    let acc = accumulate_openai(&events_to_openai_sse(
        anthropic_body_to_events(&fixture(
            "anthropic_stream_incomplete_partial_json_response.sse",
        )),
        openai::EncoderOptions::default().include_usage(true),
        Some(Format::Anthropic),
    ));
    assert_eq!(acc["finish_reason"], "length");
    assert_eq!(acc["tool_calls"][0]["name"], "make_file");
    assert!(
        acc["tool_calls"][0]["arguments"]
            .as_str()
            .unwrap()
            .ends_with("\n\"Filing taxes")
    );
}

#[test]
fn a2o_refusal_stream_with_empty_text_block() {
    let frames = a2o("anthropic_stream_refusal_response.sse");
    assert_envelope(
        &frames,
        "msg_01RefusalTestMessage123456789",
        "claude-opus-4-7",
    );
    let got: Vec<Value> = frames.into_iter().map(strip_envelope).collect();
    // The empty text block yields no chunk; refusal → content_filter (§2.3 reverse).
    assert_eq!(
        got,
        vec![
            json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
            json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]}),
            json!({"object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 0, "total_tokens": 20, "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}}}),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn a2o_text_after_tool_result_stream() {
    let frames = a2o("anthropic_stream_text_after_tool_result_recorded_cassette.sse");
    assert_envelope(
        &frames,
        "msg_016HxyUMAncysqX7dn1kWNRx",
        "claude-haiku-4-5-20251001",
    );
    let got: Vec<Value> = frames.into_iter().map(strip_envelope).collect();
    let text: String = got
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        text,
        "The weather in San Francisco, CA is currently:\n- **Temperature:** 68°F\n- **Condition:** Sunny\n\nIt's a nice sunny day!"
    );
    assert_eq!(got[got.len() - 3]["choices"][0]["finish_reason"], "stop");
    // Usage from message_delta (it repeats input_tokens and the cache fields).
    assert_eq!(
        got[got.len() - 2]["usage"],
        json!({"prompt_tokens": 770, "completion_tokens": 38, "total_tokens": 808, "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}})
    );
}

#[test]
fn a2o_thinking_signature_refusal_stream() {
    let frames = a2o("anthropic_stream_thinking_signature_refusal.sse");
    assert_envelope(&frames, "msg_fixture_a_0001", "claude-fable-5");
    let (got, want) = second_opinion(
        &frames,
        "anthropic_stream_thinking_signature_refusal.openai_chunks.jsonl",
    );
    // Thinking is dropped (no reasoning_content by default), text "Hi",
    // refusal → content_filter: as the second opinion says.
    assert_eq!(got[..3], want[..3]);
    assert_eq!(got[4], want[4]);
    // The spec (§2.4, A→O) carries thinking tokens over as
    // completion_tokens_details.reasoning_tokens when present; the expected
    // file leaves them out. The spec wins.
    let mut want_usage = want[3].clone();
    want_usage["usage"]["completion_tokens_details"] = json!({"reasoning_tokens": 67});
    assert_eq!(got[3], want_usage);
}

#[test]
fn a2o_thinking_as_reasoning_content_when_asked() {
    let events =
        anthropic_body_to_events(&fixture("anthropic_stream_thinking_signature_refusal.sse"));
    let opts = openai::EncoderOptions::default().reasoning_content(true);
    let out = events_to_openai_sse(events, opts, Some(Format::Anthropic));
    let reasoning: String = openai_frames(&out)
        .iter()
        .filter_map(|f| {
            f["choices"][0]["delta"]["reasoning_content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(reasoning.starts_with("Simple educational question"));
    assert!(reasoning.ends_with("roll with it politely."));
}

#[test]
fn a2o_recorded_tool_use_stream() {
    let frames = a2o("anthropic_stream_tool_use_recorded_cassette.sse");
    assert_envelope(
        &frames,
        "msg_01AusY9WEbCaj3N7Tv5J4YjH",
        "claude-haiku-4-5-20251001",
    );
    let (got, want) = second_opinion(
        &frames,
        "anthropic_stream_tool_use_recorded_cassette.openai_chunks.jsonl",
    );
    assert_eq!(got, want);
}

#[test]
fn a2o_text_then_tool_use_stream() {
    let frames = a2o("anthropic_stream_tool_use_response.sse");
    assert_envelope(
        &frames,
        "msg_019Q1hrJbZG26Fb9BQhrkHEr",
        "claude-sonnet-4-20250514",
    );
    let (got, want) = second_opinion(
        &frames,
        "anthropic_stream_tool_use_response.openai_chunks.jsonl",
    );
    assert_eq!(got, want);
}

// === OpenAI streams → Anthropic events (conversion-spec §3.3) ===

fn o2a(name: &str) -> Vec<u8> {
    let events = with_model(
        openai_body_to_events(&fixture(name), Default::default()),
        "claude-sonnet-4-5",
    );
    events_to_anthropic_sse(events, Some(Format::OpenAi)).to_vec()
}

#[test]
fn o2a_streams_match_the_second_opinion_and_accumulate_right() {
    for name in OPENAI_STREAMS {
        let stem = name.trim_end_matches(".sse");
        let out = o2a(name);
        let checked = check_anthropic_stream(&out);
        assert!(checked.error.is_none(), "{name}");
        let mut got: Vec<Value> = named_json_events(&out)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        if name == "openai_stream_refusal_delta.sse" {
            // §2.3: a refusal stop MAY carry `stop_details` (the real API
            // sends it, see anthropic_stream_refusal_response.sse); the gateway
            // does, the second opinion does not. Both follow the spec.
            let md = got
                .iter_mut()
                .find(|e| e["type"] == "message_delta")
                .unwrap();
            let details = md["delta"].as_object_mut().unwrap().remove("stop_details");
            assert_eq!(
                details,
                Some(json!({"type": "refusal", "category": null, "explanation": null}))
            );
        }
        // Otherwise the spec and the second opinion agree on every one of
        // these streams: message id "msg_" + upstream id minus "chatcmpl-",
        // estimate 0 in message_start, ping after the first block start, usage
        // merged from the usage chunk into the final message_delta.
        assert_eq!(
            got,
            expected_lines(&format!("{stem}.anthropic_events.jsonl")),
            "{name}"
        );
        let want = expected_accumulated(&format!("{stem}.accumulated.txt"));
        assert_eq!(
            checked.message["content"], want,
            "{name}: accumulated content"
        );
    }
}

#[test]
fn o2a_accumulates_to_the_same_response_as_the_chat_accumulator() {
    for name in OPENAI_STREAMS {
        let events = openai_body_to_events(&fixture(name), Default::default());
        let resp = accumulate(events, Some(Format::OpenAi));
        let wire = anthropic::response_to_wire(resp);
        let via_sse = check_anthropic_stream(&o2a(name)).message;
        let wire = serde_json::to_value(&wire).unwrap();
        assert_eq!(wire["content"], via_sse["content"], "{name}");
        assert_eq!(wire["stop_reason"], via_sse["stop_reason"], "{name}");
        assert_eq!(
            wire["usage"]["output_tokens"], via_sse["usage"]["output_tokens"],
            "{name}"
        );
    }
}

// === Requests and complete responses across formats ===

#[test]
fn recorded_two_turn_exchange_converts_to_openai() {
    let cassette: Value = serde_json::from_str(&fixture(
        "anthropic_nonstream_tool_use_roundtrip_recorded_cassette.json",
    ))
    .unwrap();
    let second = &cassette["exchanges"][1];
    let chat = anthropic::request_from_wire(
        serde_json::from_value(second["request_body"].clone()).unwrap(),
    )
    .unwrap();
    let out =
        serde_json::to_value(openai::request_to_wire(chat, &Default::default()).unwrap()).unwrap();
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": "What's the weather in SF in Celsius?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_013DU6hV4C1M8dJ32ybQFAFi", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"location\":\"SF\",\"units\":\"c\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_013DU6hV4C1M8dJ32ybQFAFi",
             "content": "{\"location\": \"SF\", \"temperature\": \"20\\u00b0C\", \"condition\": \"Sunny\"}"},
        ])
    );
    // `description: ""` is kept (§1.8.1); no stream_options without stream.
    assert_eq!(out["tools"][0]["function"]["description"], "");
    assert_eq!(out["max_completion_tokens"], 1024);
    assert!(out.get("stream_options").is_none() && out.get("max_tokens").is_none());

    // Its responses, for an OpenAI client (§2.6).
    let first = &cassette["exchanges"][0]["response_body"];
    let resp = anthropic::response_from_wire(serde_json::from_value(first.clone()).unwrap());
    let out = serde_json::to_value(openai::response_to_wire(resp, &Default::default())).unwrap();
    assert_eq!(out["id"], "chatcmpl-01M4x4hiFuUdHzu44ih9eCGh");
    assert_eq!(out["object"], "chat.completion");
    assert_eq!(out["model"], "claude-haiku-4-5-20251001");
    assert_eq!(
        out["choices"],
        json!([{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null, "refusal": null,
            "tool_calls": [{"id": "toolu_013DU6hV4C1M8dJ32ybQFAFi", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"location\":\"SF\",\"units\":\"c\"}"}}]}}])
    );
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 597, "completion_tokens": 71, "total_tokens": 668,
               "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}})
    );
    let second = &cassette["exchanges"][1]["response_body"];
    let resp = anthropic::response_from_wire(serde_json::from_value(second.clone()).unwrap());
    let out = serde_json::to_value(openai::response_to_wire(resp, &Default::default())).unwrap();
    assert_eq!(
        out["choices"][0]["message"]["content"],
        "The weather in SF is currently **20°C** (68°F) and **Sunny**!"
    );
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
}

#[test]
fn openai_response_fixture_converts_to_anthropic_and_back() {
    let raw = fixture("openai_nonstream_parallel_tool_calls.json");
    let chat = openai::response_from_wire(serde_json::from_str(&raw).unwrap(), &Default::default())
        .unwrap();
    let anth = serde_json::to_value(anthropic::response_to_wire(chat.clone())).unwrap();
    assert_eq!(
        anth["content"][1]["input"],
        json!({"ticker": "AAPL", "exchange": "NASDAQ"})
    );
    // And that Anthropic message, decoded and sent to an OpenAI client, says
    // the same: compact arguments, tool_calls finish, same usage.
    let back = anthropic::response_from_wire(serde_json::from_value(anth).unwrap());
    let oai = serde_json::to_value(openai::response_to_wire(back, &Default::default())).unwrap();
    assert_eq!(oai["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        oai["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Edinburgh\",\"country\":\"GB\",\"units\":\"c\"}"
    );
    assert_eq!(oai["usage"]["prompt_tokens"], 149);
    assert_eq!(oai["usage"]["completion_tokens"], 60);
}

#[test]
fn openai_fixture_streams_end_cleanly_only_with_done_or_finish() {
    // Cut each stream right before its finish_reason chunk: no finish and no
    // [DONE] → an error event, never message_stop (§4.5).
    for name in OPENAI_STREAMS {
        let body = fixture(name);
        let cut = body
            .find("\"finish_reason\":\"")
            .map(|i| body[..i].rfind("data:").unwrap())
            .unwrap();
        let events = openai_body_to_events(&body[..cut], Default::default());
        assert!(
            matches!(events.last(), Some(ChatEvent::Error(e)) if e.message.contains("ended before completion")),
            "{name}"
        );
        assert!(
            !events.iter().any(|e| matches!(e, ChatEvent::MessageStop)),
            "{name}"
        );
        let out = events_to_anthropic_sse(events, Some(Format::OpenAi));
        let checked = check_anthropic_stream(&out);
        assert_eq!(checked.error.unwrap()["type"], "api_error", "{name}");
    }
}

#[test]
fn encoders_write_the_bytes_of_their_wire_frames_for_every_fixture() {
    // The encoders write deltas directly; for every recorded stream
    // (thinking, refusals, tool calls, errors) the bytes are those of
    // building and writing each wire frame.
    let streams = ANTHROPIC_STREAMS
        .iter()
        .map(|name| (anthropic_body_to_events(&fixture(name)), Format::Anthropic))
        .chain(OPENAI_STREAMS.iter().map(|name| {
            (
                openai_body_to_events(&fixture(name), Default::default()),
                Format::OpenAi,
            )
        }));
    let mut deltas = 0;
    for (events, origin) in streams {
        deltas += events
            .iter()
            .filter(|ev| matches!(ev, ChatEvent::BlockDelta { .. }))
            .count();
        assert_encoders_write_their_wire_frames(&events, Some(origin));
    }
    assert!(deltas > 50, "{deltas}");
}
