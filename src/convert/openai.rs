//! OpenAI Chat Completions ⇄ the canonical chat model.
//!
//! Encoding a request that came from Anthropic follows conversion-spec §1:
//! turns of the same role are merged first; each user turn's `tool_result`
//! blocks become `tool` messages placed right after the assistant's
//! `tool_calls` and before the turn's other content (images inside tool
//! results follow as user content, since tool messages are text only);
//! assistant text is joined and `content` is `null` beside tool calls; tool
//! names longer than 64 characters are shortened reversibly
//! ([`super::wire_tool_name`]); `cache_control`, thinking
//! blocks, server tools and unknown blocks are not sent; `max_tokens` becomes
//! `max_completion_tokens` (configurable); streams ask for
//! `include_usage`.
//!
//! Streams: [`ChunkDecoder`] is the state machine of §3.3 (OpenAI chunks →
//! block-structured events); [`ChunkEncoder`] is §3.4 (events → chunks).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use serde_json::Value;

use super::{
    ToolNames, effective_stop_reason, openai_completion_id, random_id, stash,
    stop_reason_from_openai, stop_reason_to_openai, unstash, wire_tool_name,
};
use crate::Format;
use crate::chat::{
    BlockDelta, ChatEvent, ChatRequest, ChatResponse, Content, ContentForm, DocumentPart,
    FunctionTool, ImagePart, MaxTokensField, MediaSource, Message, MessageDelta, MessageStart,
    Part, RefusalPart, Role, Stop, StopReason, TextPart, ThinkingPart, Tool, ToolArguments,
    ToolCall, ToolChoice, ToolResult, Usage,
};
use crate::error::ApiError;
use crate::sse;
use crate::wire::openai as w;
use crate::wire::{Map, RawJson};

/// What an OpenAI-compatible upstream accepts, for requests that came from
/// another format (a request from an OpenAI client is sent as it came,
/// except where a field here is set explicitly).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RequestOptions {
    /// The field for the output limit. `None`: what an OpenAI client used,
    /// else `max_completion_tokens` (which OpenAI reasoning models require;
    /// set `MaxTokens` for servers that only know the legacy name).
    pub max_tokens_field: Option<MaxTokensField>,
    /// Send the system prompt with the `developer` role (OpenAI reasoning
    /// models).
    pub developer_role: bool,
    /// The upstream model reasons: Anthropic thinking becomes
    /// `reasoning_effort` (budget < 1024 minimal, ≥ 1024 low, ≥ 2048 medium,
    /// ≥ 4096 high), and `temperature`/`top_p` are not sent.
    pub reasoning_model: bool,
    /// Send assistant thinking back as `reasoning_content` (DeepSeek-style
    /// servers that accept it).
    pub reasoning_content: bool,
}

impl RequestOptions {
    /// Sets [`max_tokens_field`](Self::max_tokens_field).
    pub fn max_tokens_field(mut self, field: MaxTokensField) -> Self {
        self.max_tokens_field = Some(field);
        self
    }

    /// Sets [`developer_role`](Self::developer_role).
    pub fn developer_role(mut self, yes: bool) -> Self {
        self.developer_role = yes;
        self
    }

    /// Sets [`reasoning_model`](Self::reasoning_model).
    pub fn reasoning_model(mut self, yes: bool) -> Self {
        self.reasoning_model = yes;
        self
    }

    /// Sets [`reasoning_content`](Self::reasoning_content).
    pub fn reasoning_content(mut self, yes: bool) -> Self {
        self.reasoning_content = yes;
        self
    }
}

/// How to write responses and chunks for an OpenAI client.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ResponseOptions {
    /// Send thinking from another format as `reasoning_content`
    /// (non-standard; off by default).
    pub reasoning_content: bool,
}

impl ResponseOptions {
    /// Sets [`reasoning_content`](Self::reasoning_content).
    pub fn reasoning_content(mut self, yes: bool) -> Self {
        self.reasoning_content = yes;
        self
    }
}

// === Requests ===

/// Decodes an OpenAI request into the canonical model, faithfully.
pub fn request_from_wire(req: w::ChatCompletionRequest) -> Result<ChatRequest, ApiError> {
    let mut extra = req.extra;
    let (max_tokens, max_tokens_field) = match (req.max_completion_tokens, req.max_tokens) {
        (Some(m), legacy) => {
            if let Some(l) = legacy {
                extra.insert("max_tokens".into(), Value::from(l));
            }
            (Some(m), Some(MaxTokensField::MaxCompletionTokens))
        }
        (None, Some(l)) => (Some(l), Some(MaxTokensField::MaxTokens)),
        (None, None) => (None, None),
    };
    let include_usage = req.stream_options.and_then(|so| {
        stash(&mut extra, "stream_options", so.extra);
        so.include_usage
    });
    if let Some(metadata) = req.metadata {
        extra.insert("metadata".into(), metadata.into());
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for m in req.messages {
        messages.push(message_from_wire(m)?);
    }
    Ok(ChatRequest {
        model: req.model,
        system: None,
        messages,
        tools: req
            .tools
            .map(|tools| tools.into_iter().map(tool_from_wire).collect()),
        tool_choice: req.tool_choice.map(choice_from_wire),
        parallel_tool_calls: req.parallel_tool_calls,
        max_tokens,
        max_tokens_field,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: None,
        stop: req.stop.map(|s| match s {
            w::Stop::One(s) => Stop::One(s),
            w::Stop::Many(v) => Stop::Many(v),
        }),
        stream: req.stream,
        include_usage,
        user: req.user,
        thinking: None,
        reasoning_effort: req.reasoning_effort,
        response_format: req.response_format,
        n: req.n,
        seed: req.seed,
        logprobs: req.logprobs,
        origin: Some(Format::OpenAi),
        extra,
    })
}

fn message_from_wire(m: w::ChatMessage) -> Result<Message, ApiError> {
    let mut extra = m.extra;
    let role = match m.role {
        w::Role::System => Role::System,
        w::Role::Developer => Role::Developer,
        w::Role::User => Role::User,
        w::Role::Assistant => Role::Assistant,
        w::Role::Tool => Role::Tool,
        w::Role::Function => {
            return Err(ApiError::invalid_request(
                "messages with the deprecated role `function` are not supported; use `tool` messages",
            )
            .with_param("messages"));
        }
    };
    if let Some(refusal) = m.refusal {
        extra.insert("refusal".into(), refusal.map_or(Value::Null, Value::String));
    }
    if let Some(reasoning) = m.reasoning {
        extra.insert("reasoning".into(), Value::String(reasoning));
    }
    let content = content_from_wire(m.content);
    if role == Role::Tool {
        let Some(tool_call_id) = m.tool_call_id else {
            return Err(
                ApiError::invalid_request("a `tool` message needs a `tool_call_id`")
                    .with_param("messages"),
            );
        };
        if let Some(calls) = m.tool_calls {
            extra.insert("tool_calls".into(), to_value(&calls));
        }
        if let Some(rc) = m.reasoning_content {
            extra.insert("reasoning_content".into(), Value::String(rc));
        }
        return Ok(Message {
            role,
            content: Content::parts(vec![Part::ToolResult(ToolResult {
                tool_call_id,
                content,
                is_error: None,
                extra: Map::new(),
            })]),
            name: m.name,
            extra,
        });
    }
    if let Some(id) = m.tool_call_id {
        extra.insert("tool_call_id".into(), Value::String(id));
    }
    let mut parts = Vec::with_capacity(content.parts.len() + 1);
    if let Some(text) = m.reasoning_content {
        parts.push(Part::Thinking(ThinkingPart {
            text,
            signature: None,
            extra: Map::new(),
        }));
    }
    parts.extend(content.parts);
    match m.tool_calls {
        Some(calls) if calls.is_empty() => {
            extra.insert("tool_calls".into(), Value::Array(Vec::new()));
        }
        Some(calls) => parts.extend(calls.into_iter().map(tool_call_from_wire)),
        None => {}
    }
    Ok(Message {
        role,
        content: Content {
            parts,
            form: content.form,
        },
        name: m.name,
        extra,
    })
}

fn tool_call_from_wire(call: w::ToolCall) -> Part {
    match call {
        w::ToolCall::Function(f) => {
            let mut extra = f.extra;
            if !f.function.extra.is_empty() {
                stash(&mut extra, "function", f.function.extra);
            }
            Part::ToolCall(ToolCall {
                id: f.id,
                name: f.function.name,
                arguments: ToolArguments::Text(f.function.arguments),
                extra,
            })
        }
        w::ToolCall::Other(v) => Part::Other(v),
    }
}

fn content_from_wire(content: Option<Option<w::MessageContent>>) -> Content {
    match content {
        None => Content {
            parts: Vec::new(),
            form: ContentForm::Absent,
        },
        Some(None) => Content {
            parts: Vec::new(),
            form: ContentForm::Null,
        },
        Some(Some(w::MessageContent::Text(text))) => Content::text(text),
        Some(Some(w::MessageContent::Parts(parts))) => {
            Content::parts(parts.into_iter().map(part_from_wire).collect())
        }
    }
}

fn part_from_wire(part: w::ContentPart) -> Part {
    match part {
        w::ContentPart::Text(t) => Part::Text(TextPart {
            text: t.text,
            extra: t.extra,
        }),
        w::ContentPart::ImageUrl(i) => {
            let mut extra = i.extra;
            if !i.image_url.extra.is_empty() {
                stash(&mut extra, "image_url", i.image_url.extra);
            }
            Part::Image(ImagePart {
                source: media_from_url(i.image_url.url),
                detail: i.image_url.detail,
                extra,
            })
        }
        w::ContentPart::File(f) => {
            let source = match (&f.file.file_data, &f.file.file_id) {
                (Some(data), None) => {
                    parse_data_url(data).map(|(media_type, data)| MediaSource::Base64 {
                        media_type: media_type.to_owned(),
                        data: data.to_owned(),
                    })
                }
                (None, Some(id)) => Some(MediaSource::FileId(id.clone())),
                _ => None,
            };
            match source {
                Some(source) => {
                    let mut extra = f.extra;
                    if !f.file.extra.is_empty() {
                        stash(&mut extra, "file", f.file.extra);
                    }
                    Part::Document(DocumentPart {
                        source,
                        title: f.file.filename,
                        context: None,
                        extra,
                    })
                }
                None => Part::Other(to_value(&w::ContentPart::File(f))),
            }
        }
        w::ContentPart::Refusal(r) => Part::Refusal(RefusalPart {
            text: r.refusal,
            extra: r.extra,
        }),
        w::ContentPart::Other(v) => Part::Other(v),
    }
}

fn media_from_url(url: String) -> MediaSource {
    match parse_data_url(&url) {
        Some((media_type, data)) => MediaSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        },
        None => MediaSource::Url(url),
    }
}

