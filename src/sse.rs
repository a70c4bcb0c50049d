//! Server-sent events framing, in and out.
//!
//! [`SseDecoder`] turns an `text/event-stream` byte stream, cut into chunks at
//! arbitrary places, into [`SseEvent`]s, following the HTML standard's rules:
//! lines end in LF, CRLF or a lone CR (a CR at the end of one chunk and an LF at
//! the start of the next are one line end, not two), a line that starts with
//! `:` is a comment, `field: value` loses one space after the colon, several
//! `data` lines are joined with `\n`, and a blank line dispatches the event.
//!
//! Two deliberate choices for LLM streams:
//! - at the end of the stream an event that has data but lost its closing
//!   blank line is still dispatched by [`SseDecoder::finish`] (upstreams that
//!   end with `data: [DONE]\n` and no blank line are common; a browser would drop
//!   that event, a gateway must not);
//! - a line that is not valid UTF-8, or an event larger than the configured
//!   limit, is an error rather than something to repair silently.
//!
//! The writer side ([`write_event`], [`write_comment`]) produces frames that
//! every SDK accepts: `event:` line (when named), one `data:` line per line of
//! payload, blank line.
//!
//! ```
//! use llmgate::sse::SseDecoder;
//!
//! let mut decoder = SseDecoder::new();
//! let mut events = Vec::new();
//! decoder.feed(b"event: ping\r", &mut events).unwrap();
//! decoder.feed(b"\ndata: {\"type\":\"ping\"}\r\n\r\n", &mut events).unwrap();
//! assert_eq!(events[0].event.as_deref(), Some("ping"));
//! assert_eq!(events[0].data, "{\"type\":\"ping\"}");
//! ```

use bytes::{BufMut, BytesMut};

/// The default largest event (all of its lines) [`SseDecoder`] accepts: 16 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;

/// One dispatched server-sent event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if the event had one.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The `id:` field, if the event had one.
    pub id: Option<String>,
}

/// The largest scratch buffer a stream's decoders keep for reuse (the SSE
/// decoder's data buffer, [`SseDecoder::recycle`]; the OpenAI chunk
/// decoder's cut chunk): one event's worth, not an outlier's.
pub(crate) const SPARE_MAX: usize = 16 * 1024;

/// What can go wrong while decoding an event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// A line of the stream is not valid UTF-8.
    #[error("event stream line is not valid UTF-8")]
    InvalidUtf8,
    /// An event grew beyond the decoder's size limit.
    #[error("event stream event exceeds {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
}

/// An incremental `text/event-stream` decoder.
///
/// Feed it the body's chunks in order with [`feed`](Self::feed); call
/// [`finish`](Self::finish) once at the end of the body.
#[derive(Debug)]
pub struct SseDecoder {
    /// Bytes of a line whose end has not arrived yet.
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF at the start of the next chunk
    /// belongs to that line end.
    pending_cr: bool,
    /// At the very start of the stream (a UTF-8 BOM may follow).
    at_start: bool,
    event: Option<String>,
    data: String,
    /// A buffer handed back by the reader of the events ([`Self::recycle`]),
    /// for the next event's data: a stream of many events allocates none.
    spare: String,
    has_data: bool,
    id: Option<String>,
    size: usize,
    max_event_size: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// A decoder with the [default size limit](DEFAULT_MAX_EVENT_SIZE).
    pub fn new() -> Self {
        Self::with_max_event_size(DEFAULT_MAX_EVENT_SIZE)
    }

    /// A decoder that rejects events larger than `max_event_size` bytes.
    pub fn with_max_event_size(max_event_size: usize) -> Self {
        Self {
            line: Vec::new(),
            pending_cr: false,
            at_start: true,
            event: None,
            data: String::new(),
            spare: String::new(),
            has_data: false,
            id: None,
            size: 0,
            max_event_size,
        }
    }

