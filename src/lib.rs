//! llmgate: the request pipeline of an LLM gateway as a library.
//!
//! This crate is built in layers:
//!
//! - [`wire`]: serde types of the Anthropic Messages and OpenAI Chat
//!   Completions formats, complete enough that a real client's request never
//!   fails to parse, and lossless (unknown fields are kept and written back).
//! - [`chat`]: the canonical request, response and stream-event model that
//!   every pipeline layer sees.
//! - [`convert`]: wire ⇄ chat for both formats, requests, responses, stream
//!   events (as per-stream state machines) and errors.
//! - [`sse`]: server-sent events framing, in and out.
//! - [`error`]: the error type clients receive, mapped to each format.
//!
//! ```
//! use llmgate::convert::{anthropic, openai};
//!
//! // An Anthropic client's request, sent to an OpenAI-compatible upstream.
//! let body = br#"{"model":"big","max_tokens":1024,"stream":true,
//!   "messages":[{"role":"user","content":"What is the weather in SF?"}]}"#;
//! let chat = anthropic::request_from_wire(serde_json::from_slice(body).unwrap()).unwrap();
//! let upstream = openai::request_to_wire(chat, &Default::default()).unwrap();
//! assert_eq!(upstream.stream_options.unwrap().include_usage, Some(true));
//! ```
//!
//! # Guides
//!
//! - [`guide::conversion`]: what crosses between the formats, what is kept,
//!   what is dropped.
//! - [`guide::resilience`]: how retry, fallback, hedging, balancing and
//!   timeouts compose, with their defaults.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![deny(unreachable_pub)]

pub mod auth;
pub mod balance;
pub mod chat;
#[cfg(feature = "config")]
pub mod config;
pub mod convert;
pub mod error;
pub mod fallback;
pub mod hedge;
pub mod http;
mod io;
pub mod llm;
pub mod metrics;
pub mod preprocess;
pub mod provider;
pub mod retry;
pub mod route;
pub mod sse;
mod sync;
pub mod timeout;
pub mod wire;

pub use error::{ApiError, ErrorKind};

/// A wire format: what a client speaks, or what a provider expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    OpenAi,
}

/// Longer explanations, rendered from `docs/`.
pub mod guide {
    /// Conversion between the formats.
    pub mod conversion {
        #![doc = include_str!("../docs/conversion.md")]
    }

    /// The resilience layers.
    pub mod resilience {
        #![doc = include_str!("../docs/resilience.md")]
    }
}

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
