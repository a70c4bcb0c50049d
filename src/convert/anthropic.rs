//! Anthropic Messages ⇄ the canonical chat model.
//!
//! Decoding keeps everything; encoding a value that came from OpenAI applies
//! conversion-spec §1.12 (requests), §2.2–§2.4 (responses) and §3.1 (events):
//! system and developer messages are hoisted into `system`, tool messages
//! become one user turn of `tool_result` blocks placed before that turn's
//! text, `max_tokens` gets a default, the temperature is capped at 1, tool
//! call ids are made safe to replay, empty text blocks and unsigned thinking
//! are not sent back, and usage always carries the cache fields.

use bytes::{BufMut, BytesMut};
use serde_json::{Number, Value};

use super::{
    anthropic_message_id, anthropic_tool_id, effective_stop_reason, stash,
    stop_reason_from_anthropic, stop_reason_to_anthropic, unstash,
};
use crate::Format;
use crate::chat::{
    BlockDelta, ChatEvent, ChatRequest, ChatResponse, Content, ContentForm, DocumentPart,
    FunctionTool, ImagePart, MediaSource, Message, MessageDelta, MessageStart, Part,
    RedactedThinkingPart, Role, Stop, StopReason, TextPart, Thinking, ThinkingMode, ThinkingPart,
    Tool, ToolArguments, ToolCall, ToolChoice, ToolResult, Usage,
};
use crate::error::ApiError;
use crate::sse;
use crate::wire::anthropic as w;
use crate::wire::{Map, RawJson};

/// How to encode a request for an Anthropic upstream when it came from
/// another format.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestOptions {
    /// `max_tokens` when the client gave none (Anthropic requires it).
    pub default_max_tokens: u64,
    /// Turn an OpenAI `reasoning_effort` into extended thinking with a
    /// budget (low 1024, medium 2048, high 4096, higher 8192 tokens).
    pub thinking_from_effort: bool,
}

impl Default for RequestOptions {
    fn default() -> Self {
        Self {
            default_max_tokens: 4096,
            thinking_from_effort: true,
        }
    }
}

impl RequestOptions {
    /// Sets [`default_max_tokens`](Self::default_max_tokens).
    pub fn default_max_tokens(mut self, tokens: u64) -> Self {
        self.default_max_tokens = tokens;
        self
    }

    /// Sets [`thinking_from_effort`](Self::thinking_from_effort).
    pub fn thinking_from_effort(mut self, yes: bool) -> Self {
        self.thinking_from_effort = yes;
        self
    }
}

// === Requests ===

/// Decodes an Anthropic request into the canonical model, faithfully.
pub fn request_from_wire(req: w::MessagesRequest) -> Result<ChatRequest, ApiError> {
    let mut extra = req.extra;
    let user = match req.metadata {
        Some(meta) => {
            stash(&mut extra, "metadata", meta.extra);
            meta.user_id
        }
        None => None,
    };
    let (mut tool_choice, mut parallel_tool_calls) = (None, None);
    if let Some(choice) = req.tool_choice {
        if choice.extra.is_empty() {
            parallel_tool_calls = choice.disable_parallel_tool_use.map(|d| !d);
            tool_choice = Some(match choice.kind {
                w::ToolChoiceKind::Auto => ToolChoice::Auto,
                w::ToolChoiceKind::Any => ToolChoice::Required,
                w::ToolChoiceKind::None => ToolChoice::None,
                w::ToolChoiceKind::Tool => match choice.name {
                    Some(name) => ToolChoice::Tool(name),
                    None => {
                        return Err(ApiError::invalid_request(
                            "tool_choice of type `tool` needs a `name`",
                        )
                        .with_param("tool_choice.name"));
                    }
                },
            });
        } else {
            tool_choice = Some(ToolChoice::Other(to_value(&choice)));
        }
    }
    let thinking = req.thinking.map(|t| {
        if !t.extra.is_empty() {
            stash(&mut extra, "thinking", t.extra);
        }
        Thinking {
            mode: ThinkingMode::parse(t.kind),
            budget_tokens: t.budget_tokens,
        }
    });
    let (mut reasoning_effort, mut response_format) = (None, None);
    if let Some(mut oc) = req.output_config {
        reasoning_effort = oc.effort;
        match oc.format.take().map(format_to_openai) {
            Some(Ok(rf)) => response_format = Some(rf),
            Some(Err(original)) => {
                let original = original.to_value().map_err(|e| {
                    ApiError::invalid_request(format!("`output_config.format`: {e}"))
                })?;
                oc.extra.insert("format".into(), original);
            }
            None => {}
        }
        stash(&mut extra, "output_config", oc.extra);
    }
    let messages = req
        .messages
        .into_iter()
        .map(|m| Message {
            role: match m.role {
                w::Role::User => Role::User,
                w::Role::Assistant => Role::Assistant,
                w::Role::System => Role::System,
            },
            content: content_from_wire(m.content),
            name: None,
            extra: m.extra,
        })
        .collect();
    Ok(ChatRequest {
        model: req.model,
        system: req.system.map(content_from_wire),
        messages,
        tools: req
            .tools
            .map(|tools| tools.into_iter().map(tool_from_wire).collect())
            .transpose()?,
        tool_choice,
        parallel_tool_calls,
        max_tokens: req.max_tokens,
        max_tokens_field: None,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop: req.stop_sequences.map(Stop::Many),
        stream: req.stream,
        include_usage: None,
        user,
        thinking,
        reasoning_effort,
        response_format,
        n: None,
        seed: None,
        logprobs: None,
        origin: Some(Format::Anthropic),
        extra,
    })
}

