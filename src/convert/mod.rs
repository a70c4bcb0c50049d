//! Conversion between the wire formats and the canonical chat model,
//! following `conversion-spec.md` §1–§4.
//!
//! - [`anthropic`]: Anthropic Messages ⇄ chat (requests, responses, stream
//!   events).
//! - [`openai`]: OpenAI Chat Completions ⇄ chat, including the per-stream
//!   state machine that turns chunk streams into block-structured events
//!   ([`openai::ChunkDecoder`]) and the reverse ([`openai::ChunkEncoder`]).
//! - [`Accumulator`]: a stream of [`ChatEvent`](crate::chat::ChatEvent)s
//!   folded into a complete [`ChatResponse`](crate::chat::ChatResponse).
//!
//! Decoding (`*_from_wire`) is faithful; encoding (`*_to_wire`) applies the
//! target format's rules when the value came from the other format, and
//! writes back every kept field when it came from the same one, so that
//! Anthropic → chat → Anthropic and OpenAI → chat → OpenAI are identities.
//!
//! ```
//! use llmgate::convert::{anthropic, openai};
//! use llmgate::wire;
//!
//! let body = r#"{"model":"claude-haiku-4-5","max_tokens":256,
//!   "system":"Be brief.",
//!   "messages":[{"role":"user","content":"Hi"}]}"#;
//! let wire: wire::anthropic::MessagesRequest = serde_json::from_str(body).unwrap();
//! let chat = anthropic::request_from_wire(wire).unwrap();
//! let out = openai::request_to_wire(chat, &openai::RequestOptions::default()).unwrap();
//! let json = serde_json::to_value(&out).unwrap();
//! assert_eq!(json["messages"][0], serde_json::json!({"role":"system","content":"Be brief."}));
//! assert_eq!(json["max_completion_tokens"], 256);
//! ```

//!
//! What crosses between the formats and what is dropped on purpose:
//! [`crate::guide::conversion`].

mod accumulate;
pub mod anthropic;
pub mod openai;

use std::borrow::Cow;

use serde_json::Value;
use sha2::{Digest, Sha256};

pub use accumulate::Accumulator;

use crate::chat::{ChatRequest, Part, StopReason, Tool};
use crate::wire::Map;

/// The longest tool name OpenAI accepts.
pub const OPENAI_TOOL_NAME_MAX: usize = 64;

/// The name a tool has on an OpenAI-shaped upstream (conversion-spec
/// §1.8.2): names of at most 64 characters are kept; longer ones become
/// their first 55 characters, `_`, and the first 8 hex digits of their
/// SHA-256 (LiteLLM's scheme, for cross-implementation stability). An empty
/// name becomes `unnamed_tool`.
pub fn wire_tool_name(name: &str) -> Cow<'_, str> {
    if name.trim().is_empty() {
        return Cow::Borrowed("unnamed_tool");
    }
    if name.len() <= OPENAI_TOOL_NAME_MAX {
        return Cow::Borrowed(name);
    }
    let mut cut = 55;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = Sha256::digest(name.as_bytes());
    let mut out = String::with_capacity(64);
    out.push_str(&name[..cut]);
    out.push('_');
    for byte in &digest[..4] {
        out.push_str(&format!("{byte:02x}"));
    }
    Cow::Owned(out)
}

/// The reverse of [`wire_tool_name`] for one request: derived from the
/// request's tool list, so the gateway stays stateless.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolNames {
    /// (wire name, original name) for every name that changed.
    renamed: Vec<(String, String)>,
}

impl ToolNames {
    /// The renamed tools of `request` (its tool list and the tool calls in
    /// its history).
    pub fn for_request(request: &ChatRequest) -> Self {
        let mut renamed = Vec::new();
        let mut add = |name: &str| {
            if let Cow::Owned(wire) = wire_tool_name(name)
                && !renamed.iter().any(|(w, _)| *w == wire)
            {
                renamed.push((wire, name.to_owned()));
            }
        };
        for tool in request.tools.iter().flatten() {
            if let Tool::Function(f) = tool {
                add(&f.name);
            }
        }
        for msg in &request.messages {
            for part in &msg.content.parts {
                if let Part::ToolCall(call) = part {
                    add(&call.name);
                }
            }
        }
        Self { renamed }
    }

