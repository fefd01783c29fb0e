//! The wire format of `POST /api/v1/sync`: strict validation of what clients send, and the
//! defaults every outgoing record needs so the strictest client (desktop tickit) can parse it.
//!
//! A request's records stay JSON text, slices of its body, until the writer applies them one
//! at a time: a request waiting for the writer costs about its body's size, not a tree of
//! values many times that. Each record is decoded into a JSON object only to be validated or
//! applied, so fields this server does not know survive a round trip and strings (timestamps
//! included) go back out as they came.

mod bounded;

use std::fmt;

use hyper::body::Bytes;
use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::error::Category;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::timestamp;

/// The kinds of record the clients sync, in the order responses list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    List,
    Tag,
    Task,
    TaskTag,
}

impl Kind {
    /// The spelling used in `type` and in a tombstone's `record_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::List => "list",
            Kind::Tag => "tag",
            Kind::Task => "task",
            Kind::TaskTag => "task_tag",
        }
    }

    /// Parses a `record_type` (or a stored kind column).
    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "list" => Some(Kind::List),
            "tag" => Some(Kind::Tag),
            "task" => Some(Kind::Task),
            "task_tag" => Some(Kind::TaskTag),
            _ => None,
        }
    }
}

/// A parsed and validated sync request.
#[derive(Debug)]
pub struct SyncRequest {
    /// The device's own id; changes it uploads are never echoed back to it.
    pub device_id: String,
    /// Instant (Unix nanoseconds) of the client's `last_sync`; `None` asks for everything.
    pub last_sync: Option<i64>,
    pub changes: Vec<ReceivedChange>,
}

/// One incoming record version (a record or a tombstone), validated: what the store reads
/// of every change before it applies any, and the record itself as the JSON text it came as.
#[derive(Debug)]
pub struct ReceivedChange {
    pub kind: Kind,
    /// The record's identity within its kind, exactly as the client sent it.
    pub id: String,
    /// True for a `deleted` record (a tombstone).
    pub deleted: bool,
    /// The version's instant in Unix nanoseconds: `updated_at`, or `deleted_at` for a tombstone.
    pub version: i64,
    /// True when the record says `"is_inbox": true` (a list that is its device's inbox).
    pub is_inbox: bool,
    /// The whole object as sent, `type` included: a slice of the request body.
    text: Bytes,
}

impl ReceivedChange {
    /// The change as the store applies it, its record decoded from the text. It was decoded
    /// and validated once already, so this fails only if that text was somehow altered.
    pub fn decode(&self) -> Result<Change, Invalid> {
        let body = serde_json::from_slice(&self.text).map_err(|e| {
            Invalid(format!(
                "{} {}: its text no longer decodes ({e})",
                self.kind.as_str(),
                self.id
            ))
        })?;
        Ok(Change {
            kind: self.kind,
            id: self.id.clone(),
            deleted: self.deleted,
            version: self.version,
            body,
        })
    }
}

/// One record version as the store applies it: validated, and its object decoded.
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: Kind,
    /// The record's identity within its kind, exactly as the client sent it.
    pub id: String,
    /// True for a `deleted` record (a tombstone).
    pub deleted: bool,
    /// The version's instant in Unix nanoseconds: `updated_at`, or `deleted_at` for a tombstone.
    pub version: i64,
    /// The whole object as sent, `type` included.
    pub body: Map<String, Value>,
}

/// Why a request was refused; the message names the change and field at fault.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// How much one request may carry: the `[sync]` settings of the config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `max_records_per_request`: a request with more records is refused whole.
    pub max_records: usize,
    /// `max_text_bytes`: a longer string anywhere in a record refuses the request.
    pub max_text_bytes: usize,
}

/// Why a request was refused, by the answer it gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It breaks the protocol or a limit on one record: 400 Bad Request.
    Invalid(Invalid),
    /// It carries more records than `[sync] max_records_per_request`: 413 Content Too Large.
    TooManyRecords { count: usize, limit: usize },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Invalid(invalid) => invalid.fmt(f),
            Refusal::TooManyRecords { count, limit } => write!(
                f,
                "the request carries {count} records, over this server's limit of {limit} \
                 per request; raise [sync] max_records_per_request in the server's config.toml"
            ),
        }
    }
}

impl From<Invalid> for Refusal {
    fn from(invalid: Invalid) -> Refusal {
        Refusal::Invalid(invalid)
    }
}

const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];

/// The top level of a request, its fields left as text.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    device_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    last_sync: Option<&'a RawValue>,
    #[serde(borrow, default)]
    changes: Option<&'a RawValue>,
}

