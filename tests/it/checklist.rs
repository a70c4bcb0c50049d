//! The conformance checklist of conversion-spec.md §7: one named test per
//! point (c01 … c30, and c18a). Every Anthropic stream produced here goes
//! through the strict checker of §3.1 invariants 1–9 and the SDK
//! accumulator rules ([`check_anthropic_stream`]).

use std::time::Duration;

use llmgate::chat::ChatEvent;
use llmgate::convert::{anthropic, openai, wire_tool_name};
use llmgate::wire::{anthropic as aw, openai as ow};
use llmgate::{ApiError, ErrorKind, Format};
use serde_json::{Value, json};

use crate::common::*;

/// An OpenAI SSE body from chunk JSONs (each gets the usual envelope), ending
/// with `[DONE]` when `done`.
fn stream(chunks: &[Value], done: bool) -> String {
    let mut out = String::new();
    for c in chunks {
        let mut c = c.clone();
        let o = c.as_object_mut().unwrap();
        o.entry("id").or_insert(json!("chatcmpl-synthetic"));
        o.entry("object").or_insert(json!("chat.completion.chunk"));
        o.entry("created").or_insert(json!(1727346178));
        o.entry("model").or_insert(json!("gpt-4o"));
        out.push_str(&format!("data: {c}\n\n"));
    }
    if done {
        out.push_str("data: [DONE]\n\n");
    }
    out
}

fn delta(d: Value) -> Value {
    json!({"choices": [{"index": 0, "delta": d, "finish_reason": null}]})
}

fn finish(reason: &str) -> Value {
    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}})
}

fn tc(index: Option<u64>, id: Option<&str>, name: Option<&str>, args: &str) -> Value {
    let mut call = json!({"function": {"arguments": args}});
    if let Some(i) = index {
        call["index"] = json!(i);
    }
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    if let Some(name) = name {
        call["function"]["name"] = json!(name);
    }
    call
}

/// OpenAI body → Anthropic SSE (checked) → (event list, checked result).
fn o2a(body: &str) -> (Vec<Value>, Checked) {
    let events = openai_body_to_events(body, Default::default());
    let out = events_to_anthropic_sse(events, Some(Format::OpenAi));
    let checked = check_anthropic_stream(&out);
    (
        named_json_events(&out)
            .into_iter()
            .map(|(_, v)| v)
            .collect(),
        checked,
    )
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn block_starts(events: &[Value]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|e| e["type"] == "content_block_start")
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["content_block"]["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn a2o(name: &str) -> Vec<Value> {
    let events = anthropic_body_to_events(&fixture(name));
    let out = events_to_openai_sse(
        events,
        openai::EncoderOptions::default().include_usage(true),
        Some(Format::Anthropic),
    );
    openai_frames(&out)
}

// === Streaming O→A ===

#[test]
fn c01_parallel_tool_calls_exact_trace() {
    let (events, checked) = o2a(&fixture("openai_stream_parallel_tool_calls_with_usage.sse"));
    let mut want_types = vec!["message_start", "content_block_start", "ping"];
    want_types.extend(["content_block_delta"; 11]);
    want_types.extend(["content_block_stop", "content_block_start"]);
    want_types.extend(["content_block_delta"; 9]);
    want_types.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(types(&events), want_types);
    let m = &events[0]["message"];
    assert_eq!(m["id"], "msg_ABfwAwrNePHUgBBezonVC6MX3zd63");
    assert_eq!(
        (m["type"].as_str(), m["role"].as_str()),
        (Some("message"), Some("assistant"))
    );
    assert_eq!(m["content"], json!([]));
    assert!(m["stop_reason"].is_null() && m["stop_sequence"].is_null());
    assert_eq!(
        m["usage"],
        json!({"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    );
    assert_eq!(
        events[1]["content_block"],
        json!({"type": "tool_use", "id": "call_JMW1whyEaYG438VE1OIflxA2", "name": "GetWeatherArgs", "input": {}})
    );
    let frags0: Vec<&str> = events[3..14]
        .iter()
        .map(|e| e["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(
        frags0,
        [
            "{\"ci", "ty\": ", "\"Edinb", "urgh", "\", \"c", "ountry", "\": \"", "GB\", ",
            "\"units", "\": \"", "c\"}"
        ]
    );
    assert_eq!(
        events[15]["content_block"],
        json!({"type": "tool_use", "id": "call_DNYTawLBoN8fj3KN6qU9N1Ou", "name": "get_stock_price", "input": {}})
    );
    assert!(events[16..25].iter().all(|e| e["index"] == 1));
    assert_eq!(
        events[26],
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
               "usage": {"output_tokens": 60, "input_tokens": 149, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}})
    );
    assert_eq!(
        checked.message["content"][0]["input"],
        json!({"city": "Edinburgh", "country": "GB", "units": "c"})
    );
    assert_eq!(
        checked.message["content"][1]["input"],
        json!({"ticker": "AAPL", "exchange": "NASDAQ"})
    );
}

#[test]
fn c01_message_delta_waits_for_the_usage_chunk() {
    // The finish_reason chunk alone does not end the message: the usage
    // chunk after it is merged into message_delta.
    let body = fixture("openai_stream_parallel_tool_calls_with_usage.sse");
    let finish_at = body.find("\"finish_reason\":\"tool_calls\"").unwrap();
    let usage_at = body[finish_at..].find("data:").unwrap() + finish_at;
    let mut decoder = openai::ChunkDecoder::new(Default::default());
    let mut events = Vec::new();
    for ev in sse_events(&body.as_bytes()[..usage_at]) {
        decoder.push_data(&ev.data, &mut events);
    }
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ChatEvent::MessageDelta(_)))
    );
    for ev in sse_events(&body.as_bytes()[usage_at..]) {
        decoder.push_data(&ev.data, &mut events);
    }
    assert!(
        matches!(&events[events.len() - 2], ChatEvent::MessageDelta(delta) if delta.usage.input_tokens == Some(149))
    );
}

