//! The TOML configuration that builds the whole stack (feature `config`).
//!
//! ```toml
//! listen = "127.0.0.1:8080"        # where the example gateway listens
//! max_body_bytes = 33554432         # request body limit (default 32 MiB)
//! default_provider = "local"        # unknown models go here (default: 404)
//!
//! [auth]
//! mode = "keys"                     # "open" (default), "keys", "passthrough"
//! keys = [{ name = "team-a", key = "${GATEWAY_KEY}" }]
//!
//! [[providers]]
//! name = "local"
//! kind = "openai"                   # "openai" (any OpenAI-compatible), "anthropic", "mock"
//! base_url = "http://127.0.0.1:9100/v1"
//! api_keys = ["${OPENAI_API_KEY}"]  # rotated round robin; or passthrough = true
//! headers = { "x-team" = "search" } # sent on every request
//! max_tokens_field = "max_tokens"   # for servers without max_completion_tokens
//! reasoning_models = ["o*", "gpt-5*"]
//! drop_params = ["seed"]            # parameters this upstream rejects
//!
//! [[providers]]
//! name = "mock"
//! kind = "mock"
//! pacing_ms = 20                    # time between stream events
//!
//! [[models]]
//! name = "big"                      # what clients ask for; globs allowed
//! targets = [{ provider = "local", model = "gpt-4o" }]
//!
//! [[models]]
//! name = "claude-*"
//! targets = [{ provider = "mock", model = "mock-claude" }]
//!
//! [preprocess]
//! system_prompt = { mode = "prepend", text = "Be concise." }
//! max_tokens = 8192                 # clamp
//!
//! [http]
//! echo_requested_model = true
//! reasoning_content = false
//! ```
//!
//! Resilience (every key optional; the values shown are the defaults):
//!
//! ```toml
//! [[models]]
//! name = "big"
//! targets = [{ provider = "openai", model = "gpt-4o", weight = 2 },
//!            { provider = "azure", model = "gpt-4o", api_key = "${AZURE_KEY_2}" }]
//! fallbacks = ["small"]                   # when big's deployments all fail
//! context_window_fallbacks = ["long"]     # when the prompt is too long
//!
//! [retry]
//! attempts = 3                # in all, the first included
//! backoff_base_ms = 250       # doubles per retry of the same deployment
//! backoff_max_ms = 8000
//! jitter = 0.2                # share of a backoff taken off at random
//! max_retry_after_ms = 30000  # a longer retry-after goes back to the client
//! budget_percent = 20         # retries add at most 20 % to recent traffic…
//! budget_min_per_sec = 10     # …plus this many per second
//! budget_window_s = 10
//!
//! [balance]
//! strategy = "weighted"       # "round_robin", "weighted", "least_in_flight", "latency"
//! cooldown_ms = 5000          # first cooldown; doubles with further failures
//! max_cooldown_ms = 60000     # retry-after included
//! allowed_failures = 3        # 5xx/timeouts before a cooldown (429/529: at once)
//! failure_half_life_ms = 60000
//!
//! [hedge]                     # off unless present
//! delay_ms = 1000             # a second attempt after this long (0: race)
//! legs = 2
//!
//! [timeouts]
//! connect_ms = 10000
//! first_byte_ms = 60000       # a stream's headers
//! idle_ms = 300000            # between two stream events
//! total_ms = 900000           # the whole request, retries and stream included
//!
//! [pool]                      # the upstream connection pool
//! max_idle_per_host = 16      # idle connections kept per host and server thread
//! idle_timeout_ms = 90000     # an idle connection is closed after this long
//! ```
//!
//! `${NAME}` anywhere in a string is replaced by the environment variable
//! `NAME` (a missing one is an error; `$${` writes a literal `${`), so
//! secrets stay out of the file. Unknown keys are errors, to catch typos.
//!
//! [`Config::build`] assembles the default stack (see
//! `docs/resilience.md` for how the resilience layers compose):
//!
//! ```text
//! HttpLayer ▸ Auth ▸ Resolve ▸ Preprocess ▸ Metrics ▸ Timeout(total)
//!   ▸ Fallback ▸ Retry ▸ Hedge ▸ Balance ▸ Timeout(first byte, idle) ▸ Providers
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use tower::ServiceBuilder;

