use serde_json::{Number, Value};

use crate::Format;
use crate::wire::{Map, RawJson};

/// A chat request in the canonical model.
///
/// Built by decoding a client's request
/// ([`convert::anthropic::request_from_wire`](crate::convert::anthropic::request_from_wire),
/// [`convert::openai::request_from_wire`](crate::convert::openai::request_from_wire))
/// or by hand; encoded into a provider's format by the same modules.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The model the client asked for (after resolution: the upstream model).
    pub model: String,
    /// The top-level system prompt (Anthropic `system`). OpenAI system and
    /// developer messages stay in [`messages`](Self::messages) where they were.
    pub system: Option<Content>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Tool definitions.
    pub tools: Option<Vec<Tool>>,
    /// How the model may use the tools.
    pub tool_choice: Option<ToolChoice>,
    /// Whether several tool calls may come in one turn (OpenAI
    /// `parallel_tool_calls`; Anthropic `disable_parallel_tool_use` is its
    /// negation).
    pub parallel_tool_calls: Option<bool>,
    /// The output token limit.
    pub max_tokens: Option<u64>,
    /// Which OpenAI field carried [`max_tokens`](Self::max_tokens).
    pub max_tokens_field: Option<MaxTokensField>,
    /// Sampling temperature, as the client wrote it.
    pub temperature: Option<Number>,
    /// Nucleus sampling.
    pub top_p: Option<Number>,
    /// Top-k sampling (Anthropic only).
    pub top_k: Option<u64>,
    /// Stop sequences.
    pub stop: Option<Stop>,
    /// Stream the response.
    pub stream: Option<bool>,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: Option<bool>,
    /// An end-user id (Anthropic `metadata.user_id`, OpenAI `user`).
    pub user: Option<String>,
    /// Anthropic extended thinking.
    pub thinking: Option<Thinking>,
    /// Reasoning effort (OpenAI `reasoning_effort`, Anthropic
    /// `output_config.effort`).
    pub reasoning_effort: Option<String>,
    /// Structured output, in OpenAI's `response_format` shape.
    pub response_format: Option<RawJson>,
    /// Number of choices (OpenAI only; Anthropic has one).
    pub n: Option<u32>,
    /// Sampling seed (OpenAI only).
    pub seed: Option<i64>,
    /// Return log probabilities (OpenAI only).
    pub logprobs: Option<bool>,
    /// The wire format the request was decoded from: the owner of every
    /// `extra` map and [`Part::Other`] in it.
    pub origin: Option<Format>,
    /// Fields of the origin format that the model does not name.
    pub extra: Map,
}

impl ChatRequest {
    /// A request for `model` with `messages` and nothing else set.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            model: model.into(),
            messages,
            ..Self::default()
        }
    }

    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }

    /// The function tools, in order.
    pub fn function_tools(&self) -> impl Iterator<Item = &FunctionTool> {
        self.tools.iter().flatten().filter_map(|t| match t {
            Tool::Function(f) => Some(f),
            Tool::Other(_) => None,
        })
    }
}

/// The OpenAI field that carries the output token limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MaxTokensField {
    /// `max_tokens` (legacy; what most OpenAI-compatible servers know).
    MaxTokens,
    /// `max_completion_tokens` (required by OpenAI reasoning models).
    MaxCompletionTokens,
}

/// Stop sequences: one string or a list (OpenAI accepts both; Anthropic
/// always sends a list).
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// A single string.
    One(String),
    /// A list.
    Many(Vec<String>),
}

impl Stop {
    /// The sequences as a slice.
    pub fn as_slice(&self) -> &[String] {
        match self {
            Stop::One(s) => std::slice::from_ref(s),
            Stop::Many(v) => v,
        }
    }
}

/// Anthropic `thinking`.
#[derive(Debug, Clone, PartialEq)]
pub struct Thinking {
    /// Enabled, disabled or adaptive.
    pub mode: ThinkingMode,
    /// The budget (`enabled`).
    pub budget_tokens: Option<u64>,
}

/// The kinds of Anthropic `thinking`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThinkingMode {
    /// `enabled` with a budget.
    Enabled,
    /// `disabled`.
    Disabled,
    /// `adaptive`: the model decides.
    Adaptive,
    /// Another kind, kept as written.
    Other(String),
}

