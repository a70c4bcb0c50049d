//! OpenAI Chat Completions wire types: `POST /v1/chat/completions` request and
//! response, stream chunks, and error bodies.
//!
//! Fields whose `null` differs from their absence in real traffic (a chunk's
//! `usage: null`, an assistant message's `content: null`) are
//! `Option<Option<T>>`: `None` absent, `Some(None)` null.

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use super::{Map, RawJson, is_empty_map, nullable, object_with_extra, string_or_seq, tagged_union};

// === Requests ===

/// A `POST /v1/chat/completions` request body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletionRequest {
    /// The model to use.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Legacy output limit (rejected by reasoning models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Output limit, reasoning tokens included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// Sampling temperature (0–2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Number>,
    /// Nucleus sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<Number>,
    /// Stop sequences: one string or up to four.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Stream the response as chunks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Stream options (`include_usage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Tool definitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model may use the tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether several tool calls may come in one turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Output format (`text`, `json_object`, `json_schema`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<RawJson>,
    /// Number of choices to generate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Sampling seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Return log probabilities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    /// Reasoning effort (`none` … `max`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// An end-user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Key/value tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map>,
    /// Fields not named above (`top_logprobs`, `logit_bias`, penalties, …).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ChatCompletionRequest {
    model => required,
    messages => required,
    max_tokens => default,
    max_completion_tokens => default,
    temperature => default,
    top_p => default,
    stop => default,
    stream => default,
    stream_options => default,
    tools => default,
    tool_choice => default,
    parallel_tool_calls => default,
    response_format => default,
    n => default,
    seed => default,
    logprobs => default,
    reasoning_effort => default,
    user => default,
    metadata => default,
} extra);

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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamOptions {
    /// Send a final chunk with the usage of the whole request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(StreamOptions {
    include_usage => default,
} extra);

/// One message of the conversation, any role.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// The content: absent, `null`, a string, or parts.
    #[serde(
        serialize_with = "nullable::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub content: Option<Option<MessageContent>>,
    /// A participant name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool calls made by the assistant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The tool call a `tool` message answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// An assistant refusal.
    #[serde(
        serialize_with = "nullable::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub refusal: Option<Option<String>>,
    /// Reasoning text (non-standard; DeepSeek, vLLM, SGLang, LiteLLM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Reasoning text (non-standard; OpenRouter, newer vLLM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Fields not named above (`function_call`, `audio`, `annotations`, …).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ChatMessage {
    role => required,
    content => nullable,
    name => default,
    tool_calls => default,
    tool_call_id => default,
    refusal => nullable,
    reasoning_content => default,
    reasoning => default,
} extra);

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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextPart {
    /// The text.
    pub text: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(TextPart {
    text => required,
} extra);

/// An `image_url` part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageUrlPart {
    /// The image.
    pub image_url: ImageUrl,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ImageUrlPart {
    image_url => required,
} extra);

/// The `image_url` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageUrl {
    /// An http(s) URL or a `data:` URL.
    pub url: String,
    /// `auto`, `low` or `high`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ImageUrl {
    url => required,
    detail => default,
} extra);

/// A `file` part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilePart {
    /// The file.
    pub file: FileRef,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(FilePart {
    file => required,
} extra);

/// The `file` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileRef {
    /// A `data:` URL with the file's content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    /// An uploaded file's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// The file's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(FileRef {
    file_data => default,
    file_id => default,
    filename => default,
} extra);

/// A `refusal` part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefusalPart {
    /// The refusal text.
    pub refusal: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(RefusalPart {
    refusal => required,
} extra);

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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionToolCall {
    /// The call's id (`call_…`).
    pub id: String,
    /// The function and its arguments.
    pub function: FunctionCall,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(FunctionToolCall {
    id => required,
    function => required,
} extra);

/// The function of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionCall {
    /// The function's name.
    pub name: String,
    /// The arguments, as JSON text.
    pub arguments: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(FunctionCall {
    name => required,
    arguments => required,
} extra);

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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionTool {
    /// The function.
    pub function: FunctionDefinition,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(FunctionTool {
    function => required,
} extra);

/// A function definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionDefinition {
    /// `[a-zA-Z0-9_-]{1,64}`.
    pub name: String,
    /// What the function does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<RawJson>,
    /// Structured-outputs strict mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(FunctionDefinition {
    name => required,
    description => default,
    parameters => default,
    strict => default,
} extra);

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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletion {
    /// The completion id (`chatcmpl-…`).
    pub id: String,
    /// Always `"chat.completion"`.
    pub object: String,
    /// Unix time of creation.
    pub created: u64,
    /// The model that answered.
    pub model: String,
    /// The choices (one, since the gateway never sets `n`).
    pub choices: Vec<Choice>,
    /// Token usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Fields not named above (`system_fingerprint`, `service_tier`, …).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ChatCompletion {
    id => required,
    object => default_with(completion_object),
    created => default,
    model => required,
    choices => required,
    usage => default,
} extra);