#[test]
fn c02_text_stream_one_block_no_empty_delta() {
    let (events, checked) = o2a(&fixture("openai_stream_text_with_usage.sse"));
    assert_eq!(block_starts(&events), vec![(0, "text".to_owned())]);
    assert_eq!(
        &types(&events)[..3],
        ["message_start", "content_block_start", "ping"]
    );
    // The first upstream chunk has content "": no delta for it.
    let deltas: Vec<&str> = events
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert!(deltas.iter().all(|t| !t.is_empty()));
    assert_eq!(deltas[0], "I'm");
    assert_eq!(checked.message["stop_reason"], "end_turn");
    assert_eq!(checked.message["usage"]["input_tokens"], 14);
    assert_eq!(checked.message["usage"]["output_tokens"], 30);
}

#[test]
fn c03_finish_length_is_max_tokens() {
    let (events, checked) = o2a(&fixture("openai_stream_finish_length.sse"));
    let deltas: Vec<&str> = events
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(deltas, ["{\""]);
    assert_eq!(checked.message["stop_reason"], "max_tokens");
    assert_eq!(checked.message["usage"]["input_tokens"], 79);
    assert_eq!(checked.message["usage"]["output_tokens"], 1);
}

#[test]
fn c04_role_and_tool_call_in_the_first_chunk() {
    let (events, checked) = o2a(&fixture(
        "openai_stream_single_tool_call_role_in_same_chunk.sse",
    ));
    assert_eq!(
        &types(&events)[..3],
        ["message_start", "content_block_start", "ping"]
    );
    assert_eq!(events[1]["content_block"]["name"], "get_weather");
    assert_eq!(
        events[1]["content_block"]["id"],
        "call_4XzlGBLtUe9dy3GVNV4jhq7h"
    );
    assert_eq!(
        checked.message["content"][0]["input"],
        json!({"city": "New York City"})
    );
    assert_eq!(checked.message["stop_reason"], "tool_use");
}

#[test]
fn c05_refusal_deltas_become_a_text_block_with_refusal_stop() {
    let (events, checked) = o2a(&fixture("openai_stream_refusal_delta.sse"));
    assert_eq!(block_starts(&events), vec![(0, "text".to_owned())]);
    assert_eq!(
        checked.message["content"][0]["text"],
        "I'm sorry, I can't assist with that request."
    );
    assert_eq!(checked.message["stop_reason"], "refusal");
}

#[test]
fn c06_text_between_tool_calls_opens_text_blocks() {
    let body = stream(
        &[
            delta(json!({"role": "assistant", "content": "Let me check."})),
            delta(json!({"tool_calls": [tc(Some(0), Some("call_a"), Some("a"), "{\"x\":1}")]})),
            delta(json!({"content": "\n"})),
            delta(json!({"tool_calls": [tc(Some(1), Some("call_b"), Some("b"), "{}")]})),
            finish("tool_calls"),
            usage(10, 5),
        ],
        true,
    );
    let (events, checked) = o2a(&body);
    // No whitespace suppression: the "\n" is kept, in a text block of its own
    // (never as a text_delta inside the tool block: inv. 4).
    assert_eq!(
        block_starts(&events),
        vec![
            (0, "text".into()),
            (1, "tool_use".into()),
            (2, "text".into()),
            (3, "tool_use".into())
        ]
    );
    assert_eq!(checked.message["content"][2]["text"], "\n");
    assert_eq!(checked.message["content"][1]["input"], json!({"x": 1}));
}

