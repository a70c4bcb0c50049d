//! Realistic payloads shared by the benchmarks.
#![allow(dead_code)]

use serde_json::{Value, json};

/// An Anthropic request as a coding agent sends it: a long system prompt,
/// ten tools with JSON schemas, and twenty turns of tool use and tool
/// results (about 30 KB).
pub fn large_anthropic_request() -> Value {
    let tools: Vec<Value> = (0..10)
        .map(|i| {
            json!({
                "name": format!("tool_{i}_{}", ["read_file", "write_file", "search", "run_shell", "list_dir"][i % 5]),
                "description": format!("Tool number {i}. {}", "It does something useful with the workspace and returns a result. ".repeat(3)),
                "input_schema": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string", "description": "A path relative to the workspace root."},
                        "pattern": {"type": "string", "description": "A glob or a regular expression."},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "recursive": {"type": "boolean"}
                    },
                    "required": ["path"]
                }
            })
        })
        .collect();
    let mut messages = vec![
        json!({"role": "user", "content": "Please refactor the parser module and make the tests pass."}),
    ];
    for turn in 0..20 {
        let id = format!("toolu_01{turn:022}");
        messages.push(json!({"role": "assistant", "content": [
            {"type": "text", "text": format!("Step {turn}: I will look at the next file to understand how it is used.")},
            {"type": "tool_use", "id": id, "name": format!("tool_{}_read_file", turn % 10),
             "input": {"path": format!("src/module_{turn}/parser.rs"), "limit": 200, "recursive": false}}
        ]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "content": format!(
                "// file src/module_{turn}/parser.rs\n{}",
                "fn parse(input: &str) -> Result<Ast, Error> { let tokens = lex(input)?; build(tokens) }\n".repeat(9)
            )}
        ]}));
    }
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 8192,
        "stream": true,
        "system": [{"type": "text", "text": "You are a careful coding agent. ".repeat(40), "cache_control": {"type": "ephemeral"}}],
        "tools": tools,
        "messages": messages,
        "metadata": {"user_id": "user_0123456789"}
    })
}

/// An OpenAI SSE body of `n` chunks: role, text deltas, one tool call in
/// fragments, finish, usage, `[DONE]`.
pub fn openai_stream(n: usize) -> String {
    let envelope = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1727346178,
               "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_5050236cbd",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let mut out = String::new();
    let mut push = |v: Value| out.push_str(&format!("data: {v}\n\n"));
    push(envelope(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    ));
    let tool_frags = n / 5;
    let text_chunks = n.saturating_sub(tool_frags + 4);
    for i in 0..text_chunks {
        push(envelope(
            json!({"content": format!(" word{i}")}),
            Value::Null,
        ));
    }
    push(envelope(
        json!({"tool_calls": [{"index": 0, "id": "call_bench", "type": "function", "function": {"name": "search", "arguments": ""}}]}),
        Value::Null,
    ));
    for i in 0..tool_frags {
        let frag = if i == 0 {
            "{\"q\": \"".to_owned()
        } else if i + 1 == tool_frags {
            "x\"}".to_owned()
        } else {
            format!("t{i} ")
        };
        push(envelope(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": frag}}]}),
            Value::Null,
        ));
    }
    push(envelope(json!({}), json!("tool_calls")));
    push(
        json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1727346178, "model": "gpt-4o-2024-08-06",
                "choices": [], "usage": {"prompt_tokens": 9000, "completion_tokens": n, "total_tokens": 9000 + n}}),
    );
    out.push_str("data: [DONE]\n\n");
    out
}