/// Parses and validates a request body; any fault refuses the whole request. The records
/// stay in `body`, which the request keeps.
pub fn parse_request(body: Bytes, limits: &Limits) -> Result<SyncRequest, Refusal> {
    const NOT_AN_OBJECT: &str =
        "request body must be a JSON object with device_id, last_sync and changes";
    let envelope: Envelope = serde_json::from_slice(&body).map_err(|e| match e.classify() {
        Category::Data => Invalid(format!("{NOT_AN_OBJECT} ({e})")),
        _ => Invalid(format!("request body is not valid JSON: {e}")),
    })?;
    // A derived struct also reads from an array of its fields.
    if !body.trim_ascii_start().starts_with(b"{") {
        return Err(Invalid(NOT_AN_OBJECT.into()).into());
    }
    let mut top = Map::new();
    for (field, raw) in [
        ("device_id", envelope.device_id),
        ("last_sync", envelope.last_sync),
    ] {
        if let Some(raw) = raw {
            top.insert(field.into(), bounded::decode(field, raw)?);
        }
    }
    let fields = Fields {
        at: String::new(),
        obj: &top,
    };
    let device_id = fields.uuid("device_id")?.to_string();
    let last_sync = fields.optional_timestamp("last_sync")?;
    let changes = match envelope.changes {
        None => Vec::new(),
        Some(changes) => receive_changes(&body, changes, limits)?,
    };
    Ok(SyncRequest {
        device_id,
        last_sync,
        changes,
    })
}

/// Validates the `changes` array one record at a time, keeping each as a slice of `body`.
/// Past the record limit they are only counted, so the answer can say how many there were.
fn receive_changes(
    body: &Bytes,
    changes: &RawValue,
    limits: &Limits,
) -> Result<Vec<ReceivedChange>, Refusal> {
    let mut deserializer = serde_json::Deserializer::from_str(changes.get());
    let read = deserializer
        .deserialize_seq(ChangesVisitor { body, limits })
        .map_err(|_| Invalid("changes: must be an array of records".into()))?;
    if read.count > limits.max_records {
        return Err(Refusal::TooManyRecords {
            count: read.count,
            limit: limits.max_records,
        });
    }
    match read.fault {
        Some(fault) => Err(fault.into()),
        None => Ok(read.changes),
    }
}

/// Reads the `changes` array: see [`receive_changes`].
struct ChangesVisitor<'a> {
    body: &'a Bytes,
    limits: &'a Limits,
}

/// What [`ChangesVisitor`] read: the changes up to the first fault, and how many there were.
struct ReadChanges {
    changes: Vec<ReceivedChange>,
    count: usize,
    fault: Option<Invalid>,
}

impl<'de> Visitor<'de> for ChangesVisitor<'_> {
    type Value = ReadChanges;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<ReadChanges, A::Error> {
        let mut read = ReadChanges {
            changes: Vec::new(),
            count: 0,
            fault: None,
        };
        while let Some(item) = items.next_element::<&RawValue>()? {
            if read.count < self.limits.max_records && read.fault.is_none() {
                let at = format!("changes[{}]", read.count);
                match receive_change(&at, item, self.body, self.limits) {
                    Ok(change) => read.changes.push(change),
                    Err(fault) => read.fault = Some(fault),
                }
            }
            read.count += 1;
        }
        Ok(read)
    }
}

/// Validates one record, `item`, a slice of `body`; `at` names it in the error.
fn receive_change(
    at: &str,
    item: &RawValue,
    body: &Bytes,
    limits: &Limits,
) -> Result<ReceivedChange, Invalid> {
    let record = as_object(at, bounded::decode(at, item)?)?;
    if let Some((path, length)) = bounded::overlong_text(&record, limits.max_text_bytes) {
        return Err(Invalid(format!(
            "{at}{path}: is {length} bytes long, over this server's limit of {} bytes per \
             text field; shorten it, or raise [sync] max_text_bytes in the server's config.toml",
            limits.max_text_bytes
        )));
    }
    let fields = Fields {
        at: at.to_owned(),
        obj: &record,
    };
    let (kind, id, deleted, version) = validate_record(&fields)?;
    Ok(ReceivedChange {
        kind,
        id,
        deleted,
        version,
        is_inbox: record.get("is_inbox") == Some(&Value::Bool(true)),
        text: body.slice_ref(item.get().as_bytes()),
    })
}

fn as_object(at: &str, item: Value) -> Result<Map<String, Value>, Invalid> {
    match item {
        Value::Object(body) => Ok(body),
        _ => Err(Invalid(format!("{at}: must be a JSON object"))),
    }
}

/// Parses and validates one record; `at` names it in the error (`changes[3]`).
pub fn parse_change(at: &str, item: Value) -> Result<Change, Invalid> {
    let body = as_object(at, item)?;
    let fields = Fields {
        at: at.to_owned(),
        obj: &body,
    };
    let (kind, id, deleted, version) = validate_record(&fields)?;
    Ok(Change {
        kind,
        id,
        deleted,
        version,
        body,
    })
}

