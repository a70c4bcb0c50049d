//! Helpers shared by the integration tests: fixture loading, stream
//! conversion drivers, and a strict checker of Anthropic event streams.

use bytes::BytesMut;
use llmgate::Format;
use llmgate::chat::{ChatEvent, ChatResponse};
use llmgate::convert::{Accumulator, anthropic, openai};
use llmgate::sse::{SseDecoder, SseEvent};
use serde_json::{Value, json};

/// A fixture's text without its one-line `SOURCE:` header.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    match text.split_once('\n') {
        Some((first, rest)) if first.contains("SOURCE:") => rest.to_owned(),
        _ => text,
    }
}

/// The JSON lines of an `expected/*.jsonl` file (`[DONE]` as the string).
pub fn expected_lines(name: &str) -> Vec<Value> {
    fixture(&format!("expected/{name}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| Value::String(l.trim().to_owned())))
        .collect()
}

/// The JSON value after `# accumulated content: ` in an
/// `expected/*.accumulated.txt` file.
pub fn expected_accumulated(name: &str) -> Value {
    let text = fixture(&format!("expected/{name}"));
    let json = text
        .trim()
        .strip_prefix("# accumulated content:")
        .expect("accumulated header");
    serde_json::from_str(json.trim()).expect("accumulated json")
}

/// Every SSE event of a whole body.
pub fn sse_events(body: &[u8]) -> Vec<SseEvent> {
    let mut decoder = SseDecoder::new();
    let mut out = Vec::new();
    decoder.feed(body, &mut out).expect("sse");
    decoder.finish(&mut out).expect("sse");
    out
}

/// An OpenAI SSE body → canonical events (the §3.3 state machine).
pub fn openai_body_to_events(body: &str, opts: openai::DecoderOptions) -> Vec<ChatEvent> {
    let mut decoder = openai::ChunkDecoder::new(opts);
    let mut events = Vec::new();
    for ev in sse_events(body.as_bytes()) {
        decoder.push_data(&ev.data, &mut events);
    }
    decoder.finish(&mut events);
    events
}

/// An Anthropic SSE body → canonical events.
pub fn anthropic_body_to_events(body: &str) -> Vec<ChatEvent> {
    let mut decoder = anthropic::EventDecoder::new();
    let mut events = Vec::new();
    for ev in sse_events(body.as_bytes()) {
        decoder.push_data(&ev.data, &mut events);
    }
    decoder.finish(&mut events);
    events
}

/// Sets the model of the message start (the gateway echoes the model the
/// client asked for).
pub fn with_model(mut events: Vec<ChatEvent>, name: &str) -> Vec<ChatEvent> {
    for ev in &mut events {
        if let ChatEvent::MessageStart(start) = ev {
            start.model = name.to_owned();
        }
    }
    events
}

/// Canonical events → Anthropic SSE bytes.
pub fn events_to_anthropic_sse(events: Vec<ChatEvent>, upstream: Option<Format>) -> BytesMut {
    let mut encoder = anthropic::EventEncoder::new(upstream);
    let mut buf = BytesMut::new();
    for ev in events {
        encoder.encode(ev, &mut buf);
    }
    buf
}

/// Checks that both encoders' `encode` (which writes deltas straight into
/// the frame) writes the bytes of building each wire frame with `to_wire`
/// and writing it, for `events` from `upstream`.
pub fn assert_encoders_write_their_wire_frames(events: &[ChatEvent], upstream: Option<Format>) {
    for reasoning in [false, true] {
        let options = openai::EncoderOptions::default()
            .include_usage(true)
            .reasoning_content(reasoning);
        let mut encoder = openai::ChunkEncoder::new(options.clone(), upstream);
        let mut want = BytesMut::new();
        for ev in events.iter().cloned() {
            let mut frames = Vec::new();
            encoder.to_wire(ev, &mut frames);
            for frame in &frames {
                frame.write(&mut want);
            }
        }
        let got = events_to_openai_sse(events.to_vec(), options, upstream);
        assert_eq!(
            blank_created(std::str::from_utf8(&got).unwrap()),
            blank_created(std::str::from_utf8(&want).unwrap()),
            "OpenAI chunks (reasoning_content: {reasoning})"
        );
    }
    let mut encoder = anthropic::EventEncoder::new(upstream);
    let mut want = BytesMut::new();
    for ev in events.iter().cloned() {
        if let Some(wire) = encoder.to_wire(ev) {
            anthropic::write_event(&wire, &mut want);
        }
    }
    let got = events_to_anthropic_sse(events.to_vec(), upstream);
    assert_eq!(
        std::str::from_utf8(&got).unwrap(),
        std::str::from_utf8(&want).unwrap(),
        "Anthropic events"
    );
}

/// `"created":` values set to 0. Each encoder stamps `created` from the
/// clock at its message start (unless the upstream's is kept), so two
/// encoders of one stream can straddle a second.
fn blank_created(text: &str) -> String {
    const KEY: &str = "\"created\":";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(KEY) {
        let (head, tail) = rest.split_at(i + KEY.len());
        out.push_str(head);
        out.push('0');
        rest = &tail[tail.bytes().take_while(u8::is_ascii_digit).count()..];
    }
    out.push_str(rest);
    out
}

/// Canonical events → OpenAI SSE bytes.
pub fn events_to_openai_sse(
    events: Vec<ChatEvent>,
    opts: openai::EncoderOptions,
    upstream: Option<Format>,
) -> BytesMut {
    let mut encoder = openai::ChunkEncoder::new(opts, upstream);
    let mut buf = BytesMut::new();
    for ev in events {
        encoder.encode(ev, &mut buf);
    }
    buf
}

/// An Anthropic SSE body as (event name, JSON data) pairs.
pub fn named_json_events(body: &[u8]) -> Vec<(String, Value)> {
    sse_events(body)
        .into_iter()
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).expect("event data is JSON");
            (e.event.unwrap_or_default(), data)
        })
        .collect()
}

