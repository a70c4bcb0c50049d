use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use serde_json::Value;
use tower::Service;

use crate::chat::{
    BlockDelta, ChatEvent, ChatRequest, ChatResponse, MessageDelta, MessageStart, Part, Role,
    StopReason, ToolArguments, ToolCall, ToolChoice, Usage,
};
use crate::convert::{estimate_input_tokens, random_id};
use crate::error::ApiError;
use crate::llm::{EventStream, LlmFuture, LlmRequest, LlmResponse, Operation};
use crate::wire::{Map, RawJson};

/// A deterministic built-in model, so that a gateway runs offline.
///
/// It answers text (echoing the last user message), or — when the request
/// has tools and the last turn is not a tool result — calls the first tool
/// (or the one `tool_choice` names) with arguments filled from its schema;
/// after tool results it sums them up. Streams are paced (`pacing` between
/// events). The last user message can steer it:
///
/// - `mock:error=429` (any status): answer with that upstream error
///   (`retry-after: 1` on 429/529);
/// - `mock:stream_error`: fail with an `overloaded_error` event after the
///   first content;
/// - `mock:words=N`: answer with N words;
/// - `mock:delay_ms=N`: wait N ms before answering.
///
/// ```
/// use llmgate::provider::MockProvider;
/// use std::time::Duration;
///
/// let mock = MockProvider::new().pacing(Duration::from_millis(20)).words_per_event(2);
/// # let _ = mock;
/// ```
#[derive(Debug, Clone)]
pub struct MockProvider {
    inner: Arc<MockConfig>,
}

#[derive(Debug, Clone)]
struct MockConfig {
    pacing: Duration,
    latency: Duration,
    words_per_event: usize,
}

impl Default for MockProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl MockProvider {
    /// A mock without delays, one word per stream event.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(MockConfig {
                pacing: Duration::ZERO,
                latency: Duration::ZERO,
                words_per_event: 1,
            }),
        }
    }

    fn config(mut self, f: impl FnOnce(&mut MockConfig)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// Time between stream events.
    pub fn pacing(self, pacing: Duration) -> Self {
        self.config(|c| c.pacing = pacing)
    }

    /// Time before the answer (or the first stream event).
    pub fn latency(self, latency: Duration) -> Self {
        self.config(|c| c.latency = latency)
    }

    /// Words per text delta.
    pub fn words_per_event(self, words: usize) -> Self {
        self.config(|c| c.words_per_event = words.max(1))
    }
}

impl Service<LlmRequest> for MockProvider {
    type Response = LlmResponse;
    type Error = ApiError;
    type Future = LlmFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ApiError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: LlmRequest) -> LlmFuture {
        let cfg = self.inner.clone();
        Box::pin(async move {
            let LlmRequest { chat, ctx } = req;
            if ctx.operation == Operation::CountTokens {
                return Ok(LlmResponse::token_count(estimate_input_tokens(&chat)));
            }
            let directives = Directives::of(&chat);
            let latency = directives.delay.unwrap_or(cfg.latency);
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
                ctx.timing.add_upstream(latency);
            }
            if let Some(status) = directives.error {
                let body = format!(
                    r#"{{"error":{{"message":"mock error {status}","type":"mock_error"}}}}"#
                );
                let mut err = ApiError::from_upstream(status, body.as_bytes());
                if matches!(status, 429 | 529) {
                    err.retry_after = Some(Duration::from_secs(1));
                }
                return Err(err);
            }
            let answer = answer(&chat, &directives);
            if chat.is_stream() {
                let events = stream_events(answer, &cfg, directives.stream_error);
                Ok(LlmResponse::stream(EventStream::new(
                    Paced {
                        events: events.into(),
                        pacing: cfg.pacing,
                        sleep: None,
                        first: true,
                    },
                    None,
                )))
            } else {
                Ok(LlmResponse::complete(answer))
            }
        })
    }
}

#[derive(Debug, Default)]
struct Directives {
    error: Option<u16>,
    stream_error: bool,
    words: Option<usize>,
    delay: Option<Duration>,
}

impl Directives {
    fn of(chat: &ChatRequest) -> Self {
        let mut d = Directives::default();
        let Some(text) = last_user_text(chat) else {
            return d;
        };
        for token in text.split_whitespace() {
            let Some(rest) = token.strip_prefix("mock:") else {
                continue;
            };
            let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
            match key {
                "error" => d.error = value.parse().ok().filter(|s| (400..600).contains(s)),
                "stream_error" => d.stream_error = true,
                "words" => d.words = value.parse().ok().map(|n: usize| n.min(100_000)),
                "delay_ms" => d.delay = value.parse().ok().map(Duration::from_millis),
                _ => {}
            }
        }
        d
    }
}

fn last_user_text(chat: &ChatRequest) -> Option<String> {
    chat.messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.joined_text(" "))
}

