//! Serde types of each wire format, as clients and providers send them.
//!
//! - [`anthropic`]: Anthropic Messages (`POST /v1/messages`, its stream events,
//!   errors, `count_tokens`).
//! - [`openai`]: OpenAI Chat Completions (`POST /v1/chat/completions`, chunks,
//!   errors).
//!
//! Every object type keeps the fields it does not name in an `extra` map and
//! writes them back out, and every tagged union has an `Other` variant that
//! keeps a block or event of a type this crate does not know as raw JSON:
//! parsing and then serialising a body gives the same JSON value (explicit
//! `null`s of optional request fields excepted: they read as absent).
//! A known type with a malformed body is an error that names the type, never
//! silently demoted to `Other`; a key repeated within an object is an error.

pub mod anthropic;
pub mod openai;

/// A JSON object: the fields a type does not name.
pub type Map = serde_json::Map<String, serde_json::Value>;

/// Parses a JSON body. The text is checked for UTF-8 once, as a whole:
/// serde_json's slice reader checks each string on its own (~100
/// instructions apiece, ~4 % of a small request through the default stack
/// by callgrind). A body that is not UTF-8 goes to the slice reader, whose
/// error says where. (sonic-rs's serde deserializer was tried here: −1 % of
/// a 31 KB request's instructions, +1.3 % of a small one's.)
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// Serialises a value as JSON into a new buffer. With the `simd-json`
/// feature (a default) sonic-rs writes it: the bytes serde_json writes (a
/// test holds the two to it, and a check at first use falls back to
/// serde_json for good if they differ, as they would with serde_json's
/// `arbitrary_precision` on in the build), with strings scanned for
/// characters to escape many bytes at a time where serde_json looks each
/// byte up. Strings are most of an LLM request: escaping was ~28 % of a
/// 31 KB request's instructions through the default stack by callgrind, and
/// sonic-rs takes ~15 % off the whole. The buffer starts at `capacity` (a
/// hint); sonic-rs reserves six bytes a string byte as it goes, so a buffer
/// left more than half empty is shrunk.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity.max(128));
    #[cfg(feature = "simd-json")]
    if sonic_agrees() {
        sonic_rs::to_writer(&mut out, value).map_err(json_error)?;
        if out.capacity() > 2 * out.len() + 4096 {
            out.shrink_to_fit();
        }
        return Ok(out);
    }
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}

/// Appends a value's JSON to `buf`, as [`to_json`] writes it.
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(
    buf: &mut bytes::BytesMut,
    value: &T,
) -> serde_json::Result<()> {
    use bytes::BufMut as _;
    #[cfg(feature = "simd-json")]
    if sonic_agrees() {
        return sonic_rs::to_writer(buf.writer(), value).map_err(json_error);
    }
    serde_json::to_writer(buf.writer(), value)
}