use crate::auth::{AuthLayer, AuthMode};
use crate::balance::{BalanceLayer, HealthConfig, Latency, LeastInFlight, RoundRobin, Weighted};
use crate::chat::MaxTokensField;
use crate::fallback::FallbackLayer;
use crate::hedge::HedgeLayer;
use crate::http::{DEFAULT_MAX_BODY_BYTES, HttpLayer, HttpService};
use crate::llm::{BoxLlmService, Target};
use crate::metrics::{MetricsLayer, Tracker};
use crate::preprocess::{DropParams, Hooks, MaxTokensClamp, Param, PreprocessLayer, SystemPrompt};
use crate::provider::{AnthropicProvider, HttpClient, MockProvider, OpenAiProvider, Providers};
use crate::retry::{RetryLayer, RetryPolicy};
use crate::route::{ResolveLayer, Resolver};
use crate::timeout::TimeoutLayer;

/// A configuration error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// `${NAME}` names an unset environment variable.
    #[error("environment variable `{0}` is not set (used as ${{{0}}} in the configuration)")]
    MissingEnv(String),
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration; see the [module docs](self).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where a server should listen.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The request body limit.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Where models that match nothing go.
    #[serde(default)]
    pub default_provider: Option<String>,
    /// Client authentication.
    #[serde(default)]
    pub auth: AuthConfig,
    /// The providers.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// The model table.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// Request preprocessing.
    #[serde(default)]
    pub preprocess: PreprocessConfig,
    /// HTTP tier options.
    #[serde(default)]
    pub http: HttpConfig,
    /// Retries.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Load balancing and deployment health.
    #[serde(default)]
    pub balance: BalanceConfig,
    /// Hedged requests (off when absent).
    #[serde(default)]
    pub hedge: Option<HedgeConfig>,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// The upstream connection pool.
    #[serde(default)]
    pub pool: PoolConfig,
}

/// `[retry]`; see the [module docs](self) for the defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Attempts in all.
    pub attempts: u32,
    /// The first backoff.
    pub backoff_base_ms: u64,
    /// The longest backoff.
    pub backoff_max_ms: u64,
    /// The share of a backoff taken off at random.
    pub jitter: f64,
    /// The longest `retry-after` waited for.
    pub max_retry_after_ms: u64,
    /// Retries as a percentage of recent traffic.
    pub budget_percent: f32,
    /// Retries per second allowed whatever the traffic.
    pub budget_min_per_sec: u32,
    /// How long a request counts for the budget.
    pub budget_window_s: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        let p = RetryPolicy::default();
        Self {
            attempts: p.attempts,
            backoff_base_ms: p.base.as_millis() as u64,
            backoff_max_ms: p.max_backoff.as_millis() as u64,
            jitter: p.jitter,
            max_retry_after_ms: p.max_retry_after.as_millis() as u64,
            budget_percent: p.budget_percent * 100.0,
            budget_min_per_sec: p.budget_min_per_sec,
            budget_window_s: p.budget_window.as_secs(),
        }
    }
}

/// `[balance]`; see the [module docs](self) for the defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct BalanceConfig {
    /// `round_robin`, `weighted`, `least_in_flight` or `latency`.
    pub strategy: String,
    /// The first cooldown.
    pub cooldown_ms: u64,
    /// The longest cooldown.
    pub max_cooldown_ms: u64,
    /// Failures before a first cooldown (429/overloaded: at once).
    pub allowed_failures: u32,
    /// Failures count half after this long.
    pub failure_half_life_ms: u64,
}

impl Default for BalanceConfig {
    fn default() -> Self {
        let h = HealthConfig::default();
        Self {
            strategy: "weighted".into(),
            cooldown_ms: h.cooldown.as_millis() as u64,
            max_cooldown_ms: h.max_cooldown.as_millis() as u64,
            allowed_failures: h.allowed_failures,
            failure_half_life_ms: h.half_life.as_millis() as u64,
        }
    }
}

/// `[hedge]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HedgeConfig {
    /// A further attempt after this long (0: all at once).
    pub delay_ms: u64,
    /// Attempts at once, at most.
    #[serde(default = "two")]
    pub legs: usize,
}

fn two() -> usize {
    2
}