/// `output_config.format` `{"type":"json_schema","schema":S}` → OpenAI
/// `{"type":"json_schema","json_schema":{"name":"response","schema":S}}`;
/// any other shape is handed back.
fn format_to_openai(format: RawJson) -> Result<RawJson, RawJson> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Format<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        schema: &'a serde_json::value::RawValue,
    }
    let converted = format
        .read::<Format>()
        .filter(|f| f.kind == "json_schema")
        .map(|f| {
            RawJson::trusted(
                [
                    r#"{"type":"json_schema","json_schema":{"name":"response","schema":"#,
                    f.schema.get(),
                    "}}",
                ]
                .concat(),
            )
        });
    converted.ok_or(format)
}

/// The reverse of [`format_to_openai`]; `None` for formats Anthropic lacks.
fn format_from_openai(rf: &RawJson) -> Option<RawJson> {
    #[derive(serde::Deserialize)]
    struct ResponseFormat<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        json_schema: Option<JsonSchema<'a>>,
    }
    // A map, not a struct with an `Option`: that would read a `null`
    // schema as none, and drop the format instead of passing it on.
    type JsonSchema<'a> =
        std::collections::BTreeMap<std::borrow::Cow<'a, str>, &'a serde_json::value::RawValue>;
    let rf = rf.read::<ResponseFormat>()?;
    if rf.kind != "json_schema" {
        return None;
    }
    let schema = *rf.json_schema?.get("schema")?;
    Some(RawJson::trusted(
        [r#"{"type":"json_schema","schema":"#, schema.get(), "}"].concat(),
    ))
}

fn tool_from_wire(tool: w::Tool) -> Result<Tool, ApiError> {
    if !tool.is_custom() {
        // Its schema, if it has one, goes into a tree.
        let tool = serde_json::to_value(&tool)
            .map_err(|e| ApiError::invalid_request(format!("tool `{}`: {e}", tool.name)))?;
        return Ok(Tool::Other(tool));
    }
    let mut extra = tool.extra;
    if let Some(kind) = tool.kind {
        extra.insert("type".into(), Value::String(kind));
    }
    let strict = match extra.get("strict") {
        Some(Value::Bool(b)) => {
            let b = *b;
            extra.remove("strict");
            Some(b)
        }
        _ => None,
    };
    Ok(Tool::Function(FunctionTool {
        name: tool.name,
        description: tool.description,
        parameters: tool.input_schema,
        strict,
        extra,
    }))
}

/// Decodes content (a string or blocks).
pub(crate) fn content_from_wire(content: w::Content) -> Content {
    match content {
        w::Content::Text(text) => Content::text(text),
        w::Content::Blocks(blocks) => {
            Content::parts(blocks.into_iter().map(part_from_block).collect())
        }
    }
}

/// Decodes one content block.
pub(crate) fn part_from_block(block: w::ContentBlock) -> Part {
    match block {
        w::ContentBlock::Text(t) => Part::Text(TextPart {
            text: t.text,
            extra: t.extra,
        }),
        w::ContentBlock::Image(i) => Part::Image(ImagePart {
            source: media_from_wire(i.source),
            detail: None,
            extra: i.extra,
        }),
        w::ContentBlock::Document(d) => Part::Document(DocumentPart {
            source: media_from_wire(d.source),
            title: d.title,
            context: d.context,
            extra: d.extra,
        }),
        w::ContentBlock::ToolUse(t) => Part::ToolCall(ToolCall {
            id: t.id,
            name: t.name,
            arguments: ToolArguments::Json(t.input),
            extra: t.extra,
        }),
        w::ContentBlock::ToolResult(r) => Part::ToolResult(ToolResult {
            tool_call_id: r.tool_use_id,
            content: match r.content {
                Some(c) => content_from_wire(c),
                None => Content {
                    parts: Vec::new(),
                    form: ContentForm::Absent,
                },
            },
            is_error: r.is_error,
            extra: r.extra,
        }),
        w::ContentBlock::Thinking(t) => Part::Thinking(ThinkingPart {
            text: t.thinking,
            signature: t.signature,
            extra: t.extra,
        }),
        w::ContentBlock::RedactedThinking(r) => Part::RedactedThinking(RedactedThinkingPart {
            data: r.data,
            extra: r.extra,
        }),
        w::ContentBlock::Other(v) => Part::Other(v),
    }
}

fn media_from_wire(source: w::MediaSource) -> MediaSource {
    match source {
        w::MediaSource::Base64(b) if b.extra.is_empty() => MediaSource::Base64 {
            media_type: b.media_type,
            data: b.data,
        },
        w::MediaSource::Url(u) if u.extra.is_empty() => MediaSource::Url(u.url),
        w::MediaSource::Text(t) if t.extra.is_empty() => MediaSource::Text {
            media_type: t.media_type,
            data: t.data,
        },
        w::MediaSource::Content(c) if c.extra.is_empty() => {
            MediaSource::Content(content_from_wire(c.content))
        }
        w::MediaSource::Other(Value::Object(m))
            if m.len() == 2
                && m.get("type").and_then(Value::as_str) == Some("file")
                && m.get("file_id").is_some_and(Value::is_string) =>
        {
            let id = m["file_id"].as_str().unwrap_or_default().to_owned();
            MediaSource::FileId(id)
        }
        other => MediaSource::Other(to_value(&other)),
    }
}

