//! The one error type that reaches clients, and its mapping to each wire
//! format (conversion-spec §4).
//!
//! An [`ApiError`] has a [`ErrorKind`] that both formats understand. Upstream
//! error bodies of either format (and the odd shapes OpenAI-compatible servers
//! send) are read into it once ([`ApiError::from_upstream`]); it is written
//! out once, in the client's format ([`ApiError::to_anthropic`],
//! [`ApiError::to_openai`]), with the status that format uses for that kind.
//!
//! | kind | Anthropic | OpenAI |
//! |---|---|---|
//! | `InvalidRequest` | 400 `invalid_request_error` | 400 `invalid_request_error` |
//! | `Authentication` | 401 `authentication_error` | 401 `invalid_request_error` / `invalid_api_key` |
//! | `Billing` | 402 `billing_error` | 429 `insufficient_quota` |
//! | `PermissionDenied` | 403 `permission_error` | 403 `permission_error` |
//! | `NotFound` | 404 `not_found_error` | 404 `invalid_request_error` |
//! | `RequestTooLarge` | 413 `request_too_large` | 413 `invalid_request_error` / `request_too_large` |
//! | `RateLimit` | 429 `rate_limit_error` | 429 `rate_limit_error` / `rate_limit_exceeded` |
//! | `Api` | 500 `api_error` | 500 `server_error` |
//! | `Timeout` | 504 `timeout_error` | 504 `server_error` / `timeout` |
//! | `Overloaded` | 529 `overloaded_error` | 503 `service_unavailable_error` / `server_is_overloaded` |
//!
//! An upstream status that none of these describes keeps its status and
//! becomes `api_error` / `server_error`.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::wire::{Map, anthropic, openai};

/// What kind of failure an [`ApiError`] is; decides the status and the
/// `type` in each wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed or unacceptable (400).
    InvalidRequest,
    /// Missing or wrong credentials (401).
    Authentication,
    /// Out of credit or quota; retrying will not help.
    Billing,
    /// The credentials may not do this (403).
    PermissionDenied,
    /// No such model or resource (404).
    NotFound,
    /// The request body is too large (413).
    RequestTooLarge,
    /// Rate limited (429); retry later.
    RateLimit,
    /// An internal or upstream failure (500, 502).
    Api,
    /// The upstream did not answer in time (504).
    Timeout,
    /// The upstream is overloaded (529 / 503).
    Overloaded,
}