#[test]
fn c07_reasoning_then_content_thinking_block_first() {
    let body = stream(
        &[
            delta(json!({"role": "assistant", "reasoning_content": "Let me"})),
            delta(json!({"reasoning_content": " think."})),
            delta(json!({"content": "Answer."})),
            finish("stop"),
            usage(3, 4),
        ],
        true,
    );
    let (events, checked) = o2a(&body);
    assert_eq!(
        block_starts(&events),
        vec![(0, "thinking".into()), (1, "text".into())]
    );
    assert_eq!(
        events[1]["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(checked.message["content"][0]["thinking"], "Let me think.");
    assert_eq!(checked.message["content"][0]["signature"], "");
    assert_eq!(checked.message["content"][1]["text"], "Answer.");
    assert!(
        !events
            .iter()
            .any(|e| e["delta"]["type"] == "signature_delta")
    );
}

#[test]
fn c07_reasoning_and_content_in_one_chunk() {
    let body = stream(
        &[
            delta(json!({"role": "assistant", "reasoning_content": "hmm", "content": "Hi"})),
            finish("stop"),
        ],
        true,
    );
    let (events, checked) = o2a(&body);
    assert_eq!(
        block_starts(&events),
        vec![(0, "thinking".into()), (1, "text".into())]
    );
    assert_eq!(checked.message["content"][1]["text"], "Hi");
}

#[test]
fn c08_content_and_finish_in_the_same_chunk() {
    let body = stream(
        &[
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "All at once"}, "finish_reason": "stop"}]}),
        ],
        true,
    );
    let (events, checked) = o2a(&body);
    assert_eq!(
        types(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(checked.message["content"][0]["text"], "All at once");
}

#[test]
fn c09_two_complete_tool_calls_in_one_chunk() {
    let body = stream(
        &[
            delta(json!({"role": "assistant", "tool_calls": [
                tc(Some(0), Some("call_1"), Some("weather"), "{\"city\":\"NY\"}"),
                tc(Some(1), Some("call_2"), Some("time"), "{\"tz\":\"EST\"}"),
            ]})),
            finish("tool_calls"),
        ],
        true,
    );
    let (events, checked) = o2a(&body);
    assert_eq!(
        block_starts(&events),
        vec![(0, "tool_use".into()), (1, "tool_use".into())]
    );
    assert_eq!(
        checked.message["content"][0]["input"],
        json!({"city": "NY"})
    );
    assert_eq!(checked.message["content"][1]["input"], json!({"tz": "EST"}));
    assert_eq!(checked.message["content"][1]["id"], "call_2");
}

#[test]
fn c10_tool_calls_without_index_and_stop_finish() {
    // Gemini's OpenAI compatibility: no index, each call complete with its
    // own id, and finish_reason "stop" even though tools were called.
    let body = stream(
        &[
            delta(
                json!({"role": "assistant", "tool_calls": [tc(None, Some("call_x"), Some("search"), "{\"q\":\"a\"}")]}),
            ),
            delta(
                json!({"tool_calls": [tc(None, Some("call_y"), Some("search"), "{\"q\":\"b\"}")]}),
            ),
            finish("stop"),
        ],
        true,
    );
    let (events, checked) = o2a(&body);
    assert_eq!(
        block_starts(&events),
        vec![(0, "tool_use".into()), (1, "tool_use".into())]
    );
    assert_eq!(checked.message["content"][0]["input"], json!({"q": "a"}));
    assert_eq!(checked.message["content"][1]["input"], json!({"q": "b"}));
    assert_eq!(checked.message["stop_reason"], "tool_use");
}

#[test]
fn c11_arguments_before_name_are_held_then_sent_after_the_start() {
    let body = stream(
        &[
            delta(
                json!({"role": "assistant", "tool_calls": [tc(Some(0), Some("call_1"), None, "{\"a\":")]}),
            ),
            delta(json!({"tool_calls": [tc(Some(0), None, Some("fn"), "1}")]})),
            finish("tool_calls"),
        ],
        true,
    );
    let (events, checked) = o2a(&body);
    let start = events
        .iter()
        .position(|e| e["type"] == "content_block_start")
        .unwrap();
    assert_eq!(events[start + 1]["type"], "ping");
    assert_eq!(
        events[start + 2]["delta"],
        json!({"type": "input_json_delta", "partial_json": "{\"a\":1}"})
    );
    assert_eq!(checked.message["content"][0]["name"], "fn");
    assert_eq!(checked.message["content"][0]["input"], json!({"a": 1}));
}

#[test]
fn c12_repeated_empty_name_and_id_make_one_block() {
    let body = stream(
        &[
            delta(
                json!({"role": "assistant", "tool_calls": [tc(Some(0), Some("call_1"), Some("fn"), "")]}),
            ),
            delta(json!({"tool_calls": [tc(Some(0), Some("call_1"), Some(""), "{\"k\":")]})),
            delta(json!({"tool_calls": [tc(Some(0), Some("call_1"), Some(""), "\"v\"}")]})),
            finish("tool_calls"),
        ],
        true,
    );
    let (events, checked) = o2a(&body);
    assert_eq!(block_starts(&events), vec![(0, "tool_use".into())]);
    assert_eq!(checked.message["content"][0]["input"], json!({"k": "v"}));
}

#[test]
fn c13_usage_on_the_finish_chunk_ends_the_message_at_once() {
    let body = stream(
        &[
            delta(json!({"role": "assistant", "content": "x"})),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}),
        ],
        false,
    );
    // No [DONE] needed: finish + usage are all there is.
    let mut decoder = openai::ChunkDecoder::new(Default::default());
    let mut events = Vec::new();
    for ev in sse_events(body.as_bytes()) {
        decoder.push_data(&ev.data, &mut events);
    }
    assert!(decoder.is_done());
    assert!(matches!(events.last(), Some(ChatEvent::MessageStop)));
    let (_, checked) = o2a(&body);
    assert_eq!(checked.message["usage"]["input_tokens"], 5);
}

#[test]
fn c13_no_usage_chunk_reports_zero_output_tokens() {
    let body = stream(
        &[
            delta(json!({"role": "assistant", "content": "x"})),
            finish("stop"),
        ],
        true,
    );
    let (events, checked) = o2a(&body);
    let md = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(md["usage"], json!({"output_tokens": 0}));
    assert_eq!(checked.message["stop_reason"], "end_turn");
}

