//! JSON text decoded within limits. A tree of `serde_json::Value`s costs some 50 bytes a
//! value however short its text, so a record is counted before it is decoded; and a string
//! anywhere in a record may be held to a length.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::Invalid;

/// The most JSON values (fields, array items, and what they hold) one record or top-level
/// field may hold: its tree then takes at most about half a megabyte more than its text.
/// Real records hold a few dozen.
const MAX_VALUES: usize = 10_000;

/// Decodes `raw` into a tree of values, unless it holds more than [`MAX_VALUES`]; `at`
/// names it in the error.
pub fn decode(at: &str, raw: &RawValue) -> Result<Value, Invalid> {
    let malformed = |e: serde_json::Error| Invalid(format!("{at}: {e}"));
    let mut count = 0;
    ValueCount(&mut count)
        .deserialize(&mut serde_json::Deserializer::from_str(raw.get()))
        .map_err(malformed)?;
    if count > MAX_VALUES {
        return Err(Invalid(format!(
            "{at}: holds {count} JSON values (fields, array items and what they hold), over \
             the {MAX_VALUES} this server decodes in one piece; no Tickit client sends that"
        )));
    }
    serde_json::from_str(raw.get()).map_err(malformed)
}

/// Counts the JSON values in a document (every scalar, array and object, nested ones
/// included) into `.0`, keeping none of them.
struct ValueCount<'a>(&'a mut usize);

impl<'de> DeserializeSeed<'de> for ValueCount<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueCount<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        *self.0 += 1;
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        *self.0 += 1;
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        *self.0 += 1;
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        *self.0 += 1;
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        *self.0 += 1;
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        *self.0 += 1;
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let count = self.0;
        *count += 1;
        while items.next_element_seed(ValueCount(&mut *count))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<(), A::Error> {
        let count = self.0;
        *count += 1;
        while fields.next_key::<IgnoredAny>()?.is_some() {
            fields.next_value_seed(ValueCount(&mut *count))?;
        }
        Ok(())
    }
}

/// The first string in `record`, a value or a field name at any depth, longer than `limit`
/// bytes: where it is (`.description`, `.notes[2]`) and its length.
pub fn overlong_text(record: &Map<String, Value>, limit: usize) -> Option<(String, usize)> {
    record.iter().find_map(|(name, value)| {
        if name.len() > limit {
            return Some((".<a field name>".into(), name.len()));
        }
        let (below, length) = overlong_in(value, limit)?;
        Some((format!(".{name}{below}"), length))
    })
}

/// [`overlong_text`] within one value; the path is relative to it.
fn overlong_in(value: &Value, limit: usize) -> Option<(String, usize)> {
    match value {
        Value::String(text) => (text.len() > limit).then(|| (String::new(), text.len())),
        Value::Array(items) => items.iter().enumerate().find_map(|(position, item)| {
            let (below, length) = overlong_in(item, limit)?;
            Some((format!("[{position}]{below}"), length))
        }),
        Value::Object(fields) => overlong_text(fields, limit),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}
