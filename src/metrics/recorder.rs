use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics::{Counter, Gauge, Histogram};
use serde::Serialize;
use tracing::Span;

use crate::Format;
use crate::chat::Usage;
use crate::error::ApiError;
use crate::sync::{AtomicDuration, FastMap, lock};

/// How a request ended. Exactly one per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The client got its answer (a complete response, or a stream that
    /// ended with `message_stop`/`[DONE]`).
    Success,
    /// An upstream failed (an error status, a cut or failing stream, a
    /// connection error, a timeout).
    UpstreamError,
    /// The gateway refused or failed the request itself (bad input,
    /// authentication, unknown model, configuration).
    GatewayError,
    /// The client went away before the response ended.
    ClientDisconnect,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::UpstreamError => "upstream_error",
            Outcome::GatewayError => "gateway_error",
            Outcome::ClientDisconnect => "client_disconnect",
        }
    }

    /// The outcome of a request that failed with `err`.
    pub fn of_error(err: &ApiError) -> Self {
        if err.upstream {
            Outcome::UpstreamError
        } else {
            Outcome::GatewayError
        }
    }
}

/// A model name as the tracker keeps it: its first 200 characters (a
/// client may send anything).
fn clip(model: &str) -> &str {
    match model.char_indices().nth(200) {
        Some((end, _)) => &model[..end],
        None => model,
    }
}

fn format_label(f: Format) -> &'static str {
    match f {
        Format::Anthropic => "anthropic",
        Format::OpenAi => "openai",
    }
}

/// Request counts by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Requests started.
    pub started: u64,
    /// Ended in success.
    pub success: u64,
    /// Ended in an upstream error.
    pub upstream_error: u64,
    /// Ended in a gateway error.
    pub gateway_error: u64,
    /// Ended by the client going away.
    pub client_disconnect: u64,
}

/// A request in flight, as the tracker sees it.
#[derive(Debug, Clone, Serialize)]
pub struct InFlight {
    /// The request id.
    pub id: String,
    /// The client's format.
    pub inbound: &'static str,
    /// The model the client asked for.
    pub model: String,
    /// The route it resolved to.
    pub route: Option<String>,
    /// The provider serving it.
    pub provider: Option<String>,
    /// Milliseconds since it arrived.
    pub age_ms: u64,
    /// Whether its response is streaming.
    pub streaming: bool,
}

/// A finished request.
#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    /// The request id.
    pub id: String,
    /// The client's format.
    pub inbound: &'static str,
    /// The model the client asked for.
    pub model: String,
    /// The route it resolved to.
    pub route: Option<String>,
    /// The provider that served it.
    pub provider: Option<String>,
    /// The upstream model.
    pub upstream_model: Option<String>,
    /// The deployments its attempts went to (`provider/model`), in order:
    /// retries, hedges and fallbacks show here.
    pub attempts: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The HTTP status the client got (499 for a disconnect).
    pub status: u16,
    /// Total milliseconds.
    pub duration_ms: f64,
    /// Milliseconds to the first content (streams).
    pub ttft_ms: Option<f64>,
    /// The gateway's own milliseconds.
    pub overhead_ms: Option<f64>,
    /// Input tokens (cache reads and writes included).
    pub input_tokens: Option<u64>,
    /// Output tokens.
    pub output_tokens: Option<u64>,
    /// Unix time it ended, in milliseconds.
    pub ended_at_ms: u64,
}

/// What the tracker knows now.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Counts by outcome.
    pub totals: Totals,
    /// Requests in flight, oldest first.
    pub in_flight: Vec<InFlight>,
    /// The most recent finished requests, newest first.
    pub recent: Vec<Finished>,
}

/// The in-process request tracker: in-flight requests, counts by outcome,
/// and the last finished requests. Cheap to clone (shared).
#[derive(Clone)]
pub struct Tracker {
    inner: Arc<TrackerInner>,
}

struct TrackerInner {
    in_flight: Mutex<FastMap<Arc<str>, Arc<RecordInner>>>,
    recent: Mutex<VecDeque<Done>>,
    metrics: MetricHandles,
    capacity: usize,
    started: AtomicU64,
    success: AtomicU64,
    upstream_error: AtomicU64,
    gateway_error: AtomicU64,
    client_disconnect: AtomicU64,
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker").finish_non_exhaustive()
    }
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new()
    }
}