/// Encodes a canonical request for an Anthropic upstream (or client).
pub fn request_to_wire(
    req: ChatRequest,
    opts: &RequestOptions,
) -> Result<w::MessagesRequest, ApiError> {
    let same = req.origin == Some(Format::Anthropic);
    let ctx = Ctx {
        same,
        request: true,
    };
    let mut extra = if same { req.extra } else { Map::new() };
    if !same && req.n.is_some_and(|n| n > 1) {
        return Err(
            ApiError::invalid_request("this model returns one choice; `n` must be 1")
                .with_param("n"),
        );
    }

    // System: kept as is from Anthropic; otherwise the top-level prompt plus
    // every system and developer message, hoisted and joined.
    let mut system = req.system;
    let mut hoisted: Vec<String> = Vec::new();
    let mut messages: Vec<w::Message> = Vec::with_capacity(req.messages.len());
    for msg in req.messages {
        match msg.role {
            Role::System | Role::Developer if !(same && msg.role == Role::System) => {
                let text = msg.content.joined_text("\n");
                if !text.trim().is_empty() {
                    hoisted.push(text);
                }
            }
            Role::Tool => {
                let blocks = tool_message_to_blocks(msg.content, ctx)?;
                push_turn(&mut messages, w::Role::User, blocks, Map::new(), true);
            }
            role => {
                let role = match role {
                    Role::Assistant => w::Role::Assistant,
                    Role::System => w::Role::System,
                    _ => w::Role::User,
                };
                let msg_extra = if same { msg.extra } else { Map::new() };
                if same {
                    messages.push(w::Message {
                        role,
                        content: content_to_wire(msg.content, ctx)?
                            .unwrap_or(w::Content::Blocks(Vec::new())),
                        extra: msg_extra,
                    });
                    continue;
                }
                let single_text = msg.content.form == ContentForm::Text;
                let blocks = parts_to_blocks(msg.content.parts, ctx)?;
                if blocks.is_empty() {
                    continue;
                }
                // A user turn right after tool results joins their turn, after them.
                let merge = matches!(messages.last(), Some(m) if m.role == role);
                if !merge
                    && single_text
                    && blocks.len() == 1
                    && let w::ContentBlock::Text(t) = &blocks[0]
                    && t.extra.is_empty()
                {
                    let text = t.text.clone();
                    messages.push(w::Message {
                        role,
                        content: w::Content::Text(text),
                        extra: msg_extra,
                    });
                    continue;
                }
                push_turn(&mut messages, role, blocks, msg_extra, merge);
            }
        }
    }
    if !hoisted.is_empty() {
        let mut texts: Vec<String> = Vec::new();
        if let Some(sys) = system.take() {
            let t = sys.joined_text("\n");
            if !t.trim().is_empty() {
                texts.push(t);
            }
        }
        texts.extend(hoisted);
        system = Some(Content::text(texts.join("\n")));
    }
    if !same && messages.is_empty() {
        return Err(
            ApiError::invalid_request("`messages` is empty after conversion")
                .with_param("messages"),
        );
    }
    let system = match system {
        Some(s) => content_to_wire(s, ctx)?,
        None => None,
    };

    let metadata = match (req.user, unstash(&mut extra, "metadata")) {
        (None, None) => None,
        (user_id, leftovers) => Some(w::Metadata {
            user_id,
            extra: leftovers.unwrap_or_default(),
        }),
    };

    let tools: Option<Vec<w::Tool>> = match req.tools {
        Some(tools) => {
            let out: Vec<w::Tool> = tools
                .into_iter()
                .filter_map(|t| tool_to_wire(t, same))
                .collect();
            if out.is_empty() && !same {
                None
            } else {
                Some(out)
            }
        }
        None => None,
    };
    let has_tools = tools.as_ref().is_some_and(|t| !t.is_empty());
    let disable_parallel = req.parallel_tool_calls.map(|p| !p);
    let tool_choice = match req.tool_choice {
        _ if !same && !has_tools => None,
        Some(ToolChoice::Other(v)) if same => serde_json::from_value(v).ok(),
        Some(ToolChoice::Other(_)) => None,
        Some(choice) => {
            let (kind, name) = match choice {
                ToolChoice::Auto => (w::ToolChoiceKind::Auto, None),
                ToolChoice::Required => (w::ToolChoiceKind::Any, None),
                ToolChoice::None => (w::ToolChoiceKind::None, None),
                ToolChoice::Tool(name) => (w::ToolChoiceKind::Tool, Some(name)),
                ToolChoice::Other(_) => unreachable_choice(),
            };
            Some(w::ToolChoice {
                kind,
                name,
                disable_parallel_tool_use: if same || kind != w::ToolChoiceKind::None {
                    disable_parallel.filter(|d| same || *d)
                } else {
                    None
                },
                extra: Map::new(),
            })
        }
        None if !same && disable_parallel == Some(true) => Some(w::ToolChoice {
            kind: w::ToolChoiceKind::Auto,
            name: None,
            disable_parallel_tool_use: Some(true),
            extra: Map::new(),
        }),
        None => None,
    };

    let mut max_tokens = req.max_tokens;
    if !same && max_tokens.is_none() {
        max_tokens = Some(opts.default_max_tokens);
    }
    let mut thinking = req.thinking.map(|t| w::ThinkingConfig {
        kind: t.mode.as_str().to_owned(),
        budget_tokens: t.budget_tokens,
        extra: if same {
            unstash(&mut extra, "thinking").unwrap_or_default()
        } else {
            Map::new()
        },
    });
    if !same && thinking.is_none() && opts.thinking_from_effort {
        thinking = thinking_from_effort(req.reasoning_effort.as_deref(), max_tokens);
    }
    let thinking_on = thinking.as_ref().is_some_and(|t| t.kind == "enabled");

    let output_config = if same {
        let leftovers = unstash(&mut extra, "output_config");
        let format = req.response_format.as_ref().and_then(format_from_openai);
        match (leftovers, req.reasoning_effort, format) {
            (None, None, None) => None,
            (leftovers, effort, format) => Some(w::OutputConfig {
                effort,
                format,
                extra: leftovers.unwrap_or_default(),
            }),
        }
    } else {
        req.response_format
            .as_ref()
            .and_then(format_from_openai)
            .map(|format| w::OutputConfig {
                effort: None,
                format: Some(format),
                extra: Map::new(),
            })
    };

    let (temperature, top_p, top_k) = if same {
        (req.temperature, req.top_p, req.top_k)
    } else if thinking_on {
        // Extended thinking accepts neither a temperature other than 1 nor top_k.
        (None, None, None)
    } else {
        (req.temperature.map(cap_temperature), req.top_p, req.top_k)
    };
    let stop_sequences = match req.stop {
        Some(stop) if same => Some(match stop {
            Stop::Many(v) => v,
            Stop::One(s) => vec![s],
        }),
        Some(stop) => {
            let seqs: Vec<String> = stop
                .as_slice()
                .iter()
                .filter(|s| !s.trim().is_empty())
                .cloned()
                .collect();
            (!seqs.is_empty()).then_some(seqs)
        }
        None => None,
    };

    Ok(w::MessagesRequest {
        model: req.model,
        messages,
        max_tokens,
        system,
        metadata,
        stop_sequences,
        stream: req.stream,
        temperature,
        top_p,
        top_k,
        tools,
        tool_choice,
        thinking,
        output_config,
        extra,
    })
}