#[test]
fn c13_eof_without_done_or_finish_is_an_error_event() {
    let body = stream(
        &[delta(json!({"role": "assistant", "content": "cut"}))],
        false,
    );
    let (events, checked) = o2a(&body);
    assert_eq!(types(&events).last(), Some(&"error"));
    assert!(!types(&events).contains(&"message_stop"));
    assert_eq!(checked.error.unwrap()["type"], "api_error");
    // [DONE] alone (nothing else) is a clean, empty message.
    let (events, checked) = o2a("data: [DONE]\n\n");
    assert_eq!(
        types(&events),
        ["message_start", "message_delta", "message_stop"]
    );
    assert_eq!(checked.message["content"], json!([]));
}

#[test]
fn c14_error_chunk_mid_stream_becomes_an_error_event() {
    let mut body = stream(
        &[delta(json!({"role": "assistant", "content": "par"}))],
        false,
    );
    body.push_str("data: {\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}\n\n");
    let (events, checked) = o2a(&body);
    assert_eq!(types(&events).last(), Some(&"error"));
    assert_eq!(checked.error.as_ref().unwrap()["type"], "rate_limit_error");
    assert_eq!(checked.error.unwrap()["message"], "Rate limit reached");
    let body = "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n";
    let (_, checked) = o2a(body);
    assert_eq!(checked.error.unwrap()["type"], "api_error");
}

#[test]
fn c15_long_tool_names_shortened_and_restored() {
    let long = format!("mcp__{}__do_the_thing", "very_long_server_name_".repeat(3));
    assert!(long.len() > 64);
    let req = json!({
        "model": "m", "max_tokens": 100,
        "tools": [{"name": long, "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": long},
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": long, "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
        ]
    });
    let chat = anthropic::request_from_wire(serde_json::from_value(req).unwrap()).unwrap();
    let names = llmgate::convert::ToolNames::for_request(&chat);
    let opts = openai::DecoderOptions::for_request(&chat);
    let out =
        serde_json::to_value(openai::request_to_wire(chat, &Default::default()).unwrap()).unwrap();
    let wire = wire_tool_name(&long).into_owned();
    assert_eq!(wire.len(), 64);
    assert_eq!(out["tools"][0]["function"]["name"], wire);
    assert_eq!(out["tool_choice"]["function"]["name"], wire);
    assert_eq!(
        out["messages"][1]["tool_calls"][0]["function"]["name"],
        wire
    );
    // Streamed back: the original name in content_block_start.
    let body = stream(
        &[
            delta(
                json!({"role": "assistant", "tool_calls": [tc(Some(0), Some("call_1"), Some(&wire), "{}")]}),
            ),
            finish("tool_calls"),
        ],
        true,
    );
    let events = openai_body_to_events(&body, opts);
    let out = events_to_anthropic_sse(events, Some(Format::OpenAi));
    let checked = check_anthropic_stream(&out);
    assert_eq!(checked.message["content"][0]["name"], json!(long));
    // And in a complete response.
    let resp: ow::ChatCompletion = serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": wire, "arguments": "{}"}}]}}]
    })).unwrap();
    let chat = openai::response_from_wire(resp, &names).unwrap();
    let anth = serde_json::to_value(anthropic::response_to_wire(chat)).unwrap();
    assert_eq!(anth["content"][0]["name"], json!(long));
}

// === Streaming A→O ===