    /// Decodes one chunk of the stream, appending every event it completes.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if chunk.is_empty() {
            // Nothing to learn: a pending CR still waits for the next byte.
            return Ok(());
        }
        if self.pending_cr {
            self.pending_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        if self.at_start && !chunk.is_empty() {
            // The BOM may itself be split across chunks: wait until three
            // bytes (or a line end) are known. What is known is the chunk
            // itself unless an earlier one is held (no copy of a first read).
            let probe: std::borrow::Cow<'_, [u8]> = if self.line.is_empty() {
                chunk.into()
            } else {
                let mut held = std::mem::take(&mut self.line);
                held.extend_from_slice(chunk);
                held.into()
            };
            if probe.len() < 3 && !probe.iter().any(|b| *b == b'\n' || *b == b'\r') {
                self.line = probe.into_owned();
                return Ok(());
            }
            self.at_start = false;
            let body = probe.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&probe);
            return self.feed_lines(body, out);
        }
        self.feed_lines(chunk, out)
    }

    fn feed_lines(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', chunk) {
            let end = chunk[pos];
            let mut next = pos + 1;
            if end == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.pending_cr = true,
                }
            }
            if self.line.is_empty() {
                self.line_complete(&chunk[..pos], out)?;
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&chunk[..pos]);
                let result = self.line_complete(&line, out);
                line.clear();
                self.line = line;
                result?;
            }
            chunk = &chunk[next..];
        }
        if !chunk.is_empty() {
            if self.size + self.line.len() + chunk.len() > self.max_event_size {
                return Err(self.too_large());
            }
            self.line.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// Ends the stream: a last line without its line end is processed, and an
    /// event that has data but no closing blank line is dispatched.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        self.pending_cr = false;
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            let line = if self.at_start {
                line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line).to_vec()
            } else {
                line
            };
            self.at_start = false;
            self.line_complete(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn too_large(&mut self) -> SseError {
        self.reset_event();
        self.line.clear();
        SseError::TooLarge {
            limit: self.max_event_size,
        }
    }

    /// Takes back the data buffer of an event that was read, to hold the
    /// next event's (a buffer over [`SPARE_MAX`] is dropped instead).
    pub(crate) fn recycle(&mut self, mut data: String) {
        if data.capacity() <= SPARE_MAX && data.capacity() > self.spare.capacity() {
            data.clear();
            self.spare = data;
        }
    }

    fn reset_event(&mut self) {
        self.event = None;
        self.data.clear();
        self.has_data = false;
        self.id = None;
        self.size = 0;
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent {
                event: self.event.take(),
                data: std::mem::replace(&mut self.data, std::mem::take(&mut self.spare)),
                id: self.id.take(),
            });
        }
        self.reset_event();
    }

    fn line_complete(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        self.size += line.len() + 1;
        if self.size > self.max_event_size {
            return Err(self.too_large());
        }
        let line = std::str::from_utf8(line).map_err(|_| {
            self.reset_event();
            SseError::InvalidUtf8
        })?;
        // memchr, not `str::find`: a `data:` line is the whole JSON chunk,
        // and the char searcher walks it a byte at a time when it has no
        // colon in its first bytes (~140 instructions for a 160-byte line).
        let (field, value) = match memchr::memchr(b':', line.as_bytes()) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            // `retry` only matters to reconnecting browsers; other fields are
            // ignored as the standard says.
            _ => {}
        }
        Ok(())
    }
}

/// Appends one event frame: `event: NAME` (when given), one `data:` line per
/// line of `data`, and the blank line that dispatches it.
pub fn write_event(buf: &mut BytesMut, event: Option<&str>, data: &str) {
    if let Some(name) = event {
        buf.put_slice(b"event: ");
        buf.put_slice(name.as_bytes());
        buf.put_u8(b'\n');
    }
    for line in data.split('\n') {
        buf.put_slice(b"data: ");
        buf.put_slice(line.strip_suffix('\r').unwrap_or(line).as_bytes());
        buf.put_u8(b'\n');
    }
    buf.put_u8(b'\n');
}

/// Appends a comment line (`: text`), which clients ignore; used as a
/// keep-alive.
pub fn write_comment(buf: &mut BytesMut, text: &str) {
    buf.put_slice(b": ");
    buf.put_slice(text.replace(['\r', '\n'], " ").as_bytes());
    buf.put_slice(b"\n\n");
}