/// `[timeouts]`; see the [module docs](self) for the defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TimeoutsConfig {
    /// Connecting to an upstream.
    pub connect_ms: u64,
    /// A stream's response headers.
    pub first_byte_ms: u64,
    /// Between two stream events.
    pub idle_ms: u64,
    /// The whole request.
    pub total_ms: u64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        Self {
            connect_ms: crate::provider::DEFAULT_CONNECT_TIMEOUT.as_millis() as u64,
            first_byte_ms: 60_000,
            idle_ms: 300_000,
            total_ms: 900_000,
        }
    }
}

/// `[pool]`: the upstream connection pool of the default HTTP client (a
/// pool per thread that sends); see the [module docs](self) for the
/// defaults. A client passed to [`Config::build_with`] keeps its own pool
/// and connect timeout: `[pool]` and `timeouts.connect_ms` only set up the
/// default one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Idle connections kept per upstream host, per thread (0: no pooling,
    /// a connection per request).
    pub max_idle_per_host: usize,
    /// How long an idle connection is kept (more than 0).
    pub idle_timeout_ms: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_idle_per_host: crate::provider::DEFAULT_MAX_IDLE_PER_HOST,
            idle_timeout_ms: crate::provider::DEFAULT_IDLE_TIMEOUT.as_millis() as u64,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

/// `[auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthConfig {
    /// `open`, `keys` or `passthrough`.
    #[serde(default)]
    pub mode: AuthModeConfig,
    /// Gateway keys (`keys` mode).
    #[serde(default)]
    pub keys: Vec<GatewayKey>,
}

/// The auth modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AuthModeConfig {
    /// No check.
    #[default]
    Open,
    /// Gateway keys.
    Keys,
    /// The client's own provider keys.
    Passthrough,
}

/// A gateway key: a bare string, or a name and a key.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum GatewayKey {
    /// Just the key (named `key-<n>`).
    Bare(String),
    /// A named key.
    Named {
        /// A name for metrics and logs.
        name: String,
        /// The key.
        key: String,
    },
}

/// The kinds of provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ProviderKind {
    /// Any OpenAI-compatible Chat Completions API.
    Openai,
    /// The Anthropic Messages API.
    Anthropic,
    /// The built-in mock.
    Mock,
}

/// `[[providers]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// A unique name.
    pub name: String,
    /// What it is.
    pub kind: ProviderKind,
    /// The API base (`…/v1`); defaults: OpenAI `https://api.openai.com/v1`,
    /// Anthropic `https://api.anthropic.com/v1`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Keys, rotated round robin.
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// Send the client's key instead.
    #[serde(default)]
    pub passthrough: bool,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `max_tokens` or `max_completion_tokens` (OpenAI-compatible).
    #[serde(default)]
    pub max_tokens_field: Option<String>,
    /// Upstream models (globs) that reason (OpenAI-compatible).
    #[serde(default)]
    pub reasoning_models: Vec<String>,
    /// Send the system prompt with the `developer` role (OpenAI-compatible).
    #[serde(default)]
    pub developer_role: bool,
    /// Parameters this upstream rejects.
    #[serde(default)]
    pub drop_params: Vec<String>,
    /// Hold streamed tool calls until complete (OpenAI-compatible).
    #[serde(default)]
    pub buffer_tool_calls: bool,
    /// Mock: milliseconds between stream events.
    #[serde(default)]
    pub pacing_ms: u64,
    /// Mock: milliseconds before answering.
    #[serde(default)]
    pub latency_ms: u64,
    /// Mock: words per text delta.
    #[serde(default)]
    pub words_per_event: Option<usize>,
}

impl ProviderConfig {
    /// A provider of `kind` named `name`, everything else default.
    pub fn new(name: impl Into<String>, kind: ProviderKind) -> Self {
        Self {
            name: name.into(),
            kind,
            base_url: None,
            api_keys: Vec::new(),
            passthrough: false,
            headers: BTreeMap::new(),
            max_tokens_field: None,
            reasoning_models: Vec::new(),
            developer_role: false,
            drop_params: Vec::new(),
            buffer_tool_calls: false,
            pacing_ms: 0,
            latency_ms: 0,
            words_per_event: None,
        }
    }
}

