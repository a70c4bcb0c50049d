//! Anthropic Messages wire types: `POST /v1/messages` request and response,
//! stream events, error bodies, and `POST /v1/messages/count_tokens`.
//!
//! Field names follow the API. Optional request fields are skipped when
//! absent; response fields that the API always sends (`stop_reason`,
//! `stop_sequence`) are always written, `null` included.

use serde::{Deserialize, Serialize};
use serde_json::Number;

use super::{Map, RawJson, is_empty_map, object_with_extra, string_or_seq, tagged_union};

// === Requests ===

/// A `POST /v1/messages` request body.
///
/// `max_tokens` is required by the API but optional here so that the same
/// type serves [`CountTokensRequest`]; the converter rejects a messages
/// request without it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessagesRequest {
    /// The model to use.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// The most output tokens to generate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// The system prompt: a string or text blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<Content>,
    /// Request metadata (`user_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Custom stop sequences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Stream the response as server-sent events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Sampling temperature (0–1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Number>,
    /// Nucleus sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<Number>,
    /// Top-k sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// Tool definitions (custom and server tools).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model may use the tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Extended thinking configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    /// Output configuration (`effort`, `format`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfig>,
    /// Fields not named above (`service_tier`, `container`, `cache_control`, …).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(MessagesRequest {
    model => required,
    messages => required,
    max_tokens => default,
    system => default,
    metadata => default,
    stop_sequences => default,
    stream => default,
    temperature => default,
    top_p => default,
    top_k => default,
    tools => default,
    tool_choice => default,
    thinking => default,
    output_config => default,
} extra);

/// A `POST /v1/messages/count_tokens` request body: a messages request
/// without `max_tokens`.
pub type CountTokensRequest = MessagesRequest;

/// A `POST /v1/messages/count_tokens` response body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountTokensResponse {
    /// The number of input tokens the request would use.
    pub input_tokens: u64,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(CountTokensResponse {
    input_tokens => required,
} extra);

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What they say: a string or content blocks.
    pub content: Content,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(Message {
    role => required,
    content => required,
} extra);

/// The role of a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A mid-conversation system instruction (newer API versions).
    System,
}

/// Message, system or tool-result content: a bare string or a list of blocks.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// `"content": "text"`.
    Text(String),
    /// `"content": [blocks]`.
    Blocks(Vec<ContentBlock>),
}
string_or_seq!(
    Content,
    Text,
    Blocks,
    ContentBlock,
    "a string or an array of content blocks"
);

tagged_union! {
    /// A content block, in a request or a response.
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub enum ContentBlock {
        /// `text`.
        "text" => Text(TextBlock),
        /// `image`.
        "image" => Image(ImageBlock),
        /// `document`.
        "document" => Document(DocumentBlock),
        /// `tool_use`.
        "tool_use" => ToolUse(ToolUseBlock),
        /// `tool_result`.
        "tool_result" => ToolResult(ToolResultBlock),
        /// `thinking`.
        "thinking" => Thinking(ThinkingBlock),
        /// `redacted_thinking`.
        "redacted_thinking" => RedactedThinking(RedactedThinkingBlock),
        Other,
    }
}

/// A `text` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextBlock {
    /// The text.
    pub text: String,
    /// Fields not named above (`cache_control`, `citations`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(TextBlock {
    text => required,
} extra);

/// An `image` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageBlock {
    /// Where the image comes from.
    pub source: MediaSource,
    /// Fields not named above (`cache_control`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ImageBlock {
    source => required,
} extra);

/// A `document` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentBlock {
    /// Where the document comes from.
    pub source: MediaSource,
    /// The document's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Context about the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Fields not named above (`citations`, `cache_control`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(DocumentBlock {
    source => required,
    title => default,
    context => default,
} extra);

tagged_union! {
    /// The `source` of an image or document block.
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub enum MediaSource {
        /// Inline base64 data.
        "base64" => Base64(Base64Source),
        /// A URL.
        "url" => Url(UrlSource),
        /// Plain text (documents).
        "text" => Text(TextSource),
        /// Nested content blocks (documents).
        "content" => Content(ContentSource),
        Other,
    }
}

/// A base64 source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Base64Source {
    /// MIME type (`image/png`, `application/pdf`, …).
    pub media_type: String,
    /// Base64 data.
    pub data: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(Base64Source {
    media_type => required,
    data => required,
} extra);

/// A URL source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UrlSource {
    /// The URL.
    pub url: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(UrlSource {
    url => required,
} extra);

/// A plain-text document source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextSource {
    /// MIME type (`text/plain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The text.
    pub data: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(TextSource {
    media_type => default,
    data => required,
} extra);