/// Validates a record's fields for its type; returns its kind, id, whether it is a
/// tombstone, and its version's instant.
fn validate_record(fields: &Fields) -> Result<(Kind, String, bool, i64), Invalid> {
    let record_type = fields.string("type")?;
    Ok(match record_type {
        "task" => {
            validate_task(fields)?;
            let id = fields.uuid_text("id")?;
            (Kind::Task, id, false, fields.timestamp("updated_at")?)
        }
        "list" => {
            fields.string("name")?;
            fields.optional_string("description")?;
            fields.optional_string("icon")?;
            fields.optional_string("color")?;
            fields.optional_bool("is_inbox")?;
            fields.optional_i32("sort_order")?;
            fields.timestamp("created_at")?;
            let id = fields.uuid_text("id")?;
            (Kind::List, id, false, fields.timestamp("updated_at")?)
        }
        "tag" => {
            fields.string("name")?;
            fields.optional_string("color")?;
            let created = fields.timestamp("created_at")?;
            let version = fields.optional_timestamp("updated_at")?.unwrap_or(created);
            (Kind::Tag, fields.uuid_text("id")?, false, version)
        }
        "task_tag" => {
            let task = fields.uuid("task_id")?;
            let tag = fields.uuid("tag_id")?;
            let version = fields.timestamp("created_at")?;
            (Kind::TaskTag, task_tag_id(task, tag), false, version)
        }
        "deleted" => {
            let id = fields.uuid_text("id")?;
            let record_type = fields.string("record_type")?;
            let kind = Kind::parse(record_type).ok_or_else(|| {
                fields.fault(
                    "record_type",
                    &format!("must be one of task, list, tag, task_tag (got {record_type:?})"),
                )
            })?;
            (kind, id, true, fields.timestamp("deleted_at")?)
        }
        other => {
            return Err(fields.fault(
                "type",
                &format!("must be one of task, list, tag, task_tag, deleted (got {other:?})"),
            ));
        }
    })
}

fn validate_task(fields: &Fields) -> Result<(), Invalid> {
    fields.string("title")?;
    fields.optional_string("description")?;
    fields.optional_string("url")?;
    let priority = fields.string("priority")?;
    if !PRIORITIES.contains(&priority) {
        return Err(fields.fault(
            "priority",
            &format!("must be one of low, medium, high, urgent (got {priority:?})"),
        ));
    }
    fields.bool("completed")?;
    fields.uuid("list_id")?;
    fields.optional_uuid_array("tag_ids")?;
    fields.timestamp("created_at")?;
    fields.timestamp("updated_at")?;
    fields.optional_timestamp("completed_at")?;
    fields.optional_due_date("due_date")?;
    Ok(())
}

/// The identity of a task-tag link, which has no id of its own.
fn task_tag_id(task: Uuid, tag: Uuid) -> String {
    format!("{task}/{tag}")
}