impl ErrorKind {
    /// The Anthropic `error.type`.
    pub fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Billing => "billing_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Api => "api_error",
            ErrorKind::Timeout => "timeout_error",
            ErrorKind::Overloaded => "overloaded_error",
        }
    }

    /// The HTTP status an Anthropic client gets.
    pub fn anthropic_status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::Billing => 402,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::RateLimit => 429,
            ErrorKind::Api => 500,
            ErrorKind::Timeout => 504,
            ErrorKind::Overloaded => 529,
        }
    }

    /// The HTTP status, `error.type` and default `error.code` an OpenAI
    /// client gets.
    pub fn openai(self) -> (u16, &'static str, Option<&'static str>) {
        match self {
            ErrorKind::InvalidRequest => (400, "invalid_request_error", None),
            ErrorKind::Authentication => (401, "invalid_request_error", Some("invalid_api_key")),
            ErrorKind::Billing => (429, "insufficient_quota", Some("insufficient_quota")),
            ErrorKind::PermissionDenied => (403, "permission_error", None),
            ErrorKind::NotFound => (404, "invalid_request_error", None),
            ErrorKind::RequestTooLarge => (413, "invalid_request_error", Some("request_too_large")),
            ErrorKind::RateLimit => (429, "rate_limit_error", Some("rate_limit_exceeded")),
            ErrorKind::Api => (500, "server_error", None),
            ErrorKind::Timeout => (504, "server_error", Some("timeout")),
            ErrorKind::Overloaded => (
                503,
                "service_unavailable_error",
                Some("server_is_overloaded"),
            ),
        }
    }

    /// Whether a request that failed this way may be tried again (on the
    /// same or another deployment): rate limits, overload, timeouts and
    /// server errors; never a client's mistake.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimit | ErrorKind::Api | ErrorKind::Timeout | ErrorKind::Overloaded
        )
    }

    /// The kind for an HTTP status (the OpenAI-compatible table of
    /// conversion-spec §4.3), and whether the status is one the kind stands
    /// for (otherwise the status itself must be kept).
    pub fn from_status(status: u16) -> (ErrorKind, bool) {
        match status {
            400 | 422 => (ErrorKind::InvalidRequest, true),
            401 => (ErrorKind::Authentication, true),
            402 => (ErrorKind::Billing, true),
            403 => (ErrorKind::PermissionDenied, true),
            404 => (ErrorKind::NotFound, true),
            408 | 504 => (ErrorKind::Timeout, true),
            413 => (ErrorKind::RequestTooLarge, true),
            429 => (ErrorKind::RateLimit, true),
            500 | 502 => (ErrorKind::Api, true),
            503 | 529 => (ErrorKind::Overloaded, true),
            409 => (ErrorKind::Api, false),
            s if (400..500).contains(&s) => (ErrorKind::InvalidRequest, false),
            _ => (ErrorKind::Api, false),
        }
    }

    /// The kind for an Anthropic `error.type`.
    pub fn from_anthropic_type(t: &str) -> Option<ErrorKind> {
        Some(match t {
            "invalid_request_error" => ErrorKind::InvalidRequest,
            "authentication_error" => ErrorKind::Authentication,
            "billing_error" => ErrorKind::Billing,
            "permission_error" => ErrorKind::PermissionDenied,
            "not_found_error" => ErrorKind::NotFound,
            "request_too_large" => ErrorKind::RequestTooLarge,
            "rate_limit_error" => ErrorKind::RateLimit,
            "api_error" => ErrorKind::Api,
            "timeout_error" => ErrorKind::Timeout,
            "overloaded_error" => ErrorKind::Overloaded,
            _ => return None,
        })
    }

    /// The kind for an OpenAI(-compatible) error `type` or `code`.
    pub fn from_openai_type(t: &str) -> Option<ErrorKind> {
        Some(match t {
            "invalid_request_error"
            | "invalid_value"
            | "unsupported_parameter"
            | "context_length_exceeded"
            | "BadRequestError" => ErrorKind::InvalidRequest,
            "invalid_api_key" | "authentication_error" | "AuthenticationError" => {
                ErrorKind::Authentication
            }
            "insufficient_quota" | "billing_error" | "credit_balance_exhausted" => {
                ErrorKind::Billing
            }
            "permission_error" | "PermissionDeniedError" => ErrorKind::PermissionDenied,
            "model_not_found" | "not_found_error" | "NotFoundError" => ErrorKind::NotFound,
            "request_too_large" => ErrorKind::RequestTooLarge,
            "rate_limit_error"
            | "rate_limit_exceeded"
            | "requests"
            | "tokens"
            | "RateLimitError" => ErrorKind::RateLimit,
            "server_error" | "api_error" | "internal_error" | "InternalServerError" => {
                ErrorKind::Api
            }
            "timeout" | "timeout_error" | "Timeout" => ErrorKind::Timeout,
            "service_unavailable_error"
            | "server_is_overloaded"
            | "slow_down"
            | "overloaded_error"
            | "engine_overloaded" => ErrorKind::Overloaded,
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.anthropic_type())
    }
}

/// An error with a wire representation in each format: what a client
/// receives, as a JSON error response or an in-stream error event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApiError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A human-readable message (never a secret).
    pub message: String,
    /// An HTTP status to keep when the kind's own status does not describe
    /// the upstream's (an unmapped upstream status).
    pub status: Option<u16>,
    /// A machine-readable code (`context_length_exceeded`, …).
    pub code: Option<String>,
    /// The parameter at fault.
    pub param: Option<String>,
    /// How long the client should wait before retrying (`retry-after`).
    pub retry_after: Option<Duration>,
    /// The failure came from an upstream (its error response, a cut or
    /// failing stream, a connection error) rather than from the gateway.
    pub upstream: bool,
}