/// `data:<media type>;base64,<data>` → (media type, data).
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (media_type, data) = rest.split_once(";base64,")?;
    if media_type.is_empty() || media_type.contains([';', ',']) {
        return None;
    }
    Some((media_type, data))
}

fn data_url(media_type: &str, data: &str) -> String {
    format!("data:{media_type};base64,{data}")
}

fn tool_from_wire(tool: w::Tool) -> Tool {
    match tool {
        w::Tool::Function(f) => {
            let mut extra = f.extra;
            if !f.function.extra.is_empty() {
                stash(&mut extra, "function", f.function.extra);
            }
            Tool::Function(FunctionTool {
                name: f.function.name,
                description: f.function.description,
                parameters: f.function.parameters,
                strict: f.function.strict,
                extra,
            })
        }
        w::Tool::Other(v) => Tool::Other(v),
    }
}

fn choice_from_wire(choice: w::ToolChoice) -> ToolChoice {
    match choice {
        w::ToolChoice::Mode(m) => match m.as_str() {
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            "none" => ToolChoice::None,
            _ => ToolChoice::Other(Value::String(m)),
        },
        w::ToolChoice::Object(v) => {
            let simple = v.as_object().is_some_and(|o| {
                o.len() == 2 && v["function"].as_object().is_some_and(|f| f.len() == 1)
            });
            match (simple, w::ToolChoice::Object(v.clone()).function_name()) {
                (true, Some(name)) => ToolChoice::Tool(name.to_owned()),
                _ => ToolChoice::Other(v),
            }
        }
    }
}

/// Encodes a canonical request for an OpenAI-compatible upstream (or client).
pub fn request_to_wire(
    req: ChatRequest,
    opts: &RequestOptions,
) -> Result<w::ChatCompletionRequest, ApiError> {
    let same = req.origin == Some(Format::OpenAi);
    let derived_effort = if !same && opts.reasoning_model {
        effort_from_thinking(&req)
    } else {
        None
    };
    let mut extra = if same { req.extra } else { Map::new() };
    let system_role = if opts.developer_role {
        w::Role::Developer
    } else {
        w::Role::System
    };

    let mut messages: Vec<w::ChatMessage> = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = req.system {
        let text = system.joined_text("\n\n");
        if !text.trim().is_empty() {
            messages.push(text_message(system_role, text));
        }
    }
    let source = if same {
        req.messages
    } else {
        merge_turns(req.messages)
    };
    for msg in source {
        encode_message(msg, same, system_role, opts, &mut messages)?;
    }
    if !same && messages.is_empty() {
        return Err(
            ApiError::invalid_request("`messages` is empty after conversion")
                .with_param("messages"),
        );
    }

    let tools: Option<Vec<w::Tool>> = req.tools.map(|tools| {
        tools
            .into_iter()
            .filter_map(|t| tool_to_wire(t, same))
            .collect()
    });
    let tools = tools.filter(|t| same || !t.is_empty());
    let has_tools = tools.is_some();
    let tool_choice = match req.tool_choice {
        _ if !has_tools && !same => None,
        Some(ToolChoice::Auto) => Some(w::ToolChoice::Mode("auto".into())),
        Some(ToolChoice::Required) => Some(w::ToolChoice::Mode("required".into())),
        Some(ToolChoice::None) => Some(w::ToolChoice::Mode("none".into())),
        Some(ToolChoice::Tool(name)) => Some(w::ToolChoice::Object(serde_json::json!({
            "type": "function",
            "function": {"name": if same { name } else { wire_tool_name(&name).into_owned() }},
        }))),
        Some(ToolChoice::Other(v)) if same => Some(match v {
            Value::String(s) => w::ToolChoice::Mode(s),
            v => w::ToolChoice::Object(v),
        }),
        Some(ToolChoice::Other(_)) | None => None,
    };
    let parallel_tool_calls = if same {
        req.parallel_tool_calls
    } else {
        // OpenAI's default is parallel; only a refusal of it is sent.
        req.parallel_tool_calls.filter(|p| {
            !p && has_tools
                && !matches!(tool_choice, Some(w::ToolChoice::Mode(ref m)) if m == "none")
        })
    };

    let field = opts
        .max_tokens_field
        .or(if same { req.max_tokens_field } else { None })
        .unwrap_or(MaxTokensField::MaxCompletionTokens);
    let legacy_max = if same {
        extra.remove("max_tokens").and_then(|v| v.as_u64())
    } else {
        None
    };
    let (max_tokens, max_completion_tokens) = match field {
        MaxTokensField::MaxTokens => (req.max_tokens, None),
        MaxTokensField::MaxCompletionTokens => (legacy_max, req.max_tokens),
    };

    let stream_leftovers = if same {
        unstash(&mut extra, "stream_options")
    } else {
        None
    };
    let include_usage = if same {
        req.include_usage
    } else if req.stream == Some(true) {
        Some(true)
    } else {
        None
    };
    let stream_options = match (stream_leftovers, include_usage) {
        (None, None) => None,
        (leftovers, include_usage) => Some(w::StreamOptions {
            include_usage,
            extra: leftovers.unwrap_or_default(),
        }),
    };
    let metadata = if same {
        match extra.remove("metadata") {
            Some(Value::Object(m)) => Some(m.into()),
            Some(other) => {
                extra.insert("metadata".into(), other);
                None
            }
            None => None,
        }
    } else {
        None
    };

    let reasoning_effort = if same {
        req.reasoning_effort
    } else {
        derived_effort
    };
    let (temperature, top_p) = if !same && opts.reasoning_model {
        (None, None)
    } else {
        (req.temperature, req.top_p)
    };
    let stop = match req.stop {
        Some(stop) if same => Some(match stop {
            Stop::One(s) => w::Stop::One(s),
            Stop::Many(v) => w::Stop::Many(v),
        }),
        Some(stop) => {
            // OpenAI accepts at most four.
            let seqs: Vec<String> = stop.as_slice().iter().take(4).cloned().collect();
            (!seqs.is_empty()).then_some(w::Stop::Many(seqs))
        }
        None => None,
    };

    Ok(w::ChatCompletionRequest {
        model: req.model,
        messages,
        max_tokens,
        max_completion_tokens,
        temperature,
        top_p,
        stop,
        stream: req.stream,
        stream_options,
        tools,
        tool_choice,
        parallel_tool_calls,
        response_format: req.response_format,
        n: req.n,
        seed: req.seed,
        logprobs: req.logprobs,
        reasoning_effort,
        user: req.user,
        metadata,
        extra,
    })
}

/// Anthropic thinking → `reasoning_effort` (conversion-spec §1.10).
fn effort_from_thinking(req: &ChatRequest) -> Option<String> {
    use crate::chat::ThinkingMode;
    let thinking = req.thinking.as_ref()?;
    match thinking.mode {
        ThinkingMode::Enabled => {
            let budget = thinking.budget_tokens.unwrap_or(0);
            Some(
                match budget {
                    b if b >= 4096 => "high",
                    b if b >= 2048 => "medium",
                    b if b >= 1024 => "low",
                    _ => "minimal",
                }
                .to_owned(),
            )
        }
        ThinkingMode::Adaptive => Some(
            match req.reasoning_effort.as_deref() {
                Some(e @ ("low" | "medium" | "high")) => e,
                Some(_) => "high",
                None => "medium",
            }
            .to_owned(),
        ),
        _ => None,
    }
}

/// Merges consecutive user or assistant turns (Anthropic does this itself),
/// so that every tool result answering one assistant turn is handled
/// together.
fn merge_turns(messages: Vec<Message>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    for msg in messages {
        if let Some(last) = out.last_mut()
            && last.role == msg.role
            && matches!(msg.role, Role::User | Role::Assistant)
        {
            if last.content.form == ContentForm::Text && msg.content.form == ContentForm::Text {
                last.content.form = ContentForm::Parts;
            }
            last.content.form = ContentForm::Parts;
            last.content.parts.extend(msg.content.parts);
            continue;
        }
        out.push(msg);
    }
    out
}

fn text_message(role: w::Role, text: String) -> w::ChatMessage {
    w::ChatMessage {
        role,
        content: Some(Some(w::MessageContent::Text(text))),
        name: None,
        tool_calls: None,
        tool_call_id: None,
        refusal: None,
        reasoning_content: None,
        reasoning: None,
        extra: Map::new(),
    }
}

/// Takes the fields that [`message_from_wire`] parked in `extra` back out.
struct Parked {
    refusal: Option<Option<String>>,
    reasoning: Option<String>,
    reasoning_content: Option<String>,
    tool_calls: Option<Value>,
    tool_call_id: Option<String>,
}

fn unpark(extra: &mut Map) -> Parked {
    Parked {
        refusal: extra.remove("refusal").map(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        }),
        reasoning: take_string(extra, "reasoning"),
        reasoning_content: take_string(extra, "reasoning_content"),
        tool_calls: extra.remove("tool_calls"),
        tool_call_id: take_string(extra, "tool_call_id"),
    }
}