/// Typed access to one object's fields, producing errors that name the field.
struct Fields<'a> {
    /// Where the object sits in the request, e.g. `changes[3]`; empty for the top level.
    at: String,
    obj: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn fault(&self, field: &str, problem: &str) -> Invalid {
        if self.at.is_empty() {
            Invalid(format!("{field}: {problem}"))
        } else {
            Invalid(format!("{}.{field}: {problem}", self.at))
        }
    }

    /// A field that may be absent or null.
    fn present(&self, field: &str) -> Option<&Value> {
        self.obj.get(field).filter(|value| !value.is_null())
    }

    fn required(&self, field: &str) -> Result<&Value, Invalid> {
        self.present(field)
            .ok_or_else(|| self.fault(field, "is required"))
    }

    fn string(&self, field: &str) -> Result<&str, Invalid> {
        let value = self.required(field)?;
        value
            .as_str()
            .ok_or_else(|| self.fault(field, &format!("must be a string (got {value})")))
    }

    fn optional_string(&self, field: &str) -> Result<Option<&str>, Invalid> {
        match self.present(field) {
            None => Ok(None),
            Some(_) => self.string(field).map(Some),
        }
    }

    fn bool(&self, field: &str) -> Result<bool, Invalid> {
        let value = self.required(field)?;
        value
            .as_bool()
            .ok_or_else(|| self.fault(field, &format!("must be true or false (got {value})")))
    }

    fn optional_bool(&self, field: &str) -> Result<(), Invalid> {
        match self.present(field) {
            None => Ok(()),
            Some(_) => self.bool(field).map(drop),
        }
    }

    fn optional_i32(&self, field: &str) -> Result<(), Invalid> {
        let Some(value) = self.present(field) else {
            return Ok(());
        };
        match value.as_i64().map(i32::try_from) {
            Some(Ok(_)) => Ok(()),
            _ => Err(self.fault(
                field,
                &format!("must be a whole number that fits in 32 bits (got {value})"),
            )),
        }
    }

    fn uuid(&self, field: &str) -> Result<Uuid, Invalid> {
        let text = self.string(field)?;
        parse_uuid(text).ok_or_else(|| self.fault(field, &format!("{MUST_BE_UUID} (got {text:?})")))
    }

    /// A UUID field, returned exactly as the client spelled it.
    fn uuid_text(&self, field: &str) -> Result<String, Invalid> {
        self.uuid(field)?;
        self.string(field).map(str::to_owned)
    }

    fn optional_uuid_array(&self, field: &str) -> Result<(), Invalid> {
        let Some(value) = self.present(field) else {
            return Ok(());
        };
        let Some(items) = value.as_array() else {
            return Err(self.fault(field, &format!("must be an array of UUIDs (got {value})")));
        };
        for (position, item) in items.iter().enumerate() {
            if item.as_str().and_then(parse_uuid).is_none() {
                return Err(self.fault(
                    &format!("{field}[{position}]"),
                    &format!("{MUST_BE_UUID} (got {item})"),
                ));
            }
        }
        Ok(())
    }

    fn timestamp(&self, field: &str) -> Result<i64, Invalid> {
        let text = self.string(field)?;
        timestamp::parse_nanos(text).ok_or_else(|| {
            self.fault(
                field,
                &format!(
                    "must be an RFC 3339 timestamp like 2026-11-24T22:42:47.738Z (got {text:?})"
                ),
            )
        })
    }

    fn optional_timestamp(&self, field: &str) -> Result<Option<i64>, Invalid> {
        match self.present(field) {
            None => Ok(None),
            Some(_) => self.timestamp(field).map(Some),
        }
    }

    fn optional_due_date(&self, field: &str) -> Result<(), Invalid> {
        let Some(_) = self.present(field) else {
            return Ok(());
        };
        let text = self.string(field)?;
        match timestamp::parse_due_date_instant(text) {
            Some(_) => Ok(()),
            None => Err(self.fault(
                field,
                &format!("must be an RFC 3339 timestamp or a date like 2026-12-03 (got {text:?})"),
            )),
        }
    }
}

/// Accepts only the hyphenated lower-case form every client writes. Ids are compared as
/// text, so an upper-case spelling of a known id would be stored as a second record: a
/// duplicate on every device.
fn parse_uuid(text: &str) -> Option<Uuid> {
    if text.len() != 36 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Uuid::parse_str(text).ok()
}

/// What a UUID field must hold, for the error naming it.
const MUST_BE_UUID: &str = "must be a lower-case UUID like 8555eb33-3505-42b5-b029-341b1734ad31";

/// The fields of each kind that carry a timestamp, compared as instants.
fn timestamp_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Task => &["created_at", "updated_at", "completed_at", "due_date"],
        Kind::List | Kind::Tag => &["created_at", "updated_at"],
        Kind::TaskTag => &["created_at"],
    }
}

/// The fields of each kind that the clients understand; the rest are carried, not compared.
fn known_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Task => &[
            "id",
            "title",
            "description",
            "url",
            "priority",
            "completed",
            "list_id",
            "tag_ids",
            "created_at",
            "updated_at",
            "completed_at",
            "due_date",
        ],
        Kind::List => &[
            "id",
            "name",
            "description",
            "icon",
            "color",
            "is_inbox",
            "created_at",
            "updated_at",
            "sort_order",
        ],
        Kind::Tag => &["id", "name", "color", "created_at", "updated_at"],
        Kind::TaskTag => &["task_id", "tag_id", "created_at"],
    }
}

/// A version's meaning, independent of spelling: known fields only, defaults filled,
/// timestamps as instants, tag ids sorted. Two uploads of the same version by different
/// clients (which spell timestamps differently and drop each other's extra fields) compare
/// equal; its text is also the fixed tie-break between different versions of one instant.
pub fn semantic_key(kind: Kind, deleted: bool, body: &Map<String, Value>) -> String {
    if deleted {
        let at = body
            .get("deleted_at")
            .and_then(Value::as_str)
            .and_then(timestamp::parse_instant);
        return format!("deleted {}", at.unwrap_or_default());
    }
    key_without(kind, body, &[])
}

/// What a record says, leaving out when it was said: its semantic key without `updated_at`
/// (and, for an inbox, without `created_at`, since every device creates its own inbox).
/// tickit 0.5.8 re-stamps `updated_at` with its own clock whenever it applies an incoming
/// update, so an unchanged record comes back looking newer; comparing content stops it
/// bouncing between devices as a fresh change, or a conflict, on every sync.
pub fn content_key(kind: Kind, body: &Map<String, Value>) -> String {
    let is_inbox = body.get("is_inbox") == Some(&Value::Bool(true));
    if kind == Kind::List && is_inbox {
        key_without(kind, body, &["updated_at", "created_at"])
    } else {
        key_without(kind, body, &["updated_at"])
    }
}