/// A document source made of content blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentSource {
    /// The blocks.
    pub content: Content,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ContentSource {
    content => required,
} extra);

/// A `tool_use` block: the model calls a tool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolUseBlock {
    /// The call's id (`toolu_…`).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, a JSON object.
    pub input: RawJson,
    /// Fields not named above (`caller`, `cache_control`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ToolUseBlock {
    id => required,
    name => required,
    input => required,
} extra);

/// A `tool_result` block: the client answers a tool call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolResultBlock {
    /// The id of the `tool_use` this answers.
    pub tool_use_id: String,
    /// The result: a string or blocks (text, image, document, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// The tool failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    /// Fields not named above (`cache_control`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ToolResultBlock {
    tool_use_id => required,
    content => default,
    is_error => default,
} extra);

/// A `thinking` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThinkingBlock {
    /// The reasoning text.
    pub thinking: String,
    /// The signature that lets the API verify the block when it is replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ThinkingBlock {
    thinking => required,
    signature => default,
} extra);

/// A `redacted_thinking` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedactedThinkingBlock {
    /// Opaque encrypted reasoning.
    pub data: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(RedactedThinkingBlock {
    data => required,
} extra);

/// Request metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    /// An opaque end-user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(Metadata {
    user_id => default,
} extra);

/// A tool definition: a custom tool (`type` absent or `"custom"`) or a
/// server tool (`type` = `web_search_20250305`, `bash_20250124`, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    /// The tool's name.
    pub name: String,
    /// The tool type; absent for custom tools.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// What the tool does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the input (custom tools).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<RawJson>,
    /// Fields not named above (`cache_control`, `strict`, `input_examples`, …).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(Tool {
    name => required,
    kind as "type" => default,
    description => default,
    input_schema => default,
} extra);

impl Tool {
    /// A custom tool (as opposed to a server tool the API runs itself).
    pub fn is_custom(&self) -> bool {
        matches!(self.kind.as_deref(), None | Some("custom"))
    }
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolChoice {
    /// `auto`, `any`, `tool` or `none`.
    #[serde(rename = "type")]
    pub kind: ToolChoiceKind,
    /// The tool to use (`type: "tool"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// At most one tool call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ToolChoice {
    kind as "type" => required,
    name => default,
    disable_parallel_tool_use => default,
} extra);

/// The kinds of `tool_choice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoiceKind {
    /// The model decides.
    Auto,
    /// The model must use some tool.
    Any,
    /// The model must use the named tool.
    Tool,
    /// The model must not use tools.
    None,
}

/// `thinking`: `{"type":"enabled","budget_tokens":N}`, `{"type":"disabled"}`
/// or `{"type":"adaptive"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThinkingConfig {
    /// `enabled`, `disabled` or `adaptive`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The thinking budget (`enabled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
    /// Fields not named above (`display`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ThinkingConfig {
    kind as "type" => required,
    budget_tokens => default,
} extra);

/// `output_config`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputConfig {
    /// Effort level (`low` … `max`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// Structured output format (`{"type":"json_schema","schema":…}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<RawJson>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(OutputConfig {
    effort => default,
    format => default,
} extra);

// === Responses ===

/// A complete message: the `POST /v1/messages` response body, and the
/// `message` of a `message_start` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessagesResponse {
    /// The message id (`msg_…`).
    pub id: String,
    /// Always `"message"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `"assistant"`.
    pub role: String,
    /// The model that answered.
    pub model: String,
    /// The content blocks.
    pub content: Vec<ContentBlock>,
    /// Why generation stopped (`end_turn`, `max_tokens`, `stop_sequence`,
    /// `tool_use`, `pause_turn`, `refusal`, …); `null` in `message_start`.
    pub stop_reason: Option<String>,
    /// The stop sequence that matched, if any.
    pub stop_sequence: Option<String>,
    /// Token usage.
    pub usage: Usage,
    /// Fields not named above (`stop_details`, `container`, …).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(MessagesResponse {
    id => required,
    kind as "type" => default_with(message_type),
    role => default_with(assistant_role),
    model => required,
    content => required,
    stop_reason => default,
    stop_sequence => default,
    usage => default,
} extra);

fn message_type() -> String {
    "message".to_owned()
}

fn assistant_role() -> String {
    "assistant".to_owned()
}

