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
//!
//! Tool schemas, tool inputs and `response_format` are kept as their JSON
//! text ([`RawJson`]), and so are the fields of a block whose `type` is not
//! its first key while the block is read: so reading these types needs
//! serde_json (from text, bytes, a reader or a `serde_json::Value`), the
//! only deserializer that hands over a value's text. serde's own buffering
//! (a wire type inside `#[serde(flatten)]` or an untagged enum) and other
//! formats' deserializers cannot read them.

pub mod anthropic;
pub mod map;
pub mod openai;
pub(crate) mod raw;

pub use map::Map;
pub use raw::RawJson;

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
/// hint: the size of what is encoded, as the client sent it); for sonic-rs
/// at half as much again: it reserves six bytes a string byte before it
/// writes a string, so a buffer the exact size of the output would be grown
/// (and everything written so far copied) at the first long string near its
/// end. A buffer left more than half empty is shrunk.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> serde_json::Result<Vec<u8>> {
    #[cfg(feature = "simd-json")]
    if sonic_agrees() {
        let mut out = Vec::with_capacity(capacity.saturating_add(capacity / 2).max(128));
        raw::writing(raw::Writer::Sonic, || sonic_rs::to_writer(&mut out, value))
            .map_err(json_error)?;
        if out.capacity() > 2 * out.len() + 4096 {
            out.shrink_to_fit();
        }
        return Ok(out);
    }
    let mut out = Vec::with_capacity(capacity.max(128));
    raw::writing(raw::Writer::SerdeJson, || {
        serde_json::to_writer(&mut out, value)
    })?;
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
        return raw::writing(raw::Writer::Sonic, || {
            sonic_rs::to_writer(buf.writer(), value)
        })
        .map_err(json_error);
    }
    raw::writing(raw::Writer::SerdeJson, || {
        serde_json::to_writer(buf.writer(), value)
    })
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
        // Raw text goes out by sonic-rs's name for it, which a release of
        // sonic-rs could change.
        let raw = RawJson::parse("{ \"b\" :[1], \"a\":null}").ok();
        let raw_as_is = raw::writing(raw::Writer::Sonic, || sonic_rs::to_vec(&raw).ok())
            .is_some_and(|out| raw.is_some_and(|r| out == r.get().as_bytes()));
        raw_as_is && sonic_rs::to_vec(&probe).ok() == serde_json::to_vec(&probe).ok()
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
                        let mut fields = $crate::wire::LateFields::default();
                        while let Some(key) = map.next_key::<String>()? {
                            if key != "type" || !fields.has_no_object() {
                                fields.push(key, map.next_value()?);
                                continue;
                            }
                            let value: serde_json::Value = map.next_value()?;
                            if let Some(tag) = value.as_str().and_then($name::known_tag) {
                                // Fast path: `type` comes first (as most
                                // SDKs write it), so the rest reads
                                // straight into the variant; or after
                                // fields that hold no object (an OpenAI
                                // tool call's `id`, a text block's `text`),
                                // read again as values, and then the rest
                                // straight.
                                if fields.is_empty() {
                                    return $name::variant(
                                        tag,
                                        serde::de::value::MapAccessDeserializer::new(map),
                                    );
                                }
                                let fields = fields.then(map).map_err(A::Error::custom)?;
                                return $name::variant(
                                    tag,
                                    serde::de::value::MapAccessDeserializer::new(fields),
                                );
                            }
                            fields.push_value(key, &value);
                        }
                        // `type` late (the Go SDKs write it last): the
                        // object was read first, each field as its text.
                        fields.check_unique()?;
                        match fields.tag().as_deref().and_then($name::known_tag) {
                            Some(tag) => {
                                fields.remove("type");
                                $name::variant(
                                    tag,
                                    serde::de::value::MapAccessDeserializer::new(fields.access()),
                                )
                                .map_err(A::Error::custom)
                            }
                            None => fields.into_value().map($name::Other).map_err(A::Error::custom),
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

/// The fields of a tagged object whose `type` did not come first, in their
/// order, each kept as its JSON text: a value read into a variant from its
/// text keeps its keys' order (a tool's schema, a tool input), where a
/// `serde_json::Value` would sort them (without `preserve-order`).
#[derive(Default)]
pub(crate) struct LateFields {
    fields: Vec<(String, Box<serde_json::value::RawValue>)>,
}

impl LateFields {
    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Whether no field so far holds an object, so that each reads back as
    /// a `Value` with nothing to reorder (an array is taken when no `{` is
    /// anywhere in it).
    pub(crate) fn has_no_object(&self) -> bool {
        self.fields.iter().all(|(_, raw)| {
            let text = raw.get();
            let holds_object = match text.as_bytes().first() {
                Some(b'{') => true,
                Some(b'[') => text.contains('{'),
                _ => false,
            };
            !holds_object
        })
    }

    /// These fields (as values: see [`has_no_object`](Self::has_no_object)),
    /// then those still to come from `live`, as one map.
    pub(crate) fn then<A>(self, live: A) -> serde_json::Result<ThenLive<A>> {
        let mut early = Vec::with_capacity(self.fields.len());
        for (key, raw) in self.fields {
            early.push((
                key,
                serde_json::from_str(raw.get()).map_err(without_position)?,
            ));
        }
        Ok(ThenLive {
            early: early.into_iter(),
            value: None,
            live,
        })
    }

    pub(crate) fn push(&mut self, key: String, value: Box<serde_json::value::RawValue>) {
        self.fields.push((key, value));
    }

    pub(crate) fn push_value(&mut self, key: String, value: &serde_json::Value) {
        if let Ok(raw) = serde_json::value::to_raw_value(value) {
            self.push(key, raw);
        }
    }

    /// An error naming a key that came twice.
    pub(crate) fn check_unique<E: serde::de::Error>(&self) -> Result<(), E> {
        let mut keys: Vec<&str> = self.fields.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        match keys.windows(2).find(|w| w[0] == w[1]) {
            Some(w) => Err(duplicate_key(w[0])),
            None => Ok(()),
        }
    }

    /// The `type` field, when it is a string.
    pub(crate) fn tag(&self) -> Option<String> {
        let (_, raw) = self.fields.iter().find(|(k, _)| k == "type")?;
        serde_json::from_str(raw.get()).ok()
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.fields.retain(|(k, _)| k != key);
    }

    /// The fields as a map to read a variant from, each value parsed from
    /// its text (borrowed from here: the variants own what they read).
    pub(crate) fn access(&self) -> LateAccess<'_> {
        LateAccess {
            fields: self.fields.iter(),
            value: None,
        }
    }

    /// The object as a `serde_json::Value` (an error for text that no tree
    /// holds: see [`RawJson::to_value`]).
    pub(crate) fn into_value(self) -> serde_json::Result<serde_json::Value> {
        let mut map = serde_json::Map::new();
        for (key, raw) in self.fields {
            let value = serde_json::from_str(raw.get()).map_err(without_position)?;
            map.insert(key, value);
        }
        Ok(serde_json::Value::Object(map))
    }
}