#[test]
fn c16_tool_index_counts_tool_calls_not_blocks() {
    let got: Vec<Value> = a2o("anthropic_stream_tool_use_response.sse")
        .into_iter()
        .map(strip_envelope)
        .collect();
    let calls: Vec<&Value> = got
        .iter()
        .filter(|c| c["choices"][0]["delta"].get("tool_calls").is_some())
        .collect();
    // The tool_use is Anthropic block 1, but OpenAI tool call 0.
    assert_eq!(
        calls[0]["choices"][0]["delta"]["tool_calls"],
        json!([{"index": 0, "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "type": "function", "function": {"name": "get_weather", "arguments": ""}}])
    );
    // The empty partial_json is skipped: four fragments follow.
    let frags: Vec<&str> = calls[1..]
        .iter()
        .map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(frags, ["{\"locati", "on\": \"P", "ar", "is\"}"]);
    let text: String = got
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "I'll check the current weather in Paris for you.");
    assert_eq!(
        got[got.len() - 3]["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert_eq!(got[got.len() - 2]["usage"]["prompt_tokens"], 377);
    assert_eq!(got[got.len() - 2]["usage"]["completion_tokens"], 65);
    assert_eq!(got[got.len() - 2]["usage"]["total_tokens"], 442);
    assert_eq!(got[got.len() - 2]["choices"], json!([]));
    assert_eq!(got.last().unwrap(), "[DONE]");
}

#[test]
fn c16_usage_chunk_only_when_asked_for() {
    let events = anthropic_body_to_events(&fixture("anthropic_stream_tool_use_response.sse"));
    let out = events_to_openai_sse(
        events,
        openai::EncoderOptions::default(),
        Some(Format::Anthropic),
    );
    let frames = openai_frames(&out);
    assert!(frames.iter().all(|f| f.get("usage").is_none()));
    assert_eq!(frames.last().unwrap(), "[DONE]");
}

#[test]
fn c17_usage_from_message_delta() {
    let got = a2o("anthropic_stream_tool_use_recorded_cassette.sse");
    let u = &got[got.len() - 2]["usage"];
    assert_eq!(
        (u["prompt_tokens"].as_u64(), u["completion_tokens"].as_u64()),
        (Some(656), Some(74))
    );
}

#[test]
fn c18a_missing_block_stop_does_not_break_the_stream() {
    let got: Vec<Value> = a2o("anthropic_stream_incomplete_partial_json_response.sse")
        .into_iter()
        .map(strip_envelope)
        .collect();
    let args: String = got
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert!(args.starts_with("{\"filename\": \"taxes.txt\""));
    assert!(args.ends_with("\n\"Filing taxes"));
    assert_eq!(got[got.len() - 3]["choices"][0]["finish_reason"], "length");
}

#[test]
fn c18_thinking_dropped_text_kept_refusal_is_content_filter() {
    let got: Vec<Value> = a2o("anthropic_stream_thinking_signature_refusal.sse")
        .into_iter()
        .map(strip_envelope)
        .collect();
    assert!(
        got.iter()
            .all(|c| c["choices"][0]["delta"].get("reasoning_content").is_none())
    );
    let text: String = got
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hi");
    assert_eq!(
        got[got.len() - 3]["choices"][0]["finish_reason"],
        "content_filter"
    );
}

// === Requests A→O ===

#[test]
fn c19_worked_example_of_section_1_11() {
    let raw = fixture("anthropic_request_with_tool_result_recorded_cassette.json");
    let mut chat = anthropic::request_from_wire(serde_json::from_str(&raw).unwrap()).unwrap();
    chat.model = "gpt-4o".into(); // the model map: claude-haiku-4-5 → gpt-4o
    let out =
        serde_json::to_value(openai::request_to_wire(chat, &Default::default()).unwrap()).unwrap();
    let want = json!({
      "model": "gpt-4o",
      "max_completion_tokens": 1024,
      "stream": true,
      "stream_options": {"include_usage": true},
      "messages": [
        {"role": "user", "content": "What is the weather in SF?"},
        {"role": "assistant", "content": null, "tool_calls": [
          {"id": "toolu_018acGYLtfR52q9yDbWaEdQZ", "type": "function",
           "function": {"name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\",\"units\":\"f\"}"}}]},
        {"role": "tool", "tool_call_id": "toolu_018acGYLtfR52q9yDbWaEdQZ",
         "content": "{\"location\": \"San Francisco, CA\", \"temperature\": \"68\\u00b0F\", \"condition\": \"Sunny\"}"}
      ],
      "tools": [{"type": "function", "function": {
        "name": "get_weather",
        "description": "Lookup the weather for a given city in either celsius or fahrenheit",
        "parameters": {"additionalProperties": false, "properties": {
            "location": {"description": "The city and state, e.g. San Francisco, CA", "title": "Location", "type": "string"},
            "units": {"description": "Unit for the output, either 'c' for celsius or 'f' for fahrenheit", "enum": ["c","f"], "title": "Units", "type": "string"}},
          "required": ["location","units"], "type": "object"}}}]
    });
    assert_eq!(out, want);
}

#[test]
fn c20_tool_results_split_errors_prefixed_images_deferred() {
    let req = json!({
        "model": "m", "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "A", "name": "f", "input": {}},
                {"type": "tool_use", "id": "B", "name": "g", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "A", "content": "result A"},
                {"type": "tool_result", "tool_use_id": "B", "is_error": true, "content": [
                    {"type": "text", "text": "it broke"},
                    {"type": "text", "text": "twice"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}]},
                {"type": "text", "text": "what now?"}]}
        ]
    });
    let chat = anthropic::request_from_wire(serde_json::from_value(req).unwrap()).unwrap();
    let out =
        serde_json::to_value(openai::request_to_wire(chat, &Default::default()).unwrap()).unwrap();
    let msgs = out["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 5);
    assert_eq!(
        msgs[2],
        json!({"role": "tool", "tool_call_id": "A", "content": "result A"})
    );
    assert_eq!(
        msgs[3],
        json!({"role": "tool", "tool_call_id": "B", "content": "Error: it broke\ntwice"})
    );
    assert_eq!(
        msgs[4],
        json!({"role": "user", "content": [
            {"type": "text", "text": "Images returned by tool calls:"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
            {"type": "text", "text": "what now?"}]})
    );
}

#[test]
fn c21_consecutive_assistant_messages_are_merged() {
    let req = json!({
        "model": "m", "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Let me look."},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "1"}]},
            {"role": "user", "content": "and?"}
        ]
    });
    let chat = anthropic::request_from_wire(serde_json::from_value(req).unwrap()).unwrap();
    let out =
        serde_json::to_value(openai::request_to_wire(chat, &Default::default()).unwrap()).unwrap();
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "1"},
            {"role": "user", "content": [{"type": "text", "text": "and?"}]}
        ])
    );
}