fn key_without(kind: Kind, body: &Map<String, Value>, left_out: &[&str]) -> String {
    let mut filled = Map::new();
    for &field in known_fields(kind) {
        if let Some(value) = body.get(field) {
            filled.insert(field.to_owned(), value.clone());
        }
    }
    fill_defaults(kind, &mut filled);
    let mut key = Map::new();
    for &field in known_fields(kind) {
        if left_out.contains(&field) {
            continue;
        }
        let mut value = filled.remove(field).unwrap_or(Value::Null);
        let instant = value.as_str().and_then(key_instant);
        if let Some(nanos) = instant.filter(|_| timestamp_fields(kind).contains(&field)) {
            value = key_value(nanos);
        }
        if let Value::Array(items) = &mut value {
            items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
        key.insert(field.to_owned(), value);
    }
    Value::Object(key).to_string()
}

/// The instant a timestamp field stands for, as the desktop client reads it. tickit 0.5.8
/// reads a bare due date `2026-12-03` as the last second of that day in UTC and writes it back
/// as `2026-12-03T23:59:59+00:00`: the same version, which must not win or lose a tie.
fn key_instant(text: &str) -> Option<i128> {
    const BARE_DATE_READ_AS: i128 = (24 * 60 * 60 - 1) * 1_000_000_000;
    let midnight_or_instant = timestamp::parse_due_date_instant(text)?;
    let read_as = if text.len() == 10 {
        BARE_DATE_READ_AS
    } else {
        0
    };
    Some(midnight_or_instant + read_as)
}

/// An instant as a key holds it: a number where it fits in `i64` (as keys always held it, so
/// stored fingerprints still match), else its decimal text.
fn key_value(nanos: i128) -> Value {
    i64::try_from(nanos).map_or_else(|_| Value::from(nanos.to_string()), Value::from)
}

/// The instant a version is dated by, read from its text: a tombstone's `deleted_at`, else
/// the record's `updated_at` (for a tag written without one, and a task-tag link, its
/// `created_at`). Exact where a stored `i64` instant saturates.
pub fn version_instant(deleted: bool, body: &Map<String, Value>) -> Option<i128> {
    let fields: &[&str] = if deleted {
        &["deleted_at"]
    } else {
        &["updated_at", "created_at"]
    };
    fields
        .iter()
        .find_map(|field| body.get(*field).and_then(Value::as_str))
        .and_then(timestamp::parse_instant)
}

/// Fills, in place, every field the desktop client requires but a writer may have left out.
pub fn fill_defaults(kind: Kind, body: &mut Map<String, Value>) {
    let mut default = |field: &str, value: Value| {
        let slot = body.entry(field).or_insert(Value::Null);
        if slot.is_null() {
            *slot = value;
        }
    };
    match kind {
        Kind::Task => {
            default("tag_ids", Value::Array(Vec::new()));
            for field in ["description", "url", "completed_at", "due_date"] {
                default(field, Value::Null);
            }
        }
        Kind::List => {
            default("icon", Value::from(DEFAULT_LIST_ICON));
            default("is_inbox", Value::from(false));
            default("sort_order", Value::from(0));
            default("description", Value::Null);
            default("color", Value::Null);
        }
        Kind::Tag => {
            default("color", Value::from(DEFAULT_TAG_COLOR));
            let created = body.get("created_at").cloned().unwrap_or(Value::Null);
            let slot = body.entry("updated_at").or_insert(Value::Null);
            if slot.is_null() {
                *slot = created;
            }
        }
        Kind::TaskTag => {}
    }
}

/// How the account inbox is renamed for the device receiving a response.
pub struct InboxRename<'a> {
    pub account_inbox: &'a str,
    /// The id the inbox list goes out under: the device's own inbox id.
    pub device_inbox: &'a str,
    /// The id the inbox's tasks go out under: the device's inbox id, or a transit id.
    pub task_inbox: &'a str,
}

/// A stored record as it goes out: defaults filled and the account inbox under the device's
/// own inbox id. `None` only for a stored body that is somehow not a JSON object.
pub fn outgoing(
    kind: Kind,
    deleted: bool,
    stored: &str,
    inbox: Option<&InboxRename>,
) -> Option<Value> {
    let mut body: Map<String, Value> = serde_json::from_str(stored).ok()?;
    if !deleted {
        fill_defaults(kind, &mut body);
        let renamed = inbox.and_then(|inbox| match kind {
            Kind::List => Some(("id", inbox.device_inbox, inbox)),
            Kind::Task => Some(("list_id", inbox.task_inbox, inbox)),
            Kind::Tag | Kind::TaskTag => None,
        });
        if let Some((field, to, inbox)) = renamed
            && body.get(field).and_then(Value::as_str) == Some(inbox.account_inbox)
        {
            body.insert(field.into(), Value::from(to));
        }
    }
    Some(Value::Object(body))
}