impl Tracker {
    /// A tracker that keeps the last 100 finished requests.
    pub fn new() -> Self {
        Self::with_capacity(100)
    }

    /// A tracker that keeps the last `capacity` finished requests.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::new(TrackerInner {
                in_flight: Mutex::new(FastMap::default()),
                recent: Mutex::new(VecDeque::with_capacity(capacity)),
                metrics: MetricHandles::default(),
                capacity,
                started: AtomicU64::new(0),
                success: AtomicU64::new(0),
                upstream_error: AtomicU64::new(0),
                gateway_error: AtomicU64::new(0),
                client_disconnect: AtomicU64::new(0),
            }),
        }
    }

    /// Starts the record of a request.
    pub fn start(&self, id: &str, inbound: Format, requested_model: &str) -> Recorder {
        let inner = Arc::new(RecordInner {
            tracker: self.clone(),
            id: Arc::from(id),
            inbound,
            start: Instant::now(),
            state: Mutex::new(RecordState {
                requested_model: clip(requested_model).to_owned(),
                ..RecordState::default()
            }),
            overhead: Arc::default(),
            finished: AtomicBool::new(false),
            span: tracing::info_span!(
                "llm.request",
                gen_ai.operation.name = "chat",
                gen_ai.request.model = requested_model,
                gen_ai.provider.name = tracing::field::Empty,
                gen_ai.response.model = tracing::field::Empty,
                gen_ai.usage.input_tokens = tracing::field::Empty,
                gen_ai.usage.output_tokens = tracing::field::Empty,
                gen_ai.response.finish_reasons = tracing::field::Empty,
                llmgate.request_id = %id,
                llmgate.inbound = format_label(inbound),
                llmgate.route = tracing::field::Empty,
                llmgate.outcome = tracing::field::Empty,
                http.response.status_code = tracing::field::Empty,
            ),
        });
        self.inner.started.fetch_add(1, Ordering::Relaxed);
        self.inner.metrics.in_flight(inbound).increment(1.0);
        lock(&self.inner.in_flight).insert(inner.id.clone(), inner.clone());
        Recorder {
            handle: Arc::new(Handle(inner)),
        }
    }

    /// What the tracker knows now.
    pub fn snapshot(&self) -> Snapshot {
        let t = &self.inner;
        let mut in_flight: Vec<(Instant, InFlight)> = lock(&t.in_flight)
            .values()
            .map(|r| {
                let s = lock(&r.state);
                (
                    r.start,
                    InFlight {
                        id: r.id.to_string(),
                        inbound: format_label(r.inbound),
                        model: s.requested_model.clone(),
                        route: s.route.clone(),
                        provider: s.provider.clone(),
                        age_ms: r.start.elapsed().as_millis() as u64,
                        streaming: s.streaming,
                    },
                )
            })
            .collect();
        in_flight.sort_by_key(|(start, _)| *start);
        Snapshot {
            totals: Totals {
                started: t.started.load(Ordering::Relaxed),
                success: t.success.load(Ordering::Relaxed),
                upstream_error: t.upstream_error.load(Ordering::Relaxed),
                gateway_error: t.gateway_error.load(Ordering::Relaxed),
                client_disconnect: t.client_disconnect.load(Ordering::Relaxed),
            },
            in_flight: in_flight.into_iter().map(|(_, f)| f).collect(),
            recent: lock(&t.recent)
                .iter()
                .rev()
                .map(Done::to_finished)
                .collect(),
        }
    }
}

#[derive(Default)]
struct RecordState {
    requested_model: String,
    attempts: Option<crate::llm::Attempts>,
    route: Option<String>,
    provider: Option<String>,
    upstream_model: Option<String>,
    streaming: bool,
    ttft: Option<Duration>,
    usage: Option<Usage>,
    finish_reason: Option<String>,
}

struct RecordInner {
    tracker: Tracker,
    id: Arc<str>,
    inbound: Format,
    start: Instant,
    state: Mutex<RecordState>,
    /// The gateway's overhead, shared with the finished record: the HTTP
    /// tier may set it after the record has ended.
    overhead: Arc<AtomicDuration>,
    finished: AtomicBool,
    span: Span,
}

/// The record of one request. Clones share it; it is finished once, by the
/// first [`finish`](Self::finish), or as a client disconnect when the last
/// handle is dropped without one.
#[derive(Clone)]
pub struct Recorder {
    handle: Arc<Handle>,
}