fn unreachable_choice() -> (w::ToolChoiceKind, Option<String>) {
    (w::ToolChoiceKind::Auto, None)
}

fn cap_temperature(t: Number) -> Number {
    match t.as_f64() {
        Some(f) if f > 1.0 => Number::from(1),
        _ => t,
    }
}

fn thinking_from_effort(
    effort: Option<&str>,
    max_tokens: Option<u64>,
) -> Option<w::ThinkingConfig> {
    let budget: u64 = match effort? {
        "low" => 1024,
        "medium" => 2048,
        "high" => 4096,
        "xhigh" | "max" => 8192,
        _ => return None,
    };
    let max = max_tokens.unwrap_or(u64::MAX);
    // The budget must stay below max_tokens and at least 1024.
    let budget = budget.min(max / 2).max(1024);
    if budget >= max {
        return None;
    }
    Some(w::ThinkingConfig {
        kind: "enabled".to_owned(),
        budget_tokens: Some(budget),
        extra: Map::new(),
    })
}

/// Appends a turn, or merges it into the previous one when that has the same
/// role and `merge` is set.
fn push_turn(
    messages: &mut Vec<w::Message>,
    role: w::Role,
    mut blocks: Vec<w::ContentBlock>,
    extra: Map,
    merge: bool,
) {
    if merge
        && let Some(last) = messages.last_mut()
        && last.role == role
    {
        let prev = std::mem::replace(&mut last.content, w::Content::Blocks(Vec::new()));
        let mut merged = match prev {
            w::Content::Blocks(b) => b,
            w::Content::Text(t) if t.is_empty() => Vec::new(),
            w::Content::Text(t) => vec![text_block(t)],
        };
        merged.append(&mut blocks);
        last.content = w::Content::Blocks(merged);
        return;
    }
    messages.push(w::Message {
        role,
        content: w::Content::Blocks(blocks),
        extra,
    });
}

fn text_block(text: String) -> w::ContentBlock {
    w::ContentBlock::Text(w::TextBlock {
        text,
        extra: Map::new(),
    })
}

/// An OpenAI `tool` message → its `tool_result` block(s).
fn tool_message_to_blocks(content: Content, ctx: Ctx) -> Result<Vec<w::ContentBlock>, ApiError> {
    let mut blocks = Vec::new();
    for part in content.parts {
        match part {
            Part::ToolResult(r) => blocks.extend(part_to_block(Part::ToolResult(r), ctx)?),
            other => blocks.extend(part_to_block(other, ctx)?),
        }
    }
    Ok(blocks)
}

fn tool_to_wire(tool: Tool, same: bool) -> Option<w::Tool> {
    match tool {
        Tool::Function(f) => {
            let mut extra = if same { f.extra } else { Map::new() };
            let kind = match extra.remove("type") {
                Some(Value::String(k)) => Some(k),
                _ => None,
            };
            if same && let Some(strict) = f.strict {
                extra.insert("strict".into(), Value::Bool(strict));
            }
            Some(w::Tool {
                name: f.name,
                kind,
                description: f.description,
                input_schema: if same {
                    f.parameters
                } else {
                    Some(f.parameters.unwrap_or_else(empty_object_schema))
                },
                extra,
            })
        }
        Tool::Other(v) if same => serde_json::from_value(v).ok(),
        Tool::Other(_) => None,
    }
}

fn empty_object_schema() -> RawJson {
    RawJson::trusted(r#"{"type":"object","properties":{}}"#.to_owned())
}

#[derive(Clone, Copy)]
struct Ctx {
    /// The value came from Anthropic: write back everything as it was.
    same: bool,
    /// Encoding a request (history) rather than a response.
    request: bool,
}

/// Encodes content; `None` when it was absent.
fn content_to_wire(content: Content, ctx: Ctx) -> Result<Option<w::Content>, ApiError> {
    match content.form {
        ContentForm::Absent | ContentForm::Null if content.parts.is_empty() => Ok(None),
        ContentForm::Text if content.parts.len() == 1 => match content.parts.into_iter().next() {
            Some(Part::Text(t)) if t.extra.is_empty() => Ok(Some(w::Content::Text(t.text))),
            Some(part) => Ok(Some(w::Content::Blocks(parts_to_blocks(vec![part], ctx)?))),
            None => Ok(None),
        },
        _ => Ok(Some(w::Content::Blocks(parts_to_blocks(
            content.parts,
            ctx,
        )?))),
    }
}

fn parts_to_blocks(parts: Vec<Part>, ctx: Ctx) -> Result<Vec<w::ContentBlock>, ApiError> {
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        out.extend(part_to_block(part, ctx)?);
    }
    Ok(out)
}