impl ThinkingMode {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            ThinkingMode::Enabled => "enabled",
            ThinkingMode::Disabled => "disabled",
            ThinkingMode::Adaptive => "adaptive",
            ThinkingMode::Other(s) => s,
        }
    }

    pub(crate) fn parse(s: String) -> Self {
        match s.as_str() {
            "enabled" => ThinkingMode::Enabled,
            "disabled" => ThinkingMode::Disabled,
            "adaptive" => ThinkingMode::Adaptive,
            _ => ThinkingMode::Other(s),
        }
    }
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What they say. In an assistant turn tool calls are
    /// [`Part::ToolCall`]s here; an OpenAI `tool` message holds one
    /// [`Part::ToolResult`].
    pub content: Content,
    /// OpenAI participant `name`.
    pub name: Option<String>,
    /// Fields of the origin format that the model does not name.
    pub extra: Map,
}

impl Message {
    /// A message of `role` whose content is the bare string `text`.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: Content::text(text),
            name: None,
            extra: Map::new(),
        }
    }

    /// A message of `role` with `parts`.
    pub fn parts(role: Role, parts: Vec<Part>) -> Self {
        Self {
            role,
            content: Content::parts(parts),
            name: None,
            extra: Map::new(),
        }
    }
}

/// The role of a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// System instructions.
    System,
    /// OpenAI developer instructions.
    Developer,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// An OpenAI tool result message.
    Tool,
}

/// Content: parts, and how the origin format spelled them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Content {
    /// The parts, in order.
    pub parts: Vec<Part>,
    /// How the content was written.
    pub form: ContentForm,
}

impl Content {
    /// A bare string.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            parts: vec![Part::text(text)],
            form: ContentForm::Text,
        }
    }

    /// A list of parts.
    pub fn parts(parts: Vec<Part>) -> Self {
        Self {
            parts,
            form: ContentForm::Parts,
        }
    }

    /// The texts of the text parts, concatenated with `sep`.
    pub fn joined_text(&self, sep: &str) -> String {
        join_text(&self.parts, sep)
    }
}

pub(crate) fn join_text(parts: &[Part], sep: &str) -> String {
    let mut out = String::new();
    let mut first = true;
    for part in parts {
        if let Part::Text(t) = part {
            if !first {
                out.push_str(sep);
            }
            out.push_str(&t.text);
            first = false;
        }
    }
    out
}

/// How content was written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentForm {
    /// A list of parts or blocks.
    #[default]
    Parts,
    /// A bare string (the parts are one text part).
    Text,
    /// `null` (OpenAI assistant messages with tool calls).
    Null,
    /// The field was absent.
    Absent,
}

/// One piece of content.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Part {
    /// Text.
    Text(TextPart),
    /// An image.
    Image(ImagePart),
    /// A document (PDF, plain text, …).
    Document(DocumentPart),
    /// A tool call made by the model.
    ToolCall(ToolCall),
    /// The result of a tool call.
    ToolResult(ToolResult),
    /// Reasoning text.
    Thinking(ThinkingPart),
    /// Opaque, encrypted reasoning.
    RedactedThinking(RedactedThinkingPart),
    /// A refusal (OpenAI).
    Refusal(RefusalPart),
    /// A block of a type the model does not name, kept as the origin format
    /// wrote it and dropped when converting to another format.
    Other(Value),
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Part::Text(TextPart {
            text: text.into(),
            extra: Map::new(),
        })
    }
}

/// A text part.
#[derive(Debug, Clone, PartialEq)]
pub struct TextPart {
    /// The text.
    pub text: String,
    /// Fields of the origin format that the model does not name
    /// (`cache_control`, `citations`, …).
    pub extra: Map,
}

/// An image part.
#[derive(Debug, Clone, PartialEq)]
pub struct ImagePart {
    /// Where the image comes from.
    pub source: MediaSource,
    /// OpenAI `detail` (`auto`, `low`, `high`).
    pub detail: Option<String>,
    /// Fields of the origin format that the model does not name.
    pub extra: Map,
}

/// A document part.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentPart {
    /// Where the document comes from.
    pub source: MediaSource,
    /// The title (Anthropic) or file name (OpenAI).
    pub title: Option<String>,
    /// Anthropic `context`.
    pub context: Option<String>,
    /// Fields of the origin format that the model does not name.
    pub extra: Map,
}

/// The source of an image or document.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MediaSource {
    /// Inline base64 data.
    Base64 {
        /// MIME type.
        media_type: String,
        /// Base64 data.
        data: String,
    },
    /// A URL.
    Url(String),
    /// Plain text (documents).
    Text {
        /// MIME type (`text/plain`).
        media_type: Option<String>,
        /// The text.
        data: String,
    },
    /// Nested content (Anthropic documents).
    Content(Content),
    /// An uploaded file's id.
    FileId(String),
    /// A source the model does not name, kept as the origin format wrote it.
    Other(Value),
}