#[test]
fn c22_any_with_disable_parallel_is_required_without_parallel_calls() {
    let req = json!({
        "model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true}
    });
    let chat = anthropic::request_from_wire(serde_json::from_value(req).unwrap()).unwrap();
    let out =
        serde_json::to_value(openai::request_to_wire(chat, &Default::default()).unwrap()).unwrap();
    assert_eq!(out["tool_choice"], "required");
    assert_eq!(out["parallel_tool_calls"], false);
    // And back: OpenAI required + parallel false → Anthropic any + disable.
    let oreq: ow::ChatCompletionRequest = serde_json::from_value(out).unwrap();
    let chat = openai::request_from_wire(oreq).unwrap();
    let back = serde_json::to_value(anthropic::request_to_wire(chat, &Default::default()).unwrap())
        .unwrap();
    assert_eq!(
        back["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
}

#[test]
fn c23_cache_control_never_reaches_openai() {
    let cc = json!({"type": "ephemeral", "ttl": "1h"});
    let req = json!({
        "model": "m", "max_tokens": 10, "cache_control": cc,
        "system": [{"type": "text", "text": "sys", "cache_control": cc}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}, "cache_control": cc}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": cc},
                                         {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}, "cache_control": cc}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}, "cache_control": cc}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "r", "cache_control": cc}]}
        ]
    });
    let chat = anthropic::request_from_wire(serde_json::from_value(req).unwrap()).unwrap();
    let out = serde_json::to_string(&openai::request_to_wire(chat, &Default::default()).unwrap())
        .unwrap();
    assert!(!out.contains("cache_control"), "{out}");
    assert!(!out.contains("ephemeral"), "{out}");
}

#[test]
fn c24_thinking_budget_maps_to_reasoning_effort() {
    let req = |budget: u64| {
        json!({"model": "m", "max_tokens": 20000, "temperature": 1, "messages": [{"role": "user", "content": "x"}],
               "thinking": {"type": "enabled", "budget_tokens": budget}})
    };
    let opts = openai::RequestOptions::default().reasoning_model(true);
    for (budget, effort) in [
        (10000, "high"),
        (4096, "high"),
        (2048, "medium"),
        (1024, "low"),
        (500, "minimal"),
    ] {
        let chat =
            anthropic::request_from_wire(serde_json::from_value(req(budget)).unwrap()).unwrap();
        let out = serde_json::to_value(openai::request_to_wire(chat, &opts).unwrap()).unwrap();
        assert_eq!(out["reasoning_effort"], effort, "budget {budget}");
        assert!(
            out.get("temperature").is_none(),
            "reasoning models take no temperature"
        );
        assert_eq!(out["max_completion_tokens"], 20000);
    }
    // A model that does not reason gets neither.
    let chat = anthropic::request_from_wire(serde_json::from_value(req(10000)).unwrap()).unwrap();
    let out =
        serde_json::to_value(openai::request_to_wire(chat, &Default::default()).unwrap()).unwrap();
    assert!(out.get("reasoning_effort").is_none());
}

// === Responses O→A ===

#[test]
fn c25_worked_example_of_section_2_5() {
    let raw = fixture("openai_nonstream_parallel_tool_calls.json");
    let mut chat =
        openai::response_from_wire(serde_json::from_str(&raw).unwrap(), &Default::default())
            .unwrap();
    chat.model = "claude-sonnet-4-5".into(); // the model the client asked for
    let out = serde_json::to_value(anthropic::response_to_wire(chat)).unwrap();
    assert_eq!(
        out,
        json!({
          "id": "msg_ABfvyvfNWKcl7Ohqos4UFrmMs1v4C",
          "type": "message",
          "role": "assistant",
          "model": "claude-sonnet-4-5",
          "content": [
            {"type": "tool_use", "id": "call_fdNz3vOBKYgOIpMdWotB9MjY", "name": "GetWeatherArgs",
             "input": {"city": "Edinburgh", "country": "GB", "units": "c"}},
            {"type": "tool_use", "id": "call_h1DWI1POMJLb0KwIyQHWXD4p", "name": "get_stock_price",
             "input": {"ticker": "AAPL", "exchange": "NASDAQ"}}
          ],
          "stop_reason": "tool_use",
          "stop_sequence": null,
          "usage": {"input_tokens": 149, "output_tokens": 60,
                    "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
        })
    );
}

fn o2a_response(message: Value, finish: &str, usage: Value) -> Value {
    let resp: ow::ChatCompletion = serde_json::from_value(json!({
        "id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage
    }))
    .unwrap();
    serde_json::to_value(anthropic::response_to_wire(
        openai::response_from_wire(resp, &Default::default()).unwrap(),
    ))
    .unwrap()
}

#[test]
fn c26_empty_arguments_are_an_empty_object() {
    let out = o2a_response(
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}}]}),
        "tool_calls",
        json!({"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}),
    );
    assert_eq!(
        out["content"],
        json!([{"type": "tool_use", "id": "call_1", "name": "now", "input": {}}])
    );
}

#[test]
fn c27_cached_tokens_are_not_counted_twice() {
    let out = o2a_response(
        json!({"role": "assistant", "content": "hi"}),
        "stop",
        json!({"prompt_tokens": 1500, "completion_tokens": 10, "total_tokens": 1510, "prompt_tokens_details": {"cached_tokens": 1000}}),
    );
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 500, "output_tokens": 10, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 0})
    );
    assert_eq!(out["content"], json!([{"type": "text", "text": "hi"}]));
}

// === Errors ===
// The HTTP side of these (a real response with its status and headers) is
// tested again over loopback in the pipeline tests.

#[test]
fn c28_upstream_429_keeps_retry_after() {
    let mut headers = http::HeaderMap::new();
    headers.insert("retry-after", "7".parse().unwrap());
    let err = ApiError::from_upstream_response(
        429,
        &headers,
        br#"{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
    );
    assert_eq!(err.kind, ErrorKind::RateLimit);
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
    let (status, body) = err.to_anthropic(Some("req_1"));
    assert_eq!(status, 429);
    assert_eq!(
        serde_json::to_value(body).unwrap(),
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit reached for gpt-4o"}, "request_id": "req_1"})
    );
    let headers = err.retry_after_headers();
    assert!(headers.iter().any(|(n, v)| n == "retry-after" && v == "7"));
}

