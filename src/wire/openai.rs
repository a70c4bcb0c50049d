//! OpenAI Chat Completions wire types: `POST /v1/chat/completions` request and
//! response, stream chunks, and error bodies.
//!
//! Fields whose `null` differs from their absence in real traffic (a chunk's
//! `usage: null`, an assistant message's `content: null`) are
//! `Option<Option<T>>`: `None` absent, `Some(None)` null.

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use super::{Map, is_empty_map, nullable, string_or_seq, tagged_union};

// === Requests ===

/// A `POST /v1/chat/completions` request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    /// The model to use.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Legacy output limit (rejected by reasoning models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Output limit, reasoning tokens included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// Sampling temperature (0–2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Number>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<Number>,
    /// Stop sequences: one string or up to four.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Stream the response as chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Stream options (`include_usage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Tool definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model may use the tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether several tool calls may come in one turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Output format (`text`, `json_object`, `json_schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// Number of choices to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Return log probabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    /// Reasoning effort (`none` … `max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// An end-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Key/value tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map>,
    /// Fields not named above (`top_logprobs`, `logit_bias`, penalties, …).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// `stop`: one string or a list.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// `"stop": "x"`.
    One(String),
    /// `"stop": ["x", "y"]`.
    Many(Vec<String>),
}
string_or_seq!(Stop, One, Many, String, "a string or an array of strings");

/// `stream_options`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Send a final chunk with the usage of the whole request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// One message of the conversation, any role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// The content: absent, `null`, a string, or parts.
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub content: Option<Option<MessageContent>>,
    /// A participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool calls made by the assistant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The tool call a `tool` message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// An assistant refusal.
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Option<String>>,
    /// Reasoning text (non-standard; DeepSeek, vLLM, SGLang, LiteLLM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Reasoning text (non-standard; OpenRouter, newer vLLM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Fields not named above (`function_call`, `audio`, `annotations`, …).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// The role of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// System instructions.
    System,
    /// Developer instructions (newer models' name for system).
    Developer,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
    /// A legacy function result.
    Function,
}

/// Message content: a string or parts.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageContent {
    /// `"content": "text"`.
    Text(String),
    /// `"content": [parts]`.
    Parts(Vec<ContentPart>),
}
string_or_seq!(
    MessageContent,
    Text,
    Parts,
    ContentPart,
    "a string or an array of content parts"
);

tagged_union! {
    /// A content part.
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub enum ContentPart {
        /// `text`.
        "text" => Text(TextPart),
        /// `image_url`.
        "image_url" => ImageUrl(ImageUrlPart),
        /// `file`.
        "file" => File(FilePart),
        /// `refusal` (assistant).
        "refusal" => Refusal(RefusalPart),
        Other,
    }
}

/// A `text` part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextPart {
    /// The text.
    pub text: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// An `image_url` part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageUrlPart {
    /// The image.
    pub image_url: ImageUrl,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// The `image_url` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// An http(s) URL or a `data:` URL.
    pub url: String,
    /// `auto`, `low` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// A `file` part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilePart {
    /// The file.
    pub file: FileRef,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// The `file` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    /// A `data:` URL with the file's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    /// An uploaded file's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// The file's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// A `refusal` part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusalPart {
    /// The refusal text.
    pub refusal: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

tagged_union! {
    /// A tool call in an assistant message or a response.
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub enum ToolCall {
        /// `function`.
        "function" => Function(FunctionToolCall),
        Other,
    }
}

/// A function tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionToolCall {
    /// The call's id (`call_…`).
    pub id: String,
    /// The function and its arguments.
    pub function: FunctionCall,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// The function of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The function's name.
    pub name: String,
    /// The arguments, as JSON text.
    pub arguments: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

tagged_union! {
    /// A tool definition.
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub enum Tool {
        /// `function`.
        "function" => Function(FunctionTool),
        Other,
    }
}

/// A function tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionTool {
    /// The function.
    pub function: FunctionDefinition,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// A function definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    /// `[a-zA-Z0-9_-]{1,64}`.
    pub name: String,
    /// What the function does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Structured-outputs strict mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// `tool_choice`: `"none"`, `"auto"`, `"required"`, or an object.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    /// `"none"`, `"auto"` or `"required"` (other strings are kept as is).
    Mode(String),
    /// `{"type":"function","function":{"name":…}}`, or another object
    /// (`allowed_tools`, …) kept whole.
    Object(Value),
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(ToolChoice::Mode(s)),
            v @ Value::Object(_) => Ok(ToolChoice::Object(v)),
            _ => Err(serde::de::Error::custom(
                "tool_choice must be a string or an object",
            )),
        }
    }
}