/// Dropped with the last [`Recorder`] clone (the tracker's table holds the
/// record, not a handle).
struct Handle(Arc<RecordInner>);

impl Drop for Handle {
    fn drop(&mut self) {
        finish(&self.0, Outcome::ClientDisconnect, 499);
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("id", &self.inner().id)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    fn inner(&self) -> &RecordInner {
        &self.handle.0
    }

    /// The request id.
    pub fn id(&self) -> &str {
        &self.inner().id
    }

    /// The request's span.
    pub fn span(&self) -> &Span {
        &self.inner().span
    }

    /// Records the model the client asked for (when it was not known at
    /// the start).
    pub fn set_requested_model(&self, model: &str) {
        let r = self.inner();
        r.span.record("gen_ai.request.model", model);
        let model = clip(model);
        let mut state = lock(&r.state);
        state.requested_model.clear();
        state.requested_model.push_str(model);
    }

    /// Follows the request's attempts (reported when it ends).
    pub fn set_attempts(&self, attempts: crate::llm::Attempts) {
        lock(&self.inner().state).attempts = Some(attempts);
    }

    /// Records the route the model resolved to.
    pub fn set_route(&self, name: &str) {
        let r = self.inner();
        r.span.record("llmgate.route", name);
        lock(&r.state).route = Some(name.to_owned());
    }

    /// Records the deployment serving the request.
    pub fn set_target(&self, provider: &str, model: &str) {
        let r = self.inner();
        r.span.record("gen_ai.provider.name", provider);
        r.span.record("gen_ai.response.model", model);
        let mut s = lock(&r.state);
        s.provider = Some(provider.to_owned());
        s.upstream_model = Some(model.to_owned());
    }

    /// Marks the response as a stream.
    pub fn set_streaming(&self) {
        lock(&self.inner().state).streaming = true;
    }

    /// Records the first content of the response (time to first token).
    pub fn first_token(&self) {
        let r = self.inner();
        let mut s = lock(&r.state);
        if s.ttft.is_none() {
            s.ttft = Some(r.start.elapsed());
        }
    }

    /// Records the gateway's own time (up to the response headers): into
    /// `llmgate_gateway_overhead_seconds` at once, and into the tracker's
    /// record of the request.
    ///
    /// The HTTP tier knows it only once the stack below has answered, and by
    /// then a complete response has already ended its record (the metrics
    /// layer ends it as the answer passes), so the histogram is not left to
    /// [`finish`](Self::finish), and the record's value is shared with its
    /// entry among the tracker's finished requests.
    pub fn set_overhead(&self, overhead: Duration) {
        let r = self.inner();
        r.tracker
            .inner
            .metrics
            .overhead(r.inbound)
            .record(overhead.as_secs_f64());
        r.overhead.set(overhead);
    }

    /// Records usage (fields given replace earlier ones).
    pub fn usage(&self, usage: &Usage) {
        let mut s = lock(&self.inner().state);
        match &mut s.usage {
            Some(u) => u.update(usage.clone()),
            None => s.usage = Some(usage.clone()),
        }
    }

    /// Records the stop reason, as the client sees it.
    pub fn finish_reason(&self, reason: &str) {
        lock(&self.inner().state).finish_reason = Some(reason.to_owned());
    }

    /// Whether the request has ended.
    pub fn is_finished(&self) -> bool {
        self.inner().finished.load(Ordering::Acquire)
    }

    /// Ends the request with `outcome` and the client's `status`; `false`
    /// when it had already ended (the first ending counts).
    pub fn finish(&self, outcome: Outcome, status: u16) -> bool {
        finish(self.inner(), outcome, status)
    }
}

fn finish(r: &RecordInner, outcome: Outcome, status: u16) -> bool {
    if r.finished.swap(true, Ordering::AcqRel) {
        return false;
    }
    let duration = r.start.elapsed();
    let t = &r.tracker.inner;
    lock(&t.in_flight).remove(&r.id);
    let counter = match outcome {
        Outcome::Success => &t.success,
        Outcome::UpstreamError => &t.upstream_error,
        Outcome::GatewayError => &t.gateway_error,
        Outcome::ClientDisconnect => &t.client_disconnect,
    };
    counter.fetch_add(1, Ordering::Relaxed);

    // The record's state is no longer written: take it rather than copy it.
    let state = std::mem::take(&mut *lock(&r.state));
    let m = &t.metrics;
    let route = m.route(
        state.provider.as_deref().unwrap_or("none"),
        state.route.as_deref().unwrap_or("unknown"),
    );
    let (requests, durations) = route.requests(r.inbound, outcome);
    requests.increment(1);
    durations.record(duration.as_secs_f64());
    m.in_flight(r.inbound).decrement(1.0);
    if let Some(ttft) = state.ttft {
        route.ttft(r.inbound).record(ttft.as_secs_f64());
    }
    if let Some(u) = &state.usage {
        for (kind, n) in TokenKind::ALL.into_iter().zip([
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens,
        ]) {
            if let Some(n) = n.filter(|n| *n > 0) {
                route.tokens(kind).increment(n);
            }
        }
        if u.input_tokens.is_some() {
            r.span
                .record("gen_ai.usage.input_tokens", u.prompt_tokens());
        }
        if let Some(n) = u.output_tokens {
            r.span.record("gen_ai.usage.output_tokens", n);
        }
    }
    if let Some(reason) = &state.finish_reason {
        r.span
            .record("gen_ai.response.finish_reasons", reason.as_str());
    }
    r.span.record("llmgate.outcome", outcome.as_str());
    r.span.record("http.response.status_code", status);
    tracing::debug!(parent: &r.span, outcome = outcome.as_str(), status,
        duration_ms = duration.as_secs_f64() * 1000.0, "request finished");
    if t.capacity == 0 {
        return true;
    }
    let done = Done {
        id: r.id.clone(),
        inbound: r.inbound,
        state,
        overhead: r.overhead.clone(),
        outcome,
        status,
        duration,
        ended_at: SystemTime::now(),
    };
    let mut recent = lock(&t.recent);
    if recent.len() == t.capacity {
        recent.pop_front();
    }
    recent.push_back(done);
    true
}

/// A finished request as the tracker keeps it: what the request recorded,
/// moved rather than copied. [`Finished`] is built from it on a snapshot.
struct Done {
    id: Arc<str>,
    inbound: Format,
    state: RecordState,
    overhead: Arc<AtomicDuration>,
    outcome: Outcome,
    status: u16,
    duration: Duration,
    ended_at: SystemTime,
}

impl Done {
    fn to_finished(&self) -> Finished {
        let s = &self.state;
        let millis = |d: Duration| d.as_secs_f64() * 1000.0;
        Finished {
            id: self.id.to_string(),
            inbound: format_label(self.inbound),
            model: s.requested_model.clone(),
            route: s.route.clone(),
            provider: s.provider.clone(),
            upstream_model: s.upstream_model.clone(),
            attempts: s
                .attempts
                .as_ref()
                .map(|a| a.list().iter().map(crate::llm::Target::label).collect())
                .unwrap_or_default(),
            outcome: self.outcome,
            status: self.status,
            duration_ms: millis(self.duration),
            ttft_ms: s.ttft.map(millis),
            overhead_ms: self.overhead.get().map(millis),
            input_tokens: s
                .usage
                .as_ref()
                .and_then(|u| u.input_tokens.map(|_| u.prompt_tokens())),
            output_tokens: s.usage.as_ref().and_then(|u| u.output_tokens),
            ended_at_ms: self
                .ended_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }
}

/// The kinds of `llmgate_tokens_total`.
#[derive(Clone, Copy)]
enum TokenKind {
    Input,
    Output,
    CacheRead,
    CacheWrite,
}

impl TokenKind {
    const ALL: [TokenKind; 4] = [
        TokenKind::Input,
        TokenKind::Output,
        TokenKind::CacheRead,
        TokenKind::CacheWrite,
    ];

    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Input => "input",
            TokenKind::Output => "output",
            TokenKind::CacheRead => "cache_read",
            TokenKind::CacheWrite => "cache_write",
        }
    }
}