/// Encodes one part; `None` for a part the other format's value cannot carry
/// into Anthropic (an unknown block, an empty text, unsigned thinking in a
/// request).
fn part_to_block(part: Part, ctx: Ctx) -> Result<Option<w::ContentBlock>, ApiError> {
    let Ctx { same, request } = ctx;
    let keep = |extra: Map| if same { extra } else { Map::new() };
    Ok(Some(match part {
        Part::Text(t) => {
            if !same && t.text.is_empty() {
                return Ok(None);
            }
            w::ContentBlock::Text(w::TextBlock {
                text: t.text,
                extra: keep(t.extra),
            })
        }
        Part::Refusal(r) => {
            if !same && r.text.is_empty() {
                return Ok(None);
            }
            text_block(r.text)
        }
        Part::Image(i) => match media_to_wire(i.source, same)? {
            Some(source) => w::ContentBlock::Image(w::ImageBlock {
                source,
                extra: keep(i.extra),
            }),
            None => return Ok(None),
        },
        Part::Document(d) => match media_to_wire(d.source, same)? {
            Some(source) => w::ContentBlock::Document(w::DocumentBlock {
                source,
                title: d.title,
                context: d.context,
                extra: keep(d.extra),
            }),
            None => return Ok(None),
        },
        Part::ToolCall(c) => {
            let (id, input) = if same {
                let input = match c.arguments {
                    ToolArguments::Json(v) => v,
                    text @ ToolArguments::Text(_) => text.into_object(),
                };
                (c.id, input)
            } else {
                (
                    anthropic_tool_id(&c.id).into_owned(),
                    c.arguments.into_object(),
                )
            };
            w::ContentBlock::ToolUse(w::ToolUseBlock {
                id,
                name: c.name,
                input,
                extra: keep(c.extra),
            })
        }
        Part::ToolResult(r) => {
            if r.tool_call_id.is_empty() {
                return Err(ApiError::invalid_request(
                    "a tool result has no tool call id and cannot be matched to its call",
                ));
            }
            let tool_use_id = if same {
                r.tool_call_id
            } else {
                anthropic_tool_id(&r.tool_call_id).into_owned()
            };
            let content = if same {
                content_to_wire(r.content, ctx)?
            } else {
                tool_result_content(r.content, ctx)?
            };
            w::ContentBlock::ToolResult(w::ToolResultBlock {
                tool_use_id,
                content,
                is_error: r.is_error,
                extra: keep(r.extra),
            })
        }
        Part::Thinking(t) => {
            if !same
                && (t.text.is_empty()
                    || request && t.signature.as_deref().is_none_or(str::is_empty))
            {
                // Anthropic verifies signatures of replayed thinking; never
                // send an unsigned one, and never an empty one.
                return Ok(None);
            }
            w::ContentBlock::Thinking(w::ThinkingBlock {
                thinking: t.text,
                signature: if same {
                    t.signature
                } else {
                    Some(t.signature.unwrap_or_default())
                },
                extra: keep(t.extra),
            })
        }
        Part::RedactedThinking(r) => w::ContentBlock::RedactedThinking(w::RedactedThinkingBlock {
            data: r.data,
            extra: keep(r.extra),
        }),
        Part::Other(v) if same => w::ContentBlock::Other(v),
        Part::Other(_) => return Ok(None),
    }))
}

/// The content of a tool result coming from OpenAI: a string when it is
/// text only.
fn tool_result_content(content: Content, ctx: Ctx) -> Result<Option<w::Content>, ApiError> {
    let only_text = content.parts.iter().all(|p| matches!(p, Part::Text(_)));
    if only_text {
        let text = content.joined_text("");
        return Ok(Some(w::Content::Text(text)));
    }
    Ok(Some(w::Content::Blocks(parts_to_blocks(
        content.parts,
        ctx,
    )?)))
}

fn media_to_wire(source: MediaSource, same: bool) -> Result<Option<w::MediaSource>, ApiError> {
    Ok(Some(match source {
        MediaSource::Base64 { media_type, data } => w::MediaSource::Base64(w::Base64Source {
            media_type,
            data,
            extra: Map::new(),
        }),
        MediaSource::Url(url) => w::MediaSource::Url(w::UrlSource {
            url,
            extra: Map::new(),
        }),
        MediaSource::Text { media_type, data } => w::MediaSource::Text(w::TextSource {
            media_type,
            data,
            extra: Map::new(),
        }),
        MediaSource::Content(c) => w::MediaSource::Content(w::ContentSource {
            content: content_to_wire(
                c,
                Ctx {
                    same,
                    request: true,
                },
            )?
            .unwrap_or(w::Content::Blocks(Vec::new())),
            extra: Map::new(),
        }),
        MediaSource::FileId(id) if same => {
            w::MediaSource::Other(serde_json::json!({"type": "file", "file_id": id}))
        }
        MediaSource::FileId(_) => {
            return Err(ApiError::invalid_request(
                "a file referenced by id cannot be sent to this provider; send its content instead",
            ));
        }
        MediaSource::Other(v) if same => serde_json::from_value(v)
            .map_err(|e| ApiError::invalid_request(format!("invalid media source: {e}")))?,
        MediaSource::Other(_) => return Ok(None),
    }))
}