#[test]
fn c29_upstream_400_before_the_stream_is_a_json_error() {
    // What the upstream answered before any stream byte: a 400 error body.
    // It becomes a JSON error with status 400 in the client's format, never
    // a 200 event stream (the HTTP test sends it over a real connection).
    let err = ApiError::from_upstream(
        400,
        br#"{"error":{"message":"Unsupported parameter: 'max_tokens'","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}"#,
    );
    let (status, body) = err.to_anthropic(None);
    assert_eq!(status, 400);
    assert_eq!(body.error.kind, "invalid_request_error");
    let (status, body) = err.to_openai();
    assert_eq!(status, 400);
    assert_eq!(body.error.param.as_deref(), Some("max_tokens"));
    assert_eq!(body.error.code, Some(json!("unsupported_parameter")));
}

#[test]
fn c30_upstream_503_is_529_overloaded() {
    let err = ApiError::from_upstream(
        503,
        br#"{"error":{"message":"Service Unavailable","type":"server_error"}}"#,
    );
    let (status, body) = err.to_anthropic(None);
    assert_eq!(
        (status, body.error.kind.as_str()),
        (529, "overloaded_error")
    );
}

// === A few more request rules ===

#[test]
fn openai_request_to_anthropic_hoists_system_and_groups_tool_results() {
    let req = json!({
        "model": "gpt", "max_completion_tokens": 50, "temperature": 1.7, "stop": [" ", "END"], "user": "u1",
        "messages": [
            {"role": "system", "content": "Be nice."},
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{\"c\":\"SF\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "w", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "rainy"}]},
            {"role": "user", "content": "thanks"}
        ]
    });
    let chat = openai::request_from_wire(serde_json::from_value(req).unwrap()).unwrap();
    let out = serde_json::to_value(anthropic::request_to_wire(chat, &Default::default()).unwrap())
        .unwrap();
    assert_eq!(out["system"], "Be nice.\nBe brief.");
    assert_eq!(out["max_tokens"], 50);
    assert_eq!(out["temperature"], 1, "capped at 1");
    assert_eq!(
        out["stop_sequences"],
        json!(["END"]),
        "whitespace-only stop dropped"
    );
    assert_eq!(out["metadata"], json!({"user_id": "u1"}));
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "w", "input": {"c": "SF"}},
                {"type": "tool_use", "id": "call_2", "name": "w", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "rainy"},
                {"type": "text", "text": "thanks"}]}
        ])
    );
}

#[test]
fn anthropic_request_without_max_tokens_gets_the_default() {
    let req = json!({"model": "gpt", "messages": [{"role": "user", "content": "x"}], "n": 1});
    let chat = openai::request_from_wire(serde_json::from_value(req).unwrap()).unwrap();
    let out = anthropic::request_to_wire(chat, &Default::default()).unwrap();
    assert_eq!(out.max_tokens, Some(4096));
    let req = json!({"model": "gpt", "messages": [{"role": "user", "content": "x"}], "n": 2});
    let chat = openai::request_from_wire(serde_json::from_value(req).unwrap()).unwrap();
    let err = anthropic::request_to_wire(chat, &Default::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidRequest);
}

#[test]
fn tool_result_without_id_is_a_clear_400() {
    let req = json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "", "content": "x"}]}]});
    let chat = anthropic::request_from_wire(serde_json::from_value(req).unwrap()).unwrap();
    let err = openai::request_to_wire(chat, &Default::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidRequest);
    assert!(err.message.contains("tool_use_id"));
}

#[test]
fn malformed_known_blocks_are_errors_that_name_the_type() {
    let err = serde_json::from_value::<aw::MessagesRequest>(json!({
        "model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text"}]}]
    }))
    .unwrap_err();
    assert!(
        err.to_string().contains("invalid `text` ContentBlock"),
        "{err}"
    );
    // Unknown block types are kept, not rejected.
    let ok: aw::MessagesRequest = serde_json::from_value(json!({
        "model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "future_block", "x": 1}]}]
    }))
    .unwrap();
    assert!(
        matches!(&ok.messages[0].content, aw::Content::Blocks(b) if matches!(b[0], aw::ContentBlock::Other(_)))
    );
}

#[test]
fn a_chunk_that_is_not_an_object_ends_the_stream_in_an_error_wherever_it_comes() {
    // Chunks after the first are read leniently (their envelope is
    // skipped), but still only as objects.
    for bad in ["[]", "\"x\"", "5", "[0,{\"content\":\"x\"},null]"] {
        let mut body = stream(
            &[delta(json!({"role": "assistant", "content": "par"}))],
            false,
        );
        body.push_str(&format!("data: {bad}\n\n"));
        let (events, checked) = o2a(&body);
        assert_eq!(types(&events).last(), Some(&"error"), "{bad}");
        let message = checked.error.unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains("malformed chunk"), "{bad}: {message}");
        assert!(message.contains("ChatCompletionChunk"), "{bad}: {message}");
    }
}

