use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Method};
use http_body::Body;
use http_body_util::BodyExt;

use super::names;
use crate::Format;
use crate::chat::ChatRequest;
use crate::convert::{anthropic, openai};
use crate::error::{ApiError, ErrorKind};
use crate::llm::{Operation, Secret};
use crate::provider::BoxError;
use crate::wire;

pub(super) enum Endpoint {
    Call(Format, Operation),
    Models(Format),
}

/// The format of a request that did not say: Anthropic clients send
/// `anthropic-version`.
fn guess_format(headers: &HeaderMap) -> Format {
    if headers.contains_key(names::ANTHROPIC_VERSION) {
        Format::Anthropic
    } else {
        Format::OpenAi
    }
}

pub(super) fn endpoint(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Endpoint, (Format, ApiError)> {
    let path = path.trim_end_matches('/');
    let (format, operation, expected) = match path {
        "/v1/messages" => (Format::Anthropic, Some(Operation::Chat), Method::POST),
        "/v1/messages/count_tokens" => (
            Format::Anthropic,
            Some(Operation::CountTokens),
            Method::POST,
        ),
        "/v1/chat/completions" => (Format::OpenAi, Some(Operation::Chat), Method::POST),
        "/v1/models" => (guess_format(headers), None, Method::GET),
        _ => {
            let format = guess_format(headers);
            return Err((
                format,
                ApiError::new(ErrorKind::NotFound, format!("no route for {method} {path}")),
            ));
        }
    };
    if *method != expected {
        let mut err = ApiError::invalid_request(format!("{path} accepts {expected}, not {method}"));
        err.status = Some(405);
        return Err((format, err));
    }
    Ok(match operation {
        Some(op) => Endpoint::Call(format, op),
        None => Endpoint::Models(format),
    })
}

/// The client's credential: `x-api-key`, else `Authorization: Bearer`.
pub(super) fn credential(headers: &HeaderMap) -> Option<Secret> {
    if let Some(key) = headers.get(names::X_API_KEY).and_then(|v| v.to_str().ok()) {
        let key = key.trim();
        if !key.is_empty() {
            return Some(Secret::new(key));
        }
    }
    let auth = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = auth.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| Secret::new(token))
}

/// Client headers that an Anthropic upstream receives. The values are
/// copied: hyper parses header values as slices of the connection's read
/// buffer, and a clone kept for the life of a stream would keep that whole
/// buffer (8 KiB or more) alive beside the one hyper reads into next.
pub(super) fn forward_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in [names::ANTHROPIC_VERSION, names::ANTHROPIC_BETA] {
        for value in headers.get_all(&name) {
            if let Ok(owned) = http::HeaderValue::from_bytes(value.as_bytes()) {
                out.append(name.clone(), owned);
            }
        }
    }
    out
}

/// A content type without its parameters (`text/plain; charset=…`).
fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Whether a content type is JSON: `application/json` or `…+json`, any
/// case, parameters ignored; an empty one is taken as JSON.
fn is_json(content_type: &str) -> bool {
    let essence = essence(content_type);
    let ends_with_json = essence
        .len()
        .checked_sub(5)
        .and_then(|at| essence.get(at..))
        .is_some_and(|tail| tail.eq_ignore_ascii_case("+json"));
    essence.is_empty() || essence.eq_ignore_ascii_case("application/json") || ends_with_json
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::RequestTooLarge,
        format!("the request body exceeds the limit of {limit} bytes"),
    )
}

/// Reads, checks and decodes a request body into the canonical model; with
/// the body's length (the size hint of the upstream body written from it).
pub(super) async fn request<B>(
    format: Format,
    operation: Operation,
    headers: &HeaderMap,
    declared: Option<u64>,
    body: B,
    limit: usize,
) -> Result<(ChatRequest, usize), ApiError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    if let Some(ct) = headers.get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !is_json(ct) {
            let mut err = invalid(format!(
                "the request body must be JSON (content-type: application/json), not `{}`",
                essence(ct).to_ascii_lowercase()
            ));
            err.status = Some(415);
            return Err(err);
        }
    }
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let bytes = read(body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("the request body is empty; send a JSON object"));
    }
    let chat = match format {
        Format::Anthropic => {
            let req: wire::anthropic::MessagesRequest = parse(&bytes)?;
            if operation == Operation::Chat && req.max_tokens.is_none() {
                return Err(invalid("max_tokens: Field required").with_param("max_tokens"));
            }
            anthropic::request_from_wire(req)?
        }
        Format::OpenAi => openai::request_from_wire(parse(&bytes)?)?,
    };
    if chat.messages.is_empty() {
        return Err(invalid("messages: at least one message is required").with_param("messages"));
    }
    if chat.model.is_empty() {
        return Err(invalid("model: a model name is required").with_param("model"));
    }
    Ok((chat, bytes.len()))
}

