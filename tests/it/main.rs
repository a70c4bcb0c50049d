//! Integration tests, in one binary (each file of `tests/` links the whole
//! crate; one binary keeps builds short).

mod capture;
mod checklist;
mod common;
mod faults;
mod fixtures;
mod layers;
mod pipeline;
mod props;
mod soak;
mod support;