fn completion_object() -> String {
    "chat.completion".to_owned()
}

/// One choice of a response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// The choice's index.
    pub index: u32,
    /// The message.
    pub message: ChatMessage,
    /// `stop`, `length`, `tool_calls`, `content_filter` or `function_call`.
    pub finish_reason: Option<String>,
    /// Fields not named above (`logprobs`, and vendors' `stop_reason`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(Choice {
    index => default,
    message => required,
    finish_reason => default,
} extra);

/// Token usage. `prompt_tokens` includes cached tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Input tokens, cached ones included.
    pub prompt_tokens: u64,
    /// Output tokens, reasoning included.
    pub completion_tokens: u64,
    /// The sum of the two.
    pub total_tokens: u64,
    /// Input detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Output detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(Usage {
    prompt_tokens => default,
    completion_tokens => default,
    total_tokens => default,
    prompt_tokens_details => default,
    completion_tokens_details => default,
} extra);

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PromptTokensDetails {
    /// Input tokens read from the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Input tokens written to the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
    /// Fields not named above (`audio_tokens`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(PromptTokensDetails {
    cached_tokens => default,
    cache_write_tokens => default,
} extra);

/// `usage.completion_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompletionTokensDetails {
    /// Output tokens spent reasoning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(CompletionTokensDetails {
    reasoning_tokens => default,
} extra);

// === Stream chunks ===

/// One `data:` payload of a streamed response: a chunk, or (from a failing
/// upstream) `{"error":{…}}` with no chunk fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletionChunk {
    /// The completion id, the same in every chunk.
    pub id: String,
    /// Always `"chat.completion.chunk"`.
    pub object: String,
    /// Unix time of creation.
    pub created: u64,
    /// The model.
    pub model: String,
    /// The choice deltas; empty in the final usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// Usage: `null` on every chunk but the last when `include_usage` is set.
    #[serde(
        serialize_with = "nullable::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub usage: Option<Option<Usage>>,
    /// An in-band error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    /// Fields not named above (`system_fingerprint`, `obfuscation`, …).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ChatCompletionChunk {
    id => default,
    object => default_with(chunk_object),
    created => default,
    model => default,
    choices => default,
    usage => nullable,
    error => default,
} extra);

fn chunk_object() -> String {
    "chat.completion.chunk".to_owned()
}

/// One choice of a chunk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkChoice {
    /// The choice's index.
    pub index: u32,
    /// What this chunk adds.
    pub delta: ChunkDelta,
    /// Set on the choice's last chunk; always written (`null` before).
    pub finish_reason: Option<String>,
    /// Fields not named above (`logprobs`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ChunkChoice {
    index => default,
    delta => default,
    finish_reason => default,
} extra);

/// The `delta` of a chunk choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChunkDelta {
    /// `assistant`, on the first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Text to append.
    #[serde(
        serialize_with = "nullable::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub content: Option<Option<String>>,
    /// Refusal text to append.
    #[serde(
        serialize_with = "nullable::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub refusal: Option<Option<String>>,
    /// Tool call fragments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    /// Reasoning text to append (non-standard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Reasoning text to append (non-standard, OpenRouter style).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ChunkDelta {
    role => default,
    content => nullable,
    refusal => nullable,
    tool_calls => default,
    reasoning_content => default,
    reasoning => default,
} extra);

/// A fragment of a streamed tool call.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ToolCallDelta {
    /// The call's position (missing on some OpenAI-compatible servers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// The call's id, on its first fragment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `function`, on the first fragment.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name (first fragment) and argument text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ToolCallDelta {
    index => default,
    id => default,
    kind as "type" => default,
    function => default,
} extra);

/// The `function` of a tool call fragment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FunctionCallDelta {
    /// The function's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A fragment of the argument text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(FunctionCallDelta {
    name => default,
    arguments => default,
} extra);

// === Errors ===

/// An error body: `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ErrorResponse {
    error => required,
} extra);

/// The `error` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorDetail {
    /// A human-readable message.
    pub message: String,
    /// `invalid_request_error`, `rate_limit_error`, `server_error`, …
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The parameter at fault; always written.
    pub param: Option<String>,
    /// A machine-readable code (a string; some servers send numbers).
    pub code: Option<Value>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ErrorDetail {
    message => default,
    kind as "type" => default,
    param => default,
    code => default,
} extra);