/// An OpenAI SSE body as JSON values (`[DONE]` as the string).
pub fn openai_frames(body: &[u8]) -> Vec<Value> {
    sse_events(body)
        .into_iter()
        .map(|e| {
            assert!(e.event.is_none(), "OpenAI frames carry no event name");
            serde_json::from_str(&e.data).unwrap_or(Value::String(e.data))
        })
        .collect()
}

/// Folds canonical events into a response.
pub fn accumulate(events: Vec<ChatEvent>, origin: Option<Format>) -> ChatResponse {
    let mut acc = Accumulator::new(origin);
    for ev in events {
        acc.push(ev).expect("no error event");
    }
    acc.finish().expect("complete stream")
}

/// What a strict client makes of an Anthropic stream.
#[derive(Debug, Default)]
pub struct Checked {
    /// The message as the official SDK's accumulator builds it.
    pub message: Value,
    /// The stream ended in an `error` event (its `error` object).
    pub error: Option<Value>,
}

/// Checks an Anthropic SSE stream against conversion-spec §3.1 invariants
/// 1–9 and replays it through the SDK accumulator's rules (append on start,
/// address by index, type-matched deltas, cumulative usage that replaces,
/// tool input parsed at the end). Panics, naming the broken rule.
pub fn check_anthropic_stream(body: &[u8]) -> Checked {
    let events = named_json_events(body);
    assert!(!events.is_empty(), "empty stream");
    let mut message: Option<Value> = None;
    let mut open: Option<(u64, String)> = None;
    let mut next_index = 0u64;
    let mut json_buf: Vec<String> = Vec::new();
    let mut last_was_signature = false;
    let mut truncated_tool_input = false;
    let mut saw_delta = false;
    let mut ended = false;
    let mut error = None;
    for (i, (name, data)) in events.iter().enumerate() {
        assert!(!ended, "event after message_stop/error: {name}");
        let ty = data["type"].as_str().expect("data has a type");
        assert_eq!(name, ty, "event name matches data.type (inv. SSE)");
        if i == 0 {
            assert!(
                ty == "message_start" || ty == "error",
                "first event is message_start (inv. 1), got {ty}"
            );
        }
        if last_was_signature {
            assert_eq!(
                ty, "content_block_stop",
                "signature_delta comes just before content_block_stop (inv. 9)"
            );
            last_was_signature = false;
        }
        match ty {
            "message_start" => {
                assert!(message.is_none(), "exactly one message_start (inv. 1)");
                let m = data["message"].clone();
                assert!(
                    m["stop_reason"].is_null(),
                    "message_start stop_reason is null (inv. 7)"
                );
                assert_eq!(m["content"], json!([]));
                message = Some(m);
            }
            "content_block_start" => {
                assert!(open.is_none(), "at most one block open (inv. 3)");
                assert!(!saw_delta, "no block after message_delta (inv. 5)");
                let index = data["index"].as_u64().expect("index");
                assert_eq!(index, next_index, "contiguous block indexes (inv. 2)");
                next_index += 1;
                let block = data["content_block"].clone();
                let kind = block["type"].as_str().expect("block type").to_owned();
                let msg = message.as_mut().expect("message_start first");
                msg["content"].as_array_mut().expect("content").push(block);
                json_buf.push(String::new());
                open = Some((index, kind));
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().expect("index");
                let (open_index, kind) = open.as_ref().expect("delta for an open block (inv. 2)");
                assert_eq!(
                    index, *open_index,
                    "delta addresses the open block (inv. 2/3)"
                );
                let delta = &data["delta"];
                let dty = delta["type"].as_str().expect("delta type");
                let block = &mut message.as_mut().unwrap()["content"][index as usize];
                match (kind.as_str(), dty) {
                    ("text", "text_delta") => {
                        let t = block["text"].as_str().unwrap().to_owned()
                            + delta["text"].as_str().unwrap();
                        block["text"] = Value::String(t);
                    }
                    ("tool_use" | "server_tool_use", "input_json_delta") => {
                        json_buf[index as usize].push_str(delta["partial_json"].as_str().unwrap());
                    }
                    ("thinking", "thinking_delta") => {
                        let t = block["thinking"].as_str().unwrap().to_owned()
                            + delta["thinking"].as_str().unwrap();
                        block["thinking"] = Value::String(t);
                    }
                    ("thinking", "signature_delta") => {
                        block["signature"] = delta["signature"].clone();
                        last_was_signature = true;
                    }
                    (k, d) => panic!("delta type {d} does not match block type {k} (inv. 4)"),
                }
            }
            "content_block_stop" => {
                let index = data["index"].as_u64().expect("index");
                let (open_index, kind) = open.take().expect("stop for an open block (inv. 2)");
                assert_eq!(index, open_index, "stop closes the open block");
                if kind == "tool_use" && !json_buf[index as usize].is_empty() {
                    match serde_json::from_str::<Value>(&json_buf[index as usize]) {
                        Ok(input) => {
                            message.as_mut().unwrap()["content"][index as usize]["input"] = input
                        }
                        // Only a message cut by max_tokens may end a tool
                        // input mid-JSON (the SDK parses it leniently).
                        Err(_) => truncated_tool_input = true,
                    }
                }
            }
            "message_delta" => {
                assert!(
                    open.is_none(),
                    "every block closed before message_delta (inv. 5)"
                );
                saw_delta = true;
                let d = &data["delta"];
                assert!(
                    d.get("stop_sequence").is_some(),
                    "message_delta.delta.stop_sequence present (inv. 7)"
                );
                assert!(
                    !d["stop_reason"].is_null(),
                    "final stop_reason non-null (inv. 7)"
                );
                assert!(
                    !truncated_tool_input || d["stop_reason"] == "max_tokens",
                    "tool input is valid JSON at block stop unless max_tokens cut it"
                );
                let msg = message.as_mut().expect("message_start first");
                msg["stop_reason"] = d["stop_reason"].clone();
                msg["stop_sequence"] = d["stop_sequence"].clone();
                // Usage replaces, field by field (inv. 6).
                if let Some(usage) = data["usage"].as_object() {
                    for (k, v) in usage {
                        msg["usage"][k] = v.clone();
                    }
                }
            }
            "message_stop" => {
                assert!(saw_delta, "message_delta before message_stop");
                ended = true;
            }
            "ping" => {}
            "error" => {
                assert!(data["error"]["type"].is_string() && data["error"]["message"].is_string());
                error = Some(data["error"].clone());
                ended = true;
            }
            other => panic!("unknown event type {other}"),
        }
    }
    assert!(ended, "stream ends in message_stop or error (inv. 8)");
    Checked {
        message: message.unwrap_or(Value::Null),
        error,
    }
}

/// Removes the envelope fields the expected chunk files omit.
pub fn strip_envelope(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
        o.remove("created");
        o.remove("model");
    }
    v
}