/// Appends an event whose `data` is the JSON serialisation of `value`,
/// written straight into the buffer (JSON never contains a raw line break,
/// so it is always one `data:` line).
pub fn write_json_event<T: serde::Serialize + ?Sized>(
    buf: &mut BytesMut,
    event: Option<&str>,
    value: &T,
) -> Result<(), serde_json::Error> {
    if let Some(name) = event {
        buf.put_slice(b"event: ");
        buf.put_slice(name.as_bytes());
        buf.put_u8(b'\n');
    }
    buf.put_slice(b"data: ");
    // serde_json, not sonic-rs: `value` is the caller's, and may be a type
    // (a `RawValue`) whose serde_json-specific serialisation sonic-rs does
    // not know. A `RawJson` in it is written as is.
    use crate::wire::raw::{Writer, writing};
    writing(Writer::SerdeJson, || {
        serde_json::to_writer(buf.writer(), value)
    })?;
    buf.put_slice(b"\n\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out).unwrap();
        }
        d.finish(&mut out).unwrap();
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
            id: None,
        }
    }

    #[test]
    fn line_endings_lf_crlf_cr() {
        let want = vec![ev(Some("a"), "1"), ev(None, "2")];
        assert_eq!(decode_all(&[b"event: a\ndata: 1\n\ndata: 2\n\n"]), want);
        assert_eq!(
            decode_all(&[b"event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n"]),
            want
        );
        assert_eq!(decode_all(&[b"event: a\rdata: 1\r\rdata: 2\r\r"]), want);
    }

    #[test]
    fn a_recycled_buffer_holds_a_later_event() {
        // The buffer handed back holds the event after the one being
        // gathered: a reader that hands each one back makes two buffers take
        // turns.
        for (capacity, kept) in [(1000, true), (SPARE_MAX + 1, false)] {
            let mut d = SseDecoder::new();
            let mut out = Vec::new();
            d.feed(b"data: one\n\n", &mut out).unwrap();
            d.recycle(String::with_capacity(capacity));
            d.feed(b"data: two\n\ndata: three\n\n", &mut out).unwrap();
            assert_eq!(
                out,
                vec![ev(None, "one"), ev(None, "two"), ev(None, "three")]
            );
            assert_eq!(out[2].data.capacity() == capacity, kept, "{capacity}");
        }
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_end() {
        let got = decode_all(&[b"data: 1\r", b"\ndata: 2\r", b"\n\r", b"\n"]);
        assert_eq!(got, vec![ev(None, "1\n2")]);
    }

    #[test]
    fn an_empty_chunk_after_a_cr_does_not_end_the_line_twice() {
        let got = decode_all(&[b"data: 1\r", b"", b"\ndata: 2\r\n\r\n"]);
        assert_eq!(got, vec![ev(None, "1\n2")]);
    }

    #[test]
    fn comments_multiline_data_and_field_without_space() {
        let got = decode_all(&[b": keep-alive\ndata:a\ndata:  b\nid: 7\nretry: 10\nfoo: x\n\n"]);
        assert_eq!(
            got,
            vec![SseEvent {
                event: None,
                data: "a\n b".into(),
                id: Some("7".into())
            }]
        );
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        assert!(decode_all(&[b"event: ping\n\n"]).is_empty());
        assert_eq!(decode_all(&[b"data\n\n"]), vec![ev(None, "")]);
    }

    #[test]
    fn last_event_without_blank_line_is_dispatched_at_finish() {
        assert_eq!(decode_all(&[b"data: [DONE]"]), vec![ev(None, "[DONE]")]);
        assert_eq!(decode_all(&[b"data: [DONE]\n"]), vec![ev(None, "[DONE]")]);
        assert_eq!(decode_all(&[b"data: [DONE]\r"]), vec![ev(None, "[DONE]")]);
    }

    #[test]
    fn bom_is_stripped_even_when_split() {
        assert_eq!(
            decode_all(&[b"\xEF", b"\xBB", b"\xBFdata: x\n\n"]),
            vec![ev(None, "x")]
        );
        assert_eq!(
            decode_all(&[b"\xEF\xBB\xBFdata: x\n\n"]),
            vec![ev(None, "x")]
        );
        assert_eq!(
            decode_all(&[b"\xEF\xBB", b"\xBFdata: x\n\n"]),
            vec![ev(None, "x")]
        );
        // Only at the very start; a line end early ends the wait.
        assert_eq!(decode_all(&[b"\n", b"data: x\n\n"]), vec![ev(None, "x")]);
        assert_eq!(decode_all(&[b"da", b"ta: x\n\n"]), vec![ev(None, "x")]);
        assert_eq!(
            decode_all(&[b"data: x\n\n\xEF\xBB\xBFdata: y\n\n"]).len(),
            1,
            "a BOM later in the stream is not stripped (its line is no field)"
        );
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let s = "data: 68°F\n\n".as_bytes();
        let cut = s.iter().position(|b| *b == 0xC2).unwrap() + 1;
        assert_eq!(decode_all(&[&s[..cut], &s[cut..]]), vec![ev(None, "68°F")]);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        assert_eq!(
            d.feed(b"data: \xFF\n\n", &mut out),
            Err(SseError::InvalidUtf8)
        );
        // The decoder keeps working after the bad event.
        d.feed(b"data: ok\n\n", &mut out).unwrap();
        assert_eq!(out, vec![ev(None, "ok")]);
    }

    #[test]
    fn oversized_events_are_rejected() {
        let mut d = SseDecoder::with_max_event_size(16);
        let mut out = Vec::new();
        assert!(matches!(
            d.feed(b"data: 0123456789abcdef\n\n", &mut out),
            Err(SseError::TooLarge { limit: 16 })
        ));
        let mut d = SseDecoder::with_max_event_size(16);
        assert!(d.feed(b"data: 0123456789", &mut out).is_ok());
        assert!(d.feed(b"abcdef", &mut out).is_err());
    }

    #[test]
    fn writer_round_trips_through_the_decoder() {
        let mut buf = BytesMut::new();
        write_event(&mut buf, Some("message_start"), "{\"a\":1}");
        write_comment(&mut buf, "ping\nx");
        write_event(&mut buf, None, "two\nlines");
        write_json_event(&mut buf, Some("x"), &serde_json::json!({"k": "v\n"})).unwrap();
        assert_eq!(
            decode_all(&[&buf]),
            vec![
                ev(Some("message_start"), "{\"a\":1}"),
                ev(None, "two\nlines"),
                ev(Some("x"), "{\"k\":\"v\\n\"}"),
            ]
        );
    }
}