impl std::error::Error for ApiError {}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
            code: None,
            param: None,
            retry_after: None,
            upstream: false,
        }
    }

    /// Marks the error as coming from an upstream.
    pub fn mark_upstream(mut self) -> Self {
        self.upstream = true;
        self
    }

    /// A 400 `invalid_request_error`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    /// A 500 `api_error`.
    pub fn api(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Api, message)
    }

    /// Sets the machine-readable code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the parameter at fault.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Sets the retry delay.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// Whether the failure is a context-window overflow (the trigger of a
    /// context-window fallback).
    pub fn is_context_length_exceeded(&self) -> bool {
        if self.code.as_deref() == Some("context_length_exceeded") {
            return true;
        }
        let m = self.message.to_ascii_lowercase();
        self.kind == ErrorKind::InvalidRequest
            && (m.contains("prompt is too long")
                || m.contains("context length")
                || m.contains("context window")
                || m.contains("maximum context"))
    }

    /// The HTTP status an Anthropic client gets.
    pub fn anthropic_status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.kind.anthropic_status())
    }

    /// The HTTP status an OpenAI client gets.
    pub fn openai_status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.kind.openai().0)
    }

    /// The Anthropic `error` object.
    pub fn to_anthropic_detail(&self) -> anthropic::ErrorDetail {
        anthropic::ErrorDetail {
            kind: self.kind.anthropic_type().to_owned(),
            message: self.message.clone(),
            extra: Map::new(),
        }
    }

    /// The Anthropic error body and its status.
    pub fn to_anthropic(&self, request_id: Option<&str>) -> (u16, anthropic::ErrorResponse) {
        (
            self.anthropic_status(),
            anthropic::ErrorResponse {
                kind: "error".to_owned(),
                error: self.to_anthropic_detail(),
                request_id: request_id.map(str::to_owned),
                extra: Map::new(),
            },
        )
    }

    /// The OpenAI `error` object.
    pub fn to_openai_detail(&self) -> openai::ErrorDetail {
        let (_, kind, code) = self.kind.openai();
        let code = match (&self.code, self.kind) {
            (Some(c), _) => Some(c.as_str()),
            (None, ErrorKind::NotFound) if self.message.to_ascii_lowercase().contains("model") => {
                Some("model_not_found")
            }
            (None, ErrorKind::InvalidRequest) if self.is_context_length_exceeded() => {
                Some("context_length_exceeded")
            }
            (None, _) => code,
        };
        openai::ErrorDetail {
            message: self.message.clone(),
            kind: Some(kind.to_owned()),
            param: self.param.clone(),
            code: code.map(|c| Value::String(c.to_owned())),
            extra: Map::new(),
        }
    }

    /// The OpenAI error body and its status.
    pub fn to_openai(&self) -> (u16, openai::ErrorResponse) {
        (
            self.openai_status(),
            openai::ErrorResponse {
                error: self.to_openai_detail(),
                extra: Map::new(),
            },
        )
    }

    /// Reads an Anthropic `error` object (from an error event, which has no
    /// status of its own).
    pub fn from_anthropic_detail(detail: &anthropic::ErrorDetail) -> Self {
        let kind = ErrorKind::from_anthropic_type(&detail.kind).unwrap_or(ErrorKind::Api);
        Self::new(kind, detail.message.clone()).mark_upstream()
    }

    /// Reads an OpenAI `error` object (from an in-stream error chunk, which
    /// has no status of its own).
    pub fn from_openai_detail(detail: &openai::ErrorDetail) -> Self {
        let code = detail.code.as_ref().and_then(code_string);
        let kind = code
            .as_deref()
            .and_then(ErrorKind::from_openai_type)
            .or_else(|| detail.kind.as_deref().and_then(ErrorKind::from_openai_type))
            .or_else(|| {
                // Some servers put the HTTP status in `code`.
                code.as_deref()
                    .and_then(|c| c.parse::<u16>().ok())
                    .map(|s| ErrorKind::from_status(s).0)
            })
            .unwrap_or(ErrorKind::Api);
        let mut err = Self::new(kind, non_empty_message(&detail.message, kind)).mark_upstream();
        err.code = code.filter(|c| c.parse::<u16>().is_err());
        err.param = detail.param.clone();
        err
    }

    /// Reads an upstream error response: [`from_upstream`](Self::from_upstream)
    /// plus the retry delay of its `retry-after(-ms)` headers.
    pub fn from_upstream_response(status: u16, headers: &http::HeaderMap, body: &[u8]) -> Self {
        let mut err = Self::from_upstream(status, body);
        err.retry_after = retry_after_from_headers(headers);
        err
    }

    /// The `retry-after` (whole seconds, rounded up) and `retry-after-ms`
    /// headers to send with this error, when it has a retry delay.
    pub fn retry_after_headers(&self) -> Vec<(http::HeaderName, http::HeaderValue)> {
        let Some(delay) = self.retry_after else {
            return Vec::new();
        };
        let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        vec![
            (http::header::RETRY_AFTER, http::HeaderValue::from(secs)),
            (
                http::HeaderName::from_static("retry-after-ms"),
                http::HeaderValue::from(delay.as_millis() as u64),
            ),
        ]
    }

    /// Reads an upstream error response of any shape: Anthropic
    /// `{"type":"error","error":{…}}`, OpenAI `{"error":{…}}`,
    /// `{"detail":{"message"}}`, `{"message"}`, or plain text. The status
    /// decides the kind unless the body names a more precise one
    /// (`insufficient_quota` on a 429, `server_is_overloaded`, an Anthropic
    /// error type).
    pub fn from_upstream(status: u16, body: &[u8]) -> Self {
        let (status_kind, status_fits) = ErrorKind::from_status(status);
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let mut err = match parsed.as_ref() {
            Some(v) if v.get("type").and_then(Value::as_str) == Some("error") => {
                match serde_json::from_value::<anthropic::ErrorDetail>(v["error"].clone()) {
                    Ok(detail) => {
                        let mut e = Self::from_anthropic_detail(&detail);
                        if ErrorKind::from_anthropic_type(&detail.kind).is_none() {
                            e.kind = status_kind;
                        }
                        e
                    }
                    Err(_) => Self::new(status_kind, body_message(v, body)),
                }
            }
            Some(v) if v.get("error").is_some_and(Value::is_object) => {
                match serde_json::from_value::<openai::ErrorDetail>(v["error"].clone()) {
                    Ok(detail) => {
                        let mut e = Self::from_openai_detail(&detail);
                        e.kind = refine_by_body(status_kind, &e);
                        e
                    }
                    Err(_) => Self::new(status_kind, body_message(v, body)),
                }
            }
            Some(v) => Self::new(status_kind, body_message(v, body)),
            None => Self::new(status_kind, text_message(body)),
        };
        if err.message.is_empty() {
            err.message = default_message(err.kind).to_owned();
        }
        // An upstream 2xx/3xx that we treat as an error (malformed body) is
        // a gateway failure, not a status to echo.
        if !status_fits && status >= 400 && err.kind == status_kind {
            err.status = Some(status);
        }
        err.upstream = true;
        err
    }
}

