//! [`RawJson`]: a JSON value kept as the text it arrived in.

use std::cell::Cell;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A JSON value kept as its text: tool schemas, tool inputs and
/// `response_format` travel through the gateway as they arrived.
///
/// A `serde_json::Value` tree would cost a node per key and string to build,
/// move and drop, and with serde_json's default map it writes an object's
/// keys sorted. Order matters here: a schema's property order is the order a
/// model writes the fields in. The text is checked to be one JSON value when
/// it is read (without surrounding whitespace) and written back byte for
/// byte, whitespace inside it included.
///
/// Equality compares the text: `{"a":1}` and `{ "a": 1 }` differ.
///
/// Serialisation writes the text as is through the crate's own writers and
/// serde_json's raw-value support; any other serializer gets the value token
/// by token (key order kept), which fails for text that no tree can hold
/// (see [`to_value`](Self::to_value)). Deserialisation needs serde_json (or
/// a `serde_json::Value`), which is what reads every body here.
///
/// ```
/// use llmgate::wire::RawJson;
///
/// let schema = RawJson::parse(r#"{"properties":{"reasoning":{},"answer":{}}}"#).unwrap();
/// assert!(schema.is_object());
/// // Written back as it came: `reasoning` stays before `answer`.
/// assert_eq!(
///     serde_json::to_string(&schema).unwrap(),
///     r#"{"properties":{"reasoning":{},"answer":{}}}"#
/// );
/// assert_eq!(schema.to_value().unwrap()["properties"]["answer"], serde_json::json!({}));
/// assert!(RawJson::parse("{").is_err());
/// ```
#[derive(Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// Checks that `text` is one JSON value (surrounding whitespace is
    /// dropped) and keeps it.
    pub fn parse(text: impl Into<String>) -> serde_json::Result<Self> {
        RawValue::from_string(text.into()).map(Self)
    }

    /// The value's compact text.
    pub fn from_value(value: &serde_json::Value) -> Self {
        // Text written by serde_json from a `Value` is one JSON value.
        Self::trusted(super::value_to_string(value))
    }

    /// An empty object, `{}`.
    pub fn empty_object() -> Self {
        Self::trusted("{}".to_owned())
    }

    /// Text the crate wrote or checked itself.
    pub(crate) fn trusted(text: String) -> Self {
        match RawValue::from_string(text) {
            Ok(raw) => Self(raw),
            // Unreachable for the callers' text; `null` rather than a panic.
            Err(_) => Self(RawValue::NULL.to_owned()),
        }
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The JSON text, without a copy.
    pub fn into_string(self) -> String {
        let text: Box<str> = self.0.into();
        text.into()
    }

    /// The text without whitespace between tokens, without a copy when
    /// there is none. Everything else is kept as written: escapes, number
    /// forms, the keys' order.
    pub fn into_compact_string(self) -> String {
        match compact(self.get()) {
            Some(text) => text,
            None => self.into_string(),
        }
    }

    /// [`into_compact_string`](Self::into_compact_string), borrowing the
    /// text when it has no whitespace to drop.
    pub(crate) fn compact_text(&self) -> std::borrow::Cow<'_, str> {
        match compact(self.get()) {
            Some(text) => text.into(),
            None => self.get().into(),
        }
    }

    /// The value as a `serde_json::Value` tree (its object keys sorted
    /// unless serde_json's `preserve_order` is on: see the `preserve-order`
    /// feature).
    ///
    /// This can fail where reading the text did not: the text is checked the
    /// way serde_json skips a value, which takes any `\u` escape (a lone
    /// surrogate, which no `String` can hold) and any depth, where a tree
    /// takes 128 levels.
    pub fn to_value(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_str(self.get())
    }

    /// Whether the value is an object.
    pub fn is_object(&self) -> bool {
        self.get().starts_with('{')
    }

    /// Whether the value is `null` or an object without members.
    pub(crate) fn is_null_or_empty_object(&self) -> bool {
        let text = self.get();
        text == "null"
            || (text.starts_with('{')
                && text[1..].trim_start_matches([' ', '\t', '\n', '\r']) == "}")
    }

    /// The members of an object read as `T`; `None` when the value is not
    /// an object or they do not fit `T`.
    pub(crate) fn read<'a, T: Deserialize<'a>>(&'a self) -> Option<T> {
        if !self.is_object() {
            return None;
        }
        serde_json::from_str(self.get()).ok()
    }
}