fn format_index(f: Format) -> usize {
    match f {
        Format::Anthropic => 0,
        Format::OpenAi => 1,
    }
}

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Success => 0,
        Outcome::UpstreamError => 1,
        Outcome::GatewayError => 2,
        Outcome::ClientDisconnect => 3,
    }
}

/// How many (provider, model) label pairs keep their metric handles; past
/// it (models named freely by clients), handles are registered per request.
const MAX_CACHED_ROUTES: usize = 1024;

/// The tracker's `metrics` handles, by label values, so that recording a
/// request's metrics registers nothing (no label strings, no registry
/// look-up) once its labels have been seen. A handle is bound to the
/// recorder installed when it is first used: install the `metrics` recorder
/// before serving requests.
#[derive(Default)]
struct MetricHandles {
    in_flight: [OnceLock<Gauge>; 2],
    overhead: [OnceLock<Histogram>; 2],
    /// provider → model → handles.
    routes: Mutex<FastMap<String, FastMap<String, Arc<RouteMetrics>>>>,
    cached: AtomicUsize,
}

impl MetricHandles {
    fn in_flight(&self, inbound: Format) -> &Gauge {
        self.in_flight[format_index(inbound)].get_or_init(
            || ::metrics::gauge!("llmgate_requests_in_flight", "inbound" => format_label(inbound)),
        )
    }

