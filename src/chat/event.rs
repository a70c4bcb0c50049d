use crate::chat::{Part, StopReason, Usage};
use crate::error::ApiError;
use crate::wire::Map;

/// One event of a streamed response, block-structured like Anthropic's:
///
/// ```text
/// MessageStart (BlockStart BlockDelta* BlockStop)* MessageDelta MessageStop
/// ```
///
/// with `Ping` anywhere and `Error` ending the stream at any point. Blocks
/// are indexed `0, 1, 2, …` in order and do not interleave. The streams that
/// the converters in [`crate::convert`] produce keep these rules even when the
/// upstream does not (a missing block stop is supplied; a stream cut short
/// ends in an `Error`).
///
/// The rare, large events (the message's start and delta, a block's start,
/// an error) are boxed, so that the one a stream carries most, a
/// `BlockDelta`, moves through each layer as 40 bytes rather than ~180.
/// [`ChatEvent::message_start`], [`ChatEvent::block_start`],
/// [`ChatEvent::message_delta`] and [`ChatEvent::error`] build them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChatEvent {
    /// The message begins.
    MessageStart(Box<MessageStart>),
    /// A content block opens. Its part is empty: text `""`, a tool call with
    /// arguments `{}`, thinking `""`.
    BlockStart {
        /// The block's index.
        index: u32,
        /// The (empty) block.
        part: Box<Part>,
    },
    /// A block grows.
    BlockDelta {
        /// The block's index.
        index: u32,
        /// What to append.
        delta: BlockDelta,
    },
    /// A block is complete.
    BlockStop {
        /// The block's index.
        index: u32,
    },
    /// The message's stop reason and (cumulative) usage.
    MessageDelta(Box<MessageDelta>),
    /// The message is complete.
    MessageStop,
    /// A keep-alive.
    Ping,
    /// The stream failed; nothing follows.
    Error(Box<ApiError>),
}

/// What a [`ChatEvent::MessageStart`] carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageStart {
    /// The message id.
    pub id: String,
    /// The model.
    pub model: String,
    /// Usage known so far (input tokens, possibly an estimate).
    pub usage: Usage,
    /// Fields of the upstream format that the model does not name.
    pub extra: Map,
}

/// What a [`ChatEvent::MessageDelta`] carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageDelta {
    /// Why generation stopped.
    pub stop_reason: Option<StopReason>,
    /// The stop sequence that matched.
    pub stop_sequence: Option<String>,
    /// Cumulative usage; fields set here replace earlier values.
    pub usage: Usage,
    /// Fields of the upstream format that the model does not name
    /// (`stop_details`).
    pub extra: Map,
}

impl From<ApiError> for ChatEvent {
    fn from(err: ApiError) -> Self {
        ChatEvent::error(err)
    }
}

/// What a [`ChatEvent::BlockDelta`] appends.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BlockDelta {
    /// Text, to a text block.
    Text(String),
    /// A fragment of JSON argument text, to a tool call block.
    ToolArguments(String),
    /// Reasoning text, to a thinking block.
    Thinking(String),
    /// The signature of a thinking block (replaces).
    Signature(String),
    /// A delta of a type the model does not name, kept as the upstream wrote it.
    Other(serde_json::Value),
}

impl ChatEvent {
    /// A [`ChatEvent::MessageStart`].
    pub fn message_start(start: MessageStart) -> Self {
        ChatEvent::MessageStart(Box::new(start))
    }

    /// A [`ChatEvent::BlockStart`] of the (empty) `part`.
    pub fn block_start(index: u32, part: Part) -> Self {
        ChatEvent::BlockStart {
            index,
            part: Box::new(part),
        }
    }

    /// A [`ChatEvent::MessageDelta`].
    pub fn message_delta(delta: MessageDelta) -> Self {
        ChatEvent::MessageDelta(Box::new(delta))
    }

    /// A [`ChatEvent::Error`].
    pub fn error(err: ApiError) -> Self {
        ChatEvent::Error(Box::new(err))
    }

    /// Whether this event carries model output (the commit point of a stream
    /// for retries: once one was sent, the request cannot be retried).
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            ChatEvent::BlockStart { .. } | ChatEvent::BlockDelta { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_as_small_as_a_block_delta() {
        // Every layer moves each event of a stream; the large variants are
        // boxed so that none of them sets the size.
        assert_eq!(
            std::mem::size_of::<ChatEvent>(),
            std::mem::size_of::<BlockDelta>() + 8
        );
    }
}