/// The icon a list gets when its writer sent none.
const DEFAULT_LIST_ICON: &str = "📋";
/// The colour a tag gets when its writer sent none.
const DEFAULT_TAG_COLOR: &str = "#89b4fa";

#[cfg(test)]
mod tests {
    use super::*;

    /// Limits no test request reaches.
    const NO_LIMITS: Limits = Limits {
        max_records: usize::MAX,
        max_text_bytes: usize::MAX,
    };

    /// A request body from tests/fixtures.
    fn fixture(path: &str) -> Bytes {
        let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read {full}: {e}"));
        Bytes::from(bytes)
    }

    #[test]
    fn every_fixture_parses() {
        for path in [
            "desktop-0.5.8/full-sync-request.json",
            "desktop-0.5.8/incremental-request.json",
            "desktop-0.5.8/tombstone-request.json",
            "mobile/full-sync-request.json",
            "mobile/incremental-request.json",
        ] {
            parse_request(fixture(path), &NO_LIMITS).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }

    #[test]
    fn desktop_full_sync_has_kinds_versions_and_ids() {
        let raw = fixture("desktop-0.5.8/full-sync-request.json");
        let request = parse_request(raw.clone(), &NO_LIMITS).unwrap();
        let json: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(Some(request.device_id.as_str()), json["device_id"].as_str());
        assert_eq!(request.last_sync, None);
        let kinds: Vec<_> = request.changes.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [Kind::Task, Kind::Task, Kind::List, Kind::List, Kind::Tag]
        );
        // The version is the first task's updated_at to the nanosecond the desktop wrote.
        let updated_at: jiff::Timestamp = json["changes"][0]["updated_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            i128::from(request.changes[0].version),
            updated_at.as_nanosecond()
        );
    }

    #[test]
    fn mobile_task_without_tag_ids_gets_defaults() {
        let request = parse_request(fixture("mobile/full-sync-request.json"), &NO_LIMITS).unwrap();
        let mut body = request.changes[1].decode().unwrap().body;
        fill_defaults(Kind::Task, &mut body);
        assert_eq!(body["tag_ids"], Value::Array(vec![]));
        assert_eq!(body["completed_at"], Value::Null);
    }

    fn refusal(body: &str) -> String {
        refusal_within(body, &NO_LIMITS).to_string()
    }

    fn refusal_within(body: &str, limits: &Limits) -> Refusal {
        parse_request(Bytes::copy_from_slice(body.as_bytes()), limits).unwrap_err()
    }