/// The delay an upstream asks for: `retry-after-ms` (milliseconds), else
/// `retry-after` (seconds or an HTTP date).
pub fn retry_after_from_headers(headers: &http::HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// With an OpenAI-shaped body the status decides, except where the code or
/// type is more precise: quota on a 429, overload on a 429/503, a context
/// overflow stays a 400.
fn refine_by_body(status_kind: ErrorKind, body: &ApiError) -> ErrorKind {
    match (status_kind, body.kind) {
        (ErrorKind::RateLimit, ErrorKind::Billing | ErrorKind::Overloaded) => body.kind,
        (ErrorKind::Api | ErrorKind::Overloaded, ErrorKind::Overloaded) => ErrorKind::Overloaded,
        _ => status_kind,
    }
}

fn code_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn non_empty_message(m: &str, kind: ErrorKind) -> String {
    if m.is_empty() {
        default_message(kind).to_owned()
    } else {
        m.to_owned()
    }
}

fn default_message(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest => "invalid request",
        ErrorKind::Authentication => "authentication failed",
        ErrorKind::Billing => "billing or quota limit reached",
        ErrorKind::PermissionDenied => "permission denied",
        ErrorKind::NotFound => "not found",
        ErrorKind::RequestTooLarge => "request too large",
        ErrorKind::RateLimit => "rate limited",
        ErrorKind::Api => "upstream error",
        ErrorKind::Timeout => "upstream timed out",
        ErrorKind::Overloaded => "upstream overloaded",
    }
}

fn body_message(v: &Value, raw: &[u8]) -> String {
    let pick = |v: &Value| v.as_str().map(str::to_owned);
    v.get("detail")
        .and_then(|d| d.get("message").and_then(pick).or_else(|| pick(d)))
        .or_else(|| v.get("message").and_then(pick))
        .or_else(|| v.get("Message").and_then(pick))
        .or_else(|| v.get("error").and_then(pick))
        .unwrap_or_else(|| text_message(raw))
}