/// `[[models]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ModelConfig {
    /// The name clients use; `*` and `?` make it a pattern.
    pub name: String,
    /// The deployments.
    pub targets: Vec<TargetConfig>,
    /// Models to try, in order, when this one's deployments all fail.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Models to try, in order, when the prompt overflows the context window.
    #[serde(default)]
    pub context_window_fallbacks: Vec<String>,
}

/// A deployment of a model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TargetConfig {
    /// A provider's name.
    pub provider: String,
    /// The upstream model.
    pub model: String,
    /// Relative weight.
    #[serde(default = "one")]
    pub weight: u32,
    /// A key for this deployment only (else the provider's keys).
    #[serde(default)]
    pub api_key: Option<String>,
}

fn one() -> u32 {
    1
}

impl TargetConfig {
    fn target(&self) -> Target {
        let mut t = Target::new(self.provider.clone(), self.model.clone()).weight(self.weight);
        if let Some(key) = &self.api_key {
            t = t.api_key(key.as_str());
        }
        t
    }
}

/// `[preprocess]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PreprocessConfig {
    /// Set the system prompt.
    #[serde(default)]
    pub system_prompt: Option<SystemPromptConfig>,
    /// Cap `max_tokens`.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Drop parameters, for some providers or models.
    #[serde(default)]
    pub drop_params: Vec<DropParamsConfig>,
}

/// `system_prompt = { mode, text }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SystemPromptConfig {
    /// `prepend`, `append` or `replace`.
    pub mode: String,
    /// The text.
    pub text: String,
}

/// `drop_params = [{ params, provider?, model? }]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DropParamsConfig {
    /// Wire names of the parameters.
    pub params: Vec<String>,
    /// Only for this provider.
    #[serde(default)]
    pub provider: Option<String>,
    /// Only for upstream models matching this glob.
    #[serde(default)]
    pub model: Option<String>,
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Responses carry the model the client asked for.
    #[serde(default = "yes")]
    pub echo_requested_model: bool,
    /// Thinking from Anthropic upstreams reaches OpenAI clients as
    /// `reasoning_content`.
    #[serde(default)]
    pub reasoning_content: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            echo_requested_model: true,
            reasoning_content: false,
        }
    }
}

fn yes() -> bool {
    true
}

/// The built stack.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Gateway {
    /// The HTTP service: mount it on a router or serve it with hyper.
    pub http: HttpService<BoxLlmService>,
    /// The LLM tier alone, for in-process calls.
    pub llm: BoxLlmService,
    /// The request tracker (for a `/stats` route).
    pub tracker: Tracker,
    /// The balancer's handle: deployments' state, and changes at runtime.
    pub balance: crate::balance::BalanceHandle,
    /// Where to listen.
    pub listen: String,
}

