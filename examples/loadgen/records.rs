//! Records in the desktop client's shapes (tests/fixtures/desktop-0.5.8): random v4 ids and
//! RFC 3339 timestamps with nanoseconds and `Z`, taken from the current time.

use serde_json::{Value, json};
use uuid::Uuid;

/// A random (version 4) UUID.
pub fn new_id() -> Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// The current time as the desktop client writes it: `2026-11-24T22:42:47.738719602Z`.
pub fn now() -> String {
    format!("{:.9}", jiff::Timestamp::now())
}

/// A device's own inbox list, as every device sends it on its first sync.
pub fn inbox(id: Uuid, at: &str) -> Value {
    json!({
        "type": "list",
        "id": id.to_string(),
        "name": "Inbox",
        "description": null,
        "icon": "📋",
        "color": null,
        "is_inbox": true,
        "created_at": at,
        "updated_at": at,
        "sort_order": 0,
    })
}

/// A task in list `list_id`, created at `created_at` and last changed at `updated_at`.
pub fn task(id: Uuid, title: &str, list_id: Uuid, created_at: &str, updated_at: &str) -> Value {
    json!({
        "type": "task",
        "id": id.to_string(),
        "title": title,
        "description": null,
        "url": null,
        "priority": "medium",
        "completed": false,
        "list_id": list_id.to_string(),
        "tag_ids": [],
        "created_at": created_at,
        "updated_at": updated_at,
        "completed_at": null,
        "due_date": null,
    })
}