// === Responses ===

/// Decodes an Anthropic response, faithfully.
pub fn response_from_wire(resp: w::MessagesResponse) -> ChatResponse {
    let mut extra = resp.extra;
    if resp.kind != "message" {
        extra.insert("type".into(), Value::String(resp.kind));
    }
    if resp.role != "assistant" {
        extra.insert("role".into(), Value::String(resp.role));
    }
    ChatResponse {
        id: resp.id,
        model: resp.model,
        content: resp.content.into_iter().map(part_from_block).collect(),
        stop_reason: resp.stop_reason.as_deref().map(stop_reason_from_anthropic),
        stop_sequence: resp.stop_sequence,
        usage: usage_from_wire(resp.usage),
        created: None,
        origin: Some(Format::Anthropic),
        extra,
    }
}

/// Encodes a response for an Anthropic client.
pub fn response_to_wire(resp: ChatResponse) -> w::MessagesResponse {
    let same = resp.origin == Some(Format::Anthropic);
    let ctx = Ctx {
        same,
        request: false,
    };
    let mut extra = if same { resp.extra } else { Map::new() };
    let (kind, role) = if same {
        (
            take_string(&mut extra, "type").unwrap_or_else(|| "message".into()),
            take_string(&mut extra, "role").unwrap_or_else(|| "assistant".into()),
        )
    } else {
        ("message".to_owned(), "assistant".to_owned())
    };
    let (stop_reason, stop_sequence) = if same {
        (
            resp.stop_reason.map(|r| stop_reason_to_anthropic(&r, true)),
            resp.stop_sequence,
        )
    } else {
        let has_tools = resp.content.iter().any(|p| matches!(p, Part::ToolCall(_)));
        let has_refusal = resp.content.iter().any(|p| matches!(p, Part::Refusal(_)));
        let reason = effective_stop_reason(resp.stop_reason, has_tools, has_refusal);
        if reason == StopReason::Refusal {
            extra.insert("stop_details".into(), refusal_details());
        }
        let seq = (reason == StopReason::StopSequence)
            .then_some(resp.stop_sequence)
            .flatten();
        (Some(stop_reason_to_anthropic(&reason, false)), seq)
    };
    let content = resp
        .content
        .into_iter()
        .filter_map(|p| part_to_block(p, ctx).ok().flatten())
        .collect();
    w::MessagesResponse {
        id: if same {
            resp.id
        } else {
            anthropic_message_id(&resp.id)
        },
        kind,
        role,
        model: resp.model,
        content,
        stop_reason,
        stop_sequence,
        usage: usage_to_wire(resp.usage, same),
        extra,
    }
}

fn refusal_details() -> Value {
    serde_json::json!({"type": "refusal", "category": null, "explanation": null})
}

fn take_string(extra: &mut Map, key: &str) -> Option<String> {
    match extra.remove(key) {
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            extra.insert(key.to_owned(), other);
            None
        }
        None => None,
    }
}

/// Decodes Anthropic usage.
pub(crate) fn usage_from_wire(u: w::Usage) -> Usage {
    let mut extra = u.extra;
    let reasoning_tokens = u.output_tokens_details.and_then(|d| {
        stash(&mut extra, "output_tokens_details", d.extra);
        d.thinking_tokens
    });
    Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cache_read_tokens: u.cache_read_input_tokens,
        cache_write_tokens: u.cache_creation_input_tokens,
        reasoning_tokens,
        extra,
    }
}