fn take_string(extra: &mut Map, key: &str) -> Option<String> {
    if extra.is_empty() {
        return None;
    }
    match extra.remove(key) {
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            extra.insert(key.to_owned(), other);
            None
        }
        None => None,
    }
}

fn encode_message(
    msg: Message,
    same: bool,
    system_role: w::Role,
    opts: &RequestOptions,
    out: &mut Vec<w::ChatMessage>,
) -> Result<(), ApiError> {
    let mut extra = if same { msg.extra } else { Map::new() };
    let parked = unpark(&mut extra);
    match msg.role {
        Role::System | Role::Developer => {
            let role = match (same, msg.role) {
                (true, Role::Developer) => w::Role::Developer,
                (true, _) => w::Role::System,
                (false, _) => system_role,
            };
            if same {
                out.push(w::ChatMessage {
                    role,
                    content: content_to_wire(msg.content, same)?,
                    name: msg.name,
                    tool_calls: None,
                    tool_call_id: parked.tool_call_id,
                    refusal: parked.refusal,
                    reasoning_content: parked.reasoning_content,
                    reasoning: parked.reasoning,
                    extra,
                });
            } else {
                let text = msg.content.joined_text("\n\n");
                if !text.trim().is_empty() {
                    out.push(text_message(role, text));
                }
            }
        }
        Role::Tool if same => {
            // One tool message per result (there is exactly one when it came
            // from OpenAI).
            let mut name = msg.name;
            let mut extra = Some(extra);
            let mut parked = Some(parked);
            for part in msg.content.parts {
                let Part::ToolResult(r) = part else { continue };
                let p = parked.take();
                out.push(w::ChatMessage {
                    role: w::Role::Tool,
                    content: content_to_wire(r.content, same)?,
                    name: name.take(),
                    tool_calls: p
                        .as_ref()
                        .and_then(|p| p.tool_calls.clone())
                        .and_then(|v| serde_json::from_value(v).ok()),
                    tool_call_id: Some(r.tool_call_id),
                    refusal: p.as_ref().and_then(|p| p.refusal.clone()),
                    reasoning_content: p.as_ref().and_then(|p| p.reasoning_content.clone()),
                    reasoning: p.and_then(|p| p.reasoning),
                    extra: extra.take().unwrap_or_default(),
                });
            }
        }
        Role::User | Role::Tool => {
            encode_user(msg.content, msg.name, extra, parked, same, out)?;
        }
        Role::Assistant => {
            encode_assistant(msg.content, msg.name, extra, parked, same, opts, out)?;
        }
    }
    Ok(())
}

/// A user turn: its tool results first, as `tool` messages, then the rest
/// as one user message (conversion-spec §1.6).
fn encode_user(
    content: Content,
    name: Option<String>,
    extra: Map,
    parked: Parked,
    same: bool,
    out: &mut Vec<w::ChatMessage>,
) -> Result<(), ApiError> {
    let has_results = content
        .parts
        .iter()
        .any(|p| matches!(p, Part::ToolResult(_)));
    if !has_results {
        if same {
            out.push(w::ChatMessage {
                role: w::Role::User,
                content: content_to_wire(content, same)?,
                name,
                tool_calls: None,
                tool_call_id: parked.tool_call_id,
                refusal: parked.refusal,
                reasoning_content: parked.reasoning_content,
                reasoning: parked.reasoning,
                extra,
            });
            return Ok(());
        }
        let single_text = content.form == ContentForm::Text;
        let parts = user_parts_to_wire(content.parts)?;
        if let Some(content) = user_content(parts, single_text) {
            out.push(w::ChatMessage {
                content: Some(Some(content)),
                name,
                ..text_message(w::Role::User, String::new())
            });
        }
        return Ok(());
    }

    let mut tool_msgs: Vec<(String, String)> = Vec::new();
    let mut deferred: Vec<Part> = Vec::new();
    let mut rest: Vec<Part> = Vec::new();
    for part in content.parts {
        match part {
            Part::ToolResult(r) => {
                if r.tool_call_id.is_empty() {
                    return Err(ApiError::invalid_request(
                        "a `tool_result` has no `tool_use_id` and cannot be matched to its call",
                    ));
                }
                let text = flatten_tool_result(r.content, r.is_error == Some(true), &mut deferred);
                // Exactly one tool message per call: merge duplicates.
                match tool_msgs.iter_mut().find(|(id, _)| *id == r.tool_call_id) {
                    Some((_, existing)) => {
                        existing.push('\n');
                        existing.push_str(&text);
                    }
                    None => tool_msgs.push((r.tool_call_id, text)),
                }
            }
            other => rest.push(other),
        }
    }
    for (id, text) in tool_msgs {
        out.push(w::ChatMessage {
            tool_call_id: Some(id),
            ..text_message(w::Role::Tool, text)
        });
    }
    let mut parts = Vec::new();
    if !deferred.is_empty() {
        parts.push(w::ContentPart::Text(w::TextPart {
            text: "Images returned by tool calls:".into(),
            extra: Map::new(),
        }));
        parts.extend(user_parts_to_wire(deferred)?);
    }
    parts.extend(user_parts_to_wire(rest)?);
    if let Some(content) = user_content(parts, false) {
        out.push(w::ChatMessage {
            content: Some(Some(content)),
            name,
            ..text_message(w::Role::User, String::new())
        });
    }
    Ok(())
}

/// Content for a user message from another format: `None` when nothing is
/// left; a string when it was one in the original.
fn user_content(parts: Vec<w::ContentPart>, single_text: bool) -> Option<w::MessageContent> {
    if parts.is_empty() {
        return None;
    }
    if single_text
        && parts.len() == 1
        && let Some(w::ContentPart::Text(t)) = parts.first()
    {
        return Some(w::MessageContent::Text(t.text.clone()));
    }
    Some(w::MessageContent::Parts(parts))
}

/// The text of a tool result for a `tool` message (which carries text only):
/// text blocks joined with `\n`, other blocks as text or JSON, images set
/// aside for a following user message, `Error: ` in front of a failure.
fn flatten_tool_result(content: Content, is_error: bool, deferred: &mut Vec<Part>) -> String {
    let mut texts: Vec<String> = Vec::new();
    for part in content.parts {
        match part {
            Part::Text(t) => texts.push(t.text),
            Part::Image(i) => deferred.push(Part::Image(i)),
            Part::Document(d) => match d.source {
                MediaSource::Text { data, .. } => texts.push(data),
                MediaSource::Content(c) => {
                    texts.push(flatten_tool_result(c, false, deferred));
                }
                _ => deferred.push(Part::Document(d)),
            },
            Part::Refusal(r) => texts.push(r.text),
            Part::Other(v) => texts
                .push(search_result_text(&v).unwrap_or_else(|| crate::wire::value_to_string(&v))),
            Part::ToolCall(_)
            | Part::ToolResult(_)
            | Part::Thinking(_)
            | Part::RedactedThinking(_) => {}
        }
    }
    let text = texts.join("\n");
    if is_error {
        format!("Error: {text}")
    } else {
        text
    }
}

/// The text of an Anthropic `search_result` block.
fn search_result_text(v: &Value) -> Option<String> {
    if v.get("type")?.as_str()? != "search_result" {
        return None;
    }
    let mut out = String::new();
    if let Some(title) = v.get("title").and_then(Value::as_str) {
        out.push_str(title);
        out.push('\n');
    }
    if let Some(source) = v.get("source").and_then(Value::as_str) {
        out.push_str(source);
        out.push('\n');
    }
    for block in v
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            out.push_str(t);
            out.push('\n');
        }
    }
    Some(out.trim_end().to_owned())
}

