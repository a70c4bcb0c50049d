use crate::Format;
use crate::chat::{
    BlockDelta, ChatEvent, ChatResponse, MessageDelta, MessageStart, Part, ToolArguments,
};
use crate::error::ApiError;

/// Folds a stream of [`ChatEvent`]s into the complete [`ChatResponse`] it
/// describes: blocks appended in order, deltas applied to their block (tool
/// argument fragments concatenated into
/// [`ToolArguments::Text`]), usage updated field by field.
///
/// Used to answer a non-streaming client from a streaming upstream, and to
/// check that a converted stream says what the complete response says.
///
/// ```
/// use llmgate::chat::{BlockDelta, ChatEvent, MessageStart, Part};
/// use llmgate::convert::Accumulator;
///
/// let mut acc = Accumulator::new(None);
/// for ev in [
///     ChatEvent::message_start(MessageStart { id: "m".into(), model: "x".into(), ..Default::default() }),
///     ChatEvent::block_start(0, Part::text("")),
///     ChatEvent::BlockDelta { index: 0, delta: BlockDelta::Text("Hi".into()) },
///     ChatEvent::BlockStop { index: 0 },
///     ChatEvent::MessageStop,
/// ] {
///     acc.push(ev).unwrap();
/// }
/// let response = acc.finish().unwrap();
/// assert_eq!(response.content, vec![Part::text("Hi")]);
/// ```
#[derive(Debug)]
pub struct Accumulator {
    response: ChatResponse,
    /// (block index, part, tool argument text so far).
    blocks: Vec<(u32, Part, Option<String>)>,
    complete: bool,
}

impl Accumulator {
    /// An empty accumulator for a stream that came from `origin`.
    pub fn new(origin: Option<Format>) -> Self {
        Self {
            response: ChatResponse {
                origin,
                ..ChatResponse::default()
            },
            blocks: Vec::new(),
            complete: false,
        }
    }

    /// Applies one event; an error event is returned as the error.
    pub fn push(&mut self, event: ChatEvent) -> Result<(), ApiError> {
        match event {
            ChatEvent::MessageStart(start) => {
                let MessageStart {
                    id,
                    model,
                    usage,
                    mut extra,
                } = *start;
                if let Some(created) = extra.remove("created").and_then(|v| v.as_u64()) {
                    self.response.created = Some(created);
                }
                self.response.id = id;
                self.response.model = model;
                self.response.usage = usage;
                self.response.extra.extend(extra);
            }
            ChatEvent::BlockStart { index, part } => self.blocks.push((index, *part, None)),
            ChatEvent::BlockDelta { index, delta } => {
                let Some((_, part, args)) =
                    self.blocks.iter_mut().rev().find(|(i, ..)| *i == index)
                else {
                    return Ok(());
                };
                match (part, delta) {
                    (Part::Text(t), BlockDelta::Text(s)) => t.text.push_str(&s),
                    (Part::Refusal(r), BlockDelta::Text(s)) => r.text.push_str(&s),
                    (Part::ToolCall(_), BlockDelta::ToolArguments(s)) => {
                        args.get_or_insert_with(String::new).push_str(&s)
                    }
                    (Part::Thinking(t), BlockDelta::Thinking(s)) => t.text.push_str(&s),
                    (Part::Thinking(t), BlockDelta::Signature(s)) => t.signature = Some(s),
                    _ => {}
                }
            }
            ChatEvent::BlockStop { .. } | ChatEvent::Ping => {}
            ChatEvent::MessageDelta(delta) => {
                let MessageDelta {
                    stop_reason,
                    stop_sequence,
                    usage,
                    extra,
                } = *delta;
                if stop_reason.is_some() {
                    self.response.stop_reason = stop_reason;
                }
                if stop_sequence.is_some() {
                    self.response.stop_sequence = stop_sequence;
                }
                self.response.usage.update(usage);
                self.response.extra.extend(extra);
            }
            ChatEvent::MessageStop => self.complete = true,
            ChatEvent::Error(e) => return Err(*e),
        }
        Ok(())
    }

    /// Whether `MessageStop` was seen.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The response; an error if the stream never completed.
    pub fn finish(mut self) -> Result<ChatResponse, ApiError> {
        if !self.complete {
            return Err(ApiError::api("upstream stream ended before completion"));
        }
        self.response.content = self
            .blocks
            .into_iter()
            .map(|(_, mut part, args)| {
                if let (Part::ToolCall(call), Some(args)) = (&mut part, args) {
                    call.arguments = ToolArguments::Text(args);
                }
                part
            })
            .collect();
        Ok(self.response)
    }
}