/// The text of each text delta, in order.
fn text_deltas(events: &[ChatEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::BlockDelta {
                delta: llmgate::chat::BlockDelta::Text(t),
                ..
            } => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// The stream's message delta.
fn message_delta(events: &[ChatEvent]) -> &llmgate::chat::MessageDelta {
    match events
        .iter()
        .find(|e| matches!(e, ChatEvent::MessageDelta(_)))
    {
        Some(ChatEvent::MessageDelta(delta)) => delta,
        _ => panic!("no message delta: {events:?}"),
    }
}

#[test]
fn a_later_chunk_that_repeats_the_envelope_decodes_as_one_that_does_not() {
    // A later chunk that opens with the first chunk's envelope, byte for
    // byte, is read from its choices on; it must decode as one whose
    // envelope differs (which is read whole, the envelope skipped).
    let chunk = |created: u64, rest: &str| {
        format!(
            r#"data: {{"id":"chatcmpl-1","object":"chat.completion.chunk","created":{created},"model":"gpt-4o","system_fingerprint":"fp_1",{rest}}}"#
        )
    };
    let rests = [
        r#""choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]"#,
        r#""choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]"#,
        r#""choices":[{"index":0,"delta":{"content":"lo"},"logprobs":null,"finish_reason":null}],"obfuscation":"x1"}"#,
        r#""choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\""}}]},"finish_reason":null}]"#,
        r#""choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":null}]"#,
        r#""choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]"#,
        r#""usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12},"choices":[]"#,
    ];
    let body = |vary: bool| {
        let mut out = String::new();
        for (i, rest) in rests.iter().enumerate() {
            let created = 1_700_000_000 + if vary { i as u64 } else { 0 };
            out.push_str(&chunk(created, rest.trim_end_matches('}')));
            out.push_str("\n\n");
        }
        out + "data: [DONE]\n\n"
    };
    let repeated = openai_body_to_events(&body(false), Default::default());
    let varied = openai_body_to_events(&body(true), Default::default());
    assert_eq!(repeated, varied);
    let (frames, checked) = o2a(&body(false));
    assert_eq!(types(&frames).last(), Some(&"message_stop"), "{frames:?}");
    assert!(checked.error.is_none(), "{:?}", checked.error);
    assert_eq!(text_deltas(&repeated).concat(), "Hello");
    assert_eq!(message_delta(&repeated).usage.output_tokens, Some(7));

    // A malformed rest after a repeated envelope is reported where it is in
    // the chunk as it came.
    let bad = |created: u64| {
        let mut out = chunk(1_700_000_000, rests[0]) + "\n\n";
        out.push_str(&chunk(
            created,
            r#""choices":[{"index":0,"delta":{"content":"x"}},]"#,
        ));
        out + "\n\n"
    };
    let message = |created| match openai_body_to_events(&bad(created), Default::default()).pop() {
        Some(ChatEvent::Error(e)) => e.message,
        other => panic!("expected an error event, got {other:?}"),
    };
    let repeated = message(1_700_000_000);
    assert!(repeated.contains("malformed chunk"), "{repeated}");
    assert_eq!(repeated, message(1_700_000_009));

    // Nothing after a repeated envelope but its closing brace is a trailing
    // comma, an error as in a chunk read whole, not an empty chunk.
    for closing in ["}", " \t}"] {
        let mut body = chunk(1_700_000_000, rests[0]) + "\n\n";
        body.push_str(&chunk(1_700_000_000, "").replacen(",}", &format!(",{closing}"), 1));
        body.push_str("\n\n");
        match openai_body_to_events(&body, Default::default()).pop() {
            Some(ChatEvent::Error(e)) => {
                assert!(e.message.contains("trailing comma"), "{}", e.message)
            }
            other => panic!("expected an error event, got {other:?}"),
        }
    }
}

#[test]
fn later_chunks_keep_a_stop_sequence_skip_other_choices_and_carry_in_band_errors() {
    // Chunks after the first are read without their envelope; what they
    // carry must decode as the first chunk's full reading does.
    let stop_at = |reason: Value| {
        json!({"choices": [
            {"index": 1, "delta": {"content": "other choice"}, "finish_reason": null},
            {"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": reason}
        ]})
    };
    let opening = delta(json!({"role": "assistant", "content": "par"}));
    for (chunks, expected) in [
        // vLLM's matched stop sequence on a later chunk, and on the first.
        (vec![opening.clone(), stop_at(json!("###"))], Some("###")),
        (vec![stop_at(json!("###"))], Some("###")),
        // A stop token's id is no sequence.
        (vec![opening.clone(), stop_at(json!(128009))], None),
    ] {
        let events = openai_body_to_events(&stream(&chunks, true), Default::default());
        let texts = text_deltas(&events);
        assert!(!texts.contains(&"other choice"), "{texts:?}");
        let delta = message_delta(&events);
        assert_eq!(delta.stop_sequence.as_deref(), expected, "{chunks:?}");
        let sequence = matches!(
            delta.stop_reason,
            Some(llmgate::chat::StopReason::StopSequence)
        );
        assert_eq!(sequence, expected.is_some(), "{:?}", delta.stop_reason);
    }

    let error = json!({"error": {"message": "overloaded", "type": "server_error"}});
    let events = openai_body_to_events(&stream(&[opening, error], false), Default::default());
    match events.last() {
        Some(ChatEvent::Error(e)) => assert!(e.to_string().contains("overloaded"), "{e}"),
        other => panic!("expected an error event, got {other:?}"),
    }
}