/// Encodes usage. From another format, the cache fields are always written
/// (as 0) next to `input_tokens`: clients such as Claude Code expect them.
pub(crate) fn usage_to_wire(u: Usage, same: bool) -> w::Usage {
    if same {
        let mut extra = u.extra;
        let details = unstash(&mut extra, "output_tokens_details");
        let output_tokens_details = match (details, u.reasoning_tokens) {
            (None, None) => None,
            (leftovers, thinking_tokens) => Some(w::OutputTokensDetails {
                thinking_tokens,
                extra: leftovers.unwrap_or_default(),
            }),
        };
        return w::Usage {
            input_tokens: u.input_tokens,
            cache_creation_input_tokens: u.cache_write_tokens,
            cache_read_input_tokens: u.cache_read_tokens,
            output_tokens: u.output_tokens,
            output_tokens_details,
            extra,
        };
    }
    let with_input = u.input_tokens.is_some();
    w::Usage {
        input_tokens: u.input_tokens,
        cache_creation_input_tokens: with_input.then(|| u.cache_write_tokens.unwrap_or(0)),
        cache_read_input_tokens: with_input.then(|| u.cache_read_tokens.unwrap_or(0)),
        output_tokens: Some(u.output_tokens.unwrap_or(0)),
        output_tokens_details: u.reasoning_tokens.filter(|r| *r > 0).map(|r| {
            w::OutputTokensDetails {
                thinking_tokens: Some(r),
                extra: Map::new(),
            }
        }),
        extra: Map::new(),
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

// === Streams ===

/// Turns an Anthropic event stream into canonical events, leniently
/// (conversion-spec §3.1 invariant 5): a block left open when the next block,
/// the message delta or the message stop arrives is closed first; stops and
/// deltas for blocks that are not open are dropped; unknown event types are
/// ignored; a stream that ends before `message_stop` ends in an error.
#[derive(Debug, Default)]
pub struct EventDecoder {
    open: Option<u32>,
    started: bool,
    done: bool,
}

impl EventDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the stream has ended (message stop or error).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Decodes the JSON `data` of one SSE frame.
    pub fn push_data(&mut self, data: &str, out: &mut Vec<ChatEvent>) {
        if self.done {
            return;
        }
        match serde_json::from_str::<w::StreamEvent>(data) {
            Ok(event) => self.push(event, out),
            Err(e) => self.fail(
                ApiError::api(format!("malformed event from the upstream: {e}")).mark_upstream(),
                out,
            ),
        }
    }

    /// Decodes one wire event.
    pub fn push(&mut self, event: w::StreamEvent, out: &mut Vec<ChatEvent>) {
        if self.done {
            return;
        }
        match event {
            w::StreamEvent::MessageStart(start) => {
                if self.started {
                    return;
                }
                self.started = true;
                let mut extra = start.message.extra;
                extra.extend(start.extra);
                out.push(ChatEvent::message_start(MessageStart {
                    id: start.message.id,
                    model: start.message.model,
                    usage: usage_from_wire(start.message.usage),
                    extra,
                }));
            }
            w::StreamEvent::ContentBlockStart(start) => {
                self.ensure_started(out);
                self.close(out);
                self.open = Some(start.index);
                out.push(ChatEvent::block_start(
                    start.index,
                    part_from_block(start.content_block),
                ));
            }
            w::StreamEvent::ContentBlockDelta(d) => {
                if self.open != Some(d.index) {
                    return;
                }
                let delta = match d.delta {
                    w::Delta::Text(t) => BlockDelta::Text(t.text),
                    w::Delta::InputJson(j) => BlockDelta::ToolArguments(j.partial_json),
                    w::Delta::Thinking(t) => BlockDelta::Thinking(t.thinking),
                    w::Delta::Signature(s) => BlockDelta::Signature(s.signature),
                    w::Delta::Other(v) => BlockDelta::Other(v),
                };
                out.push(ChatEvent::BlockDelta {
                    index: d.index,
                    delta,
                });
            }
            w::StreamEvent::ContentBlockStop(stop) => {
                if self.open == Some(stop.index) {
                    self.close(out);
                }
            }
            w::StreamEvent::MessageDelta(md) => {
                self.ensure_started(out);
                self.close(out);
                let mut extra = md.delta.extra;
                extra.extend(md.extra);
                out.push(ChatEvent::message_delta(MessageDelta {
                    stop_reason: md
                        .delta
                        .stop_reason
                        .as_deref()
                        .map(stop_reason_from_anthropic),
                    stop_sequence: md.delta.stop_sequence,
                    usage: usage_from_wire(md.usage),
                    extra,
                }));
            }
            w::StreamEvent::MessageStop(_) => {
                self.ensure_started(out);
                self.close(out);
                out.push(ChatEvent::MessageStop);
                self.done = true;
            }
            w::StreamEvent::Ping(_) => out.push(ChatEvent::Ping),
            w::StreamEvent::Error(e) => {
                self.done = true;
                out.push(ChatEvent::error(ApiError::from_anthropic_detail(&e.error)));
            }
            w::StreamEvent::Other(_) => {}
        }
    }

    /// Ends the stream: one that stopped before `message_stop` ends in an
    /// `api_error`.
    pub fn finish(&mut self, out: &mut Vec<ChatEvent>) {
        if !self.done {
            self.fail(
                ApiError::api("upstream stream ended before completion").mark_upstream(),
                out,
            );
        }
    }

    fn fail(&mut self, err: ApiError, out: &mut Vec<ChatEvent>) {
        self.done = true;
        out.push(ChatEvent::error(err));
    }

    fn ensure_started(&mut self, out: &mut Vec<ChatEvent>) {
        if !self.started {
            self.started = true;
            out.push(ChatEvent::message_start(MessageStart {
                id: String::new(),
                model: String::new(),
                usage: Usage::default(),
                extra: Map::new(),
            }));
        }
    }

    fn close(&mut self, out: &mut Vec<ChatEvent>) {
        if let Some(index) = self.open.take() {
            out.push(ChatEvent::BlockStop { index });
        }
    }
}

/// Writes canonical events as an Anthropic SSE stream: `event: <type>` and
/// `data: <json>` for each, nothing after `message_stop` or `error`, and no
/// `[DONE]`.
#[derive(Debug)]
pub struct EventEncoder {
    same: bool,
    done: bool,
}

impl EventEncoder {
    /// An encoder for a stream whose events came from `upstream`.
    pub fn new(upstream: Option<Format>) -> Self {
        Self {
            same: upstream == Some(Format::Anthropic),
            done: false,
        }
    }

    /// The wire event for `event` (`None` for nothing to send).
    pub fn to_wire(&mut self, event: ChatEvent) -> Option<w::StreamEvent> {
        if self.done {
            return None;
        }
        let same = self.same;
        Some(match event {
            ChatEvent::MessageStart(start) => {
                let MessageStart {
                    id,
                    model,
                    usage,
                    extra,
                } = *start;
                w::StreamEvent::MessageStart(w::MessageStart {
                    message: w::MessagesResponse {
                        id: if same { id } else { anthropic_message_id(&id) },
                        kind: "message".into(),
                        role: "assistant".into(),
                        model,
                        content: Vec::new(),
                        stop_reason: None,
                        stop_sequence: None,
                        usage: usage_to_wire(usage, same),
                        extra: if same { extra } else { Map::new() },
                    },
                    extra: Map::new(),
                })
            }
            ChatEvent::BlockStart { index, part } => {
                let part = match *part {
                    // The block opens empty; its input arrives as deltas.
                    Part::ToolCall(mut c) if !same => {
                        c.arguments = ToolArguments::Json(RawJson::empty_object());
                        Part::ToolCall(c)
                    }
                    Part::Thinking(t) if !same => Part::Thinking(ThinkingPart {
                        signature: Some(t.signature.unwrap_or_default()),
                        ..t
                    }),
                    Part::Text(t) if !same => Part::Text(TextPart {
                        text: t.text,
                        extra: Map::new(),
                    }),
                    other => other,
                };
                let ctx = Ctx {
                    same: true,
                    request: false,
                };
                let block = match part {
                    Part::ToolCall(mut c) if !same => {
                        c.id = anthropic_tool_id(&c.id).into_owned();
                        c.extra = Map::new();
                        part_to_block(Part::ToolCall(c), ctx)
                    }
                    Part::Other(_) if !same => return None,
                    other => part_to_block(other, ctx),
                };
                match block {
                    Ok(Some(content_block)) => {
                        w::StreamEvent::ContentBlockStart(w::ContentBlockStart {
                            index,
                            content_block,
                            extra: Map::new(),
                        })
                    }
                    _ => return None,
                }
            }
            ChatEvent::BlockDelta { index, delta } => {
                let delta = match delta {
                    BlockDelta::Text(text) => w::Delta::Text(w::TextDelta {
                        text,
                        extra: Map::new(),
                    }),
                    BlockDelta::ToolArguments(partial_json) => {
                        w::Delta::InputJson(w::InputJsonDelta {
                            partial_json,
                            extra: Map::new(),
                        })
                    }
                    BlockDelta::Thinking(thinking) => w::Delta::Thinking(w::ThinkingDelta {
                        thinking,
                        extra: Map::new(),
                    }),
                    BlockDelta::Signature(signature) => w::Delta::Signature(w::SignatureDelta {
                        signature,
                        extra: Map::new(),
                    }),
                    BlockDelta::Other(v) if same => w::Delta::Other(v),
                    BlockDelta::Other(_) => return None,
                };
                w::StreamEvent::ContentBlockDelta(w::ContentBlockDelta {
                    index,
                    delta,
                    extra: Map::new(),
                })
            }
            ChatEvent::BlockStop { index } => {
                w::StreamEvent::ContentBlockStop(w::ContentBlockStop {
                    index,
                    extra: Map::new(),
                })
            }
            ChatEvent::MessageDelta(delta) => {
                let MessageDelta {
                    stop_reason,
                    stop_sequence,
                    usage,
                    extra,
                } = *delta;
                let mut extra = if same { extra } else { Map::new() };
                let stop_reason = stop_reason.map(|r| {
                    if !same && r == StopReason::Refusal {
                        extra.insert("stop_details".into(), refusal_details());
                    }
                    stop_reason_to_anthropic(&r, same)
                });
                w::StreamEvent::MessageDelta(w::MessageDelta {
                    delta: w::MessageDeltaBody {
                        stop_reason: stop_reason.or_else(|| (!same).then(|| "end_turn".into())),
                        stop_sequence,
                        extra,
                    },
                    usage: usage_to_wire(usage, same),
                    extra: Map::new(),
                })
            }
            ChatEvent::MessageStop => {
                self.done = true;
                w::StreamEvent::MessageStop(w::Empty::default())
            }
            ChatEvent::Ping => w::StreamEvent::Ping(w::Empty::default()),
            ChatEvent::Error(e) => {
                self.done = true;
                w::StreamEvent::Error(w::ErrorEvent {
                    error: e.to_anthropic_detail(),
                    extra: Map::new(),
                })
            }
        })
    }

    /// Appends the SSE frame of `event` to `buf`.
    ///
    /// Deltas, nearly every event of a stream, are written directly: the
    /// same bytes as [`to_wire`](Self::to_wire) then [`write_event`],
    /// without building the wire event.
    pub fn encode(&mut self, event: ChatEvent, buf: &mut BytesMut) {
        if let ChatEvent::BlockDelta { index, delta } = &event
            && !self.done
        {
            let (kind, field, text) = match delta {
                BlockDelta::Text(t) => ("text_delta", "text", t),
                BlockDelta::ToolArguments(j) => ("input_json_delta", "partial_json", j),
                BlockDelta::Thinking(t) => ("thinking_delta", "thinking", t),
                BlockDelta::Signature(s) => ("signature_delta", "signature", s),
                BlockDelta::Other(_) => return self.encode_wire(event, buf),
            };
            buf.put_slice(
                b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
            );
            // Serialising into memory cannot fail.
            let _ = crate::wire::write_json(buf, index);
            buf.put_slice(b",\"delta\":{\"type\":\"");
            buf.put_slice(kind.as_bytes());
            buf.put_slice(b"\",\"");
            buf.put_slice(field.as_bytes());
            buf.put_slice(b"\":");
            let _ = crate::wire::write_json(buf, text);
            buf.put_slice(b"}}\n\n");
            return;
        }
        self.encode_wire(event, buf);
    }

    fn encode_wire(&mut self, event: ChatEvent, buf: &mut BytesMut) {
        if let Some(wire) = self.to_wire(event) {
            write_event(&wire, buf);
        }
    }
}

/// Appends the SSE frame of a wire event: `event: <type>\ndata: <json>\n\n`.
pub fn write_event(event: &w::StreamEvent, buf: &mut BytesMut) {
    let name = event.type_tag().unwrap_or("message");
    // Serialising our own types into memory cannot fail.
    let _ = sse::write_json_event(buf, Some(name), event);
}