async fn read<B>(body: B, limit: usize) -> Result<bytes::Bytes, ApiError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    // `Collected::to_bytes` hands a body that came in one frame over without
    // copying it.
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Err(e) => Err(invalid(format!("could not read the request body: {e}"))),
    }
}

/// The body length a request declares (`content-length`).
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Parses JSON, naming the path of the offending field on error. Tracking
/// the path costs an allocation per field, so a body is parsed without it
/// first and again with it only when it fails.
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Ok(value) = crate::wire::from_json(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            invalid(format!("invalid request body: {inner}"))
        } else {
            invalid(format!("{path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| invalid(format!("invalid request body: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for ct in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.api+JSON",
            " ",
            "",
        ] {
            assert!(is_json(ct), "{ct:?}");
        }
        for ct in [
            "text/plain",
            "json",
            "application/jsonx",
            "application/json+xml",
            "é+json2",
            "éabcd",
        ] {
            assert!(!is_json(ct), "{ct:?}");
        }
    }

    #[test]
    fn credentials_from_either_header() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "Bearer sk-1".parse().unwrap());
        assert_eq!(credential(&h).unwrap().expose(), "sk-1");
        h.insert("x-api-key", "sk-2".parse().unwrap());
        assert_eq!(credential(&h).unwrap().expose(), "sk-2");
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(credential(&h).is_none());
        h.insert(AUTHORIZATION, "bearer ".parse().unwrap());
        assert!(credential(&h).is_none());
    }

    #[test]
    fn routes_and_methods() {
        let h = HeaderMap::new();
        assert!(matches!(
            endpoint(&Method::POST, "/v1/messages", &h),
            Ok(Endpoint::Call(Format::Anthropic, Operation::Chat))
        ));
        assert!(matches!(
            endpoint(&Method::POST, "/v1/chat/completions/", &h),
            Ok(Endpoint::Call(Format::OpenAi, Operation::Chat))
        ));
        let Err((_, e)) = endpoint(&Method::GET, "/v1/messages", &h) else {
            panic!()
        };
        assert_eq!(e.anthropic_status(), 405);
        let Err((f, e)) = endpoint(&Method::GET, "/nope", &h) else {
            panic!()
        };
        assert_eq!((f, e.kind), (Format::OpenAi, ErrorKind::NotFound));
    }

    #[test]
    fn parse_errors_name_the_field() {
        let err = parse::<wire::openai::ChatCompletionRequest>(
            br#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
        )
        .unwrap_err();
        assert!(
            err.message.starts_with("messages[0].content:"),
            "{}",
            err.message
        );
        let err = parse::<wire::anthropic::MessagesRequest>(
            br#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text","text":5}]}]}"#,
        )
        .unwrap_err();
        assert!(
            err.message.starts_with("messages[0].content[0].text:"),
            "{}",
            err.message
        );
        let err = parse::<wire::openai::ChatCompletionRequest>(b"{\"model\":").unwrap_err();
        assert!(err.message.contains("EOF"), "{}", err.message);
        let err = parse::<wire::openai::ChatCompletionRequest>(br#"{"model":"m","messages":[]} x"#)
            .unwrap_err();
        assert!(err.message.contains("trailing"), "{}", err.message);
    }

    #[test]
    fn a_body_is_checked_for_utf8_as_a_whole_and_errors_say_where() {
        let ok = parse::<wire::openai::ChatCompletionRequest>(
            "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"héllo ✓\"}]}"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(ok.model, "m");
        // Not UTF-8 inside a string: the error names the field and the place.
        let mut bad = br#"{"model":"m","messages":[{"role":"user","content":"h"#.to_vec();
        bad.extend_from_slice(&[0xff, b'"', b'}', b']', b'}']);
        let err = parse::<wire::openai::ChatCompletionRequest>(&bad).unwrap_err();
        assert!(
            err.message.starts_with("messages[0].content:")
                && err.message.contains("invalid unicode code point"),
            "{}",
            err.message
        );
    }
}