/// An upstream body as a message: lossy UTF-8, trimmed, and cut short.
fn text_message(body: &[u8]) -> String {
    const MAX: usize = 512;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_statuses_map_to_anthropic_types() {
        let cases = [
            (400, 400, "invalid_request_error"),
            (422, 400, "invalid_request_error"),
            (401, 401, "authentication_error"),
            (402, 402, "billing_error"),
            (403, 403, "permission_error"),
            (404, 404, "not_found_error"),
            (408, 504, "timeout_error"),
            (413, 413, "request_too_large"),
            (429, 429, "rate_limit_error"),
            (500, 500, "api_error"),
            (502, 500, "api_error"),
            (503, 529, "overloaded_error"),
            (504, 504, "timeout_error"),
            (529, 529, "overloaded_error"),
            (418, 418, "invalid_request_error"),
            (599, 599, "api_error"),
        ];
        for (upstream, status, kind) in cases {
            let e = ApiError::from_upstream(upstream, br#"{"error":{"message":"m","type":"x"}}"#);
            let (s, body) = e.to_anthropic(None);
            assert_eq!(
                (s, body.error.kind.as_str()),
                (status, kind),
                "upstream {upstream}"
            );
            assert_eq!(body.error.message, "m");
        }
    }

    #[test]
    fn quota_429_is_billing_and_overload_codes_are_overloaded() {
        let e = ApiError::from_upstream(
            429,
            br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Billing);
        assert!(!e.kind.is_retryable());
        let e = ApiError::from_upstream(
            429,
            br#"{"error":{"message":"The engine is currently overloaded","type":"server_error","code":"server_is_overloaded"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Overloaded);
        assert_eq!(e.to_anthropic(None).0, 529);
    }

    #[test]
    fn anthropic_errors_map_to_openai_table() {
        let cases = [
            (
                "invalid_request_error",
                400,
                400,
                "invalid_request_error",
                None,
            ),
            (
                "authentication_error",
                401,
                401,
                "invalid_request_error",
                Some("invalid_api_key"),
            ),
            (
                "billing_error",
                402,
                429,
                "insufficient_quota",
                Some("insufficient_quota"),
            ),
            ("permission_error", 403, 403, "permission_error", None),
            (
                "request_too_large",
                413,
                413,
                "invalid_request_error",
                Some("request_too_large"),
            ),
            (
                "rate_limit_error",
                429,
                429,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
            ),
            ("api_error", 500, 500, "server_error", None),
            ("timeout_error", 504, 504, "server_error", Some("timeout")),
            (
                "overloaded_error",
                529,
                503,
                "service_unavailable_error",
                Some("server_is_overloaded"),
            ),
        ];
        for (t, upstream, status, kind, code) in cases {
            let body = format!(r#"{{"type":"error","error":{{"type":"{t}","message":"m"}}}}"#);
            let e = ApiError::from_upstream(upstream, body.as_bytes());
            let (s, body) = e.to_openai();
            assert_eq!(s, status, "{t}");
            assert_eq!(body.error.kind.as_deref(), Some(kind), "{t}");
            assert_eq!(
                body.error.code,
                code.map(|c| Value::String(c.into())),
                "{t}"
            );
        }
    }

    #[test]
    fn prompt_too_long_becomes_context_length_exceeded() {
        let e = ApiError::from_upstream(
            400,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 250000 tokens > 200000 maximum"}}"#,
        );
        assert!(e.is_context_length_exceeded());
        let body = e.to_openai().1;
        assert_eq!(
            body.error.code,
            Some(Value::String("context_length_exceeded".into()))
        );
    }

    #[test]
    fn retry_after_headers_are_read_and_written() {
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after_from_headers(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(
            retry_after_from_headers(&h),
            Some(Duration::from_millis(1500))
        );
        let mut h = http::HeaderMap::new();
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after_from_headers(&h), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after_from_headers(&h), None);
        let e = ApiError::api("x").with_retry_after(Duration::from_millis(1500));
        let out = e.retry_after_headers();
        assert_eq!(out[0].1, "2");
        assert_eq!(out[1].1, "1500");
    }

    #[test]
    fn odd_bodies_keep_their_message() {
        let e = ApiError::from_upstream(500, br#"{"detail":{"message":"boom"}}"#);
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Api, "boom"));
        let e = ApiError::from_upstream(502, b"<html>Bad Gateway</html>");
        assert_eq!(e.message, "<html>Bad Gateway</html>");
        let e = ApiError::from_upstream(503, b"");
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::Overloaded, "upstream overloaded")
        );
        let e = ApiError::from_upstream(400, br#"{"Message":"bad"}"#);
        assert_eq!(e.message, "bad");
    }

    #[test]
    fn in_stream_openai_error_maps_by_code_or_type() {
        let d: openai::ErrorDetail =
            serde_json::from_str(r#"{"message":"slow","type":"server_error","code":"slow_down"}"#)
                .unwrap();
        assert_eq!(ApiError::from_openai_detail(&d).kind, ErrorKind::Overloaded);
        let d: openai::ErrorDetail = serde_json::from_str(r#"{"message":"x","code":429}"#).unwrap();
        assert_eq!(ApiError::from_openai_detail(&d).kind, ErrorKind::RateLimit);
    }
}