/// User content from another format (conversion-spec §1.5).
fn user_parts_to_wire(parts: Vec<Part>) -> Result<Vec<w::ContentPart>, ApiError> {
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Part::Text(t) if !t.text.is_empty() => out.push(text_part(t.text)),
            Part::Refusal(r) if !r.text.is_empty() => out.push(text_part(r.text)),
            Part::Image(i) => match i.source {
                MediaSource::Base64 { media_type, data } => {
                    out.push(image_part(data_url(&media_type, &data), i.detail))
                }
                MediaSource::Url(url) => out.push(image_part(url, i.detail)),
                MediaSource::FileId(_) => {
                    return Err(ApiError::invalid_request(
                        "an image referenced by file id cannot be sent to this provider",
                    ));
                }
                _ => {}
            },
            Part::Document(d) => document_to_wire(d, &mut out)?,
            Part::Other(v) => {
                if let Some(text) = search_result_text(&v) {
                    out.push(text_part(text));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn document_to_wire(d: DocumentPart, out: &mut Vec<w::ContentPart>) -> Result<(), ApiError> {
    match d.source {
        MediaSource::Base64 { media_type, data } => {
            out.push(w::ContentPart::File(w::FilePart {
                file: w::FileRef {
                    file_data: Some(data_url(&media_type, &data)),
                    file_id: None,
                    filename: Some(d.title.unwrap_or_else(|| "document.pdf".to_owned())),
                    extra: Map::new(),
                },
                extra: Map::new(),
            }));
        }
        MediaSource::Text { data, .. } => {
            let text = match d.title {
                Some(title) => format!("{title}\n\n{data}"),
                None => data,
            };
            out.push(text_part(text));
        }
        MediaSource::Content(c) => out.extend(user_parts_to_wire(c.parts)?),
        MediaSource::Url(_) => {
            return Err(ApiError::invalid_request(
                "documents given by URL are not supported by this provider; send the document's content",
            ));
        }
        MediaSource::FileId(_) => {
            return Err(ApiError::invalid_request(
                "a document referenced by file id cannot be sent to this provider",
            ));
        }
        MediaSource::Other(_) => {}
    }
    Ok(())
}

fn text_part(text: String) -> w::ContentPart {
    w::ContentPart::Text(w::TextPart {
        text,
        extra: Map::new(),
    })
}

fn image_part(url: String, detail: Option<String>) -> w::ContentPart {
    w::ContentPart::ImageUrl(w::ImageUrlPart {
        image_url: w::ImageUrl {
            url,
            detail,
            extra: Map::new(),
        },
        extra: Map::new(),
    })
}

fn encode_assistant(
    content: Content,
    name: Option<String>,
    extra: Map,
    parked: Parked,
    same: bool,
    opts: &RequestOptions,
    out: &mut Vec<w::ChatMessage>,
) -> Result<(), ApiError> {
    let form = content.form;
    let mut calls: Vec<w::ToolCall> = Vec::new();
    let mut reasoning: Option<String> = None;
    let mut content_parts: Vec<Part> = Vec::new();
    for part in content.parts {
        match part {
            Part::ToolCall(c) => calls.push(tool_call_to_wire(c, same)),
            Part::Thinking(t) => {
                if same || opts.reasoning_content {
                    reasoning.get_or_insert_with(String::new).push_str(&t.text);
                }
            }
            Part::Other(v) if same && v.get("id").is_some() => {
                // A tool call of a kind the model does not name (content
                // parts have no `id`).
                calls.push(w::ToolCall::Other(v));
            }
            Part::RedactedThinking(_) | Part::ToolResult(_) => {}
            other => content_parts.push(other),
        }
    }
    let tool_calls = if calls.is_empty() {
        match parked.tool_calls {
            Some(Value::Array(a)) if a.is_empty() => Some(Vec::new()),
            _ => None,
        }
    } else {
        Some(calls)
    };
    if same {
        out.push(w::ChatMessage {
            role: w::Role::Assistant,
            content: content_to_wire(
                Content {
                    parts: content_parts,
                    form,
                },
                same,
            )?,
            name,
            tool_calls,
            tool_call_id: parked.tool_call_id,
            refusal: parked.refusal,
            reasoning_content: reasoning,
            reasoning: parked.reasoning,
            extra,
        });
        return Ok(());
    }
    let text: String = content_parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.text.as_str()),
            Part::Refusal(r) => Some(r.text.as_str()),
            _ => None,
        })
        .collect();
    let has_calls = tool_calls.as_ref().is_some_and(|c| !c.is_empty());
    if text.is_empty() && !has_calls {
        // Only thinking (dropped) or nothing: no message.
        return Ok(());
    }
    out.push(w::ChatMessage {
        role: w::Role::Assistant,
        content: Some(if text.is_empty() {
            None
        } else {
            Some(w::MessageContent::Text(text))
        }),
        name,
        tool_calls,
        tool_call_id: None,
        refusal: None,
        reasoning_content: reasoning,
        reasoning: None,
        extra: Map::new(),
    });
    Ok(())
}

fn tool_call_to_wire(c: ToolCall, same: bool) -> w::ToolCall {
    let mut extra = if same { c.extra } else { Map::new() };
    let function_extra = unstash(&mut extra, "function").unwrap_or_default();
    w::ToolCall::Function(w::FunctionToolCall {
        id: c.id,
        function: w::FunctionCall {
            name: if same {
                c.name
            } else {
                wire_tool_name(&c.name).into_owned()
            },
            arguments: c.arguments.into_json_string(),
            extra: function_extra,
        },
        extra,
    })
}

fn tool_to_wire(tool: Tool, same: bool) -> Option<w::Tool> {
    match tool {
        Tool::Function(f) => {
            let mut extra = if same { f.extra } else { Map::new() };
            let function_extra = unstash(&mut extra, "function").unwrap_or_default();
            Some(w::Tool::Function(w::FunctionTool {
                function: w::FunctionDefinition {
                    name: if same {
                        f.name
                    } else {
                        wire_tool_name(&f.name).into_owned()
                    },
                    description: f.description,
                    parameters: f.parameters,
                    strict: if same { f.strict } else { None },
                    extra: function_extra,
                },
                extra,
            }))
        }
        Tool::Other(v) if same => Some(w::Tool::Other(v)),
        Tool::Other(_) => None,
    }
}

/// Encodes content faithfully (a value that came from OpenAI).
fn content_to_wire(
    content: Content,
    same: bool,
) -> Result<Option<Option<w::MessageContent>>, ApiError> {
    let has_parts = !content.parts.is_empty();
    Ok(match content.form {
        ContentForm::Absent if !has_parts => None,
        ContentForm::Null if !has_parts => Some(None),
        ContentForm::Text if content.parts.len() == 1 => match content.parts.into_iter().next() {
            Some(Part::Text(t)) if t.extra.is_empty() => {
                Some(Some(w::MessageContent::Text(t.text)))
            }
            Some(part) => Some(Some(w::MessageContent::Parts(parts_to_wire(
                vec![part],
                same,
            )?))),
            None => None,
        },
        ContentForm::Text | ContentForm::Absent | ContentForm::Null
            if content.parts.iter().all(|p| matches!(p, Part::Text(_))) =>
        {
            Some(Some(w::MessageContent::Text(content.joined_text(""))))
        }
        _ => Some(Some(w::MessageContent::Parts(parts_to_wire(
            content.parts,
            same,
        )?))),
    })
}

fn parts_to_wire(parts: Vec<Part>, same: bool) -> Result<Vec<w::ContentPart>, ApiError> {
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Part::Text(t) => out.push(w::ContentPart::Text(w::TextPart {
                text: t.text,
                extra: t.extra,
            })),
            Part::Refusal(r) => out.push(w::ContentPart::Refusal(w::RefusalPart {
                refusal: r.text,
                extra: r.extra,
            })),
            Part::Image(mut i) => {
                let image_extra = unstash(&mut i.extra, "image_url").unwrap_or_default();
                let url = match i.source {
                    MediaSource::Base64 { media_type, data } => data_url(&media_type, &data),
                    MediaSource::Url(url) => url,
                    _ => continue,
                };
                out.push(w::ContentPart::ImageUrl(w::ImageUrlPart {
                    image_url: w::ImageUrl {
                        url,
                        detail: i.detail,
                        extra: image_extra,
                    },
                    extra: i.extra,
                }));
            }
            Part::Document(mut d) => {
                let file_extra = unstash(&mut d.extra, "file").unwrap_or_default();
                let (file_data, file_id) = match d.source {
                    MediaSource::Base64 { media_type, data } => {
                        (Some(data_url(&media_type, &data)), None)
                    }
                    MediaSource::FileId(id) => (None, Some(id)),
                    _ => {
                        document_to_wire(d, &mut out)?;
                        continue;
                    }
                };
                out.push(w::ContentPart::File(w::FilePart {
                    file: w::FileRef {
                        file_data,
                        file_id,
                        filename: d.title,
                        extra: file_extra,
                    },
                    extra: d.extra,
                }));
            }
            Part::Other(v) if same => out.push(w::ContentPart::Other(v)),
            _ => {}
        }
    }
    Ok(out)
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

// === Responses ===

/// Decodes an OpenAI response (its first choice), with the order of
/// conversion-spec §2.2 (reasoning, text, refusal, tool calls), tool names
/// mapped back through `names`, and the stop reason overrides of §2.3.
pub fn response_from_wire(
    resp: w::ChatCompletion,
    names: &ToolNames,
) -> Result<ChatResponse, ApiError> {
    let mut extra = resp.extra;
    if resp.object != "chat.completion" {
        extra.insert("object".into(), Value::String(resp.object));
    }
    let Some(choice) = resp.choices.into_iter().next() else {
        return Err(ApiError::api("the upstream response has no choices").mark_upstream());
    };
    let mut choice_extra = choice.extra;
    let message = choice.message;
    let mut message_extra = message.extra;
    let mut content = Vec::new();
    if let Some(text) = message.reasoning_content.or(message.reasoning)
        && !text.is_empty()
    {
        content.push(Part::Thinking(ThinkingPart {
            text,
            signature: None,
            extra: Map::new(),
        }));
    }
    match message.content {
        Some(Some(w::MessageContent::Text(text))) if !text.is_empty() => {
            content.push(Part::text(text))
        }
        Some(Some(w::MessageContent::Parts(parts))) => {
            for part in parts {
                match part_from_wire(part) {
                    Part::Text(t) if t.text.is_empty() => {}
                    p => content.push(p),
                }
            }
        }
        _ => {}
    }
    let mut has_refusal = false;
    if let Some(Some(refusal)) = message.refusal
        && !refusal.is_empty()
    {
        has_refusal = true;
        content.push(Part::Refusal(RefusalPart {
            text: refusal,
            extra: Map::new(),
        }));
    }
    let mut has_tools = false;
    for call in message.tool_calls.into_iter().flatten() {
        match tool_call_from_wire(call) {
            Part::ToolCall(mut c) => {
                has_tools = true;
                c.name = names.original(&c.name).to_owned();
                content.push(Part::ToolCall(c));
            }
            other => content.push(other),
        }
    }
    let vendor_stop = match choice_extra.get("stop_reason") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let reported = choice.finish_reason.as_deref().map(stop_reason_from_openai);
    let (reported, stop_sequence) = match (reported, vendor_stop) {
        (Some(StopReason::EndTurn), Some(seq)) => (Some(StopReason::StopSequence), Some(seq)),
        (r, _) => (r, None),
    };
    let stop_reason = effective_stop_reason(reported, has_tools, has_refusal);
    // The overrides make the stop reason right for any client; an OpenAI
    // client still gets back the upstream's own value.
    if let Some(raw) = choice.finish_reason
        && stop_reason_to_openai(&stop_reason, true) != raw
    {
        choice_extra.insert("finish_reason".into(), Value::String(raw));
    }
    if message.role != w::Role::Assistant {
        message_extra.insert("role".into(), to_value(&message.role));
    }
    if let Some(id) = message.tool_call_id {
        message_extra.insert("tool_call_id".into(), Value::String(id));
    }
    if !message_extra.is_empty() {
        stash(&mut choice_extra, "message", message_extra);
    }
    if !choice_extra.is_empty() || choice.index != 0 {
        if choice.index != 0 {
            choice_extra.insert("index".into(), Value::from(choice.index));
        }
        stash(&mut extra, "choices", choice_extra);
    }
    Ok(ChatResponse {
        id: resp.id,
        model: resp.model,
        content,
        stop_reason: Some(stop_reason),
        stop_sequence,
        usage: resp.usage.map(usage_from_wire).unwrap_or_default(),
        created: Some(resp.created),
        origin: Some(Format::OpenAi),
        extra,
    })
}

