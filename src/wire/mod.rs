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
//! silently demoted to `Other`.

pub mod anthropic;
pub mod openai;

/// A JSON object: the fields a type does not name.
pub type Map = serde_json::Map<String, serde_json::Value>;

/// `true` for an empty map; used to skip empty `extra` maps when serialising.
pub(crate) fn is_empty_map(map: &Map) -> bool {
    map.is_empty()
}

/// Serde helpers for fields whose presence matters and that may be `null`:
/// `None` = absent, `Some(None)` = `null`, `Some(Some(v))` = a value.
pub(crate) mod nullable {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn deserialize<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }

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
                use serde::de::Error as _;
                let mut map = <$crate::wire::Map as serde::Deserialize>::deserialize(d)?;
                let tag = match map.get("type") {
                    Some(serde_json::Value::String(tag)) => tag.as_str(),
                    _ => return Ok(Self::Other(serde_json::Value::Object(map))),
                };
                match tag {
                    $( $tag => {
                        map.remove("type");
                        <$ty as serde::Deserialize>::deserialize(serde_json::Value::Object(map))
                            .map(Self::$variant)
                            .map_err(|e| D::Error::custom(format_args!(
                                concat!("invalid `", $tag, "` ", stringify!($name), ": {}"), e)))
                    } )*
                    _ => Ok(Self::Other(serde_json::Value::Object(map))),
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
                        f.write_str($expecting)
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