/// A JSON value's compact text, as [`to_json`] writes it (`Value`'s
/// `Display` goes through a `fmt::Write` adapter, fragment by fragment).
pub(crate) fn value_to_string(value: &serde_json::Value) -> String {
    // A `Value` always serialises: its map keys are strings.
    let bytes = to_json(value, 0).unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// Whether sonic-rs writes what serde_json writes in this build, checked
/// once on a value that covers numbers, escapes and nesting.
#[cfg(feature = "simd-json")]
fn sonic_agrees() -> bool {
    static AGREES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AGREES.get_or_init(|| {
        let probe = serde_json::json!([
            1.5, 1.0, -0.0, 1e21, 5e-324, 18446744073709551615u64, -9223372036854775808i64,
            {"k\u{1}é": "\"\\\u{7f}\u{2028}🚀\n"}, [], {}, null, true
        ]);
        sonic_rs::to_vec(&probe).ok() == serde_json::to_vec(&probe).ok()
    })
}

/// A sonic-rs error as the serde_json error the crate's API speaks.
#[cfg(feature = "simd-json")]
fn json_error(e: sonic_rs::Error) -> serde_json::Error {
    <serde_json::Error as serde::ser::Error>::custom(e)
}

/// `true` for an empty map; used to skip empty `extra` maps when serialising.
pub(crate) fn is_empty_map(map: &Map) -> bool {
    map.is_empty()
}

/// Serialises fields whose presence matters and that may be `null`:
/// `None` = absent (skipped), `Some(None)` = `null`, `Some(Some(v))` = a value.
/// Such fields read back through [`object_with_extra`]'s `nullable` mode.
pub(crate) mod nullable {
    use serde::{Serialize, Serializer};

    pub(crate) fn serialize<T, S>(value: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize,
        S: Serializer,
    {
        match value {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }
}

/// Implements `Serialize` and `Deserialize` for an enum whose variants are
/// told apart by a `"type"` field: known types become their variant (a
/// malformed one is an error naming the type), unknown ones are kept whole
/// in `Other(serde_json::Value)`.
macro_rules! tagged_union {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $( $(#[$vmeta:meta])* $tag:literal => $variant:ident($ty:ty), )*
        Other,
    }) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant($ty), )*
            /// A value of a type this crate does not name, kept whole as
            /// raw JSON.
            Other(serde_json::Value),
        }

        impl $name {
            /// The `type` tag of this value (`None` for an `Other` without one).
            pub fn type_tag(&self) -> Option<&str> {
                match self {
                    $( Self::$variant(_) => Some($tag), )*
                    Self::Other(v) => v.get("type").and_then(serde_json::Value::as_str),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " object"))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        use serde::de::Error as _;
                        let mut rest = $crate::wire::Map::new();
                        if let Some(key) = map.next_key::<String>()? {
                            let value: serde_json::Value = map.next_value()?;
                            // Fast path: `type` comes first (as every SDK
                            // writes it), so the rest reads straight into
                            // the variant.
                            if key == "type"
                                && let Some(tag) = value.as_str().and_then($name::known_tag)
                            {
                                return $name::variant(
                                    tag,
                                    serde::de::value::MapAccessDeserializer::new(map),
                                );
                            }
                            rest.insert(key, value);
                        }
                        while let Some(key) = map.next_key::<String>()? {
                            $crate::wire::insert_field(&mut rest, key, || map.next_value())?;
                        }
                        // The whole object was read first.
                        let tag = rest
                            .get("type")
                            .and_then(serde_json::Value::as_str)
                            .and_then($name::known_tag);
                        match tag {
                            Some(tag) => {
                                rest.remove("type");
                                $name::variant(tag, serde_json::Value::Object(rest))
                                    .map_err(A::Error::custom)
                            }
                            None => Ok($name::Other(serde_json::Value::Object(rest))),
                        }
                    }
                }
                d.deserialize_map(V)
            }
        }

        impl $name {
            /// The tag as this union names it, if it names it.
            fn known_tag(tag: &str) -> Option<&'static str> {
                match tag {
                    $( $tag => Some($tag), )*
                    _ => None,
                }
            }

            /// Reads the variant of a known `tag` from the object's other
            /// fields.
            fn variant<'de, D: serde::Deserializer<'de>>(
                tag: &str,
                fields: D,
            ) -> Result<Self, D::Error> {
                use serde::de::Error as _;
                let invalid = |e: D::Error| {
                    D::Error::custom(format_args!(
                        concat!("invalid `{}` ", stringify!($name), ": {}"),
                        tag,
                        e
                    ))
                };
                match tag {
                    $( $tag => match <$ty as serde::Deserialize>::deserialize(fields) {
                        // A second `type` lands in the variant's extra fields.
                        Ok(v) if $crate::wire::WithExtra::extra(&v).contains_key("type") => {
                            Err(invalid(D::Error::duplicate_field("type")))
                        }
                        Ok(v) => Ok(Self::$variant(v)),
                        Err(e) => Err(invalid(e)),
                    }, )*
                    _ => Err(D::Error::custom(format_args!(
                        concat!("unknown ", stringify!($name), " type `{}`"),
                        tag
                    ))),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Self::$variant(inner) => {
                        $crate::wire::Tagged { tag: $tag, inner }.serialize(s)
                    } )*
                    Self::Other(v) => v.serialize(s),
                }
            }
        }
    };
}
pub(crate) use tagged_union;