/// Encodes a response for an OpenAI client (conversion-spec §2.6): one
/// choice, text joined, `content: null` without text, thinking dropped
/// unless asked for.
pub fn response_to_wire(resp: ChatResponse, opts: &ResponseOptions) -> w::ChatCompletion {
    let same = resp.origin == Some(Format::OpenAi);
    let has_tools = resp.has_tool_calls();
    let mut extra = if same { resp.extra } else { Map::new() };
    let mut choice_extra = unstash(&mut extra, "choices").unwrap_or_default();
    let mut message_extra = unstash(&mut choice_extra, "message").unwrap_or_default();
    let index = choice_extra
        .remove("index")
        .and_then(|v| v.as_u64())
        .unwrap_or(0) as u32;
    let role = message_extra
        .remove("role")
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or(w::Role::Assistant);
    let tool_call_id = take_string(&mut message_extra, "tool_call_id");
    let object = take_string(&mut extra, "object").unwrap_or_else(|| "chat.completion".into());

    let mut text: Option<String> = None;
    let mut refusal: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut calls = Vec::new();
    let mut other_parts = Vec::new();
    for part in resp.content {
        match part {
            Part::Text(t) => text.get_or_insert_with(String::new).push_str(&t.text),
            Part::Refusal(r) => refusal.get_or_insert_with(String::new).push_str(&r.text),
            Part::Thinking(t) if same || opts.reasoning_content => {
                reasoning.get_or_insert_with(String::new).push_str(&t.text)
            }
            Part::ToolCall(c) => calls.push(tool_call_to_wire(c, same)),
            // A tool call of a kind the model does not name (content parts
            // have no `id`).
            Part::Other(v) if same && v.get("id").is_some() => calls.push(w::ToolCall::Other(v)),
            Part::Other(v) if same => other_parts.push(v),
            _ => {}
        }
    }
    let raw_finish = take_string(&mut choice_extra, "finish_reason");
    let finish_reason = match resp.stop_reason {
        _ if raw_finish.is_some() => raw_finish.unwrap_or_default(),
        Some(r) if same => stop_reason_to_openai(&r, true),
        r => stop_reason_to_openai(
            &effective_stop_reason(r, has_tools, refusal.is_some()),
            false,
        ),
    };
    let mut content = text.map(w::MessageContent::Text);
    if !other_parts.is_empty() {
        let mut parts: Vec<w::ContentPart> = Vec::new();
        if let Some(w::MessageContent::Text(t)) = content.take() {
            parts.push(text_part(t));
        }
        parts.extend(other_parts.into_iter().map(w::ContentPart::Other));
        content = Some(w::MessageContent::Parts(parts));
    }
    w::ChatCompletion {
        id: if same {
            resp.id
        } else {
            openai_completion_id(&resp.id)
        },
        object,
        created: resp.created.unwrap_or_else(unix_now),
        model: resp.model,
        choices: vec![w::Choice {
            index,
            message: w::ChatMessage {
                role,
                content: Some(content),
                name: None,
                tool_calls: (!calls.is_empty()).then_some(calls),
                tool_call_id,
                refusal: Some(refusal),
                reasoning_content: reasoning,
                reasoning: None,
                extra: message_extra,
            },
            finish_reason: Some(finish_reason),
            extra: choice_extra,
        }],
        // An upstream that reported no usage is echoed without it.
        usage: (!same || resp.usage != Usage::default()).then(|| usage_to_wire(resp.usage, same)),
        extra,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Decodes OpenAI usage: `prompt_tokens` includes cached tokens, canonical
/// `input_tokens` does not (conversion-spec §2.4).
pub(crate) fn usage_from_wire(u: w::Usage) -> Usage {
    let mut extra = u.extra;
    let (cache_read_tokens, cache_write_tokens) = match u.prompt_tokens_details {
        Some(d) => {
            stash(&mut extra, "prompt_tokens_details", d.extra);
            (d.cached_tokens, d.cache_write_tokens)
        }
        None => (None, None),
    };
    let reasoning_tokens = u.completion_tokens_details.and_then(|d| {
        stash(&mut extra, "completion_tokens_details", d.extra);
        d.reasoning_tokens
    });
    if u.total_tokens != u.prompt_tokens + u.completion_tokens {
        extra.insert("total_tokens".into(), Value::from(u.total_tokens));
    }
    let cached = cache_read_tokens.unwrap_or(0) + cache_write_tokens.unwrap_or(0);
    Usage {
        input_tokens: Some(u.prompt_tokens.saturating_sub(cached)),
        output_tokens: Some(u.completion_tokens),
        cache_read_tokens,
        cache_write_tokens,
        reasoning_tokens,
        extra,
    }
}

/// Encodes usage for an OpenAI client. From another format the cache
/// details are always written.
pub(crate) fn usage_to_wire(u: Usage, same: bool) -> w::Usage {
    let prompt_tokens = u.prompt_tokens();
    let completion_tokens = u.output_tokens.unwrap_or(0);
    if !same {
        return w::Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: Some(w::PromptTokensDetails {
                cached_tokens: Some(u.cache_read_tokens.unwrap_or(0)),
                cache_write_tokens: Some(u.cache_write_tokens.unwrap_or(0)),
                extra: Map::new(),
            }),
            completion_tokens_details: u.reasoning_tokens.map(|r| w::CompletionTokensDetails {
                reasoning_tokens: Some(r),
                extra: Map::new(),
            }),
            extra: Map::new(),
        };
    }
    let mut extra = u.extra;
    let total_tokens = extra
        .remove("total_tokens")
        .and_then(|v| v.as_u64())
        .unwrap_or(prompt_tokens + completion_tokens);
    let prompt_details = unstash(&mut extra, "prompt_tokens_details");
    let completion_details = unstash(&mut extra, "completion_tokens_details");
    w::Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens,
        prompt_tokens_details: match (prompt_details, u.cache_read_tokens, u.cache_write_tokens) {
            (None, None, None) => None,
            (leftovers, cached_tokens, cache_write_tokens) => Some(w::PromptTokensDetails {
                cached_tokens,
                cache_write_tokens,
                extra: leftovers.unwrap_or_default(),
            }),
        },
        completion_tokens_details: match (completion_details, u.reasoning_tokens) {
            (None, None) => None,
            (leftovers, reasoning_tokens) => Some(w::CompletionTokensDetails {
                reasoning_tokens,
                extra: leftovers.unwrap_or_default(),
            }),
        },
        extra,
    }
}

// === Streams: OpenAI chunks → events ===

/// Options of a [`ChunkDecoder`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DecoderOptions {
    /// The input tokens to announce in `message_start`, before the upstream
    /// reports the real count at the end (conversion-spec §3.3.5); see
    /// [`estimate_input_tokens`](super::estimate_input_tokens).
    pub input_tokens_estimate: u64,
    /// Names to restore in tool calls (from the request).
    pub tool_names: ToolNames,
    /// Hold tool calls until the end of the message and send each whole
    /// (conversion-spec §3.3.4 buffered mode), for upstreams that interleave
    /// parallel calls' fragments. Off: arguments stream as they arrive.
    pub buffer_tool_calls: bool,
}

impl DecoderOptions {
    /// Options for a stream answering `request`: its estimated input tokens
    /// and its tool names.
    pub fn for_request(request: &ChatRequest) -> Self {
        Self {
            input_tokens_estimate: super::estimate_input_tokens(request),
            tool_names: ToolNames::for_request(request),
            buffer_tool_calls: false,
        }
    }

    /// Sets [`input_tokens_estimate`](Self::input_tokens_estimate).
    pub fn input_tokens_estimate(mut self, tokens: u64) -> Self {
        self.input_tokens_estimate = tokens;
        self
    }