    #[test]
    fn refusals_name_the_change_and_field() {
        let device = r#""device_id":"8555eb33-3505-42b5-b029-341b1734ad31""#;
        assert_eq!(
            refusal(&format!(
                r#"{{{device},"changes":[{{"type":"tag","id":"083f62a4-7e11-459f-9403-9136b2e4b7b8","name":"x","created_at":"2026-11-24"}}]}}"#
            )),
            "changes[0].created_at: must be an RFC 3339 timestamp like 2026-11-24T22:42:47.738Z (got \"2026-11-24\")"
        );
        assert_eq!(
            refusal(&format!(r#"{{{device},"changes":[{{"type":"note"}}]}}"#)),
            "changes[0].type: must be one of task, list, tag, task_tag, deleted (got \"note\")"
        );
        assert_eq!(
            refusal(r#"{"device_id":"laptop","changes":[]}"#),
            "device_id: must be a lower-case UUID like 8555eb33-3505-42b5-b029-341b1734ad31 (got \"laptop\")"
        );
        assert_eq!(
            refusal(&format!(
                r#"{{{device},"changes":[{{"type":"deleted","id":"083f62a4-7e11-459f-9403-9136b2e4b7b8","record_type":"task","deleted_at":5}}]}}"#
            )),
            "changes[0].deleted_at: must be a string (got 5)"
        );
    }

    const DEVICE: &str = r#""device_id":"8555eb33-3505-42b5-b029-341b1734ad31""#;

    /// A tag record whose `name` is `name` (JSON text, quotes included).
    fn tag_named(name: &str) -> String {
        format!(
            r#"{{"type":"tag","id":"083f62a4-7e11-459f-9403-9136b2e4b7b8","name":{name},"created_at":"2026-11-24T22:45:21Z"}}"#
        )
    }

    #[test]
    fn a_record_stays_its_own_text_until_decoded_with_every_field() {
        let record = r#"{"type":"task","id":"5d3c2b1a-0f9e-4d8c-b7a6-958473625140","title":"Caf\u00e9 \"plans\"\n😀","priority":"high","completed":false,"list_id":"7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d","created_at":"2026-11-24T21:10:05.120000000+01:00","updated_at":"2026-11-24T21:12:44.907000001Z","future":{"nested":["x",1.5,null,true],"big":18446744073709551615},"é":"ü"}"#;
        let body = Bytes::from(format!(
            r#"{{{DEVICE},"extra":[1,2],"changes":[ {record} ]}}"#
        ));
        let request = parse_request(body.clone(), &NO_LIMITS).unwrap();
        let received = &request.changes[0];
        assert_eq!(received.text, record.as_bytes());
        assert!(
            body.as_ptr_range().contains(&received.text.as_ptr()),
            "the record is a slice of the body, not a copy"
        );
        let change = received.decode().unwrap();
        let expected: Map<String, Value> = serde_json::from_str(record).unwrap();
        assert_eq!(change.body, expected);
        assert_eq!(change.body["title"], "Café \"plans\"\n😀");
        assert_eq!(
            change.body["created_at"],
            "2026-11-24T21:10:05.120000000+01:00"
        );
        assert_eq!(
            change.body["future"],
            serde_json::json!({"nested": ["x", 1.5, null, true], "big": 18446744073709551615u64})
        );
        assert_eq!(change.body["é"], "ü");
        assert_eq!(
            (
                change.kind,
                change.id.as_str(),
                change.deleted,
                received.is_inbox
            ),
            (
                Kind::Task,
                "5d3c2b1a-0f9e-4d8c-b7a6-958473625140",
                false,
                false
            )
        );
        assert_eq!(
            change.version,
            timestamp::parse_nanos("2026-11-24T21:12:44.907000001Z").unwrap()
        );
    }

    #[test]
    fn a_device_inbox_is_marked() {
        let inbox = r#"{"type":"list","id":"e47412ad-4c51-467d-be5f-966fb7d0db5d","name":"Inbox","is_inbox":true,"created_at":"2026-11-24T22:45:21Z","updated_at":"2026-11-24T22:45:21Z"}"#;
        let body = format!(r#"{{{DEVICE},"changes":[{inbox}]}}"#);
        let request = parse_request(body.into(), &NO_LIMITS).unwrap();
        assert!(request.changes[0].is_inbox);
    }

    #[test]
    fn more_records_than_the_limit_are_counted_and_refused_whole() {
        let limits = Limits {
            max_records: 2,
            ..NO_LIMITS
        };
        let two = [tag_named(r#""a""#), tag_named(r#""b""#)].join(",");
        let within = format!(r#"{{{DEVICE},"changes":[{two}]}}"#);
        assert_eq!(
            parse_request(within.into(), &limits).unwrap().changes.len(),
            2
        );
        // Too many is answered first, even when a record past the limit is invalid.
        let over = format!(r#"{{{DEVICE},"changes":[{two},{{"type":"note"}},7]}}"#);
        assert_eq!(
            refusal_within(&over, &limits),
            Refusal::TooManyRecords { count: 4, limit: 2 }
        );
        assert_eq!(
            refusal_within(&over, &limits).to_string(),
            "the request carries 4 records, over this server's limit of 2 per request; \
             raise [sync] max_records_per_request in the server's config.toml"
        );
    }

    #[test]
    fn a_string_over_the_text_limit_is_refused_naming_where_it_is() {
        // Ids and timestamps are strings too: the limit must leave room for them.
        let limits = Limits {
            max_text_bytes: 40,
            ..NO_LIMITS
        };
        let at_limit = tag_named(&format!("{:?}", "n".repeat(40)));
        let body = format!(r#"{{{DEVICE},"changes":[{at_limit}]}}"#);
        assert!(parse_request(body.into(), &limits).is_ok());
        let long_name = tag_named(&format!("{:?}", "n".repeat(41)));
        assert_eq!(
            refusal_within(&format!(r#"{{{DEVICE},"changes":[{long_name}]}}"#), &limits)
                .to_string(),
            "changes[0].name: is 41 bytes long, over this server's limit of 40 bytes per text \
             field; shorten it, or raise [sync] max_text_bytes in the server's config.toml"
        );
        // Any string counts, in fields the server does not know too; é is two bytes.
        let notes = format!(r#""a","later":{{"notes":["ok","{}"]}}"#, "é".repeat(21));
        let body = format!(
            r#"{{{DEVICE},"changes":[{at_limit},{}]}}"#,
            tag_named(&notes)
        );
        assert_eq!(
            refusal_within(&body, &limits).to_string(),
            "changes[1].later.notes[1]: is 42 bytes long, over this server's limit of 40 bytes \
             per text field; shorten it, or raise [sync] max_text_bytes in the server's \
             config.toml"
        );
    }

    #[test]
    fn a_record_of_too_many_values_is_refused() {
        let items = vec!["0"; 10_000].join(",");
        let body = format!(
            r#"{{{DEVICE},"changes":[{}]}}"#,
            tag_named(&format!(r#""a","later":[{items}]"#))
        );
        assert_eq!(
            refusal(&body),
            "changes[0]: holds 10006 JSON values (fields, array items and what they hold), over \
             the 10000 this server decodes in one piece; no Tickit client sends that"
        );
    }

    #[test]
    fn the_body_must_be_an_object_with_an_array_of_changes() {
        let not_an_object =
            "request body must be a JSON object with device_id, last_sync and changes";
        assert_eq!(
            refusal(r#"["8555eb33-3505-42b5-b029-341b1734ad31", null, []]"#),
            not_an_object
        );
        assert!(refusal("5").starts_with(not_an_object), "{}", refusal("5"));
        assert_eq!(
            refusal(&format!(r#"{{{DEVICE},"changes":{{"a":1}}}}"#)),
            "changes: must be an array of records"
        );
        assert_eq!(
            refusal(&format!(r#"{{{DEVICE},"changes":[{{}}, 5]}}"#)),
            "changes[0].type: is required"
        );
        assert_eq!(
            refusal(&format!(r#"{{{DEVICE},"changes":[5]}}"#)),
            "changes[0]: must be a JSON object"
        );
        let empty = parse_request(format!(r#"{{{DEVICE},"changes":null}}"#).into(), &NO_LIMITS);
        assert!(empty.unwrap().changes.is_empty());
    }

    #[test]
    fn an_upper_case_id_is_refused_rather_than_stored_beside_its_lower_case_twin() {
        let device = r#""device_id":"8555eb33-3505-42b5-b029-341b1734ad31""#;
        assert_eq!(
            refusal(&format!(
                r#"{{{device},"changes":[{{"type":"tag","id":"083F62A4-7E11-459F-9403-9136B2E4B7B8","name":"x","created_at":"2026-11-24T22:42:47Z"}}]}}"#
            )),
            "changes[0].id: must be a lower-case UUID like 8555eb33-3505-42b5-b029-341b1734ad31 \
             (got \"083F62A4-7E11-459F-9403-9136B2E4B7B8\")"
        );
    }

    #[test]
    fn same_version_spelled_differently_has_one_semantic_key() {
        let mobile: Map<String, Value> = serde_json::from_str(
            r#"{"type":"task","id":"5d3c2b1a-0f9e-4d8c-b7a6-958473625140","title":"t","priority":"high","completed":false,
               "list_id":"7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d","due_date":"2026-12-03","created_at":"2026-11-24T21:10:05.120Z",
               "updated_at":"2026-11-24T21:12:44.907Z","extra":1}"#,
        )
        .unwrap();
        let desktop: Map<String, Value> = serde_json::from_str(
            r#"{"type":"task","id":"5d3c2b1a-0f9e-4d8c-b7a6-958473625140","title":"t","description":null,"url":null,"priority":"high",
               "completed":false,"list_id":"7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d","tag_ids":[],"due_date":"2026-12-03T23:59:59+00:00",
               "created_at":"2026-11-24T21:10:05.120000000Z","updated_at":"2026-11-24T21:12:44.907Z","completed_at":null}"#,
        )
        .unwrap();
        // The desktop reads the bare date as 23:59:59 UTC and writes that back.
        assert_eq!(
            semantic_key(Kind::Task, false, &mobile),
            semantic_key(Kind::Task, false, &desktop)
        );
        let mut midnight = desktop.clone();
        midnight.insert("due_date".into(), "2026-12-03T00:00:00Z".into());
        assert_ne!(
            semantic_key(Kind::Task, false, &mobile),
            semantic_key(Kind::Task, false, &midnight)
        );
    }

    #[test]
    fn due_dates_outside_1677_to_2262_keep_one_key_per_instant() {
        let task = |due_date: &str| -> Map<String, Value> {
            serde_json::from_value(serde_json::json!({
                "type": "task", "id": "5d3c2b1a-0f9e-4d8c-b7a6-958473625140", "title": "t",
                "priority": "high", "completed": false,
                "list_id": "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d", "due_date": due_date,
                "created_at": "2026-11-24T21:10:05.120Z", "updated_at": "2026-11-24T21:12:44.907Z"
            }))
            .unwrap()
        };
        let key = |due_date| semantic_key(Kind::Task, false, &task(due_date));
        for (mobile, desktop) in [
            ("2300-01-01", "2300-01-01T23:59:59+00:00"),
            ("1600-01-01", "1600-01-01T23:59:59+00:00"),
            ("9999-12-31", "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(key(mobile), key(desktop), "{mobile}");
        }
        assert_ne!(key("2300-01-01"), key("2300-01-02"));
        // Inside the range keys hold the number they always held, so stored fingerprints match.
        assert!(key("2026-12-03").contains(r#""due_date":1796342399000000000"#));
    }
}
