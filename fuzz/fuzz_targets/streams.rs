//! Upstream stream bodies and complete responses of any bytes, through every
//! converter in both directions; never panics, and the Anthropic streams
//! produced always end in message_stop or error.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use llmgate::Format;
use llmgate::chat::ChatEvent;
use llmgate::convert::{Accumulator, anthropic, openai};
use llmgate::sse::SseDecoder;

fn run(events: Vec<ChatEvent>, upstream: Format) {
    let mut a = anthropic::EventEncoder::new(Some(upstream));
    let mut o = openai::ChunkEncoder::new(openai::EncoderOptions::default().include_usage(true), Some(upstream));
    let mut acc = Accumulator::new(Some(upstream));
    let mut buf = BytesMut::new();
    let last_is_terminal = matches!(events.last(), Some(ChatEvent::MessageStop | ChatEvent::Error(_)));
    assert!(last_is_terminal, "a converted stream ends in message_stop or error");
    for ev in events {
        a.encode(ev.clone(), &mut buf);
        o.encode(ev.clone(), &mut buf);
        let _ = acc.push(ev);
    }
    if let Ok(resp) = acc.finish() {
        let _ = serde_json::to_vec(&anthropic::response_to_wire(resp.clone()));
        let _ = serde_json::to_vec(&openai::response_to_wire(resp, &Default::default()));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut sse = SseDecoder::with_max_event_size(1 << 16);
    let mut frames = Vec::new();
    if sse.feed(data, &mut frames).is_err() || sse.finish(&mut frames).is_err() {
        return;
    }
    let mut o = openai::ChunkDecoder::new(Default::default());
    let mut b = openai::ChunkDecoder::new(openai::DecoderOptions::default().buffer_tool_calls(true));
    let mut a = anthropic::EventDecoder::new();
    let (mut oe, mut be, mut ae) = (Vec::new(), Vec::new(), Vec::new());
    for f in &frames {
        o.push_data(&f.data, &mut oe);
        b.push_data(&f.data, &mut be);
        a.push_data(&f.data, &mut ae);
    }
    o.finish(&mut oe);
    b.finish(&mut be);
    a.finish(&mut ae);
    run(oe, Format::OpenAi);
    run(be, Format::OpenAi);
    run(ae, Format::Anthropic);
    // The same bytes as a complete response body.
    if let Ok(resp) = serde_json::from_slice(data) {
        if let Ok(chat) = openai::response_from_wire(resp, &Default::default()) {
            let _ = serde_json::to_vec(&anthropic::response_to_wire(chat));
        }
    }
    if let Ok(resp) = serde_json::from_slice(data) {
        let chat = anthropic::response_from_wire(resp);
        let _ = serde_json::to_vec(&openai::response_to_wire(chat, &Default::default()));
    }
});