/// `text` (one JSON value) without the whitespace between its tokens;
/// `None` when it has none. Strings are stepped over with `memchr` (they
/// are most of a tool call's arguments), and the text between two
/// whitespace bytes is copied as one run.
fn compact(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    // The start of the run not yet copied to `out`.
    let mut run = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                // Past the closing quote: a backslash escapes the byte after
                // it, so the search goes on beyond that byte.
                i += 1;
                while let Some(at) =
                    memchr::memchr2(b'"', b'\\', bytes.get(i..).unwrap_or_default())
                {
                    let escape = bytes[i + at] == b'\\';
                    i += at + if escape { 2 } else { 1 };
                    if !escape {
                        break;
                    }
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {
                out.get_or_insert_with(|| Vec::with_capacity(bytes.len()))
                    .extend_from_slice(&bytes[run..i]);
                i += 1;
                run = i;
            }
            _ => i += 1,
        }
    }
    // Only ASCII whitespace was left out, so the rest is still UTF-8.
    out.map(|mut out| {
        out.extend_from_slice(bytes.get(run..).unwrap_or_default());
        String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
    })
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for RawJson {}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawJson").field(&self.get()).finish()
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl From<serde_json::Value> for RawJson {
    fn from(value: serde_json::Value) -> Self {
        Self::from_value(&value)
    }
}

impl From<&serde_json::Value> for RawJson {
    fn from(value: &serde_json::Value) -> Self {
        Self::from_value(value)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(Self)
    }
}

/// sonic-rs's name for a value written as is.
#[cfg(feature = "simd-json")]
const SONIC_RAW: &str = "$sonic_rs::LazyValue";

/// Which JSON writer is running on this thread: raw text is written by
/// name, and each writer knows its own name for it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Writer {
    /// A serializer the crate did not start (it may not be JSON at all).
    Unknown,
    /// serde_json, started by the crate.
    SerdeJson,
    /// sonic-rs, started by the crate.
    #[cfg(feature = "simd-json")]
    Sonic,
}

thread_local! {
    static WRITER: Cell<Writer> = const { Cell::new(Writer::Unknown) };
}

