//! The canonical chat model: the request, response and stream events that
//! every layer of the LLM tier sees, whatever the client's or the provider's
//! wire format.
//!
//! It is a superset of Anthropic Messages and OpenAI Chat Completions:
//!
//! - **Decoding is faithful.** A wire request becomes a [`ChatRequest`]
//!   without being normalised: an Anthropic user turn keeps its
//!   `tool_result` blocks, an OpenAI `tool` message stays a [`Role::Tool`]
//!   message, a bare-string content stays marked as such
//!   ([`ContentForm::Text`]). The rules that make one format acceptable to
//!   the other (merging turns, splitting tool results into tool messages,
//!   hoisting system messages, …) run when a request is *encoded* into a
//!   format that needs them (see [`crate::convert`]).
//! - **Nothing is lost on the way back.** Fields and blocks the model does
//!   not name are kept: unknown fields of any object in `extra` maps, blocks
//!   of unknown types as [`Part::Other`]. They belong to the format named by
//!   the request's or response's `origin`, and are written back only when
//!   encoding into that same format; converting to the other format drops them
//!   deliberately (see the crate docs for the list).
//!   An `extra` map may also hold, under the wire name of a field the wire
//!   type names (so it cannot clash with a real unknown field), the leftover
//!   fields of that nested object, for example an Anthropic request's
//!   `metadata` other than `user_id`.
//! - **Streams are block-structured**, like Anthropic's: a message start,
//!   content blocks that open, receive deltas and close one at a time, a
//!   message delta with the stop reason and usage, and a message stop (or an
//!   error). OpenAI chunk streams are turned into this shape by a per-stream
//!   state machine ([`crate::convert::openai::ChunkDecoder`]).

mod event;
mod request;
mod response;

pub use event::{BlockDelta, ChatEvent, MessageDelta, MessageStart};
pub use request::{
    ChatRequest, Content, ContentForm, DocumentPart, FunctionTool, ImagePart, MaxTokensField,
    MediaSource, Message, Part, RedactedThinkingPart, RefusalPart, Role, Stop, TextPart, Thinking,
    ThinkingMode, ThinkingPart, Tool, ToolArguments, ToolCall, ToolChoice, ToolResult,
};
pub use response::{ChatResponse, StopReason, Usage};
