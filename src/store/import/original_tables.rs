//! The original server's tables read as the records it would have sent: each row validated
//! like an upload, task tags from `task_tags`, and of a record kept beside its tombstone, the
//! later of the two.

use std::collections::HashMap;

use rusqlite::Connection;
use rusqlite::types::Value as Sql;
use serde_json::{Map, Value};

use super::{is_inbox, version_at};
use crate::protocol::{Change, Kind, parse_change};
use crate::store::decide::{Decision, decide};

/// Tables only the original server writes; together they tell its database apart.
const ORIGINAL_TABLES: [&str; 5] = ["lists", "tags", "tasks", "task_tags", "tombstones"];

/// Whether schema `schema` (`main`, or an attached database) holds the original's tables.
pub fn holds_original_tables(conn: &Connection, schema: &str) -> rusqlite::Result<bool> {
    let found: usize = conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM {schema}.sqlite_master WHERE type = 'table' AND name IN ({})",
            quoted_list(&ORIGINAL_TABLES)
        ),
        [],
        |row| row.get(0),
    )?;
    Ok(found == ORIGINAL_TABLES.len())
}

/// The original's rows as validated changes.
pub struct Original {
    /// Lists, tags and tasks, in that order.
    pub records: Vec<Change>,
    pub tombstones: Vec<Change>,
}

impl Original {
    /// Reads every row of schema `schema`; a row no client could read goes to `skipped`,
    /// with its table, id and fault.
    pub fn read(
        tx: &Connection,
        schema: &str,
        skipped: &mut Vec<String>,
    ) -> rusqlite::Result<Original> {
        let links = tag_links(tx, schema)?;
        let mut records = Vec::new();
        let mut tombstones = Vec::new();
        let tables = [
            (
                "lists",
                "list",
                "id, name, description, icon, color, is_inbox, sort_order, created_at, updated_at",
            ),
            ("tags", "tag", "id, name, color, created_at, updated_at"),
            (
                "tasks",
                "task",
                "id, title, description, url, priority, completed, list_id, created_at, \
                 updated_at, completed_at, due_date",
            ),
            ("tombstones", "deleted", "id, record_type, deleted_at"),
        ];
        for (table, record_type, columns) in tables {
            let names: Vec<&str> = columns.split(", ").collect();
            let query = format!("SELECT {columns} FROM {schema}.{table} ORDER BY rowid");
            for row in rows(tx, &query)? {
                let mut body = Map::new();
                body.insert("type".into(), Value::from(record_type));
                for (name, value) in names.iter().zip(row) {
                    if let Some(value) = json_field(name, value) {
                        body.insert((*name).into(), value);
                    }
                }
                if record_type == "task" {
                    let id = body.get("id").and_then(Value::as_str).unwrap_or_default();
                    let tags = links.get(id).cloned().unwrap_or_default();
                    body.insert("tag_ids".into(), Value::Array(tags));
                }
                let id = body
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                match parse_change(&format!("{table} {id}"), Value::Object(body)) {
                    Ok(change) if change.deleted => tombstones.push(change),
                    Ok(change) => records.push(change),
                    Err(fault) => skipped.push(fault.to_string()),
                }
            }
        }
        Ok(Original {
            records,
            tombstones,
        })
    }

    /// The original kept a record beside its tombstone when a newer update brought it back;
    /// of the two, the later one stands, as it would here (instants no later than `now`).
    pub fn resolve_deletes(self, now: i64) -> (Vec<Change>, Vec<Change>) {
        let mut tombstones: HashMap<(Kind, String), Change> = self
            .tombstones
            .into_iter()
            .map(|tombstone| ((tombstone.kind, tombstone.id.clone()), tombstone))
            .collect();
        let mut records = Vec::new();
        for record in self.records {
            let key = (record.kind, record.id.clone());
            let stands = match tombstones.get(&key) {
                None => true,
                Some(_) if is_inbox(&record) => true,
                Some(tombstone) => {
                    decide(&version_at(&record, now), Some(&version_at(tombstone, now)))
                        == Decision::Replace
                }
            };
            if stands {
                tombstones.remove(&key);
                records.push(record);
            }
        }
        let mut tombstones: Vec<Change> = tombstones.into_values().collect();
        tombstones.sort_by(|a, b| (a.version, &a.id).cmp(&(b.version, &b.id)));
        (records, tombstones)
    }
}

/// Each task's tag ids from `task_tags`, in the order the original sent them.
fn tag_links(tx: &Connection, schema: &str) -> rusqlite::Result<HashMap<String, Vec<Value>>> {
    let query = format!("SELECT task_id, tag_id FROM {schema}.task_tags ORDER BY task_id, tag_id");
    let mut links: HashMap<String, Vec<Value>> = HashMap::new();
    for row in rows(tx, &query)? {
        if let Ok([Sql::Text(task), Sql::Text(tag)]) = <[Sql; 2]>::try_from(row) {
            links.entry(task).or_default().push(Value::from(tag));
        }
    }
    Ok(links)
}

/// A column as the original's own server would have sent it: its booleans as `true`/`false`,
/// and a missing tag `updated_at` left out (this server fills it on the way out).
fn json_field(name: &str, value: Sql) -> Option<Value> {
    Some(match value {
        Sql::Null if name == "updated_at" => return None,
        Sql::Null => Value::Null,
        Sql::Integer(number) if matches!(name, "completed" | "is_inbox") => {
            Value::Bool(number != 0)
        }
        Sql::Integer(number) => Value::from(number),
        Sql::Real(number) => Value::from(number),
        Sql::Text(text) => Value::from(text),
        Sql::Blob(bytes) => Value::from(String::from_utf8_lossy(&bytes).into_owned()),
    })
}

fn rows(tx: &Connection, query: &str) -> rusqlite::Result<Vec<Vec<Sql>>> {
    let mut statement = tx.prepare(query)?;
    let width = statement.column_count();
    let rows = statement.query_map([], |row| {
        (0..width).map(|index| row.get::<_, Sql>(index)).collect()
    })?;
    rows.collect()
}

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