/// Serialises `inner` (a struct) with a leading `"type": tag` field.
#[derive(serde::Serialize)]
pub(crate) struct Tagged<'a, T> {
    #[serde(rename = "type")]
    pub(crate) tag: &'static str,
    #[serde(flatten)]
    pub(crate) inner: &'a T,
}

/// Implements `Deserialize` for an enum that is either a bare string or an
/// array (`"content": "text"` vs `"content": [blocks]`), without serde's
/// untagged buffering (and with the inner error message kept).
macro_rules! string_or_seq {
    ($name:ident, $text:ident, $seq:ident, $item:ty, $expecting:literal) => {
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("struct ", stringify!($name)))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::$text(v.to_owned()))
                    }
                    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<$name, E> {
                        Ok($name::$text(v))
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<$name, A::Error> {
                        let mut items: Vec<$item> =
                            Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                        while let Some(item) = seq.next_element()? {
                            items.push(item);
                        }
                        Ok($name::$seq(items))
                    }
                }
                d.deserialize_any(V)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $name::$text(t) => s.serialize_str(t),
                    $name::$seq(items) => items.serialize(s),
                }
            }
        }
    };
}
pub(crate) use string_or_seq;

/// Implements `Deserialize` for a struct whose unnamed fields are kept in an
/// `extra` map, without `#[serde(flatten)]`: serde's flatten buffers every
/// key and value of the object into its private `Content` tree and then
/// deserialises the struct again from that copy (for nested flattened
/// objects, at every level). This reads each field once, straight from the
/// input; only unknown fields become JSON values.
///
/// Each field names how a missing one reads (and its JSON key after `as`
/// when that is not the field's name):
/// `required` (an error, or `None` for an `Option`, as serde's derive does),
/// `default` (`Default::default()`), `default_with(f)` (`f()`), or
/// `nullable` (an `Option<Option<T>>` where `null` is `Some(None)`).
/// A repeated key is an error (serde's derive rejects repeated known keys;
/// an unknown one repeated is no better a request).
macro_rules! object_with_extra {
    ($name:ident {
        $( $field:ident $(as $key:literal)? => $mode:ident $(($arg:path))? ),* $(,)?
    } $extra:ident) => {
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[allow(non_camel_case_types)]
                enum Field {
                    $( $field, )*
                    Other(String),
                }
                struct FieldVisitor;
                impl<'de> serde::de::Visitor<'de> for FieldVisitor {
                    type Value = Field;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a field name")
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Field, E> {
                        Ok(match v {
                            $( $crate::wire::object_with_extra!(@key $field $($key)?) => Field::$field, )*
                            _ => Field::Other(v.to_owned()),
                        })
                    }
                }
                impl<'de> serde::Deserialize<'de> for Field {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        d.deserialize_identifier(FieldVisitor)
                    }
                }

                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("struct ", stringify!($name)))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        $( let mut $field = None; )*
                        let mut $extra = $crate::wire::Map::new();
                        while let Some(key) = map.next_key::<Field>()? {
                            match key {
                                $( Field::$field => {
                                    if $field.is_some() {
                                        return Err(<A::Error as serde::de::Error>::duplicate_field(
                                            $crate::wire::object_with_extra!(@key $field $($key)?),
                                        ));
                                    }
                                    $field = Some($crate::wire::object_with_extra!(@value map $mode));
                                } )*
                                Field::Other(key) => {
                                    $crate::wire::insert_field(&mut $extra, key, || map.next_value())?;
                                }
                            }
                        }
                        Ok($name {
                            $( $field: $crate::wire::object_with_extra!(
                                @finish A $field ($crate::wire::object_with_extra!(@key $field $($key)?)) $mode $(($arg))?
                            ), )*
                            $extra,
                        })
                    }
                }
                d.deserialize_map(V)
            }
        }

        impl $crate::wire::WithExtra for $name {
            fn extra(&self) -> &$crate::wire::Map {
                &self.$extra
            }
        }
    };
    (@key $field:ident) => { stringify!($field) };
    (@key $field:ident $key:literal) => { $key };
    (@value $map:ident nullable) => { Some($map.next_value()?) };
    (@value $map:ident $mode:ident) => { $map.next_value()? };
    (@finish $a:ident $f:ident $key:tt required) => {
        match $f {
            Some(v) => v,
            None => serde::Deserialize::deserialize($crate::wire::Missing::<$a::Error>::new($key))?,
        }
    };
    (@finish $a:ident $f:ident $key:tt default) => { $f.unwrap_or_default() };
    (@finish $a:ident $f:ident $key:tt nullable) => { $f.flatten() };
    (@finish $a:ident $f:ident $key:tt default_with($fun:path)) => { $f.unwrap_or_else($fun) };
}
pub(crate) use object_with_extra;

