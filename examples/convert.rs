//! A conversion a newcomer can read: an Anthropic request with a tool result
//! becomes the OpenAI request an OpenAI-compatible upstream expects, and the
//! upstream's streamed answer becomes the Anthropic event stream the client
//! expects.
//!
//! Run with `cargo run --example convert`.

use bytes::BytesMut;
use llmgate::Format;
use llmgate::convert::{anthropic, openai};
use llmgate::sse::SseDecoder;

const CLIENT_REQUEST: &str = r#"{
  "model": "claude-sonnet-4-5",
  "max_tokens": 1024,
  "stream": true,
  "system": [{"type": "text", "text": "You are a weather bot.", "cache_control": {"type": "ephemeral"}}],
  "tools": [{"name": "get_weather", "description": "Weather for a city",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
  "messages": [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"role": "assistant", "content": [
      {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}]},
    {"role": "user", "content": [
      {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C, cloudy"},
      {"type": "text", "text": "Now Rome, please."}]}
  ]
}"#;

const UPSTREAM_STREAM: &str = "\
data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Checking Rome. \"},\"finish_reason\":null}]}

data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"ci\"}}]},\"finish_reason\":null}]}

data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ty\\\": \\\"Rome\\\"}\"}}]},\"finish_reason\":null}]}

data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}

data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":18,\"total_tokens\":138}}

data: [DONE]

";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. The client's Anthropic request, decoded into the canonical model.
    let wire = serde_json::from_str(CLIENT_REQUEST)?;
    let mut chat = anthropic::request_from_wire(wire)?;
    // The gateway would resolve the model here; we pick one by hand.
    chat.model = "gpt-4o".into();
    // Remember what the stream converter needs from the request.
    let decoder_options = openai::DecoderOptions::for_request(&chat);

    // 2. Encoded for an OpenAI-compatible upstream: the tool result became a
    //    `tool` message, the system prompt a system message, cache_control is
    //    gone, and the stream asks for usage.
    let upstream = openai::request_to_wire(chat, &openai::RequestOptions::default())?;
    println!("=== request sent upstream (OpenAI) ===");
    println!("{}\n", serde_json::to_string_pretty(&upstream)?);

    // 3. The upstream's chunk stream, cut into arbitrary network reads, turned
    //    into the Anthropic events the client reads.
    let mut sse = SseDecoder::new();
    let mut decoder = openai::ChunkDecoder::new(decoder_options);
    let mut encoder = anthropic::EventEncoder::new(Some(Format::OpenAi));
    let (mut frames, mut events, mut out) = (Vec::new(), Vec::new(), BytesMut::new());
    for read in UPSTREAM_STREAM.as_bytes().chunks(37) {
        sse.feed(read, &mut frames)?;
        for frame in frames.drain(..) {
            decoder.push_data(&frame.data, &mut events);
        }
    }
    sse.finish(&mut frames)?;
    for frame in frames.drain(..) {
        decoder.push_data(&frame.data, &mut events);
    }
    decoder.finish(&mut events);
    for event in events {
        encoder.encode(event, &mut out);
    }
    println!("=== stream sent to the client (Anthropic SSE) ===");
    print!("{}", String::from_utf8_lossy(&out));
    Ok(())
}