/// Replaces `${NAME}` with the environment variable `NAME`.
pub fn interpolate(
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err(ConfigError::Parse(
                    "unclosed `${` in the configuration".into(),
                ));
            };
            let name = &after[..end];
            let value = env(name).ok_or_else(|| ConfigError::MissingEnv(name.to_owned()))?;
            out.push_str(&value);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn interpolate_value(
    value: &mut toml::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) => *s = interpolate(s, env)?,
        toml::Value::Array(items) => {
            for item in items {
                interpolate_value(item, env)?;
            }
        }
        toml::Value::Table(table) => {
            for (_, item) in table.iter_mut() {
                interpolate_value(item, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

impl Config {
    /// Parses TOML, replacing `${NAME}` with environment variables.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_toml_with_env(text, |name| std::env::var(name).ok())
    }

    /// Parses TOML with a given environment (for tests).
    pub fn from_toml_with_env(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        // Interpolate string values after parsing, so that a secret holding
        // TOML syntax cannot change the structure of the file.
        let mut value: toml::Value =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        interpolate_value(&mut value, &env)?;
        let config: Config = value
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// A gateway on the built-in mock: every model is served by it, auth is
    /// open. What the example gateway runs without a configuration file.
    pub fn mock() -> Self {
        let mock = ProviderConfig {
            pacing_ms: 15,
            words_per_event: Some(2),
            ..ProviderConfig::new("mock", ProviderKind::Mock)
        };
        Self {
            listen: default_listen(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            default_provider: None,
            auth: AuthConfig::default(),
            providers: vec![mock],
            models: vec![ModelConfig {
                name: "*".into(),
                targets: vec![TargetConfig {
                    provider: "mock".into(),
                    model: "llmgate-mock".into(),
                    weight: 1,
                    api_key: None,
                }],
                fallbacks: Vec::new(),
                context_window_fallbacks: Vec::new(),
            }],
            preprocess: PreprocessConfig::default(),
            http: HttpConfig::default(),
            retry: RetryConfig::default(),
            balance: BalanceConfig::default(),
            hedge: None,
            timeouts: TimeoutsConfig::default(),
            pool: PoolConfig::default(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for p in &self.providers {
            if !names.insert(p.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "provider `{}` is defined twice",
                    p.name
                )));
            }
            if let Some(f) = &p.max_tokens_field
                && f != "max_tokens"
                && f != "max_completion_tokens"
            {
                return Err(ConfigError::Invalid(format!(
                    "provider `{}`: max_tokens_field must be `max_tokens` or `max_completion_tokens`",
                    p.name
                )));
            }
        }
        for m in &self.models {
            if m.targets.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "model `{}` has no targets",
                    m.name
                )));
            }
            for t in &m.targets {
                if !names.contains(t.provider.as_str()) {
                    return Err(ConfigError::Invalid(format!(
                        "model `{}` names provider `{}`, which is not defined",
                        m.name, t.provider
                    )));
                }
            }
        }
        if let Some(p) = &self.default_provider
            && !names.contains(p.as_str())
        {
            return Err(ConfigError::Invalid(format!(
                "default_provider `{p}` is not defined"
            )));
        }
        let model_names: std::collections::HashSet<&str> =
            self.models.iter().map(|m| m.name.as_str()).collect();
        for m in &self.models {
            for f in m.fallbacks.iter().chain(&m.context_window_fallbacks) {
                if !model_names.contains(f.as_str()) && !f.contains('/') {
                    return Err(ConfigError::Invalid(format!(
                        "model `{}` falls back to `{f}`, which is not a configured model",
                        m.name
                    )));
                }
            }
        }
        if !matches!(
            self.balance.strategy.as_str(),
            "round_robin" | "weighted" | "least_in_flight" | "latency"
        ) {
            return Err(ConfigError::Invalid(format!(
                "balance.strategy `{}` is not one of round_robin, weighted, least_in_flight, latency",
                self.balance.strategy
            )));
        }
        if self.pool.idle_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "pool.idle_timeout_ms must be more than 0".into(),
            ));
        }
        if self.retry.attempts == 0 {
            return Err(ConfigError::Invalid(
                "retry.attempts must be at least 1".into(),
            ));
        }
        if self.auth.mode == AuthModeConfig::Keys && self.auth.keys.is_empty() {
            return Err(ConfigError::Invalid(
                "auth mode `keys` needs at least one key".into(),
            ));
        }
        if let Some(sp) = &self.preprocess.system_prompt
            && !matches!(sp.mode.as_str(), "prepend" | "append" | "replace")
        {
            return Err(ConfigError::Invalid(
                "system_prompt.mode must be `prepend`, `append` or `replace`".into(),
            ));
        }
        Ok(())
    }

    /// The names `GET /v1/models` lists: the exact model names.
    pub fn model_names(&self) -> Vec<String> {
        self.models
            .iter()
            .filter(|m| !m.name.contains(['*', '?']))
            .map(|m| m.name.clone())
            .collect()
    }

    /// Builds the stack with the default HTTP client.
    pub fn build(&self) -> Result<Gateway, ConfigError> {
        self.build_with(None)
    }

    /// Builds the stack; providers use `client` when given (and then
    /// `[pool]` and `timeouts.connect_ms`, which set up the default client,
    /// do not apply).
    pub fn build_with(&self, client: Option<HttpClient>) -> Result<Gateway, ConfigError> {
        let providers = self.providers(client)?;
        let resolver = self.resolver();
        let tracker = Tracker::new();
        let t = &self.timeouts;
        let ms = Duration::from_millis;
        // Without a [hedge] section there is no hedging layer at all (rather
        // than a one-leg one that still clones and boxes every call).
        let hedge = self
            .hedge
            .as_ref()
            .map(|h| HedgeLayer::new(ms(h.delay_ms)).legs(h.legs));
        let balance = self.balance();
        let balance_handle = balance.handle();
        let llm = BoxLlmService::new(
            ServiceBuilder::new()
                .layer(AuthLayer::new(self.auth_mode()))
                .layer(ResolveLayer::new(resolver.clone()))
                .layer(PreprocessLayer::new(self.hooks()))
                .layer(MetricsLayer::new(tracker.clone()))
                .layer(TimeoutLayer::new().total(ms(t.total_ms)))
                .layer(self.fallback(resolver))
                .layer(RetryLayer::new(self.retry_policy()))
                .option_layer(hedge)
                .layer(balance)
                .layer(
                    TimeoutLayer::new()
                        .first_byte(ms(t.first_byte_ms))
                        .idle(ms(t.idle_ms)),
                )
                .service(providers),
        );
        let http = HttpLayer::new()
            .max_body_bytes(self.max_body_bytes)
            .models(self.model_names())
            .tracker(tracker.clone())
            .echo_requested_model(self.http.echo_requested_model)
            .reasoning_content(self.http.reasoning_content);
        Ok(Gateway {
            http: tower::Layer::layer(&http, llm.clone()),
            llm,
            tracker,
            balance: balance_handle,
            listen: self.listen.clone(),
        })
    }

    fn retry_policy(&self) -> RetryPolicy {
        let r = &self.retry;
        RetryPolicy::default()
            .attempts(r.attempts)
            .base(Duration::from_millis(r.backoff_base_ms))
            .max_backoff(Duration::from_millis(r.backoff_max_ms))
            .jitter(r.jitter)
            .max_retry_after(Duration::from_millis(r.max_retry_after_ms))
            .budget(
                r.budget_percent / 100.0,
                r.budget_min_per_sec,
                Duration::from_secs(r.budget_window_s),
            )
    }

    /// The balancer, with every configured model group defined up front.
    pub fn balance(&self) -> BalanceLayer {
        let b = &self.balance;
        let layer = match b.strategy.as_str() {
            "round_robin" => BalanceLayer::new(RoundRobin),
            "least_in_flight" => BalanceLayer::new(LeastInFlight),
            "latency" => BalanceLayer::new(Latency),
            _ => BalanceLayer::new(Weighted),
        };
        let health = HealthConfig::default()
            .cooldown(Duration::from_millis(b.cooldown_ms))
            .max_cooldown(Duration::from_millis(b.max_cooldown_ms))
            .allowed_failures(b.allowed_failures)
            .half_life(Duration::from_millis(b.failure_half_life_ms));
        let mut layer = layer.health(health);
        for m in &self.models {
            layer = layer.group(m.name.clone(), m.targets.iter().map(TargetConfig::target));
        }
        layer
    }

    fn fallback(&self, resolver: Resolver) -> FallbackLayer {
        let mut layer = FallbackLayer::new(resolver);
        for m in &self.models {
            if !m.fallbacks.is_empty() {
                layer = layer.fallbacks(m.name.clone(), m.fallbacks.clone());
            }
            if !m.context_window_fallbacks.is_empty() {
                layer = layer
                    .context_window_fallbacks(m.name.clone(), m.context_window_fallbacks.clone());
            }
        }
        layer
    }

    fn auth_mode(&self) -> AuthMode {
        match self.auth.mode {
            AuthModeConfig::Open => AuthMode::Open,
            AuthModeConfig::Passthrough => AuthMode::Passthrough,
            AuthModeConfig::Keys => {
                AuthMode::keys(self.auth.keys.iter().enumerate().map(|(i, k)| match k {
                    GatewayKey::Bare(key) => (format!("key-{i}"), key.clone()),
                    GatewayKey::Named { name, key } => (name.clone(), key.clone()),
                }))
            }
        }
    }

    fn resolver(&self) -> Resolver {
        let mut r = Resolver::new();
        for p in &self.providers {
            r = r.provider(p.name.clone());
        }
        for m in &self.models {
            let targets = m.targets.iter().map(TargetConfig::target);
            r = r.model(m.name.clone(), targets);
        }
        if let Some(p) = &self.default_provider {
            r = r.default_provider(p.clone());
        }
        r
    }

    fn hooks(&self) -> Hooks {
        let mut hooks = Hooks::new();
        let pre = &self.preprocess;
        if let Some(sp) = &pre.system_prompt {
            hooks = hooks.request(match sp.mode.as_str() {
                "append" => SystemPrompt::append(sp.text.clone()),
                "replace" => SystemPrompt::replace(sp.text.clone()),
                _ => SystemPrompt::prepend(sp.text.clone()),
            });
        }
        if let Some(max) = pre.max_tokens {
            hooks = hooks.request(MaxTokensClamp::new(max));
        }
        for d in &pre.drop_params {
            let mut hook = DropParams::new(d.params.iter().map(|p| Param::parse(p)));
            if let Some(p) = &d.provider {
                hook = hook.for_provider(p.clone());
            }
            if let Some(m) = &d.model {
                hook = hook.for_model(m.clone());
            }
            hooks = hooks.request(hook);
        }
        hooks
    }

    fn providers(&self, client: Option<HttpClient>) -> Result<Providers, ConfigError> {
        let mut providers = Providers::new();
        let mut shared: Option<HttpClient> = client;
        let mut client = || -> Result<HttpClient, ConfigError> {
            if let Some(c) = &shared {
                return Ok(c.clone());
            }
            let c = self.default_client()?;
            shared = Some(c.clone());
            Ok(c)
        };
        for p in &self.providers {
            let invalid = |e: crate::provider::BoxError| {
                ConfigError::Invalid(format!("provider `{}`: {e}", p.name))
            };
            match p.kind {
                ProviderKind::Mock => {
                    let mut mock = MockProvider::new()
                        .pacing(Duration::from_millis(p.pacing_ms))
                        .latency(Duration::from_millis(p.latency_ms));
                    if let Some(w) = p.words_per_event {
                        mock = mock.words_per_event(w);
                    }
                    providers = providers.with(p.name.clone(), mock);
                }
                ProviderKind::Openai => {
                    let mut b = OpenAiProvider::builder(
                        p.name.clone(),
                        p.base_url
                            .clone()
                            .unwrap_or_else(|| "https://api.openai.com/v1".into()),
                    )
                    .api_keys(p.api_keys.clone())
                    .passthrough(p.passthrough)
                    .reasoning_models(p.reasoning_models.clone())
                    .drop_params(p.drop_params.iter().map(|d| Param::parse(d)))
                    .buffer_tool_calls(p.buffer_tool_calls)
                    .options(
                        crate::convert::openai::RequestOptions::default()
                            .developer_role(p.developer_role),
                    )
                    .client(client()?);
                    if let Some(f) = &p.max_tokens_field {
                        b = b.max_tokens_field(if f == "max_tokens" {
                            MaxTokensField::MaxTokens
                        } else {
                            MaxTokensField::MaxCompletionTokens
                        });
                    }
                    for (k, v) in &p.headers {
                        b = b.header(k, v);
                    }
                    providers = providers.with(p.name.clone(), b.try_build().map_err(invalid)?);
                }
                ProviderKind::Anthropic => {
                    let mut b = AnthropicProvider::builder(
                        p.name.clone(),
                        p.base_url
                            .clone()
                            .unwrap_or_else(|| "https://api.anthropic.com/v1".into()),
                    )
                    .api_keys(p.api_keys.clone())
                    .passthrough(p.passthrough)
                    .drop_params(p.drop_params.iter().map(|d| Param::parse(d)))
                    .client(client()?);
                    for (k, v) in &p.headers {
                        b = b.header(k, v);
                    }
                    providers = providers.with(p.name.clone(), b.try_build().map_err(invalid)?);
                }
            }
        }
        Ok(providers)
    }

    /// The HTTP client of `[timeouts] connect_ms` and `[pool]`.
    #[cfg(feature = "client")]
    fn default_client(&self) -> Result<HttpClient, ConfigError> {
        let options = crate::provider::ClientOptions::default()
            .connect_timeout(Duration::from_millis(self.timeouts.connect_ms))
            .max_idle_per_host(self.pool.max_idle_per_host)
            .idle_timeout(Duration::from_millis(self.pool.idle_timeout_ms));
        HttpClient::hyper_with(options)
            .map_err(|e| ConfigError::Invalid(format!("cannot set up the HTTP client: {e}")))
    }

    #[cfg(not(feature = "client"))]
    fn default_client(&self) -> Result<HttpClient, ConfigError> {
        Err(ConfigError::Invalid(
            "no HTTP client: enable the `client` feature or pass one to `build_with`".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-123".into()),
            "TRICKY" => Some("\"quoted\" ${NOT_A_VAR}".into()),
            _ => None,
        }
    }

    #[test]
    fn interpolation() {
        assert_eq!(interpolate("a ${KEY} b", env).unwrap(), "a sk-123 b");
        assert_eq!(interpolate("$${KEY} $5", env).unwrap(), "${KEY} $5");
        assert!(
            matches!(interpolate("${NOPE}", env), Err(ConfigError::MissingEnv(n)) if n == "NOPE")
        );
        assert!(interpolate("${KEY", env).is_err());
    }

    #[test]
    fn a_full_config_parses_and_builds() {
        let cfg = Config::from_toml_with_env(
            r#"
            listen = "0.0.0.0:9000"
            default_provider = "local"
            [auth]
            mode = "keys"
            keys = ["${KEY}", { name = "ci", key = "${TRICKY}" }]
            [[providers]]
            name = "local"
            kind = "openai"
            base_url = "http://127.0.0.1:9100/v1"
            api_keys = ["${KEY}"]
            max_tokens_field = "max_tokens"
            headers = { "x-team" = "a" }
            [[providers]]
            name = "claude"
            kind = "anthropic"
            passthrough = true
            [[providers]]
            name = "mock"
            kind = "mock"
            [[models]]
            name = "big"
            targets = [{ provider = "local", model = "gpt-4o", weight = 3 }]
            [[models]]
            name = "claude-*"
            targets = [{ provider = "claude", model = "claude-sonnet-4-5" }]
            [preprocess]
            system_prompt = { mode = "append", text = "Be brief." }
            max_tokens = 4096
            drop_params = [{ params = ["seed"], provider = "local" }]
            [pool]
            max_idle_per_host = 4
            "#,
            env,
        )
        .unwrap();
        assert_eq!(cfg.pool.max_idle_per_host, 4);
        assert_eq!(
            cfg.pool.idle_timeout_ms, 90_000,
            "an absent key keeps its default"
        );
        assert_eq!(cfg.providers[0].api_keys, ["sk-123"]);
        // A secret's own `${` is not interpolated again.
        assert!(
            matches!(&cfg.auth.keys[1], GatewayKey::Named { key, .. } if key == "\"quoted\" ${NOT_A_VAR}")
        );
        assert_eq!(cfg.model_names(), ["big"]);
        assert_eq!(cfg.models[0].targets[0].weight, 3);
        let gw = cfg.build().unwrap();
        assert_eq!(gw.listen, "0.0.0.0:9000");
    }

    #[test]
    fn mistakes_are_reported() {
        let bad = |toml: &str| {
            Config::from_toml_with_env(toml, env)
                .unwrap_err()
                .to_string()
        };
        assert!(bad("lisen = 1").contains("unknown field"));
        assert!(bad("[pool]\nmax_idle = 1").contains("unknown field"));
        assert!(bad("[pool]\nidle_timeout_ms = 0").contains("more than 0"));
        assert!(
            bad("[[models]]\nname='x'\ntargets=[{provider='p', model='m'}]")
                .contains("not defined")
        );
        assert!(bad("[auth]\nmode='keys'").contains("at least one key"));
        assert!(
            bad("[[providers]]\nname='a'\nkind='mock'\n[[providers]]\nname='a'\nkind='mock'")
                .contains("twice")
        );
        assert!(bad("[[providers]]\nname='a'\nkind='gemini'").contains("unknown variant"));
        assert!(bad("[auth]\nmode='keys'\nkeys=['${MISSING}']").contains("MISSING"));
    }

    #[test]
    fn a_bad_base_url_fails_the_build() {
        for kind in ["openai", "anthropic"] {
            let toml = format!(
                "[[providers]]\nname='p'\nkind='{kind}'\nbase_url='http://bad host/v1'\npassthrough=true"
            );
            let cfg = Config::from_toml_with_env(&toml, env).unwrap();
            let err = cfg.build().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("invalid base URL"), "{kind}: {err}");
        }
    }

    #[test]
    fn the_mock_config_is_valid() {
        let cfg = Config::mock();
        assert_eq!(cfg.providers.len(), 1);
        cfg.build().unwrap();
    }
}