impl Serialize for ToolChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ToolChoice::Mode(m) => s.serialize_str(m),
            ToolChoice::Object(v) => v.serialize(s),
        }
    }
}

impl ToolChoice {
    /// The function name of `{"type":"function","function":{"name":…}}`.
    pub fn function_name(&self) -> Option<&str> {
        match self {
            ToolChoice::Object(v) if v.get("type").and_then(Value::as_str) == Some("function") => {
                v.get("function")?.get("name")?.as_str()
            }
            _ => None,
        }
    }
}

// === Responses ===

/// A `POST /v1/chat/completions` response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// The completion id (`chatcmpl-…`).
    pub id: String,
    /// Always `"chat.completion"`.
    #[serde(default = "completion_object")]
    pub object: String,
    /// Unix time of creation.
    #[serde(default)]
    pub created: u64,
    /// The model that answered.
    pub model: String,
    /// The choices (one, since the gateway never sets `n`).
    pub choices: Vec<Choice>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Fields not named above (`system_fingerprint`, `service_tier`, …).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

fn completion_object() -> String {
    "chat.completion".to_owned()
}

/// One choice of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The choice's index.
    #[serde(default)]
    pub index: u32,
    /// The message.
    pub message: ChatMessage,
    /// `stop`, `length`, `tool_calls`, `content_filter` or `function_call`.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Fields not named above (`logprobs`, and vendors' `stop_reason`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// Token usage. `prompt_tokens` includes cached tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens, cached ones included.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens, reasoning included.
    #[serde(default)]
    pub completion_tokens: u64,
    /// The sum of the two.
    #[serde(default)]
    pub total_tokens: u64,
    /// Input detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Output detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Input tokens read from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Input tokens written to the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
    /// Fields not named above (`audio_tokens`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// `usage.completion_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    /// Output tokens spent reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

// === Stream chunks ===

/// One `data:` payload of a streamed response: a chunk, or (from a failing
/// upstream) `{"error":{…}}` with no chunk fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// The completion id, the same in every chunk.
    #[serde(default)]
    pub id: String,
    /// Always `"chat.completion.chunk"`.
    #[serde(default = "chunk_object")]
    pub object: String,
    /// Unix time of creation.
    #[serde(default)]
    pub created: u64,
    /// The model.
    #[serde(default)]
    pub model: String,
    /// The choice deltas; empty in the final usage chunk.
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Usage: `null` on every chunk but the last when `include_usage` is set.
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
    /// An in-band error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    /// Fields not named above (`system_fingerprint`, `obfuscation`, …).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

fn chunk_object() -> String {
    "chat.completion.chunk".to_owned()
}

/// One choice of a chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// The choice's index.
    #[serde(default)]
    pub index: u32,
    /// What this chunk adds.
    #[serde(default)]
    pub delta: ChunkDelta,
    /// Set on the choice's last chunk; always written (`null` before).
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Fields not named above (`logprobs`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// The `delta` of a chunk choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkDelta {
    /// `assistant`, on the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Text to append.
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub content: Option<Option<String>>,
    /// Refusal text to append.
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Option<String>>,
    /// Tool call fragments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    /// Reasoning text to append (non-standard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Reasoning text to append (non-standard, OpenRouter style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// A fragment of a streamed tool call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    /// The call's position (missing on some OpenAI-compatible servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// The call's id, on its first fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `function`, on the first fragment.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name (first fragment) and argument text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// The `function` of a tool call fragment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallDelta {
    /// The function's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A fragment of the argument text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

// === Errors ===

/// An error body: `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

/// The `error` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A human-readable message.
    #[serde(default)]
    pub message: String,
    /// `invalid_request_error`, `rate_limit_error`, `server_error`, …
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The parameter at fault; always written.
    #[serde(default)]
    pub param: Option<String>,
    /// A machine-readable code (a string; some servers send numbers).
    #[serde(default)]
    pub code: Option<Value>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}
