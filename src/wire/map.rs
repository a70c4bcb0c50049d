//! [`Map`]: the fields of a JSON object that its type does not name.

use std::fmt;

use serde_json::Value;

/// The JSON object inside a non-empty [`Map`].
type Object = serde_json::Map<String, Value>;

/// A JSON object's fields that its type does not name (the `extra` of the
/// wire and canonical types), kept to be passed on.
///
/// It is a `serde_json::Map` that is only built when the first field is
/// added: nearly every such map is empty, and an empty `serde_json::Map`
/// still costs a walk of its tree to drop (~70 instructions by callgrind,
/// ~19 of them in a small request). An empty `Map` is one null pointer.
/// Keys keep `serde_json::Map`'s order: sorted, or the order they came in
/// with the `preserve-order` feature.
///
/// ```
/// use llmgate::wire::Map;
/// use serde_json::json;
///
/// let mut extra = Map::new();
/// assert!(extra.is_empty());
/// extra.insert("user".into(), json!("u-42"));
/// assert_eq!(extra.get("user"), Some(&json!("u-42")));
/// assert_eq!(serde_json::to_string(&extra).unwrap(), r#"{"user":"u-42"}"#);
/// ```
#[derive(Clone, Default)]
pub struct Map(Option<Box<Object>>);

impl Map {
    /// An empty map (allocates nothing).
    pub const fn new() -> Self {
        Self(None)
    }

    /// `true` when the map has no field.
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|m| m.is_empty())
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.len())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.as_ref()?.get(key)
    }

    /// The value of `key`, to change in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.as_mut()?.get_mut(key)
    }

    /// `true` when the map has `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`; returns the value it had.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        self.object().insert(key, value)
    }

    /// Takes `key` out; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.as_mut()?.remove(key)
    }

    /// The fields, in the map's order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.0.as_ref().map(|m| m.iter()))
    }

    /// The map as a `serde_json::Map`.
    pub fn into_object(self) -> serde_json::Map<String, Value> {
        self.0.map(|m| *m).unwrap_or_default()
    }

    /// The object, built on first use.
    fn object(&mut self) -> &mut Object {
        self.0.get_or_insert_with(Box::default)
    }

    /// Adds a field read by `value` under `key`; a key that came already is
    /// an error (and its second value is not read).
    pub(crate) fn insert_new<E: serde::de::Error>(
        &mut self,
        key: String,
        value: impl FnOnce() -> Result<Value, E>,
    ) -> Result<(), E> {
        match self.object().entry(key) {
            serde_json::map::Entry::Vacant(slot) => {
                slot.insert(value()?);
                Ok(())
            }
            serde_json::map::Entry::Occupied(slot) => Err(super::duplicate_key(slot.key())),
        }
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Maps are equal when they hold the same fields.
impl PartialEq for Map {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => a == b,
            _ => self.is_empty() && other.is_empty(),
        }
    }
}

impl From<serde_json::Map<String, Value>> for Map {
    fn from(object: serde_json::Map<String, Value>) -> Self {
        Self((!object.is_empty()).then(|| Box::new(object)))
    }
}

impl From<Map> for Value {
    fn from(map: Map) -> Self {
        Value::Object(map.into_object())
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(fields: I) -> Self {
        Object::from_iter(fields).into()
    }
}

impl Extend<(String, Value)> for Map {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, fields: I) {
        let mut fields = fields.into_iter().peekable();
        if fields.peek().is_some() {
            self.object().extend(fields);
        }
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter(self.0.map(|m| m.into_iter()))
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a String, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The fields of a [`Map`], borrowed.
#[derive(Debug, Clone)]
pub struct Iter<'a>(Option<serde_json::map::Iter<'a>>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.as_mut()?.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.as_ref().map_or((0, Some(0)), |i| i.size_hint())
    }
}

/// The fields of a [`Map`], taken out of it.
#[derive(Debug)]
pub struct IntoIter(Option<serde_json::map::IntoIter>);

impl Iterator for IntoIter {
    type Item = (String, Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.as_mut()?.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.as_ref().map_or((0, Some(0)), |i| i.size_hint())
    }
}

impl serde::Serialize for Map {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Map {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Object::deserialize(d).map(Map::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(fields: &[(&str, Value)]) -> Map {
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn an_empty_map_holds_nothing_and_equals_any_other_empty_one() {
        let mut emptied = map(&[("a", json!(1))]);
        assert_eq!(emptied.remove("a"), Some(json!(1)));
        assert!(emptied.is_empty());
        assert_eq!(emptied.len(), 0);
        assert_eq!(emptied, Map::new());
        assert_eq!(Map::new(), emptied);
        assert_eq!(Map::from(serde_json::Map::new()).0, None);
        assert_eq!(Map::from_iter(std::iter::empty()).0, None);
        let mut extended = Map::new();
        extended.extend(Map::new());
        assert_eq!(extended.0, None);
        assert_ne!(map(&[("a", json!(1))]), Map::new());
        assert_ne!(Map::new(), map(&[("a", json!(1))]));
        assert_ne!(map(&[("a", json!(1))]), map(&[("a", json!(2))]));
        // One pointer: the wire and canonical types move their maps often.
        assert_eq!(size_of::<Map>(), size_of::<usize>());
    }

    #[test]
    fn fields_go_in_and_come_out() {
        let mut m = Map::new();
        assert_eq!(m.insert("b".into(), json!(2)), None);
        assert_eq!(m.insert("a".into(), json!(1)), None);
        assert_eq!(m.insert("b".into(), json!(3)), Some(json!(2)));
        assert_eq!(m.len(), 2);
        assert!(m.contains_key("a"));
        assert!(!m.contains_key("c"));
        *m.get_mut("a").unwrap() = json!("x");
        assert_eq!(m.get("a"), Some(&json!("x")));
        assert_eq!(m.get_mut("c"), None);
        m.extend([("c".to_owned(), json!(null))]);
        let borrowed: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let owned: Vec<_> = m.clone().into_iter().collect();
        assert_eq!(borrowed, owned);
        assert_eq!(m.iter().size_hint(), (3, Some(3)));
        assert_eq!(Value::from(m.clone()), json!({"a": "x", "b": 3, "c": null}));
        assert_eq!(
            format!("{:?}", map(&[("a", json!(1))])),
            r#"{"a": Number(1)}"#
        );
        assert_eq!(Map::new().iter().next(), None);
        assert_eq!(Map::new().into_iter().next(), None);
    }

    #[test]
    fn reads_and_writes_as_a_json_object() {
        let m: Map = serde_json::from_str(r#"{"x":[1,2],"y":{"z":true}}"#).unwrap();
        assert_eq!(m, map(&[("x", json!([1, 2])), ("y", json!({"z": true}))]));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"x":[1,2],"y":{"z":true}}"#
        );
        let empty: Map = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.0, None);
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
        assert!(serde_json::from_str::<Map>("[1]").is_err());
    }

    #[test]
    fn a_key_read_twice_is_an_error_and_its_second_value_is_not_read() {
        let mut m = Map::new();
        m.insert_new::<serde_json::Error>("k".into(), || Ok(json!(1)))
            .unwrap();
        let mut read = false;
        let e = m
            .insert_new::<serde_json::Error>("k".into(), || {
                read = true;
                Ok(json!(2))
            })
            .unwrap_err();
        assert_eq!(e.to_string(), "duplicate field `k`");
        assert!(!read);
        assert_eq!(m.get("k"), Some(&json!(1)));
    }
}