/// A tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The call id.
    pub id: String,
    /// The tool's name, as the client knows it.
    pub name: String,
    /// The arguments.
    pub arguments: ToolArguments,
    /// Fields of the origin format that the model does not name (`caller`).
    pub extra: Map,
}

/// Tool call arguments: a JSON value (Anthropic `input`) or JSON text
/// (OpenAI `arguments`), each kept as received (an object's keys in their
/// order).
#[derive(Debug, Clone, PartialEq)]
pub enum ToolArguments {
    /// A JSON value.
    Json(RawJson),
    /// JSON text, possibly invalid or empty.
    Text(String),
}

impl ToolArguments {
    /// The arguments as JSON text: text as received, a value compact (its
    /// keys in their order).
    pub fn to_json_string(&self) -> String {
        match self {
            ToolArguments::Json(v) => v.compact_text().into_owned(),
            ToolArguments::Text(s) => s.clone(),
        }
    }

    /// The arguments' JSON text as received (a value's not made compact).
    pub(crate) fn as_json_str(&self) -> &str {
        match self {
            ToolArguments::Json(v) => v.get(),
            ToolArguments::Text(s) => s,
        }
    }

    /// [`to_json_string`](Self::to_json_string), keeping text without a copy.
    pub(crate) fn into_json_string(self) -> String {
        match self {
            ToolArguments::Json(v) => v.into_compact_string(),
            ToolArguments::Text(s) => s,
        }
    }

    /// The arguments as a JSON object, following conversion-spec §2.2
    /// `parse_args`: empty text is `{}`, a non-object is `{"value": …}`, a
    /// JSON string holding an object is decoded once more, and invalid JSON
    /// is kept as `{"raw_arguments": text}`. An object, as a value or as
    /// text, is kept as it is, its keys in their order.
    pub fn to_object(&self) -> RawJson {
        match self {
            ToolArguments::Json(v) => object_of(v.clone()),
            ToolArguments::Text(s) => match RawJson::parse(s.as_str()) {
                Ok(v) if v.is_object() => v,
                _ => RawJson::from_value(&crate::convert::parse_arguments(s)),
            },
        }
    }

    /// [`to_object`](Self::to_object), keeping a value without a copy.
    pub(crate) fn into_object(self) -> RawJson {
        match self {
            ToolArguments::Json(v) => object_of(v),
            text => text.to_object(),
        }
    }
}

fn object_of(v: RawJson) -> RawJson {
    if v.is_object() {
        v
    } else if v.get() == "null" {
        RawJson::empty_object()
    } else {
        RawJson::trusted(["{\"value\":", v.get(), "}"].concat())
    }
}

/// The result of a tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    /// The id of the call this answers.
    pub tool_call_id: String,
    /// The result.
    pub content: Content,
    /// The tool failed (Anthropic `is_error`).
    pub is_error: Option<bool>,
    /// Fields of the origin format that the model does not name.
    pub extra: Map,
}

/// Reasoning text.
#[derive(Debug, Clone, PartialEq)]
pub struct ThinkingPart {
    /// The reasoning.
    pub text: String,
    /// The Anthropic signature, if the upstream gave one.
    pub signature: Option<String>,
    /// Fields of the origin format that the model does not name.
    pub extra: Map,
}

/// Redacted reasoning.
#[derive(Debug, Clone, PartialEq)]
pub struct RedactedThinkingPart {
    /// Opaque data.
    pub data: String,
    /// Fields of the origin format that the model does not name.
    pub extra: Map,
}

/// A refusal.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusalPart {
    /// The refusal text.
    pub text: String,
    /// Fields of the origin format that the model does not name.
    pub extra: Map,
}

/// A tool definition.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Tool {
    /// A function (custom) tool.
    Function(FunctionTool),
    /// A tool of another kind (Anthropic server tools, OpenAI custom tools),
    /// kept as the origin format wrote it.
    Other(Value),
}

/// A function tool.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionTool {
    /// The name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: Option<RawJson>,
    /// Structured-outputs strict mode.
    pub strict: Option<bool>,
    /// Fields of the origin format that the model does not name.
    pub extra: Map,
}

/// How the model may use tools.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// The model must call some tool (Anthropic `any`, OpenAI `required`).
    Required,
    /// The model must not call tools.
    None,
    /// The model must call this tool.
    Tool(String),
    /// A choice the model does not name, kept as the origin format wrote it.
    Other(Value),
}