/// An error read from one field's own text, without its position there
/// (which is not the body's: the caller's error says where in the body).
fn without_position(e: serde_json::Error) -> serde_json::Error {
    use serde::de::Error as _;
    let text = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    serde_json::Error::custom(text.strip_suffix(&at).unwrap_or(&text))
}

/// [`LateFields::then`]: the fields read before `type`, as values, then the
/// rest of the object straight from the input.
pub(crate) struct ThenLive<A> {
    early: std::vec::IntoIter<(String, serde_json::Value)>,
    /// The value of the early key last handed out.
    value: Option<serde_json::Value>,
    live: A,
}

impl<'de, A: serde::de::MapAccess<'de>> serde::de::MapAccess<'de> for ThenLive<A> {
    type Error = A::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.early.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(serde::de::value::StringDeserializer::new(key))
                    .map(Some)
            }
            None => self.live.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        use serde::de::Error as _;
        match self.value.take() {
            Some(value) => seed.deserialize(value).map_err(A::Error::custom),
            None => self.live.next_value_seed(seed),
        }
    }
}

/// [`LateFields`] read as a map.
pub(crate) struct LateAccess<'a> {
    fields: std::slice::Iter<'a, (String, Box<serde_json::value::RawValue>)>,
    /// The value of the key last handed out.
    value: Option<&'a str>,
}

impl<'a> serde::de::MapAccess<'a> for LateAccess<'a> {
    type Error = serde_json::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.fields.next() else {
            return Ok(None);
        };
        self.value = Some(value.get());
        seed.deserialize(serde::de::value::BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'a>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        use serde::de::Error as _;
        let text = self
            .value
            .take()
            .ok_or_else(|| serde_json::Error::custom("a value asked for before its key"))?;
        let mut de = serde_json::Deserializer::from_str(text);
        let value = seed.deserialize(&mut de).map_err(without_position)?;
        de.end().map_err(without_position)?;
        Ok(value)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len())
    }
}

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
                                    $extra.insert_new(key, || map.next_value())?;
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

/// The error for a key that came twice in one object (serde's own
/// `duplicate_field` takes only the names a type declares).
pub(crate) fn duplicate_key<E: serde::de::Error>(key: &str) -> E {
    E::custom(format_args!("duplicate field `{key}`"))
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
        assert_eq!(req.extra.get("top_logprobs"), Some(&json!(2)));
        assert_eq!(req.extra.get("logit_bias"), Some(&json!({"1": -1})));
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
        // Between: fields before `type` that hold no object are read again
        // as values, the rest straight; any object before it, and the whole
        // block is read from each field's text, so its keys keep their order.
        let between: ContentBlock =
            serde_json::from_str(r#"{"citations":[],"type":"text","text":"hi"}"#).unwrap();
        assert_eq!(first, between);
        for body in [
            r#"{"id":"t","name":"f","type":"tool_use","input":{"b":1,"a":[{"d":0,"c":0}]}}"#,
            r#"{"id":"t","input":{"b":1,"a":[{"d":0,"c":0}]},"type":"tool_use","name":"f"}"#,
            r#"{"id":"t","x":[{"z":0,"y":0}],"type":"tool_use","input":{"b":1,"a":[{"d":0,"c":0}]},"name":"f"}"#,
        ] {
            let block: ContentBlock = serde_json::from_str(body).unwrap();
            let ContentBlock::ToolUse(t) = &block else {
                panic!("{block:?}")
            };
            assert_eq!(t.input.get(), r#"{"b":1,"a":[{"d":0,"c":0}]}"#, "{body}");
        }
        assert!(matches!(&first, ContentBlock::Text(t) if t.text == "hi" && t.extra.len() == 1));

        for body in [
            r#"{"type":"text","text":5}"#,
            r#"{"text":5,"type":"text"}"#,
            r#"{"text":5,"type":"text","citations":[]}"#,
        ] {
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
            r#"{"text":"a","type":"text","text":"b"}"#,
            r#"{"x":1,"type":"text","text":"a","x":2}"#,
            r#"{"x":1,"type":"text","text":"a","type":"image"}"#,
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
    pub(super) fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            "[\u{0}-\u{1f} \"\\\\/\u{7f}\u{2028}a]{0,12}".prop_map(Value::from),
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