/// Token usage. `input_tokens` excludes cache reads and writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Input tokens that were neither read from nor written to the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Input tokens written to the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Output tokens (thinking included); cumulative in `message_delta`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Output detail (`thinking_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens_details: Option<OutputTokensDetails>,
    /// Fields not named above (`service_tier`, `cache_creation`, …).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(Usage {
    input_tokens => default,
    cache_creation_input_tokens => default,
    cache_read_input_tokens => default,
    output_tokens => default,
    output_tokens_details => default,
} extra);

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OutputTokensDetails {
    /// Output tokens spent thinking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_tokens: Option<u64>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(OutputTokensDetails {
    thinking_tokens => default,
} extra);

// === Stream events ===

tagged_union! {
    /// One event of a streamed response (the JSON `data` of an SSE frame).
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub enum StreamEvent {
        /// `message_start`.
        "message_start" => MessageStart(MessageStart),
        /// `content_block_start`.
        "content_block_start" => ContentBlockStart(ContentBlockStart),
        /// `content_block_delta`.
        "content_block_delta" => ContentBlockDelta(ContentBlockDelta),
        /// `content_block_stop`.
        "content_block_stop" => ContentBlockStop(ContentBlockStop),
        /// `message_delta`.
        "message_delta" => MessageDelta(MessageDelta),
        /// `message_stop`.
        "message_stop" => MessageStop(Empty),
        /// `ping`.
        "ping" => Ping(Empty),
        /// `error`.
        "error" => Error(ErrorEvent),
        Other,
    }
}

/// `message_start`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageStart {
    /// The message so far (no content, `stop_reason: null`).
    pub message: MessagesResponse,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(MessageStart {
    message => required,
} extra);

/// `content_block_start`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentBlockStart {
    /// The block's index.
    pub index: u32,
    /// The block, empty (`text: ""`, `input: {}`, …).
    pub content_block: ContentBlock,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ContentBlockStart {
    index => required,
    content_block => required,
} extra);

/// `content_block_delta`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentBlockDelta {
    /// The block's index.
    pub index: u32,
    /// The delta.
    pub delta: Delta,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ContentBlockDelta {
    index => required,
    delta => required,
} extra);

tagged_union! {
    /// The `delta` of a `content_block_delta`.
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub enum Delta {
        /// `text_delta`.
        "text_delta" => Text(TextDelta),
        /// `input_json_delta`.
        "input_json_delta" => InputJson(InputJsonDelta),
        /// `thinking_delta`.
        "thinking_delta" => Thinking(ThinkingDelta),
        /// `signature_delta`.
        "signature_delta" => Signature(SignatureDelta),
        Other,
    }
}

/// `text_delta`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextDelta {
    /// Text to append.
    pub text: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(TextDelta {
    text => required,
} extra);

/// `input_json_delta`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputJsonDelta {
    /// A fragment of the tool input's JSON text.
    pub partial_json: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(InputJsonDelta {
    partial_json => required,
} extra);

/// `thinking_delta`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThinkingDelta {
    /// Thinking text to append.
    pub thinking: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ThinkingDelta {
    thinking => required,
} extra);

/// `signature_delta`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignatureDelta {
    /// The thinking block's signature (replaces, does not append).
    pub signature: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(SignatureDelta {
    signature => required,
} extra);

/// `content_block_stop`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentBlockStop {
    /// The block's index.
    pub index: u32,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ContentBlockStop {
    index => required,
} extra);

/// `message_delta`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageDelta {
    /// Stop reason and sequence.
    pub delta: MessageDeltaBody,
    /// Cumulative usage.
    pub usage: Usage,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(MessageDelta {
    delta => required,
    usage => default,
} extra);

/// The `delta` of a `message_delta`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageDeltaBody {
    /// Why generation stopped.
    pub stop_reason: Option<String>,
    /// The stop sequence that matched; always written (`null` when none).
    pub stop_sequence: Option<String>,
    /// Fields not named above (`stop_details`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(MessageDeltaBody {
    stop_reason => default,
    stop_sequence => default,
} extra);

/// An event with no fields of its own (`message_stop`, `ping`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Empty {
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(Empty {
} extra);

/// An `error` stream event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorEvent {
    /// The error.
    pub error: ErrorDetail,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ErrorEvent {
    error => required,
} extra);

// === Errors ===

/// An error response body: `{"type":"error","error":{…},"request_id":…}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorResponse {
    /// Always `"error"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error.
    pub error: ErrorDetail,
    /// The request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ErrorResponse {
    kind as "type" => required,
    error => required,
    request_id => default,
} extra);

/// The `error` object of an error body or event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorDetail {
    /// `invalid_request_error`, `authentication_error`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// A human-readable message.
    pub message: String,
    /// Fields not named above.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Map,
}

object_with_extra!(ErrorDetail {
    kind as "type" => required,
    message => required,
} extra);
