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
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChatEvent {
    /// The message begins.
    MessageStart {
        /// The message id.
        id: String,
        /// The model.
        model: String,
        /// Usage known so far (input tokens, possibly an estimate).
        usage: Usage,
        /// Fields of the upstream format that the model does not name.
        extra: Map,
    },
    /// A content block opens. Its part is empty: text `""`, a tool call with
    /// arguments `{}`, thinking `""`.
    BlockStart {
        /// The block's index.
        index: u32,
        /// The (empty) block.
        part: Part,
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
    MessageDelta {
        /// Why generation stopped.
        stop_reason: Option<StopReason>,
        /// The stop sequence that matched.
        stop_sequence: Option<String>,
        /// Cumulative usage; fields set here replace earlier values.
        usage: Usage,
        /// Fields of the upstream format that the model does not name
        /// (`stop_details`).
        extra: Map,
    },
    /// The message is complete.
    MessageStop,
    /// A keep-alive.
    Ping,
    /// The stream failed; nothing follows.
    Error(ApiError),
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
    /// Whether this event carries model output (the commit point of a stream
    /// for retries: once one was sent, the request cannot be retried).
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            ChatEvent::BlockStart { .. } | ChatEvent::BlockDelta { .. }
        )
    }
}