    /// Whether no name changed.
    pub fn is_empty(&self) -> bool {
        self.renamed.is_empty()
    }

    /// The client's name for a name the upstream used.
    pub fn original<'a>(&'a self, wire: &'a str) -> &'a str {
        self.renamed
            .iter()
            .find(|(w, _)| w == wire)
            .map_or(wire, |(_, original)| original.as_str())
    }
}

/// Reads tool-call argument text as a JSON object (conversion-spec §2.2
/// `parse_args`): empty or `null` is `{}`; an object is itself; a JSON string
/// holding an object is decoded once more; another value `v` is
/// `{"value": v}`; invalid JSON is repaired when closing its open strings,
/// arrays and objects makes it valid, and is otherwise kept as
/// `{"raw_arguments": text}` so that a client can reject it and the model
/// retry. Never fails.
pub fn parse_arguments(text: &str) -> Value {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed == "null" {
        return Value::Object(serde_json::Map::new());
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(m)) => Value::Object(m),
        Ok(Value::String(inner)) => match serde_json::from_str::<Value>(&inner) {
            Ok(Value::Object(m)) => Value::Object(m),
            _ => wrap("value", Value::String(inner)),
        },
        Ok(other) => wrap("value", other),
        Err(_) => match repair_json(trimmed).and_then(|s| serde_json::from_str(&s).ok()) {
            Some(Value::Object(m)) => Value::Object(m),
            _ => wrap("raw_arguments", Value::String(text.to_owned())),
        },
    }
}

fn wrap(key: &str, v: Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(key.to_owned(), v);
    Value::Object(m)
}

/// Closes the strings, arrays and objects that truncated JSON left open.
fn repair_json(s: &str) -> Option<String> {
    let mut stack = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    for c in s.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => stack.push('}'),
            '[' => stack.push(']'),
            '}' | ']' if stack.pop() != Some(c) => {
                return None;
            }
            _ => {}
        }
    }
    if stack.is_empty() && !in_string {
        return None;
    }
    let mut out = s.to_owned();
    if escaped {
        out.pop();
    }
    if in_string {
        out.push('"');
    }
    let trimmed_len = out.trim_end().trim_end_matches([',', ':']).len();
    out.truncate(trimmed_len);
    out.extend(stack.into_iter().rev());
    Some(out)
}

/// A tool-call id safe to replay to Anthropic (`[A-Za-z0-9_-]`, conversion-spec
/// §2.2 `sanitize_id`); a fresh `toolu_…` id when nothing is left.
pub fn anthropic_tool_id(id: &str) -> Cow<'_, str> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Cow::Borrowed(id);
    }
    let clean: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    if clean.is_empty() {
        Cow::Owned(random_id("toolu_"))
    } else {
        Cow::Owned(clean)
    }
}

/// `prefix` followed by 24 random base-62 characters (request, message
/// and tool call ids).
pub fn random_id(prefix: &str) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    // Ten base-62 digits fit a u64 (62^10 < 2^64), and a draw uniform below
    // 62^10 (fastrand's bounded draws are unbiased) has ten uniform,
    // independent digits: three draws for 24 characters instead of one
    // bounded draw each.
    const TEN_DIGITS: u64 = 62u64.pow(10);
    // One generator forked from the thread's: a single thread-local access.
    let mut rng = fastrand::Rng::new();
    let mut id = String::with_capacity(prefix.len() + 24);
    id.push_str(prefix);
    for digits in [10, 10, 4] {
        let mut n = rng.u64(..TEN_DIGITS);
        for _ in 0..digits {
            id.push(char::from(ALPHABET[(n % 62) as usize]));
            n /= 62;
        }
    }
    id
}