/// Runs `write` with [`RawJson`] written as `writer` expects; a nested
/// writer of another kind restores the outer one when it returns.
pub(crate) fn writing<R>(writer: Writer, write: impl FnOnce() -> R) -> R {
    struct Restore(Writer);
    impl Drop for Restore {
        fn drop(&mut self) {
            WRITER.with(|w| w.set(self.0));
        }
    }
    let _restore = Restore(WRITER.with(|w| w.replace(writer)));
    write()
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match WRITER.with(Cell::get) {
            Writer::SerdeJson => self.0.serialize(s),
            #[cfg(feature = "simd-json")]
            Writer::Sonic => {
                use serde::ser::SerializeStruct as _;
                let mut raw = s.serialize_struct(SONIC_RAW, 1)?;
                raw.serialize_field(SONIC_RAW, self.get())?;
                raw.end()
            }
            // Token by token: right for any serializer, and the order kept.
            Writer::Unknown => {
                serde_transcode::transcode(&mut serde_json::Deserializer::from_str(self.get()), s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Holder {
        schema: RawJson,
        n: u32,
    }

    const TEXT: &str = r#"{"z":1,"a":{"y":[1,2,{"b":"é\n"}],"x":null},"m":0.25}"#;

    #[test]
    fn every_writer_keeps_the_text_and_its_order() {
        let h = Holder {
            schema: RawJson::parse(TEXT).unwrap(),
            n: 7,
        };
        let want = format!(r#"{{"schema":{TEXT},"n":7}}"#);
        // The crate's writer (sonic-rs with `simd-json`, else serde_json).
        assert_eq!(
            String::from_utf8(super::super::to_json(&h, 0).unwrap()).unwrap(),
            want
        );
        let mut buf = bytes::BytesMut::new();
        super::super::write_json(&mut buf, &h).unwrap();
        assert_eq!(&buf[..], want.as_bytes());
        let mut event = bytes::BytesMut::new();
        crate::sse::write_json_event(&mut event, None, &h).unwrap();
        assert_eq!(&event[..], format!("data: {want}\n\n").as_bytes());
        // serde_json started by someone else: token by token, the same text
        // here (a number may be written in another form: `1.5e300` as
        // `1.5e+300`).
        assert_eq!(serde_json::to_string(&h).unwrap(), want);
        // serde_json inside the crate's writer.
        let inner = writing(Writer::SerdeJson, || serde_json::to_string(&h).unwrap());
        assert_eq!(inner, want);
        // Another serializer (a `Value` tree) gets the value itself.
        assert_eq!(
            serde_json::to_value(&h).unwrap()["schema"],
            serde_json::from_str::<serde_json::Value>(TEXT).unwrap()
        );
        // Read back from a body and from a `Value`.
        assert_eq!(serde_json::from_str::<Holder>(&want).unwrap(), h);
        let from_tree: Holder =
            serde_json::from_value(json!({"schema": {"k": [1]}, "n": 7})).unwrap();
        assert_eq!(from_tree.schema.get(), r#"{"k":[1]}"#);
    }

    #[test]
    fn text_read_from_a_body_keeps_its_inner_whitespace_and_drops_the_outer() {
        let h: Holder =
            serde_json::from_str("{\"schema\":  { \"b\" : 1 ,\"a\":2}\n, \"n\": 1}").unwrap();
        assert_eq!(h.schema.get(), r#"{ "b" : 1 ,"a":2}"#);
        assert!(h.schema.is_object());
        assert!(!h.schema.is_null_or_empty_object());
        assert_eq!(RawJson::parse("  [1] ").unwrap().get(), "[1]");
        assert!(RawJson::parse("{} {}").is_err());
    }

    #[test]
    fn an_error_after_raw_text_still_says_where() {
        // A body that fails is read again with its path tracked (the HTTP
        // tier's error message); raw text must pass through that reader.
        let body = r#"{"schema":{"a":[1]},"n":"seven"}"#;
        let mut de = serde_json::Deserializer::from_str(body);
        let err = serde_path_to_error::deserialize::<_, Holder>(&mut de).unwrap_err();
        assert_eq!(err.path().to_string(), "n");
        let mut de = serde_json::Deserializer::from_str(r#"{"schema":{"a":[1]},"n":7}"#);
        let ok: Holder = serde_path_to_error::deserialize(&mut de).unwrap();
        assert_eq!(ok.schema.get(), r#"{"a":[1]}"#);
    }

    #[test]
    fn compact_text_drops_whitespace_between_tokens_only() {
        let raw = RawJson::parse("{ \"b c\" : [1,\t2 ] ,\r\n\"a\":\"x \\\" y\\\\\" }").unwrap();
        assert_eq!(raw.into_compact_string(), r#"{"b c":[1,2],"a":"x \" y\\"}"#);
        let already = r#"{"z":"é ü","a":[{}]}"#;
        assert_eq!(
            RawJson::parse(already).unwrap().into_compact_string(),
            already
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn compact_text_is_what_serde_json_writes(value in crate::wire::tests::any_json()) {
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            let compact = serde_json::to_string(&value).unwrap();
            proptest::prop_assert_eq!(
                RawJson::parse(pretty).unwrap().into_compact_string(),
                compact.clone()
            );
            // Compact text is borrowed as it is, not copied.
            let raw = RawJson::parse(compact.clone()).unwrap();
            let text = raw.compact_text();
            proptest::prop_assert!(matches!(text, std::borrow::Cow::Borrowed(_)));
            proptest::prop_assert_eq!(text, compact.as_str());
        }
    }

    #[test]
    fn empty_and_null_are_told_apart_from_values() {
        for text in ["{}", "{ }", "{\n}", "null"] {
            assert!(
                RawJson::parse(text).unwrap().is_null_or_empty_object(),
                "{text}"
            );
        }
        for text in ["{\"a\":1}", "[]", "0", "\"{}\""] {
            assert!(
                !RawJson::parse(text).unwrap().is_null_or_empty_object(),
                "{text}"
            );
        }
        assert_eq!(RawJson::empty_object().get(), "{}");
        assert_eq!(
            RawJson::from_value(&json!({"b": [true]})).get(),
            r#"{"b":[true]}"#
        );
    }

    #[test]
    fn a_nested_writer_restores_the_outer_one() {
        writing(Writer::SerdeJson, || {
            assert_eq!(WRITER.with(Cell::get), Writer::SerdeJson);
            writing(Writer::Unknown, || {
                assert_eq!(WRITER.with(Cell::get), Writer::Unknown)
            });
            assert_eq!(WRITER.with(Cell::get), Writer::SerdeJson);
        });
        assert_eq!(WRITER.with(Cell::get), Writer::Unknown);
    }
}
