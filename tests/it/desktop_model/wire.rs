//! The desktop client's wire and database formats: the sync response as it parses it
//! (strictly, as serde does into its types), and times as chrono writes them.

use jiff::Timestamp;
use serde_json::Value;

use super::{List, Tag, Task};

/// A sync response as the client parses it into `SyncResponse`, split the way it applies it.
pub struct Response {
    pub server_time: Timestamp,
    pub lists: Vec<(String, List)>,
    pub tags: Vec<(String, Tag)>,
    /// Each task with its tag ids.
    pub tasks: Vec<(String, Task, Vec<String>)>,
    /// Each delete's id and record type.
    pub deletes: Vec<(String, String)>,
}

impl Response {
    /// Parses strictly, as serde does into the client's types: every required field present
    /// with its type, UUIDs, RFC 3339 times, known priorities and record types.
    pub fn parse(body: &Value) -> Result<Response, String> {
        let mut response = Response {
            server_time: time_field(body, "server_time")?,
            lists: Vec::new(),
            tags: Vec::new(),
            tasks: Vec::new(),
            deletes: Vec::new(),
        };
        for conflict in array_field(body, "conflicts")? {
            uuid_value(conflict, "conflicts[]")?;
        }
        for (index, record) in array_field(body, "changes")?.iter().enumerate() {
            response
                .add(record)
                .map_err(|error| format!("changes[{index}]: {error}"))?;
        }
        Ok(response)
    }

    /// Parses one record of `changes` into its group.
    fn add(&mut self, record: &Value) -> Result<(), String> {
        match str_field(record, "type")? {
            "task" => self.tasks.push(parse_task(record)?),
            "list" => self.lists.push(parse_list(record)?),
            "tag" => self.tags.push(parse_tag(record)?),
            "deleted" => {
                let record_type = str_field(record, "record_type")?;
                if !["task", "list", "tag", "task_tag"].contains(&record_type) {
                    return Err(format!("unknown record_type {record_type:?}"));
                }
                time_field(record, "deleted_at")?;
                self.deletes
                    .push((uuid_field(record, "id")?, record_type.to_owned()));
            }
            "task_tag" => {
                uuid_field(record, "task_id")?;
                uuid_field(record, "tag_id")?;
                time_field(record, "created_at")?;
            }
            other => return Err(format!("unknown type {other:?}")),
        }
        Ok(())
    }
}

/// A task record: (id, row, tag ids).
fn parse_task(record: &Value) -> Result<(String, Task, Vec<String>), String> {
    let priority = str_field(record, "priority")?;
    if !["low", "medium", "high", "urgent"].contains(&priority) {
        return Err(format!("unknown priority {priority:?}"));
    }
    let tag_ids = array_field(record, "tag_ids")?
        .iter()
        .map(|tag| uuid_value(tag, "tag_ids[]"))
        .collect::<Result<Vec<_>, _>>()?;
    let task = Task {
        title: str_field(record, "title")?.to_owned(),
        description: optional_str(record, "description")?,
        url: optional_str(record, "url")?,
        priority: priority.to_owned(),
        completed: bool_field(record, "completed")?,
        list_id: uuid_field(record, "list_id")?,
        created_at: time_field(record, "created_at")?,
        updated_at: time_field(record, "updated_at")?,
        completed_at: optional_time(record, "completed_at")?,
        due_date: optional_due_date(record)?,
    };
    Ok((uuid_field(record, "id")?, task, tag_ids))
}

/// A list record: (id, row).
fn parse_list(record: &Value) -> Result<(String, List), String> {
    let sort_order = record["sort_order"]
        .as_i64()
        .filter(|order| i32::try_from(*order).is_ok())
        .ok_or("sort_order: not an i32")?;
    let list = List {
        name: str_field(record, "name")?.to_owned(),
        description: optional_str(record, "description")?,
        icon: str_field(record, "icon")?.to_owned(),
        color: optional_str(record, "color")?,
        is_inbox: bool_field(record, "is_inbox")?,
        sort_order,
        created_at: time_field(record, "created_at")?,
        updated_at: time_field(record, "updated_at")?,
    };
    Ok((uuid_field(record, "id")?, list))
}

/// A tag record: (id, row).
fn parse_tag(record: &Value) -> Result<(String, Tag), String> {
    let tag = Tag {
        name: str_field(record, "name")?.to_owned(),
        color: str_field(record, "color")?.to_owned(),
        created_at: time_field(record, "created_at")?,
        updated_at: time_field(record, "updated_at")?,
    };
    Ok((uuid_field(record, "id")?, tag))
}