/// The message id an Anthropic client sees: `msg_…` ids are kept, others
/// lose a `chatcmpl-` prefix and gain `msg_`.
pub(crate) fn anthropic_message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else if id.is_empty() {
        random_id("msg_")
    } else {
        ["msg_", id.strip_prefix("chatcmpl-").unwrap_or(id)].concat()
    }
}

/// The completion id an OpenAI client sees: `chatcmpl-…` ids are kept,
/// others lose a `msg_` prefix and gain `chatcmpl-`.
pub(crate) fn openai_completion_id(id: &str) -> String {
    if id.starts_with("chatcmpl-") {
        id.to_owned()
    } else if id.is_empty() {
        random_id("chatcmpl-")
    } else {
        ["chatcmpl-", id.strip_prefix("msg_").unwrap_or(id)].concat()
    }
}

/// Anthropic `stop_reason` → canonical.
pub(crate) fn stop_reason_from_anthropic(s: &str) -> StopReason {
    match s {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "pause_turn" => StopReason::PauseTurn,
        "refusal" => StopReason::Refusal,
        "model_context_window_exceeded" => StopReason::ContextWindowExceeded,
        other => StopReason::Other(other.to_owned()),
    }
}

/// Canonical → Anthropic `stop_reason`. Values Anthropic does not have
/// become `end_turn` unless the value came from Anthropic itself.
pub(crate) fn stop_reason_to_anthropic(r: &StopReason, same_format: bool) -> String {
    match r {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::PauseTurn => "pause_turn",
        StopReason::Refusal => "refusal",
        StopReason::ContextWindowExceeded => "model_context_window_exceeded",
        StopReason::Other(s) if same_format => s,
        StopReason::Other(s) if s == "function_call" => "tool_use",
        StopReason::Other(_) => "end_turn",
    }
    .to_owned()
}

/// OpenAI `finish_reason` → canonical.
pub(crate) fn stop_reason_from_openai(s: &str) -> StopReason {
    match s {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "tool_calls" => StopReason::ToolUse,
        "content_filter" => StopReason::Refusal,
        other => StopReason::Other(other.to_owned()),
    }
}

/// Canonical → OpenAI `finish_reason` (conversion-spec §2.3, reverse).
pub(crate) fn stop_reason_to_openai(r: &StopReason, same_format: bool) -> String {
    match r {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::PauseTurn => "stop",
        StopReason::MaxTokens | StopReason::ContextWindowExceeded => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::Refusal => "content_filter",
        StopReason::Other(s) if same_format => s,
        StopReason::Other(_) => "stop",
    }
    .to_owned()
}

/// The stop reason to report, with the overrides of conversion-spec §2.3: a
/// response that holds tool calls stopped for `tool_use` (whatever the
/// upstream said, unless it ran out of tokens), and one that holds a refusal
/// stopped for `refusal`.
pub(crate) fn effective_stop_reason(
    reported: Option<StopReason>,
    has_tool_calls: bool,
    has_refusal: bool,
) -> StopReason {
    let reported = reported.unwrap_or(StopReason::EndTurn);
    if reported == StopReason::MaxTokens || reported == StopReason::ContextWindowExceeded {
        return reported;
    }
    if has_tool_calls {
        StopReason::ToolUse
    } else if has_refusal {
        StopReason::Refusal
    } else {
        reported
    }
}

/// Inserts `leftovers` under `key` in `extra` (the nested-object convention
/// of [`crate::chat`]): kept even when empty, as a record that the object
/// was there.
pub(crate) fn stash(extra: &mut Map, key: &str, leftovers: Map) {
    extra.insert(key.to_owned(), leftovers.into());
}

