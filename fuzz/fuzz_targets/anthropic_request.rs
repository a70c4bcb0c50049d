//! An Anthropic client's request body of any bytes: decoded, converted into
//! the canonical model, and encoded for both formats; never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmgate::convert::{anthropic, openai};
use llmgate::wire::anthropic::MessagesRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(wire) = serde_json::from_slice::<MessagesRequest>(data) else {
        return;
    };
    let Ok(chat) = anthropic::request_from_wire(wire) else {
        return;
    };
    let _ = llmgate::convert::estimate_input_tokens(&chat);
    let _ = llmgate::convert::ToolNames::for_request(&chat);
    if let Ok(out) = anthropic::request_to_wire(chat.clone(), &Default::default()) {
        let _ = serde_json::to_vec(&out);
    }
    let opts = openai::RequestOptions::default().reasoning_model(true).reasoning_content(true);
    if let Ok(out) = openai::request_to_wire(chat, &opts) {
        let _ = serde_json::to_vec(&out);
    }
});