fn ends_with_tool_results(chat: &ChatRequest) -> Option<Vec<String>> {
    let last = chat.messages.last()?;
    let results: Vec<String> = last
        .content
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolResult(r) => Some(r.content.joined_text(" ")),
            _ => None,
        })
        .collect();
    if results.is_empty() {
        // OpenAI: a run of tool messages at the end.
        let tool_msgs: Vec<String> = chat
            .messages
            .iter()
            .rev()
            .take_while(|m| m.role == Role::Tool)
            .flat_map(|m| {
                m.content.parts.iter().filter_map(|p| match p {
                    Part::ToolResult(r) => Some(r.content.joined_text(" ")),
                    _ => None,
                })
            })
            .collect();
        return (!tool_msgs.is_empty()).then_some(tool_msgs);
    }
    Some(results)
}

fn answer(chat: &ChatRequest, d: &Directives) -> ChatResponse {
    let mut content = Vec::new();
    let mut stop = StopReason::EndTurn;
    let tools: Vec<_> = chat.function_tools().collect();
    let wants_tool = !tools.is_empty() && chat.tool_choice != Some(ToolChoice::None);
    if let Some(results) = ends_with_tool_results(chat) {
        let summary: Vec<String> = results.iter().map(|r| truncate(r, 80)).collect();
        content.push(Part::text(format!(
            "The tools returned: {}.",
            summary.join("; ")
        )));
    } else if wants_tool {
        let tool = match &chat.tool_choice {
            Some(ToolChoice::Tool(name)) => tools.iter().find(|t| t.name == *name).copied(),
            _ => None,
        }
        .or_else(|| tools.first().copied());
        if let Some(tool) = tool {
            content.push(Part::text(format!("I'll use the {} tool.", tool.name)));
            content.push(Part::ToolCall(ToolCall {
                id: random_id("toolu_mock"),
                name: tool.name.clone(),
                arguments: ToolArguments::Json(RawJson::from_value(&sample(
                    tool.parameters
                        .as_ref()
                        .and_then(|p| p.to_value().ok())
                        .as_ref(),
                ))),
                extra: Map::new(),
            }));
            stop = StopReason::ToolUse;
        }
    } else {
        let text = match d.words {
            Some(n) => (0..n)
                .map(|i| format!("word{i}"))
                .collect::<Vec<_>>()
                .join(" "),
            None => {
                let said = last_user_text(chat).unwrap_or_default();
                format!(
                    "Hello from the llmgate mock model. You said: {}",
                    truncate(&said, 200)
                )
            }
        };
        content.push(Part::text(text));
    }
    // Honour the output limit, a word a token.
    if let (Some(max), Some(Part::Text(t))) = (chat.max_tokens, content.first_mut()) {
        let words: Vec<&str> = t.text.split(' ').collect();
        if (words.len() as u64) > max && stop == StopReason::EndTurn {
            t.text = words[..max as usize].join(" ");
            stop = StopReason::MaxTokens;
        }
    }
    let output: u64 = content
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.text.split_whitespace().count() as u64,
            Part::ToolCall(c) => c.arguments.as_json_str().len().div_ceil(4) as u64,
            _ => 0,
        })
        .sum();
    ChatResponse {
        id: random_id("msg_mock"),
        model: chat.model.clone(),
        content,
        stop_reason: Some(stop),
        stop_sequence: None,
        usage: Usage {
            input_tokens: Some(estimate_input_tokens(chat)),
            output_tokens: Some(output),
            ..Usage::default()
        },
        created: None,
        origin: None,
        extra: Map::new(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// Arguments that satisfy a JSON schema's required properties.
fn sample(schema: Option<&Value>) -> Value {
    let mut args = serde_json::Map::new();
    let Some(schema) = schema else {
        return Value::Object(args);
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let required = schema.get("required").and_then(Value::as_array);
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        let prop = props.and_then(|p| p.get(name));
        args.insert(name.to_owned(), sample_value(prop));
    }
    Value::Object(args)
}

fn sample_value(prop: Option<&Value>) -> Value {
    let Some(prop) = prop else {
        return Value::String("mock".into());
    };
    if let Some(first) = prop
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    match prop.get("type").and_then(Value::as_str) {
        Some("integer") | Some("number") => Value::from(1),
        Some("boolean") => Value::Bool(true),
        Some("array") => Value::Array(Vec::new()),
        Some("object") => sample(Some(prop)),
        _ => Value::String("mock".into()),
    }
}

fn stream_events(resp: ChatResponse, cfg: &MockConfig, fail: bool) -> Vec<ChatEvent> {
    let mut events = vec![ChatEvent::message_start(MessageStart {
        id: resp.id.clone(),
        model: resp.model.clone(),
        usage: Usage {
            input_tokens: resp.usage.input_tokens,
            output_tokens: Some(0),
            ..Usage::default()
        },
        extra: Map::new(),
    })];
    for (index, part) in resp.content.into_iter().enumerate() {
        let index = index as u32;
        match part {
            Part::Text(t) => {
                events.push(ChatEvent::block_start(index, Part::text("")));
                let words: Vec<&str> = t.text.split_inclusive(' ').collect();
                for chunk in words.chunks(cfg.words_per_event) {
                    events.push(ChatEvent::BlockDelta {
                        index,
                        delta: BlockDelta::Text(chunk.concat()),
                    });
                    if fail {
                        events.push(ChatEvent::error(
                            ApiError::new(crate::ErrorKind::Overloaded, "mock stream error")
                                .mark_upstream(),
                        ));
                        return events;
                    }
                }
                events.push(ChatEvent::BlockStop { index });
            }
            Part::ToolCall(c) => {
                let args = c.arguments.to_json_string();
                events.push(ChatEvent::block_start(
                    index,
                    Part::ToolCall(ToolCall {
                        arguments: ToolArguments::Json(RawJson::empty_object()),
                        ..c
                    }),
                ));
                // The arguments in three pieces, cut at character boundaries.
                let chars: Vec<char> = args.chars().collect();
                let step = chars.len().div_ceil(3).max(1);
                for piece in chars.chunks(step) {
                    events.push(ChatEvent::BlockDelta {
                        index,
                        delta: BlockDelta::ToolArguments(piece.iter().collect()),
                    });
                }
                events.push(ChatEvent::BlockStop { index });
            }
            _ => {}
        }
    }
    events.push(ChatEvent::message_delta(MessageDelta {
        stop_reason: resp.stop_reason,
        stop_sequence: None,
        usage: Usage {
            output_tokens: resp.usage.output_tokens,
            ..Usage::default()
        },
        extra: Map::new(),
    }));
    events.push(ChatEvent::MessageStop);
    events
}

/// Precomputed events, released one every `pacing`.
struct Paced {
    events: VecDeque<ChatEvent>,
    pacing: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    first: bool,
}

impl Stream for Paced {
    type Item = ChatEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        let this = &mut *self;
        if !this.pacing.is_zero() && !this.first {
            let pacing = this.pacing;
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(pacing)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        this.first = false;
        Poll::Ready(this.events.pop_front())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;
    use crate::chat::{FunctionTool, Message, Tool};
    use crate::convert::Accumulator;
    use crate::llm::LlmBody;
    use tower::ServiceExt;

    fn request(text: &str) -> ChatRequest {
        ChatRequest::new("mock-1", vec![Message::text(Role::User, text)])
    }

    async fn complete(chat: ChatRequest) -> Result<ChatResponse, ApiError> {
        match MockProvider::new()
            .oneshot(LlmRequest::new(chat, Format::OpenAi))
            .await?
            .body
        {
            LlmBody::Complete(r) => Ok(*r),
            LlmBody::Stream(mut s) => {
                let mut acc = Accumulator::new(None);
                while let Some(ev) = std::future::poll_fn(|cx| Pin::new(&mut s).poll_next(cx)).await
                {
                    acc.push(ev)?;
                }
                acc.finish()
            }
            LlmBody::TokenCount(_) => unreachable!(),
        }
    }

    #[tokio::test]
    async fn echoes_text_and_streams_the_same() {
        let r = complete(request("hello there")).await.unwrap();
        assert_eq!(
            r.content,
            vec![Part::text(
                "Hello from the llmgate mock model. You said: hello there"
            )]
        );
        let mut chat = request("hello there");
        chat.stream = Some(true);
        let s = complete(chat).await.unwrap();
        assert_eq!(s.content, r.content);
        assert_eq!(s.stop_reason, Some(StopReason::EndTurn));
    }

    #[tokio::test]
    async fn calls_a_tool_with_schema_arguments() {
        let mut chat = request("weather?");
        chat.tools = Some(vec![Tool::Function(FunctionTool {
            name: "get_weather".into(),
            description: None,
            parameters: Some(serde_json::json!({"type": "object",
                "properties": {"city": {"type": "string"}, "units": {"enum": ["c", "f"]}, "days": {"type": "integer"}},
                "required": ["city", "units", "days"]}).into()),
            strict: None,
            extra: Map::new(),
        })]);
        chat.stream = Some(true);
        let r = complete(chat).await.unwrap();
        assert_eq!(r.stop_reason, Some(StopReason::ToolUse));
        let Part::ToolCall(call) = &r.content[1] else {
            panic!("{:?}", r.content)
        };
        assert_eq!(call.name, "get_weather");
        assert_eq!(
            call.arguments.to_object().to_value().unwrap(),
            serde_json::json!({"city": "mock", "units": "c", "days": 1})
        );
    }

    #[tokio::test]
    async fn directives_steer_it() {
        let err = complete(request("please mock:error=429"))
            .await
            .unwrap_err();
        assert_eq!(
            (err.kind, err.retry_after),
            (crate::ErrorKind::RateLimit, Some(Duration::from_secs(1)))
        );
        let r = complete(request("mock:words=5")).await.unwrap();
        assert_eq!(r.content, vec![Part::text("word0 word1 word2 word3 word4")]);
        let mut chat = request("mock:stream_error");
        chat.stream = Some(true);
        assert_eq!(
            complete(chat).await.unwrap_err().kind,
            crate::ErrorKind::Overloaded
        );
        let mut chat = request("mock:words=10");
        chat.max_tokens = Some(3);
        let r = complete(chat).await.unwrap();
        assert_eq!(
            (r.content, r.stop_reason),
            (
                vec![Part::text("word0 word1 word2")],
                Some(StopReason::MaxTokens)
            )
        );
    }
}
