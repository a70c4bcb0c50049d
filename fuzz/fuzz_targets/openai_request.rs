//! An OpenAI client's request body of any bytes: decoded, converted into the
//! canonical model, and encoded for both formats; never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmgate::convert::{anthropic, openai};
use llmgate::wire::openai::ChatCompletionRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(wire) = serde_json::from_slice::<ChatCompletionRequest>(data) else {
        return;
    };
    let Ok(chat) = openai::request_from_wire(wire) else {
        return;
    };
    if let Ok(out) = openai::request_to_wire(chat.clone(), &Default::default()) {
        let _ = serde_json::to_vec(&out);
    }
    if let Ok(out) = anthropic::request_to_wire(chat, &Default::default()) {
        let _ = serde_json::to_vec(&out);
    }
});