fn str_field<'a>(record: &'a Value, field: &str) -> Result<&'a str, String> {
    record[field]
        .as_str()
        .ok_or_else(|| format!("{field}: not a string in {record}"))
}

fn bool_field(record: &Value, field: &str) -> Result<bool, String> {
    record[field]
        .as_bool()
        .ok_or_else(|| format!("{field}: not a bool in {record}"))
}

fn array_field<'a>(record: &'a Value, field: &str) -> Result<&'a Vec<Value>, String> {
    record[field]
        .as_array()
        .ok_or_else(|| format!("{field}: not an array"))
}

/// An `Option<String>`: missing or null is none.
fn optional_str(record: &Value, field: &str) -> Result<Option<String>, String> {
    match &record[field] {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        other => Err(format!("{field}: {other} is not a string")),
    }
}

fn uuid_field(record: &Value, field: &str) -> Result<String, String> {
    uuid_value(&record[field], field)
}

/// A UUID, in the hyphenated lower-case form the client writes back.
fn uuid_value(value: &Value, field: &str) -> Result<String, String> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("{field}: {value} is not a string"))?;
    uuid::Uuid::parse_str(text)
        .map(|id| id.hyphenated().to_string())
        .map_err(|error| format!("{field}: {text:?} is not a UUID ({error})"))
}

fn time_field(record: &Value, field: &str) -> Result<Timestamp, String> {
    let text = str_field(record, field)?;
    parse_time(text).ok_or_else(|| format!("{field}: {text:?} is not RFC 3339"))
}

fn optional_time(record: &Value, field: &str) -> Result<Option<Timestamp>, String> {
    match &record[field] {
        Value::Null => Ok(None),
        _ => time_field(record, field).map(Some),
    }
}

/// `due_date`: RFC 3339, or a bare date meaning 23:59:59 UTC that day; empty is none.
fn optional_due_date(record: &Value) -> Result<Option<Timestamp>, String> {
    match &record["due_date"] {
        Value::Null => Ok(None),
        Value::String(text) if text.is_empty() => Ok(None),
        Value::String(text) => parse_time(text)
            .or_else(|| text.parse::<jiff::civil::Date>().ok().map(date_end))
            .map(Some)
            .ok_or_else(|| format!("due_date: {text:?} is neither RFC 3339 nor a date")),
        other => Err(format!("due_date: {other} is not a string")),
    }
}

/// An RFC 3339 time, as chrono's `parse_from_rfc3339` reads it. chrono reads on to the end
/// of year 9999 (in UTC), where jiff's `Timestamp` ends about a day earlier: the model holds
/// an instant in those last hours as `Timestamp::MAX`.
pub fn parse_time(text: &str) -> Option<Timestamp> {
    if let Ok(time) = text.parse() {
        return Some(time);
    }
    let pieces = jiff::fmt::temporal::Pieces::parse(text).ok()?;
    let local = pieces.date().to_datetime(pieces.time()?);
    let offset = pieces.to_numeric_offset()?;
    let utc = local.checked_sub(jiff::SignedDuration::from_secs(offset.seconds().into()));
    utc.ok()
        .filter(|utc| utc.date().year() == 9999)
        .map(|_| Timestamp::MAX)
}

/// 23:59:59 UTC on `date`, as the client makes due dates.
pub fn date_end(date: jiff::civil::Date) -> Timestamp {
    date.at(23, 59, 59, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("a due date is in range")
        .timestamp()
}

/// chrono's `to_rfc3339()`, what the database holds: 0, 3, 6 or 9 fraction digits,
/// whichever is exact, and `+00:00`.
pub fn db_time(time: Timestamp) -> String {
    format!("{}+00:00", seconds_and_fraction(time))
}

/// chrono's serde form, what the client sends: the same digits, and `Z`.
pub fn wire_time(time: Timestamp) -> String {
    format!("{}Z", seconds_and_fraction(time))
}

fn seconds_and_fraction(time: Timestamp) -> String {
    let nanos = time.subsec_nanosecond();
    let fraction = if nanos == 0 {
        String::new()
    } else if nanos % 1_000_000 == 0 {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    };
    format!("{}{fraction}", time.strftime("%Y-%m-%dT%H:%M:%S"))
}
