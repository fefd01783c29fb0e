//! Reads a TOML file past each setting serde refuses, so that one pass finds every wrong
//! setting and every wrong `[[tokens]]` entry, each with its line, by the same rules (the
//! config types' own `Deserialize`) that `serve` applies.

use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::{line_at, place};
use crate::problem::Problem;

/// A file parsed as TOML: the values, with where each was written.
pub type Document<'t> = Spanned<DeTable<'t>>;

/// Reads `text`, the file at `path` (`what`: `config` or `tokens file`), as a `T`. Each
/// setting refused is reported in `problems`, in the order of the file, and left out, so a
/// setting keeps its default and a `[[tokens]]` entry is dropped; then the rest is read.
/// Fails only when the text is not TOML: the parser stops at the first syntax error.
/// Returns the document too, to find where a setting was written.
pub fn parse<'t, T: DeserializeOwned + Default>(
    path: &Path,
    what: &str,
    text: &'t str,
    problems: &mut Vec<Problem>,
) -> Result<(T, Document<'t>), Problem> {
    let mut document = DeTable::parse(text).map_err(|e| toml_problem(path, what, text, e))?;
    let mut refused = Vec::new();
    let value = loop {
        match T::deserialize(toml::de::Deserializer::from(document.clone())) {
            Ok(value) => break value,
            Err(e) => {
                let span = e.span();
                let left_out = span
                    .as_ref()
                    .is_some_and(|span| leave_out(document.get_mut(), span));
                refused.push((
                    span.map_or(0, |span| span.start),
                    toml_problem(path, what, text, e),
                ));
                // An error that points at nothing it can leave out ends the reading there.
                if !left_out {
                    break T::default();
                }
            }
        }
    };
    refused.sort_by_key(|(offset, _)| *offset);
    problems.extend(refused.into_iter().map(|(_, problem)| problem));
    Ok((value, document))
}

/// A TOML error as a problem at its line; `serve` shows the parser's own report, which
/// quotes the line.
fn toml_problem(path: &Path, what: &str, text: &str, mut e: toml::de::Error) -> Problem {
    e.set_input(Some(text));
    let line = e.span().map(|span| line_at(text, span.start));
    Problem::error(Some(place(path, line)), e.message())
        .reported_as(format!("{what} {}: {e}", path.display()))
}

/// Removes the innermost setting or array element that `span` falls in (its key or its
/// value); says whether there was one.
fn leave_out(table: &mut DeTable<'_>, span: &Range<usize>) -> bool {
    for (_, value) in table.iter_mut() {
        if leave_out_within(value.get_mut(), span) {
            return true;
        }
    }
    let at_fault = table
        .iter()
        .find(|(key, value)| covers(key.span(), span) || covers(value.span(), span))
        .map(|(key, _)| key.get_ref().to_string());
    at_fault.is_some_and(|key| table.remove(key.as_str()).is_some())
}

/// [`leave_out`] inside a value: a table's settings, or an array's elements.
fn leave_out_within(value: &mut DeValue<'_>, span: &Range<usize>) -> bool {
    match value {
        DeValue::Table(table) => leave_out(table, span),
        DeValue::Array(array) => {
            for item in array.iter_mut() {
                if leave_out_within(item.get_mut(), span) {
                    return true;
                }
            }
            if !array.iter().any(|item| covers(item.span(), span)) {
                return false;
            }
            let mut kept = DeArray::new();
            for item in array.iter().filter(|item| !covers(item.span(), span)) {
                kept.push(item.clone());
            }
            *array = kept;
            true
        }
        _ => false,
    }
}

fn covers(outer: Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}