/// Adds a field read by `value` under `key`; a key that came already is an
/// error (and its second value is not read).
pub(crate) fn insert_field<E: serde::de::Error>(
    fields: &mut Map,
    key: String,
    value: impl FnOnce() -> Result<serde_json::Value, E>,
) -> Result<(), E> {
    match fields.entry(key) {
        serde_json::map::Entry::Vacant(slot) => {
            slot.insert(value()?);
            Ok(())
        }
        serde_json::map::Entry::Occupied(slot) => {
            Err(E::custom(format_args!("duplicate field `{}`", slot.key())))
        }
    }
}

/// A wire object's fields that it does not name.
pub(crate) trait WithExtra {
    fn extra(&self) -> &Map;
}

/// The value of a field that is not there: `None` for an `Option`, a
/// "missing field" error for anything else (what serde's derive does).
pub(crate) struct Missing<E> {
    key: &'static str,
    error: std::marker::PhantomData<E>,
}

impl<E> Missing<E> {
    pub(crate) fn new(key: &'static str) -> Self {
        Self {
            key,
            error: std::marker::PhantomData,
        }
    }
}

impl<'de, E: serde::de::Error> serde::Deserializer<'de> for Missing<E> {
    type Error = E;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, E> {
        Err(E::missing_field(self.key))
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_none()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::anthropic::ContentBlock;
    use super::openai::{ChatCompletionRequest, ChunkDelta};
    use serde_json::json;

    #[test]
    fn objects_keep_unknown_fields_and_reject_missing_or_repeated_known_ones() {
        let req: ChatCompletionRequest = serde_json::from_str(
            r#"{"model":"m","messages":[],"top_logprobs":2,"logit_bias":{"1":-1}}"#,
        )
        .unwrap();
        assert_eq!(req.model, "m");
        assert_eq!(req.max_tokens, None);
        assert_eq!(req.extra["top_logprobs"], json!(2));
        assert_eq!(req.extra["logit_bias"], json!({"1": -1}));
        assert_eq!(req.extra.len(), 2);

        let err = serde_json::from_str::<ChatCompletionRequest>(r#"{"messages":[]}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `model`"), "{err}");
        let err = serde_json::from_str::<ChatCompletionRequest>(
            r#"{"model":"a","model":"b","messages":[]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("duplicate field `model`"), "{err}");
        let err = serde_json::from_str::<ChatCompletionRequest>("[1]").unwrap_err();
        assert!(
            err.to_string().contains("struct ChatCompletionRequest"),
            "{err}"
        );
    }

    #[test]
    fn nullable_fields_tell_null_from_absent() {
        let absent: ChunkDelta = serde_json::from_str("{}").unwrap();
        let null: ChunkDelta = serde_json::from_str(r#"{"content":null}"#).unwrap();
        let text: ChunkDelta = serde_json::from_str(r#"{"content":"hi"}"#).unwrap();
        assert_eq!(absent.content, None);
        assert_eq!(null.content, Some(None));
        assert_eq!(text.content, Some(Some("hi".to_owned())));
        assert_eq!(
            serde_json::to_value(&null).unwrap(),
            json!({"content": null})
        );
        assert_eq!(serde_json::to_value(&absent).unwrap(), json!({}));
    }

    #[test]
    fn tagged_unions_read_the_same_whether_or_not_type_comes_first() {
        let first: ContentBlock =
            serde_json::from_str(r#"{"type":"text","text":"hi","citations":[]}"#).unwrap();
        let last: ContentBlock =
            serde_json::from_str(r#"{"text":"hi","citations":[],"type":"text"}"#).unwrap();
        assert_eq!(first, last);
        assert!(matches!(&first, ContentBlock::Text(t) if t.text == "hi" && t.extra.len() == 1));

        for body in [r#"{"type":"text","text":5}"#, r#"{"text":5,"type":"text"}"#] {
            let err = serde_json::from_str::<ContentBlock>(body).unwrap_err();
            assert!(
                err.to_string().contains("invalid `text` ContentBlock"),
                "{err}"
            );
        }

        for body in [
            r#"{"type":"future","x":1}"#,
            r#"{"x":1,"type":"future"}"#,
            r#"{"type":7,"x":1}"#,
            r#"{}"#,
        ] {
            let block: ContentBlock = serde_json::from_str(body).unwrap();
            let raw: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(block, ContentBlock::Other(raw), "{body}");
        }
    }

    #[test]
    fn a_repeated_key_is_an_error_wherever_it_comes() {
        for body in [
            // A second `type`: read as text, it would go upstream as both.
            r#"{"type":"text","text":"hi","type":"image"}"#,
            r#"{"text":"hi","type":"text","type":"image"}"#,
            r#"{"type":"text","text":"a","text":"b"}"#,
            r#"{"text":"a","text":"b","type":"text"}"#,
            r#"{"type":"text","text":"a","x":1,"x":2}"#,
            r#"{"type":"future","x":1,"x":2}"#,
        ] {
            let err = serde_json::from_str::<ContentBlock>(body).unwrap_err();
            assert!(err.to_string().contains("duplicate field"), "{body}: {err}");
        }
        let err = serde_json::from_str::<ChatCompletionRequest>(
            r#"{"model":"m","messages":[],"seed_x":1,"seed_x":2}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("duplicate field `seed_x`"),
            "{err}"
        );
    }

    /// Any JSON value: every char in strings (control characters,
    /// quotes, backslashes, astral planes), integers at their limits and
    /// floats of any finite magnitude.
    fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            "[\u{0}-\u{1f}\"\\\\/\u{7f}\u{2028}a]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::vec((any::<String>(), inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn json_is_written_byte_for_byte_as_serde_json_writes_it(value in any_json()) {
            let ours = super::to_json(&value, 0).unwrap();
            proptest::prop_assert_eq!(&ours, &serde_json::to_vec(&value).unwrap());
            let mut buf = bytes::BytesMut::from(&b"data: "[..]);
            super::write_json(&mut buf, &value).unwrap();
            proptest::prop_assert_eq!(&buf[6..], &ours[..]);
        }
    }

    #[cfg(feature = "simd-json")]
    #[test]
    fn sonic_rs_writes_what_serde_json_writes_in_this_build() {
        assert!(super::sonic_agrees());
    }

    #[test]
    fn float_values_survive_the_round_trip_exactly() {
        // serde_json's default float parser may miss by one ulp: this one
        // would go upstream as 124803.53772609832 (`float_roundtrip` on).
        let body = r#"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":{"x":124803.53772609831,"y":1e-7,"z":18446744073709551615}}]}],"max_tokens":1}"#;
        let req: super::anthropic::MessagesRequest = super::from_json(body.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(super::to_json(&req, 0).unwrap()).unwrap(),
            body
        );
    }

    #[test]
    fn wire_types_are_written_as_serde_json_writes_them() {
        let body = json!({
            "model": "gpt-4o", "temperature": 0.7, "top_p": 1e-7, "max_tokens": 4096,
            "messages": [
                {"role": "system", "content": "Be \"terse\".\n\tNo\u{1}control\u{7f}."},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "f", "arguments": "{\"a\":\"\\u00e9\\n\",\"b\":[1.5e300]}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "ünïcödé 🚀 \u{2028}"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters":
                {"type": "object", "properties": {"a": {"type": "string", "maxLength": 18446744073709551615u64}}}}}],
            "x_unknown": {"nested": [-9223372036854775808i64, 0.1, -0.0]}
        });
        let req: ChatCompletionRequest = serde_json::from_value(body).unwrap();
        assert_eq!(
            super::to_json(&req, 0).unwrap(),
            serde_json::to_vec(&req).unwrap()
        );
    }
}
