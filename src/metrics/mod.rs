//! Metrics, traces and the request tracker.
//!
//! Every request gets a [`Recorder`] (made by the HTTP tier, or by
//! [`MetricsLayer`] when the LLM tier is called directly). It ends in exactly
//! one [`Outcome`], streams included: `success`, `upstream_error`,
//! `gateway_error`, or `client_disconnect` (recorded with status 499 when the
//! response is dropped before it ended). On that one occasion it updates
//! (all but the overhead, below):
//!
//! - the [`metrics`](https://docs.rs/metrics) facade (whatever recorder the
//!   application installed; the library installs none):
//!
//!   | name | kind | labels |
//!   |---|---|---|
//!   | `llmgate_requests_total` | counter | `inbound`, `provider`, `model`, `outcome` |
//!   | `llmgate_request_duration_seconds` | histogram | `inbound`, `provider`, `model`, `outcome` |
//!   | `llmgate_time_to_first_token_seconds` | histogram | `inbound`, `provider`, `model` |
//!   | `llmgate_tokens_total` | counter | `provider`, `model`, `kind` (`input`, `output`, `cache_read`, `cache_write`) |
//!   | `llmgate_gateway_overhead_seconds` | histogram | `inbound` |
//!   | `llmgate_requests_in_flight` | gauge | `inbound` |
//!
//!   Label values are bounded: `inbound` is `anthropic` or `openai`,
//!   `provider` a configured provider name (or `none`), `model` a configured
//!   route name (an alias, a pattern, `provider/*`; `unknown` before
//!   resolution) — never the raw name a client sent — and `outcome` one of
//!   the four above.
//!
//!   Other parts count their own events: retries, hedges, fallbacks and
//!   cooldowns (see the resilience layers), and the upstream client the
//!   connections it opens, `llmgate_upstream_connects_total{host}` (see
//!   `provider::ClientOptions::max_idle_per_host`, feature `client`).
//! - a `tracing` span `llm.request` with OpenTelemetry GenAI attribute names
//!   (`gen_ai.operation.name`, `gen_ai.request.model`,
//!   `gen_ai.provider.name`, `gen_ai.response.model`,
//!   `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`,
//!   `gen_ai.response.finish_reasons`) plus `llmgate.request_id`,
//!   `llmgate.outcome` and `http.response.status_code`;
//! - the [`Tracker`], whose [`snapshot`](Tracker::snapshot) lists requests in
//!   flight and the last ones finished, for a `/stats` route.
//!
//! The gateway's own overhead is the time a request spent in the gateway
//! minus the time spent waiting on upstreams ([`Timing`](crate::llm::Timing));
//! for a stream it is measured up to the response headers. The HTTP tier,
//! given a tracker ([`HttpLayer::tracker`](crate::http::HttpLayer::tracker)),
//! measures it once for each request it passes to the stack (whether the
//! stack answers or fails), and it goes at once to
//! `llmgate_gateway_overhead_seconds`, to the tracker's `overhead_ms` and
//! to the `x-llmgate-overhead-ms` response header: all three carry the same
//! value. Requests the tier refuses before (an unknown route, a body that
//! does not parse) carry the header alone; a stack called without the HTTP
//! tier (or with no tracker in it) measures none.
//!
//! ```
//! use llmgate::metrics::{MetricsLayer, Tracker};
//! use llmgate::chat::{ChatRequest, ChatResponse, Message, Role};
//! use llmgate::llm::{LlmRequest, LlmResponse};
//! use llmgate::{ApiError, Format};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let tracker = Tracker::new();
//! let svc = ServiceBuilder::new()
//!     .layer(MetricsLayer::new(tracker.clone()))
//!     .service(service_fn(|_req: LlmRequest| async {
//!         Ok::<_, ApiError>(LlmResponse::complete(ChatResponse::default()))
//!     }));
//! let chat = ChatRequest::new("small", vec![Message::text(Role::User, "hi")]);
//! svc.oneshot(LlmRequest::new(chat, Format::OpenAi)).await.unwrap();
//! assert_eq!(tracker.snapshot().totals.success, 1);
//! # });
//! ```

mod layer;
mod recorder;

pub use layer::{Metrics, MetricsLayer};
pub use recorder::{Finished, InFlight, Outcome, Recorder, Snapshot, Totals, Tracker};