    fn overhead(&self, inbound: Format) -> &Histogram {
        self.overhead[format_index(inbound)].get_or_init(|| {
            ::metrics::histogram!("llmgate_gateway_overhead_seconds",
                "inbound" => format_label(inbound))
        })
    }

    fn route(&self, provider: &str, model: &str) -> Arc<RouteMetrics> {
        let mut routes = lock(&self.routes);
        if let Some(m) = routes.get(provider).and_then(|p| p.get(model)) {
            return m.clone();
        }
        let m = Arc::new(RouteMetrics::new(provider, model));
        if self.cached.load(Ordering::Relaxed) < MAX_CACHED_ROUTES {
            self.cached.fetch_add(1, Ordering::Relaxed);
            routes
                .entry(provider.to_owned())
                .or_default()
                .insert(model.to_owned(), m.clone());
        }
        m
    }
}

/// The handles of one (provider, model) pair.
struct RouteMetrics {
    provider: String,
    model: String,
    /// By inbound format and outcome: `llmgate_requests_total` and
    /// `llmgate_request_duration_seconds`.
    requests: [[OnceLock<(Counter, Histogram)>; 4]; 2],
    ttft: [OnceLock<Histogram>; 2],
    tokens: [OnceLock<Counter>; 4],
}

impl RouteMetrics {
    fn new(provider: &str, model: &str) -> Self {
        Self {
            provider: provider.to_owned(),
            model: model.to_owned(),
            requests: Default::default(),
            ttft: Default::default(),
            tokens: Default::default(),
        }
    }

    fn requests(&self, inbound: Format, outcome: Outcome) -> &(Counter, Histogram) {
        self.requests[format_index(inbound)][outcome_index(outcome)].get_or_init(|| {
            let labels = [
                ("inbound", format_label(inbound).to_owned()),
                ("provider", self.provider.clone()),
                ("model", self.model.clone()),
                ("outcome", outcome.as_str().to_owned()),
            ];
            (
                ::metrics::counter!("llmgate_requests_total", &labels),
                ::metrics::histogram!("llmgate_request_duration_seconds", &labels),
            )
        })
    }

    fn ttft(&self, inbound: Format) -> &Histogram {
        self.ttft[format_index(inbound)].get_or_init(|| {
            ::metrics::histogram!("llmgate_time_to_first_token_seconds",
                "inbound" => format_label(inbound), "provider" => self.provider.clone(),
                "model" => self.model.clone())
        })
    }