    /// Sets [`buffer_tool_calls`](Self::buffer_tool_calls).
    pub fn buffer_tool_calls(mut self, yes: bool) -> Self {
        self.buffer_tool_calls = yes;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(u32),
    Refusal(u32),
    Thinking(u32),
    Tool(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ToolKey {
    Index(u32),
    Id(String),
}

#[derive(Debug)]
struct ToolSlot {
    key: ToolKey,
    id: Option<String>,
    name: Option<String>,
    /// The block index once the block was started.
    block: Option<u32>,
    /// Arguments that arrived before the name (or, buffered, all of them).
    pending: String,
    closed: bool,
}

/// The state machine of conversion-spec §3.3: an OpenAI chunk stream in,
/// block-structured [`ChatEvent`]s out, with at most one block open at a
/// time, contiguous indexes, the delta that opens a block re-emitted after its
/// start, tool arguments forwarded as they arrive, usage that comes after
/// `finish_reason` merged into the final message delta, and an error event
/// (never a clean end) for a stream that is cut or carries an error.
///
/// ```
/// use llmgate::chat::ChatEvent;
/// use llmgate::convert::openai::{ChunkDecoder, DecoderOptions};
///
/// let mut decoder = ChunkDecoder::new(DecoderOptions::default());
/// let mut events = Vec::new();
/// decoder.push_data(r#"{"id":"chatcmpl-1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}"#, &mut events);
/// decoder.push_data("[DONE]", &mut events);
/// assert!(matches!(events.last(), Some(ChatEvent::MessageStop)));
/// ```
#[derive(Debug)]
pub struct ChunkDecoder {
    opts: DecoderOptions,
    started: bool,
    done: bool,
    next_index: u32,
    open: Option<Open>,
    slots: Vec<ToolSlot>,
    last_slot: Option<usize>,
    finish: Option<String>,
    stop_sequence: Option<String>,
    refusal: bool,
    usage: Option<w::Usage>,
    /// The first chunk's opening entries, up to the comma before its
    /// `choices` (`{"id":…,"object":…,"created":…,"model":…,`), when a later
    /// chunk's reading skips them ([`envelope_of`]).
    envelope: Option<String>,
    /// `{` and the rest of a later chunk that opens with [`Self::envelope`].
    rest: String,
}

impl ChunkDecoder {
    /// A decoder at the start of a stream.
    pub fn new(opts: DecoderOptions) -> Self {
        Self {
            opts,
            started: false,
            done: false,
            next_index: 0,
            open: None,
            slots: Vec::new(),
            last_slot: None,
            finish: None,
            stop_sequence: None,
            refusal: false,
            usage: None,
            envelope: None,
            rest: String::new(),
        }
    }

    /// Whether the stream has ended (message stop or error).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Decodes the `data` of one SSE frame: a chunk, `[DONE]`, or an
    /// in-band error.
    pub fn push_data(&mut self, data: &str, out: &mut Vec<ChatEvent>) {
        if self.done {
            return;
        }
        let data = data.trim();
        if data == "[DONE]" {
            self.finalize(true, out);
            return;
        }
        if data.is_empty() {
            return;
        }
        // The envelope (id, model, created, system fingerprint) is read from
        // the first chunk; later ones skip it rather than copy it out again
        // (and so do not check its types). A later chunk that opens with the
        // first one's envelope, byte for byte, is read from there on: the
        // upstream repeats it in every chunk. Anything but an object goes to
        // the full parser, which rejects it.
        let pushed = if self.started && data.starts_with('{') {
            let mut rest = std::mem::take(&mut self.rest);
            // After the envelope's comma a key must come; after `{` a `}`
            // may too, so a rest that does not open with a key is read whole
            // (a trailing comma stays an error).
            let cut = self.envelope.as_deref().and_then(|envelope| {
                let rest = data.strip_prefix(envelope)?;
                let key = rest.trim_start_matches([' ', '\t', '\n', '\r']);
                key.starts_with('"').then_some(rest)
            });
            let parsed = match cut {
                Some(cut) => {
                    rest.clear();
                    rest.push('{');
                    rest.push_str(cut);
                    // On an error, the chunk as it came says where.
                    serde_json::from_str::<LaterChunk>(&rest)
                        .or_else(|_| serde_json::from_str::<LaterChunk>(data))
                }
                _ => serde_json::from_str::<LaterChunk>(data),
            };
            // Kept for the next chunk, unless one was unusually large.
            if rest.capacity() <= sse::SPARE_MAX {
                self.rest = rest;
            }
            parsed.map(|chunk| self.push_later(chunk, out))
        } else {
            let started = self.started;
            let pushed = serde_json::from_str::<w::ChatCompletionChunk>(data)
                .map(|chunk| self.push_chunk(chunk, out));
            if !started && self.started {
                self.envelope = envelope_of(data);
            }
            pushed
        };
        if let Err(e) = pushed {
            self.fail(
                ApiError::api(format!("malformed chunk from the upstream: {e}")).mark_upstream(),
                out,
            );
        }
    }

    /// Decodes a chunk after the first, read without its envelope.
    fn push_later(&mut self, chunk: LaterChunk, out: &mut Vec<ChatEvent>) {
        let choices = chunk
            .choices
            .into_iter()
            .map(|c| (c.index, c.delta, c.finish_reason, c.stop_reason));
        self.push_body(
            chunk.error.map(|e| *e),
            chunk.usage.map(|u| *u),
            choices,
            out,
        );
    }

    /// Decodes one chunk.
    pub fn push_chunk(&mut self, chunk: w::ChatCompletionChunk, out: &mut Vec<ChatEvent>) {
        let w::ChatCompletionChunk {
            id,
            created,
            model,
            choices,
            usage,
            error,
            mut extra,
            ..
        } = chunk;
        if !self.done && !self.started && error.is_none() {
            self.started = true;
            extra.remove("obfuscation");
            extra.insert("created".into(), Value::from(created));
            out.push(ChatEvent::message_start(MessageStart {
                id,
                model,
                usage: Usage {
                    input_tokens: Some(self.opts.input_tokens_estimate),
                    output_tokens: Some(0),
                    ..Usage::default()
                },
                extra,
            }));
        }
        let choices = choices.into_iter().map(|mut c| {
            let stop_reason = c.extra.remove("stop_reason");
            (c.index, c.delta, c.finish_reason, stop_reason)
        });
        self.push_body(error, usage.flatten(), choices, out);
    }

    /// What both readings of a chunk carry: an in-band error, the usage, and
    /// each choice's delta, finish reason and (vLLM) `stop_reason`.
    fn push_body(
        &mut self,
        error: Option<w::ErrorDetail>,
        usage: Option<w::Usage>,
        choices: impl IntoIterator<Item = (u32, w::ChunkDelta, Option<String>, Option<Value>)>,
        out: &mut Vec<ChatEvent>,
    ) {
        if self.done {
            return;
        }
        if let Some(error) = error {
            self.fail(ApiError::from_openai_detail(&error), out);
            return;
        }
        if let Some(usage) = usage {
            self.usage = Some(usage);
        }
        for (index, delta, finish_reason, stop_reason) in choices {
            if !self.push_choice(index, delta, finish_reason, stop_reason, out) {
                return;
            }
        }
        if self.finish.is_some() && self.usage.is_some() {
            self.finalize(true, out);
        }
    }

    /// Decodes one choice of a chunk; `false` when it ended the stream.
    fn push_choice(
        &mut self,
        index: u32,
        d: w::ChunkDelta,
        finish_reason: Option<String>,
        stop_reason: Option<Value>,
        out: &mut Vec<ChatEvent>,
    ) -> bool {
        if index != 0 {
            return true;
        }
        // Within one chunk: reasoning, then text, then refusal, then tool calls.
        if let Some(reasoning) = d.reasoning_content.or(d.reasoning)
            && !reasoning.is_empty()
        {
            self.ensure_open(Open::Thinking(0), out);
            self.delta(BlockDelta::Thinking(reasoning), out);
        }
        if let Some(Some(text)) = d.content
            && !text.is_empty()
        {
            self.ensure_open(Open::Text(0), out);
            self.delta(BlockDelta::Text(text), out);
        }
        if let Some(Some(refusal)) = d.refusal
            && !refusal.is_empty()
        {
            // A refusal block: text for Anthropic clients, `refusal`
            // deltas again for OpenAI ones.
            self.refusal = true;
            self.ensure_open(Open::Refusal(0), out);
            self.delta(BlockDelta::Text(refusal), out);
        }
        for (pos, call) in d.tool_calls.into_iter().flatten().enumerate() {
            self.tool_delta(pos, call, out);
            if self.done {
                return false;
            }
        }
        if let Some(reason) = finish_reason {
            // vLLM's matched stop sequence (a stop token's id is none).
            if let Some(Value::String(seq)) = stop_reason {
                self.stop_sequence = Some(seq);
            }
            self.finish = Some(reason);
            self.close_open(out);
        }
        true
    }

    /// Ends the stream (the body ended): a stream that ended without
    /// `finish_reason` and without `[DONE]` was cut, and ends in an error.
    pub fn finish(&mut self, out: &mut Vec<ChatEvent>) {
        let clean = self.finish.is_some();
        self.finalize(clean, out);
    }

    fn fail(&mut self, err: ApiError, out: &mut Vec<ChatEvent>) {
        if !self.done {
            self.done = true;
            out.push(ChatEvent::error(err));
        }
    }

    fn delta(&mut self, delta: BlockDelta, out: &mut Vec<ChatEvent>) {
        if let Some(
            Open::Text(index) | Open::Refusal(index) | Open::Thinking(index) | Open::Tool(index),
        ) = self.open
        {
            out.push(ChatEvent::BlockDelta { index, delta });
        }
    }

    fn start_block(&mut self, part: Part, out: &mut Vec<ChatEvent>) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        out.push(ChatEvent::block_start(index, part));
        if index == 0 {
            // As the real API does, right after the first block opens.
            out.push(ChatEvent::Ping);
        }
        index
    }

    /// Opens a text or thinking block unless one of that kind is open.
    fn ensure_open(&mut self, kind: Open, out: &mut Vec<ChatEvent>) {
        match (self.open, kind) {
            (Some(Open::Text(_)), Open::Text(_))
            | (Some(Open::Refusal(_)), Open::Refusal(_))
            | (Some(Open::Thinking(_)), Open::Thinking(_)) => return,
            _ => {}
        }
        self.close_open(out);
        let part = match kind {
            Open::Thinking(_) => Part::Thinking(ThinkingPart {
                text: String::new(),
                signature: None,
                extra: Map::new(),
            }),
            Open::Refusal(_) => Part::Refusal(RefusalPart {
                text: String::new(),
                extra: Map::new(),
            }),
            _ => Part::text(""),
        };
        let index = self.start_block(part, out);
        self.open = Some(match kind {
            Open::Thinking(_) => Open::Thinking(index),
            Open::Refusal(_) => Open::Refusal(index),
            _ => Open::Text(index),
        });
    }

    fn close_open(&mut self, out: &mut Vec<ChatEvent>) {
        if let Some(open) = self.open.take() {
            let index = match open {
                Open::Text(i) | Open::Refusal(i) | Open::Thinking(i) => i,
                Open::Tool(i) => {
                    if let Some(slot) = self.slots.iter_mut().find(|s| s.block == Some(i)) {
                        slot.closed = true;
                    }
                    i
                }
            };
            out.push(ChatEvent::BlockStop { index });
        }
    }

    fn tool_delta(&mut self, pos: usize, call: w::ToolCallDelta, out: &mut Vec<ChatEvent>) {
        let id = call.id.filter(|id| !id.is_empty());
        let key = match (call.index, &id) {
            (Some(i), _) => ToolKey::Index(i),
            (None, Some(id)) => ToolKey::Id(id.clone()),
            (None, None) => match self.last_slot {
                Some(s) => self.slots[s].key.clone(),
                None => ToolKey::Index(pos as u32),
            },
        };
        let slot_index = match self.slots.iter().position(|s| s.key == key) {
            Some(i) => i,
            None => {
                self.slots.push(ToolSlot {
                    key,
                    id: None,
                    name: None,
                    block: None,
                    pending: String::new(),
                    closed: false,
                });
                self.slots.len() - 1
            }
        };
        self.last_slot = Some(slot_index);
        let (name, args) = match call.function {
            Some(f) => (f.name, f.arguments.unwrap_or_default()),
            None => (None, String::new()),
        };
        let slot = &mut self.slots[slot_index];
        if slot.id.is_none() {
            slot.id = id;
        }
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            // A name on a continuation fragment does not start a new call.
            if slot.name.is_none() {
                slot.name = Some(self.opts.tool_names.original(&name).to_owned());
            }
        }
        if self.opts.buffer_tool_calls {
            slot.pending.push_str(&args);
            return;
        }
        let mut args = args;
        match slot.block {
            Some(block) if !slot.closed && self.open == Some(Open::Tool(block)) => {}
            Some(_) => {
                // Fragments of a call whose block is closed: the upstream
                // interleaves calls, and the arguments cannot be placed.
                if !args.is_empty() {
                    self.fail(
                        ApiError::api(
                            "the upstream interleaved the arguments of parallel tool calls; \
                             enable buffered tool calls for this provider",
                        )
                        .mark_upstream(),
                        out,
                    );
                }
                return;
            }
            None => {
                let Some(name) = slot.name.clone() else {
                    // Arguments before the name: hold them.
                    slot.pending.push_str(&args);
                    return;
                };
                let id = slot.id.clone().unwrap_or_else(|| random_id("toolu_"));
                let mut pending = std::mem::take(&mut slot.pending);
                pending.push_str(&args);
                args = pending;
                self.close_open(out);
                let index = self.start_block(empty_tool_call(id, name), out);
                self.slots[slot_index].block = Some(index);
                self.open = Some(Open::Tool(index));
            }
        }
        if !args.is_empty() {
            self.delta(BlockDelta::ToolArguments(args), out);
        }
    }

    /// Sends tool calls that were never started: buffered ones, and ones
    /// whose name never arrived (as `unknown_tool`, never with an empty name).
    fn flush_tools(&mut self, out: &mut Vec<ChatEvent>) {
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            if slot.block.is_some() || (slot.name.is_none() && slot.pending.is_empty()) {
                continue;
            }
            let name = slot
                .name
                .clone()
                .unwrap_or_else(|| "unknown_tool".to_owned());
            let id = slot.id.clone().unwrap_or_else(|| random_id("toolu_"));
            let args = std::mem::take(&mut slot.pending);
            let index = self.start_block(empty_tool_call(id, name), out);
            self.slots[i].block = Some(index);
            self.slots[i].closed = true;
            if !args.is_empty() {
                out.push(ChatEvent::BlockDelta {
                    index,
                    delta: BlockDelta::ToolArguments(args),
                });
            }
            out.push(ChatEvent::BlockStop { index });
        }
    }