/// Takes back what [`stash`] stored under `key`.
pub(crate) fn unstash(extra: &mut Map, key: &str) -> Option<Map> {
    if extra.is_empty() {
        return None;
    }
    match extra.remove(key) {
        Some(Value::Object(m)) => Some(m.into()),
        Some(other) => {
            // Not ours: a real field of that name; put it back.
            extra.insert(key.to_owned(), other);
            None
        }
        None => None,
    }
}

/// A cheap estimate of a request's input tokens (about four characters a
/// token), for `message_start` when the upstream reports prompt tokens only
/// at the end (conversion-spec §3.3.5). The exact count arrives in the final
/// `message_delta`.
pub fn estimate_input_tokens(request: &ChatRequest) -> u64 {
    fn part_len(part: &Part) -> usize {
        match part {
            Part::Text(t) => t.text.len(),
            Part::ToolCall(c) => c.name.len() + c.arguments.as_json_str().len(),
            Part::ToolResult(r) => r.content.parts.iter().map(part_len).sum(),
            Part::Thinking(t) => t.text.len(),
            Part::Refusal(r) => r.text.len(),
            // An image costs roughly a thousand tokens whatever its size.
            Part::Image(_) => 4000,
            Part::Document(_) | Part::RedactedThinking(_) | Part::Other(_) => 400,
        }
    }
    let mut chars = 0usize;
    if let Some(system) = &request.system {
        chars += system.parts.iter().map(part_len).sum::<usize>();
    }
    for msg in &request.messages {
        chars += 16 + msg.content.parts.iter().map(part_len).sum::<usize>();
    }
    for tool in request.tools.iter().flatten() {
        chars += match tool {
            Tool::Function(f) => {
                f.name.len()
                    + f.description.as_ref().map_or(0, String::len)
                    + f.parameters.as_ref().map_or(0, |p| p.get().len())
            }
            Tool::Other(v) => crate::wire::value_to_string(v).len(),
        };
    }
    chars.div_ceil(4) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn random_ids_are_24_alphanumerics_after_the_prefix_and_differ() {
        let ids: Vec<String> = (0..64).map(|_| random_id("req_")).collect();
        for id in &ids {
            let rest = id.strip_prefix("req_").unwrap();
            assert_eq!(rest.len(), 24, "{id}");
            assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        }
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        // Every character of the alphabet turns up at every position: 2,000
        // ids leave a given character out of a given position with a
        // chance of (61/62)^2000 ≈ e^-32.
        let ids: Vec<String> = (0..2000).map(|_| random_id("")).collect();
        for pos in 0..24 {
            let seen: std::collections::HashSet<u8> =
                ids.iter().map(|id| id.as_bytes()[pos]).collect();
            assert_eq!(seen.len(), 62, "position {pos}");
        }
        // Any two positions are independent: equal in about 1 id in 62
        // (~32 of 2,000; 150 is more than twenty standard deviations off).
        for a in 0..24 {
            for b in a + 1..24 {
                let same = ids
                    .iter()
                    .filter(|id| id.as_bytes()[a] == id.as_bytes()[b])
                    .count();
                assert!(same < 150, "positions {a} and {b}: {same}");
            }
        }
    }

    #[test]
    fn long_tool_names_are_shortened_reversibly() {
        let long = format!("mcp__{}__tool", "server".repeat(12));
        assert!(long.len() > 64);
        let wire = wire_tool_name(&long);
        assert_eq!(wire.len(), 64);
        assert_eq!(&wire[..55], &long[..55]);
        assert_eq!(&wire[55..56], "_");
        let digest = Sha256::digest(long.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(&wire[56..], &hex[..8]);
        assert_eq!(wire_tool_name("get_weather"), "get_weather");
        let exactly_64 = "a".repeat(64);
        assert_eq!(wire_tool_name(&exactly_64), exactly_64);
    }

    #[test]
    fn parse_arguments_policy() {
        assert_eq!(parse_arguments(""), json!({}));
        assert_eq!(parse_arguments("  "), json!({}));
        assert_eq!(parse_arguments("null"), json!({}));
        assert_eq!(parse_arguments(r#"{"a":1}"#), json!({"a":1}));
        assert_eq!(parse_arguments(r#""{\"a\":1}""#), json!({"a":1}));
        assert_eq!(parse_arguments("[1,2]"), json!({"value":[1,2]}));
        assert_eq!(parse_arguments("3"), json!({"value":3}));
        assert_eq!(parse_arguments(r#"{"a":"b"#), json!({"a":"b"}));
        assert_eq!(parse_arguments(r#"{"a":[1,"#), json!({"a":[1]}));
        assert_eq!(
            parse_arguments(r#"{"a"}"#),
            json!({"raw_arguments": r#"{"a"}"#})
        );
        assert_eq!(
            parse_arguments(r#"{"a":1}{"b":2}"#),
            json!({"raw_arguments": r#"{"a":1}{"b":2}"#})
        );
    }

    #[test]
    fn json_held_as_text_fails_loudly_where_a_tree_cannot_hold_it() {
        use crate::ErrorKind;
        use crate::wire::anthropic as aw;
        // A null `schema` is passed on, not dropped with its format.
        let req = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"q"}],
                "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":null}}}"#,
        )
        .unwrap();
        let chat = openai::request_from_wire(req).unwrap();
        let out = anthropic::request_to_wire(chat, &Default::default()).unwrap();
        let format = out.output_config.and_then(|c| c.format);
        assert_eq!(
            format.as_ref().map(|f| f.get()),
            Some(r#"{"type":"json_schema","schema":null}"#)
        );
        // Text read as a value takes a lone surrogate (`\udc00`), which no
        // tree holds: where the gateway needs a tree, it is a 400, never a
        // `null` in its place.
        let messages = r#""messages":[{"role":"user","content":"q"}]"#;
        for body in [
            // A server tool (kept whole, as a tree) with such a schema.
            format!(
                r#"{{"model":"m","max_tokens":1,{messages},
                    "tools":[{{"type":"web_search_20250305","name":"web","input_schema":{{"d":"\udc00"}}}}]}}"#
            ),
            // An `output_config.format` of a shape the model does not name.
            format!(
                r#"{{"model":"m","max_tokens":1,{messages},
                    "output_config":{{"format":{{"type":"regex","pattern":"\udc00"}}}}}}"#
            ),
        ] {
            let req: aw::MessagesRequest = serde_json::from_str(&body).unwrap();
            let err = anthropic::request_from_wire(req).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidRequest, "{body}");
            assert!(err.message.contains("surrogate"), "{}", err.message);
        }
        // A block of an unknown type, its `type` last, kept as a tree.
        let block = r#"{"payload":"\udc00","type":"future_block"}"#;
        assert!(serde_json::from_str::<aw::ContentBlock>(block).is_err());
        // A block whose `type` comes last is read from each field's text;
        // an error there names one position, the body's.
        let err = serde_json::from_str::<aw::ContentBlock>(r#"{"text":5,"type":"text"}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(err.matches(" at line ").count(), 1, "{err}");
        assert!(err.contains("invalid type: integer `5`"), "{err}");
    }

    #[test]
    fn tool_ids_are_sanitised_for_anthropic() {
        assert_eq!(anthropic_tool_id("call_abc-1"), "call_abc-1");
        assert_eq!(anthropic_tool_id("functions.Bash:0"), "functionsBash0");
        assert!(anthropic_tool_id("...").starts_with("toolu_"));
        assert!(anthropic_tool_id("").starts_with("toolu_"));
    }

    #[test]
    fn ids_swap_prefixes() {
        assert_eq!(anthropic_message_id("chatcmpl-ABC"), "msg_ABC");
        assert_eq!(anthropic_message_id("msg_1"), "msg_1");
        assert_eq!(openai_completion_id("msg_1"), "chatcmpl-1");
        assert_eq!(openai_completion_id("chatcmpl-1"), "chatcmpl-1");
    }
}