    fn tokens(&self, kind: TokenKind) -> &Counter {
        self.tokens[kind as usize].get_or_init(|| {
            ::metrics::counter!("llmgate_tokens_total",
                "provider" => self.provider.clone(), "model" => self.model.clone(),
                "kind" => kind.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_outcome_per_request() {
        let tracker = Tracker::new();
        let rec = tracker.start("req_1", Format::Anthropic, "big");
        assert_eq!(tracker.snapshot().in_flight.len(), 1);
        assert!(rec.finish(Outcome::Success, 200));
        assert!(
            !rec.finish(Outcome::UpstreamError, 500),
            "the first ending counts"
        );
        drop(rec);
        let snap = tracker.snapshot();
        assert_eq!(
            (
                snap.totals.started,
                snap.totals.success,
                snap.totals.upstream_error
            ),
            (1, 1, 0)
        );
        assert!(snap.in_flight.is_empty());
        assert_eq!(snap.recent[0].status, 200);
    }

    #[test]
    fn model_names_are_kept_to_200_characters() {
        let long = "é".repeat(300);
        assert_eq!(clip(&long).chars().count(), 200);
        assert_eq!(clip(&long).len(), 400, "whole characters, not bytes");
        assert_eq!(clip("gpt-4o"), "gpt-4o");
        let tracker = Tracker::new();
        let rec = tracker.start("req_m", Format::OpenAi, "");
        rec.set_requested_model(&long);
        assert_eq!(tracker.snapshot().in_flight[0].model.chars().count(), 200);
    }

    #[test]
    fn the_overhead_histogram_gets_one_sample_per_request_whenever_it_ends() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let tracker = Tracker::new();
            // A complete response: the record ends before the overhead is known.
            let complete = tracker.start("req_1", Format::Anthropic, "m");
            complete.finish(Outcome::Success, 200);
            complete.set_overhead(Duration::from_micros(1500));
            // A stream: the overhead is known at its headers, the end later.
            let stream = tracker.start("req_2", Format::Anthropic, "m");
            stream.set_overhead(Duration::from_micros(250));
            stream.finish(Outcome::Success, 200);
            drop((complete, stream));
        });
        let samples: Vec<f64> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| key.key().name() == "llmgate_gateway_overhead_seconds")
            .flat_map(|(.., value)| match value {
                DebugValue::Histogram(v) => v.into_iter().map(|x| x.into_inner()).collect(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(samples, vec![0.0015, 0.00025]);
    }

    #[test]
    fn overhead_set_after_the_end_reaches_the_finished_record() {
        let tracker = Tracker::new();
        let (a, b) = (
            tracker.start("req_a", Format::OpenAi, "m"),
            tracker.start("req_b", Format::OpenAi, "m"),
        );
        // As in the HTTP tier: the metrics layer ends a complete response's
        // record before the tier knows the overhead.
        a.finish(Outcome::Success, 200);
        b.finish(Outcome::Success, 200);
        a.set_overhead(Duration::from_micros(1500));
        let c = tracker.start("req_c", Format::OpenAi, "m");
        c.set_overhead(Duration::from_micros(250));
        c.finish(Outcome::Success, 200);
        let snap = tracker.snapshot();
        let overhead = |id: &str| snap.recent.iter().find(|f| f.id == id).unwrap().overhead_ms;
        assert_eq!(overhead("req_a"), Some(1.5));
        assert_eq!(overhead("req_b"), None, "only the request's own record");
        assert_eq!(overhead("req_c"), Some(0.25));
    }

    #[test]
    fn dropping_the_last_handle_unfinished_is_a_client_disconnect() {
        let tracker = Tracker::new();
        let rec = tracker.start("req_2", Format::OpenAi, "m");
        let clone = rec.clone();
        drop(rec);
        assert_eq!(
            tracker.snapshot().totals.client_disconnect,
            0,
            "a handle is still alive"
        );
        drop(clone);
        let snap = tracker.snapshot();
        assert_eq!(snap.totals.client_disconnect, 1);
        assert_eq!(snap.recent[0].status, 499);
        assert_eq!(snap.recent[0].outcome, Outcome::ClientDisconnect);
    }

    #[test]
    fn recent_is_bounded_and_newest_first() {
        let tracker = Tracker::with_capacity(2);
        for i in 0..3 {
            tracker
                .start(&format!("req_{i}"), Format::OpenAi, "m")
                .finish(Outcome::Success, 200);
        }
        let ids: Vec<String> = tracker
            .snapshot()
            .recent
            .into_iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(ids, ["req_2", "req_1"]);
    }

    #[test]
    fn usage_and_labels_land_in_the_record() {
        let tracker = Tracker::new();
        let rec = tracker.start("req_3", Format::Anthropic, "claude-x");
        rec.set_route("claude-*");
        rec.set_target("local", "qwen");
        rec.usage(&Usage {
            input_tokens: Some(10),
            cache_read_tokens: Some(5),
            ..Usage::default()
        });
        rec.usage(&Usage {
            output_tokens: Some(7),
            ..Usage::default()
        });
        rec.finish(Outcome::Success, 200);
        let f = &tracker.snapshot().recent[0];
        assert_eq!((f.input_tokens, f.output_tokens), (Some(15), Some(7)));
        assert_eq!(
            (f.route.as_deref(), f.provider.as_deref()),
            (Some("claude-*"), Some("local"))
        );
    }
}