    fn finalize(&mut self, clean: bool, out: &mut Vec<ChatEvent>) {
        if self.done {
            return;
        }
        self.close_open(out);
        self.flush_tools(out);
        if !clean {
            self.fail(
                ApiError::api("upstream stream ended before completion").mark_upstream(),
                out,
            );
            return;
        }
        if !self.started {
            self.started = true;
            out.push(ChatEvent::message_start(MessageStart {
                id: String::new(),
                model: String::new(),
                usage: Usage {
                    input_tokens: Some(self.opts.input_tokens_estimate),
                    output_tokens: Some(0),
                    ..Usage::default()
                },
                extra: Map::new(),
            }));
        }
        let reported = self.finish.as_deref().map(stop_reason_from_openai);
        let (reported, stop_sequence) = match (reported, self.stop_sequence.take()) {
            (Some(StopReason::EndTurn), Some(seq)) => (Some(StopReason::StopSequence), Some(seq)),
            (r, _) => (r, None),
        };
        let stop_reason = effective_stop_reason(reported, !self.slots.is_empty(), self.refusal);
        let mut extra = Map::new();
        // The overrides make the stop reason right for any client; an OpenAI
        // client still gets back the upstream's own value.
        if let Some(raw) = self.finish.take()
            && stop_reason_to_openai(&stop_reason, true) != raw
        {
            extra.insert("finish_reason".into(), Value::String(raw));
        }
        let usage = match self.usage.take() {
            Some(u) => usage_from_wire(u),
            None => Usage {
                output_tokens: Some(0),
                ..Usage::default()
            },
        };
        out.push(ChatEvent::message_delta(MessageDelta {
            stop_reason: Some(stop_reason),
            stop_sequence,
            usage,
            extra,
        }));
        out.push(ChatEvent::MessageStop);
        self.done = true;
    }
}

/// The opening entries of a chunk, up to and with the comma before its
/// `choices`, when they are whole entries that a later chunk's reading skips
/// (none of `usage` and `error`, which [`LaterChunk`] reads): a later chunk
/// that opens with the same bytes holds the same entries, so it can be read
/// from its `choices` on. Checked once, on the first chunk.
fn envelope_of(data: &str) -> Option<String> {
    let at = memchr::memmem::find(data.as_bytes(), b"\"choices\":")?;
    // `at` is at a quote, so a character boundary; the text before it must
    // be an object's opening and whole entries, which closing it shows.
    let head = data[..at].strip_suffix(',')?;
    let entries: serde_json::Map<String, Value> =
        serde_json::from_str(&[head, "}"].concat()).ok()?;
    let skipped = entries
        .keys()
        .all(|k| !matches!(k.as_str(), "choices" | "usage" | "error"));
    (!entries.is_empty() && skipped).then(|| data[..at].to_owned())
}

/// A chunk after the first, as the decoder reads it: the choices, usage and
/// error; the envelope fields are skipped without being copied.
#[derive(serde::Deserialize)]
struct LaterChunk {
    #[serde(default)]
    choices: Vec<LaterChoice>,
    // Boxed: present in one chunk of a stream at most, and the chunk is
    // moved a few times on its way (296 bytes unboxed, 40 boxed).
    #[serde(default)]
    usage: Option<Box<w::Usage>>,
    #[serde(default)]
    error: Option<Box<w::ErrorDetail>>,
}

#[derive(serde::Deserialize)]
struct LaterChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: w::ChunkDelta,
    #[serde(default)]
    finish_reason: Option<String>,
    /// vLLM's matched stop sequence.
    #[serde(default)]
    stop_reason: Option<Value>,
}

fn empty_tool_call(id: String, name: String) -> Part {
    Part::ToolCall(ToolCall {
        id,
        name,
        arguments: ToolArguments::Json(RawJson::empty_object()),
        extra: Map::new(),
    })
}

// === Streams: events → OpenAI chunks ===

/// One frame of an OpenAI stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `data: <chunk>`.
    Chunk(Box<w::ChatCompletionChunk>),
    /// `data: {"error":{…}}`; the stream ends.
    Error(Box<w::ErrorResponse>),
    /// `data: [DONE]`; the stream ends.
    Done,
}

impl Frame {
    /// Appends the frame's SSE bytes.
    pub fn write(&self, buf: &mut BytesMut) {
        // Serialising our own types into memory cannot fail.
        let _ = match self {
            Frame::Chunk(c) => sse::write_json_event(buf, None, c),
            Frame::Error(e) => sse::write_json_event(buf, None, e),
            Frame::Done => {
                buf.extend_from_slice(b"data: [DONE]\n\n");
                Ok(())
            }
        };
    }
}

fn content_delta(text: String) -> w::ChunkDelta {
    w::ChunkDelta {
        content: Some(Some(text)),
        ..w::ChunkDelta::default()
    }
}

fn refusal_delta(text: String) -> w::ChunkDelta {
    w::ChunkDelta {
        refusal: Some(Some(text)),
        ..w::ChunkDelta::default()
    }
}

fn reasoning_delta(text: String) -> w::ChunkDelta {
    w::ChunkDelta {
        reasoning_content: Some(text),
        ..w::ChunkDelta::default()
    }
}

/// Options of a [`ChunkEncoder`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EncoderOptions {
    /// Send the usage chunk before `[DONE]` (the client asked for
    /// `stream_options.include_usage`).
    pub include_usage: bool,
    /// Send thinking from another format as `reasoning_content` deltas.
    pub reasoning_content: bool,
}

impl EncoderOptions {
    /// Options for the stream answering `request`.
    pub fn for_request(request: &ChatRequest) -> Self {
        Self {
            include_usage: request.include_usage == Some(true),
            reasoning_content: false,
        }
    }

    /// Sets [`include_usage`](Self::include_usage).
    pub fn include_usage(mut self, yes: bool) -> Self {
        self.include_usage = yes;
        self
    }

    /// Sets [`reasoning_content`](Self::reasoning_content).
    pub fn reasoning_content(mut self, yes: bool) -> Self {
        self.reasoning_content = yes;
        self
    }
}

/// Conversion-spec §3.4: canonical events in, OpenAI chunks out. Tool call
/// indexes count tool calls (not content blocks), the first fragment of a
/// call carries its id, type and name, the finish reason comes in a chunk of
/// its own, the usage chunk (`choices: []`) follows when asked for, then
/// `[DONE]`; an error becomes `data: {"error":…}` and ends the stream without
/// `[DONE]`.
#[derive(Debug)]
pub struct ChunkEncoder {
    same: bool,
    opts: EncoderOptions,
    id: String,
    model: String,
    created: u64,
    envelope: Map,
    /// (block index, tool call ordinal).
    tools: Vec<(u32, u32)>,
    thinking_blocks: Vec<u32>,
    refusal_blocks: Vec<u32>,
    usage: Usage,
    done: bool,
    /// The chunk envelope around the delta, serialised once per stream.
    envelope_bytes: Option<(Vec<u8>, Vec<u8>)>,
}

