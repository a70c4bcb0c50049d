use crate::Format;
use crate::chat::Part;
use crate::wire::Map;

/// A complete response in the canonical model.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ChatResponse {
    /// The response id as the provider gave it.
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// The content, in order (thinking, text, tool calls, …).
    pub content: Vec<Part>,
    /// Why generation stopped.
    pub stop_reason: Option<StopReason>,
    /// The stop sequence that matched, if known.
    pub stop_sequence: Option<String>,
    /// Token usage.
    pub usage: Usage,
    /// Unix creation time (OpenAI `created`).
    pub created: Option<u64>,
    /// The wire format the response was decoded from: the owner of every
    /// `extra` map and [`Part::Other`] in it.
    pub origin: Option<Format>,
    /// Fields of the origin format that the model does not name.
    pub extra: Map,
}

impl ChatResponse {
    /// Whether the content holds a tool call.
    pub fn has_tool_calls(&self) -> bool {
        self.content.iter().any(|p| matches!(p, Part::ToolCall(_)))
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// A natural end (`end_turn` / `stop`).
    EndTurn,
    /// The output limit (`max_tokens` / `length`).
    MaxTokens,
    /// A stop sequence matched (Anthropic `stop_sequence`).
    StopSequence,
    /// The model called tools (`tool_use` / `tool_calls`).
    ToolUse,
    /// A long turn paused (Anthropic `pause_turn`).
    PauseTurn,
    /// A refusal or content filter (`refusal` / `content_filter`).
    Refusal,
    /// The context window is full (Anthropic `model_context_window_exceeded`).
    ContextWindowExceeded,
    /// Another value, kept as written (OpenAI `function_call`, future values).
    Other(String),
}

/// Token usage, with Anthropic's meaning of input tokens: `input_tokens`
/// excludes tokens read from or written to the prompt cache, so the whole
/// prompt is `input_tokens + cache_read_tokens + cache_write_tokens`.
/// `None` means the provider did not say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Usage {
    /// Prompt tokens neither read from nor written to the cache.
    pub input_tokens: Option<u64>,
    /// Output tokens, reasoning included.
    pub output_tokens: Option<u64>,
    /// Prompt tokens read from the cache.
    pub cache_read_tokens: Option<u64>,
    /// Prompt tokens written to the cache.
    pub cache_write_tokens: Option<u64>,
    /// Output tokens spent reasoning.
    pub reasoning_tokens: Option<u64>,
    /// Fields of the origin format that the model does not name.
    pub extra: Map,
}

impl Usage {
    /// The whole prompt: input plus cache reads and writes.
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens.unwrap_or(0)
            + self.cache_read_tokens.unwrap_or(0)
            + self.cache_write_tokens.unwrap_or(0)
    }

    /// Overwrites the fields `newer` sets (Anthropic `message_delta` usage
    /// replaces, field by field, what `message_start` said).
    pub fn update(&mut self, newer: Usage) {
        macro_rules! take {
            ($($f:ident),*) => { $( if newer.$f.is_some() { self.$f = newer.$f; } )* };
        }
        take!(
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            reasoning_tokens
        );
        self.extra.extend(newer.extra);
    }
}
