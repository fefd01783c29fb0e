//! The desktop model ([`crate::desktop_model`]) against recordings of the real client,
//! tickit 0.5.8 (tests/fixtures/desktop-0.5.8/sequences/, made by
//! tests/fixtures/record-sequences.sh; the fixtures README describes them).
//!
//! Each recorded step starts from the device's recorded database. The model makes the step's
//! edit, or builds the sync request, which must equal the one the client sent, and applies
//! the response the client got. The model's rows must then equal the recorded ones. Values
//! the device stamps with its own clock during the step (a new row's times, a re-stamped
//! `updated_at`, a tombstone's `deleted_at`) come out of the model as [`NOW`]; in the
//! recording, exactly those must hold a time within the step, on the device's clock.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::desktop_model::{
    Action, Clock, Device, List, Table, Tag, Task, Tombstone, db_time, parse_time,
};

/// Where the recorded sequences are, under tests/fixtures.
const SEQUENCES: &str = "desktop-0.5.8/sequences";

/// What the model's clock shows during a replayed step: a value the device stamped then.
const NOW: &str = "2000-01-01T00:00:00Z";

#[test]
fn the_model_makes_every_recorded_step_as_the_real_client_did() {
    let directory = format!("{}/tests/fixtures/{SEQUENCES}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(&directory)
        .unwrap_or_else(|e| panic!("read {directory}: {e}"))
        .map(|entry| entry.expect("a directory entry").file_name())
        .filter_map(|name| name.to_str().map(str::to_owned))
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no recorded sequence in {directory}");
    for file in files {
        replay(
            &file,
            &crate::harness::fixture(&format!("{SEQUENCES}/{file}")),
        );
    }
}

/// Replays every step of one recorded sequence, each from its device's recorded state.
fn replay(name: &str, sequence: &Value) {
    let devices = sequence["devices"].as_object().expect("devices");
    let mut states: BTreeMap<&str, &Value> = devices
        .iter()
        .map(|(device, recorded)| (device.as_str(), &recorded["initial"]))
        .collect();
    let steps = sequence["steps"].as_array().expect("steps");
    for (index, step) in steps.iter().enumerate() {
        let device = step["device"].as_str().expect("step device");
        let context = format!("{name} step {index} ({device} {})", step["action"]);
        let device_id = devices[device]["device_id"].as_str().expect("device_id");
        let mut model = load_device(device_id, states[device]);
        replay_step(&mut model, step, &context);
        let window = (time(&step["clock_before"]), time(&step["clock_after"]));
        let differences = compare_rows(&dump_device(&model), &step["state_after"], window);
        assert!(
            differences.is_empty(),
            "{context}: the model's database differs from the real client's:\n  {}",
            differences.join("\n  ")
        );
        states.insert(device, &step["state_after"]);
    }
}

/// Makes the step on the model: a sync (the request must be the recorded one; the
/// recorded response is applied) or an edit.
fn replay_step(model: &mut Device, step: &Value, context: &str) {
    let action = &step["action"];
    if action["op"] != "sync" {
        let action = parse_action(action);
        model
            .perform(&action)
            .unwrap_or_else(|e| panic!("{context}: the model fails to {action}: {e}"));
        return;
    }
    let request = model.sync_request(action["force"] == true);
    assert!(
        request == step["request"],
        "{context}: the model's request differs from the real client's:\n{}",
        describe_request_difference(&request, &step["request"])
    );
    assert_eq!(
        step["status"], 200,
        "{context}: the recording holds a failed sync"
    );
    model
        .apply_response(&step["response"])
        .unwrap_or_else(|e| panic!("{context}: the model cannot parse the response: {e}"));
}

/// The action a recorded step names.
fn parse_action(action: &Value) -> Action {
    let text = |field: &str| -> String {
        action[field]
            .as_str()
            .unwrap_or_else(|| panic!("action {action} lacks {field}"))
            .to_owned()
    };
    match action["op"].as_str().expect("op") {
        "add_task" => Action::AddTask {
            id: text("id"),
            title: text("title"),
            list_id: text("list_id"),
            tag_ids: strings(&action["tag_ids"]),
            priority: text("priority"),
            due: action["due"].as_str().map(|due| {
                due.parse()
                    .unwrap_or_else(|e| panic!("due {due:?} of {action} is not a date: {e}"))
            }),
        },
        "complete" => Action::Complete { id: text("id") },
        "uncomplete" => Action::Uncomplete { id: text("id") },
        "edit_title" => Action::EditTitle {
            id: text("id"),
            title: text("title"),
        },
        "move_task" => Action::MoveTask {
            id: text("id"),
            list_id: text("list_id"),
        },
        "tag_task" => Action::TagTask {
            id: text("id"),
            tag_id: text("tag_id"),
        },
        "untag_task" => Action::UntagTask {
            id: text("id"),
            tag_id: text("tag_id"),
        },
        "delete_task" => Action::DeleteTask { id: text("id") },
        "add_list" => Action::AddList {
            id: text("id"),
            name: text("name"),
        },
        "rename_list" => Action::RenameList {
            id: text("id"),
            name: text("name"),
        },
        "delete_list" => Action::DeleteList { id: text("id") },
        "add_tag" => Action::AddTag {
            id: text("id"),
            name: text("name"),
            color: text("color"),
        },
        "rename_tag" => Action::RenameTag {
            id: text("id"),
            name: text("name"),
        },
        "delete_tag" => Action::DeleteTag { id: text("id") },
        other => panic!("unknown op {other:?} in {action}"),
    }
}

// -------------------------------------------------------------------------------------
// Database rows <-> model
// -------------------------------------------------------------------------------------

/// A model device holding the recorded rows (in rowid order), whose clock shows [`NOW`].
fn load_device(device_id: &str, rows: &Value) -> Device {
    let now = parse_time(NOW).expect("NOW is RFC 3339");
    let mut device = Device {
        device_id: device_id.to_owned(),
        clock: Clock::Fixed(now),
        tasks: Table::default(),
        lists: Table::default(),
        tags: Table::default(),
        task_tags: Default::default(),
        tombstones: Table::default(),
        last_sync: None,
    };
    for row in table(rows, "lists") {
        let list = List {
            name: text(row, "name"),
            description: nullable_text(row, "description"),
            icon: text(row, "icon"),
            color: nullable_text(row, "color"),
            is_inbox: row["is_inbox"] == 1,
            sort_order: row["sort_order"].as_i64().expect("sort_order"),
            created_at: time(&row["created_at"]),
            updated_at: time(&row["updated_at"]),
        };
        device.lists.insert(&text(row, "id"), list);
    }
    for row in table(rows, "tags") {
        let tag = Tag {
            name: text(row, "name"),
            color: text(row, "color"),
            created_at: time(&row["created_at"]),
            updated_at: time(&row["updated_at"]),
        };
        device.tags.insert(&text(row, "id"), tag);
    }
    for row in table(rows, "tasks") {
        let task = Task {
            title: text(row, "title"),
            description: nullable_text(row, "description"),
            url: nullable_text(row, "url"),
            priority: text(row, "priority"),
            completed: row["completed"] == 1,
            list_id: text(row, "list_id"),
            created_at: time(&row["created_at"]),
            updated_at: time(&row["updated_at"]),
            completed_at: nullable_time(&row["completed_at"]),
            due_date: nullable_time(&row["due_date"]),
        };
        device.tasks.insert(&text(row, "id"), task);
    }
    for row in table(rows, "task_tags") {
        device
            .task_tags
            .insert((text(row, "task_id"), text(row, "tag_id")));
    }
    for row in table(rows, "sync_tombstones") {
        let tombstone = Tombstone {
            record_type: text(row, "record_type"),
            deleted_at: time(&row["deleted_at"]),
        };
        device.tombstones.insert(&text(row, "id"), tombstone);
    }
    device.last_sync = nullable_time(&rows["last_sync"]);
    device
}

/// The model's rows in the recording's shape (database text, rowid order, no rowid).
fn dump_device(device: &Device) -> Value {
    let time = |t: Timestamp| json!(db_time(t));
    let lists: Vec<Value> = device
        .lists
        .iter()
        .map(|(id, list)| {
            json!({
                "id": id, "name": list.name, "description": list.description, "icon": list.icon,
                "color": list.color, "is_inbox": i32::from(list.is_inbox),
                "sort_order": list.sort_order, "created_at": time(list.created_at),
                "updated_at": time(list.updated_at),
            })
        })
        .collect();
    let tags: Vec<Value> = device
        .tags
        .iter()
        .map(|(id, tag)| {
            json!({
                "id": id, "name": tag.name, "color": tag.color,
                "created_at": time(tag.created_at), "updated_at": time(tag.updated_at),
            })
        })
        .collect();
    let tasks: Vec<Value> = device
        .tasks
        .iter()
        .map(|(id, task)| {
            json!({
                "id": id, "title": task.title, "description": task.description, "url": task.url,
                "priority": task.priority, "completed": i32::from(task.completed),
                "list_id": task.list_id, "created_at": time(task.created_at),
                "updated_at": time(task.updated_at),
                "completed_at": task.completed_at.map(time), "due_date": task.due_date.map(time),
            })
        })
        .collect();
    let task_tags: Vec<Value> = device
        .task_tags
        .iter()
        .map(|(task, tag)| json!({ "task_id": task, "tag_id": tag }))
        .collect();
    let tombstones: Vec<Value> = device
        .tombstones
        .iter()
        .map(|(id, tombstone)| {
            json!({
                "id": id, "record_type": tombstone.record_type,
                "deleted_at": time(tombstone.deleted_at),
            })
        })
        .collect();
    json!({
        "tasks": tasks, "lists": lists, "tags": tags, "task_tags": task_tags,
        "sync_tombstones": tombstones, "last_sync": device.last_sync.map(time),
    })
}

/// Every difference between the model's rows and the recorded ones. A model value of
/// [`NOW`] matches a recorded time within `window`; any other value must be equal. Rows
/// must come in the same rowid order, except `task_tags`, which is compared as a set.
fn compare_rows(model: &Value, recorded: &Value, window: (Timestamp, Timestamp)) -> Vec<String> {
    let mut differences = Vec::new();
    for name in ["tasks", "lists", "tags", "sync_tombstones"] {
        let model_rows = table(model, name);
        let recorded_rows = table(recorded, name);
        let model_ids: Vec<String> = model_rows.iter().map(|row| text(row, "id")).collect();
        let recorded_ids: Vec<String> = recorded_rows.iter().map(|row| text(row, "id")).collect();
        if model_ids != recorded_ids {
            differences.push(format!(
                "{name}: the model holds ids {model_ids:?} in this rowid order, the client {recorded_ids:?}"
            ));
            continue;
        }
        for (model_row, recorded_row) in model_rows.iter().zip(recorded_rows) {
            let row_name = format!("{name}[{}]", model_row["id"]);
            compare_fields(&row_name, model_row, recorded_row, window, &mut differences);
        }
    }
    let pairs = |rows: &Value| {
        let mut pairs: Vec<(String, String)> = table(rows, "task_tags")
            .iter()
            .map(|row| (text(row, "task_id"), text(row, "tag_id")))
            .collect();
        pairs.sort();
        pairs
    };
    if pairs(model) != pairs(recorded) {
        differences.push(format!(
            "task_tags: the model holds {:?}, the client {:?}",
            pairs(model),
            pairs(recorded)
        ));
    }
    compare_value(
        "last_sync",
        &model["last_sync"],
        &recorded["last_sync"],
        window,
        &mut differences,
    );
    differences
}

/// Compares the fields of one row; the recorded row's `rowid` is not compared.
fn compare_fields(
    row_name: &str,
    model: &Value,
    recorded: &Value,
    window: (Timestamp, Timestamp),
    differences: &mut Vec<String>,
) {
    let model = model.as_object().expect("a model row");
    let mut recorded: Map<String, Value> = recorded.as_object().expect("a recorded row").clone();
    recorded.remove("rowid");
    let model_fields: Vec<&String> = model.keys().collect();
    let recorded_fields: Vec<&String> = recorded.keys().collect();
    if model_fields != recorded_fields {
        differences.push(format!(
            "{row_name}: the model has columns {model_fields:?}, the client {recorded_fields:?}"
        ));
        return;
    }
    for (field, value) in model {
        let name = format!("{row_name}.{field}");
        compare_value(&name, value, &recorded[field], window, differences);
    }
}

/// Compares one value: [`NOW`] from the model stands for a time within `window`.
fn compare_value(
    name: &str,
    model: &Value,
    recorded: &Value,
    window: (Timestamp, Timestamp),
    differences: &mut Vec<String>,
) {
    let now = db_time(parse_time(NOW).expect("NOW is RFC 3339"));
    if model.as_str() == Some(now.as_str()) {
        let stamped = recorded.as_str().and_then(parse_time);
        if !stamped.is_some_and(|t| window.0 <= t && t <= window.1) {
            differences.push(format!(
                "{name}: the model stamps it with the device's clock, so the client's value should \
                 be within the step [{}, {}], but it is {recorded}",
                window.0, window.1
            ));
        }
    } else if model != recorded {
        differences.push(format!(
            "{name}: the model has {model}, the client {recorded}"
        ));
    }
}

/// Says which records of two sync requests differ.
fn describe_request_difference(model: &Value, recorded: &Value) -> String {
    let mut lines = Vec::new();
    for field in ["device_id", "last_sync"] {
        if model[field] != recorded[field] {
            lines.push(format!(
                "{field}: model {}, client {}",
                model[field], recorded[field]
            ));
        }
    }
    let empty = Vec::new();
    let model_changes = model["changes"].as_array().unwrap_or(&empty);
    let recorded_changes = recorded["changes"].as_array().unwrap_or(&empty);
    for index in 0..model_changes.len().max(recorded_changes.len()) {
        let (m, r) = (model_changes.get(index), recorded_changes.get(index));
        if m != r {
            lines.push(format!(
                "changes[{index}]:\n    model  {}\n    client {}",
                m.map_or("(none)".into(), Value::to_string),
                r.map_or("(none)".into(), Value::to_string)
            ));
        }
    }
    lines.join("\n")
}

// -------------------------------------------------------------------------------------
// Reading recorded rows
// -------------------------------------------------------------------------------------

/// The rows of one table of a recorded (or dumped) state.
fn table<'a>(rows: &'a Value, name: &str) -> &'a Vec<Value> {
    rows[name]
        .as_array()
        .unwrap_or_else(|| panic!("no table {name} in {rows}"))
}

fn text(row: &Value, column: &str) -> String {
    row[column]
        .as_str()
        .unwrap_or_else(|| panic!("column {column} of {row} is not text"))
        .to_owned()
}

fn nullable_text(row: &Value, column: &str) -> Option<String> {
    row[column].as_str().map(str::to_owned)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{value} is not an array"))
        .iter()
        .map(|item| item.as_str().expect("a string").to_owned())
        .collect()
}

fn time(value: &Value) -> Timestamp {
    value
        .as_str()
        .and_then(parse_time)
        .unwrap_or_else(|| panic!("{value} is not an RFC 3339 time"))
}

fn nullable_time(value: &Value) -> Option<Timestamp> {
    (!value.is_null()).then(|| time(value))
}