impl ChunkEncoder {
    /// An encoder for a stream whose events came from `upstream`.
    pub fn new(opts: EncoderOptions, upstream: Option<Format>) -> Self {
        Self {
            same: upstream == Some(Format::OpenAi),
            opts,
            id: String::new(),
            model: String::new(),
            created: 0,
            envelope: Map::new(),
            tools: Vec::new(),
            thinking_blocks: Vec::new(),
            refusal_blocks: Vec::new(),
            usage: Usage::default(),
            done: false,
            envelope_bytes: None,
        }
    }

    fn chunk(&self, delta: w::ChunkDelta, finish_reason: Option<String>) -> Frame {
        Frame::Chunk(Box::new(self.chunk_value(delta, finish_reason)))
    }

    fn chunk_value(
        &self,
        delta: w::ChunkDelta,
        finish_reason: Option<String>,
    ) -> w::ChatCompletionChunk {
        w::ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![w::ChunkChoice {
                index: 0,
                delta,
                finish_reason,
                extra: Map::new(),
            }],
            usage: None,
            error: None,
            extra: self.envelope.clone(),
        }
    }

    /// Appends the frames for `event` to `out`.
    pub fn to_wire(&mut self, event: ChatEvent, out: &mut Vec<Frame>) {
        if self.done {
            return;
        }
        match event {
            ChatEvent::MessageStart(start) => {
                let MessageStart {
                    id,
                    model,
                    usage,
                    mut extra,
                } = *start;
                self.id = if self.same {
                    id
                } else {
                    openai_completion_id(&id)
                };
                self.model = model;
                self.envelope_bytes = None;
                self.created = extra
                    .remove("created")
                    .and_then(|v| v.as_u64())
                    .filter(|_| self.same)
                    .unwrap_or_else(unix_now);
                if self.same {
                    for key in ["system_fingerprint", "service_tier"] {
                        if let Some(v) = extra.remove(key) {
                            self.envelope.insert(key.into(), v);
                        }
                    }
                }
                self.usage = usage;
                out.push(self.chunk(
                    w::ChunkDelta {
                        role: Some("assistant".into()),
                        content: Some(Some(String::new())),
                        ..w::ChunkDelta::default()
                    },
                    None,
                ));
            }
            ChatEvent::BlockStart { index, part } => match *part {
                Part::Text(t) if !t.text.is_empty() => {
                    out.push(self.chunk(content_delta(t.text), None))
                }
                Part::Refusal(r) => {
                    self.refusal_blocks.push(index);
                    if !r.text.is_empty() {
                        out.push(self.chunk(refusal_delta(r.text), None));
                    }
                }
                Part::ToolCall(c) => {
                    let ordinal = self.tools.len() as u32;
                    self.tools.push((index, ordinal));
                    let arguments = match &c.arguments {
                        ToolArguments::Json(v) if v.is_null_or_empty_object() => String::new(),
                        args => args.to_json_string(),
                    };
                    out.push(self.chunk(
                        w::ChunkDelta {
                            tool_calls: Some(vec![w::ToolCallDelta {
                                index: Some(ordinal),
                                id: Some(c.id),
                                kind: Some("function".into()),
                                function: Some(w::FunctionCallDelta {
                                    name: Some(c.name),
                                    arguments: Some(arguments),
                                    extra: Map::new(),
                                }),
                                extra: Map::new(),
                            }]),
                            ..w::ChunkDelta::default()
                        },
                        None,
                    ));
                }
                Part::Thinking(t) => {
                    self.thinking_blocks.push(index);
                    if !t.text.is_empty() && (self.same || self.opts.reasoning_content) {
                        out.push(self.chunk(reasoning_delta(t.text), None));
                    }
                }
                _ => {}
            },
            ChatEvent::BlockDelta { index, delta } => {
                if let Some(delta) = self.block_delta(index, delta) {
                    out.push(self.chunk(delta, None));
                }
            }
            ChatEvent::BlockStop { .. } | ChatEvent::Ping => {}
            ChatEvent::MessageDelta(delta) => {
                let MessageDelta {
                    stop_reason,
                    usage,
                    mut extra,
                    ..
                } = *delta;
                self.usage.update(usage);
                let raw = if self.same {
                    take_string(&mut extra, "finish_reason")
                } else {
                    None
                };
                let reason = match (raw, stop_reason) {
                    (Some(raw), _) => raw,
                    (None, Some(r)) => stop_reason_to_openai(&r, self.same),
                    (None, None) => "stop".to_owned(),
                };
                out.push(self.chunk(w::ChunkDelta::default(), Some(reason)));
            }
            ChatEvent::MessageStop => {
                if self.opts.include_usage {
                    let usage = usage_to_wire(std::mem::take(&mut self.usage), self.same);
                    out.push(Frame::Chunk(Box::new(w::ChatCompletionChunk {
                        id: self.id.clone(),
                        object: "chat.completion.chunk".into(),
                        created: self.created,
                        model: self.model.clone(),
                        choices: Vec::new(),
                        usage: Some(Some(usage)),
                        error: None,
                        extra: self.envelope.clone(),
                    })));
                }
                out.push(Frame::Done);
                self.done = true;
            }
            ChatEvent::Error(e) => {
                out.push(Frame::Error(Box::new(e.to_openai().1)));
                self.done = true;
            }
        }
    }

    /// The chunk delta for a block delta, if it makes one.
    fn block_delta(&self, index: u32, delta: BlockDelta) -> Option<w::ChunkDelta> {
        let delta = match delta {
            BlockDelta::Text(text) if !text.is_empty() => {
                if self.refusal_blocks.contains(&index) {
                    refusal_delta(text)
                } else {
                    content_delta(text)
                }
            }
            BlockDelta::ToolArguments(args) if !args.is_empty() => {
                let &(_, ordinal) = self.tools.iter().find(|(b, _)| *b == index)?;
                w::ChunkDelta {
                    tool_calls: Some(vec![w::ToolCallDelta {
                        index: Some(ordinal),
                        function: Some(w::FunctionCallDelta {
                            arguments: Some(args),
                            ..w::FunctionCallDelta::default()
                        }),
                        ..w::ToolCallDelta::default()
                    }]),
                    ..w::ChunkDelta::default()
                }
            }
            BlockDelta::Thinking(text)
                if !text.is_empty()
                    && (self.same || self.opts.reasoning_content)
                    && self.thinking_blocks.contains(&index) =>
            {
                reasoning_delta(text)
            }
            _ => return None,
        };
        Some(delta)
    }

    /// Appends the SSE bytes for `event` to `buf`.
    ///
    /// Deltas, nearly every event of a stream, are written straight into
    /// the stream's chunk envelope (serialised once, at the message start)
    /// instead of building and serialising a whole chunk each: the same
    /// bytes as [`to_wire`](Self::to_wire) then [`Frame::write`].
    pub fn encode(&mut self, event: ChatEvent, buf: &mut BytesMut) {
        match event {
            ChatEvent::BlockDelta { index, delta } if !self.done => {
                let Some(delta) = self.block_delta(index, delta) else {
                    return;
                };
                if self.envelope_bytes.is_none() {
                    self.envelope_bytes = Some(self.serialised_envelope());
                }
                if let Some((head, tail)) = &self.envelope_bytes {
                    buf.put_slice(b"data: ");
                    buf.put_slice(head);
                    // Serialising our own types into memory cannot fail.
                    let _ = crate::wire::write_json(buf, &delta);
                    buf.put_slice(tail);
                    buf.put_slice(b"\n\n");
                }
            }
            event => {
                let mut frames = Vec::new();
                self.to_wire(event, &mut frames);
                for frame in &frames {
                    frame.write(buf);
                }
            }
        }
    }

    /// This stream's chunk serialised around an empty delta, split where the
    /// delta goes: `({…,"choices":[{"index":0,"delta":` , `,"finish_reason":null}]…})`.
    fn serialised_envelope(&self) -> (Vec<u8>, Vec<u8>) {
        const DELTA: &[u8] = b"\"delta\":";
        let chunk = self.chunk_value(w::ChunkDelta::default(), None);
        let bytes = crate::wire::to_json(&chunk, 0).unwrap_or_default();
        // The first `"delta":{}` is the choice's: `id` and `model` before
        // it are strings, where a quote is always escaped.
        let at = bytes
            .windows(DELTA.len() + 2)
            .position(|w| w.starts_with(DELTA) && w.ends_with(b"{}"))
            .unwrap_or(bytes.len());
        let split = (at + DELTA.len()).min(bytes.len());
        let tail = bytes.get(split + 2..).unwrap_or_default().to_vec();
        let mut head = bytes;
        head.truncate(split);
        (head, tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_cut_from_later_chunks_is_whole_entries_that_they_skip() {
        let chunk = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","provider":"p","choices":[]}"#;
        assert_eq!(
            envelope_of(chunk).as_deref(),
            Some(
                r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","provider":"p","#
            )
        );
        for kept in [
            // Nothing before the choices.
            r#"{"choices":[],"id":"c"}"#,
            // Entries a later chunk reads.
            r#"{"id":"c","usage":null,"choices":[]}"#,
            r#"{"id":"c","error":null,"choices":[]}"#,
            // The first `"choices":` is inside an entry.
            r#"{"id":"c","x":{"choices":1},"choices":[]}"#,
            // No choices at all.
            r#"{"id":"c"}"#,
        ] {
            assert_eq!(envelope_of(kept), None, "{kept}");
        }
    }
}
