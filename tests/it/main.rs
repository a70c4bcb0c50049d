//! Integration tests, in one binary (each file of `tests/` links the whole
//! crate; one binary keeps builds short).

mod checklist;
mod common;
mod fixtures;
mod pipeline;
mod props;
mod support;
