//! What a randomized run should end with: record-level last write wins over the devices'
//! edits in real-time order, the way the server is meant to settle them.
//!
//! A device's edits count when it syncs, since that is when the server sees them. A record
//! it edited since its previous sync counts if its content now differs from what the device
//! held right after that sync, at the time of its latest edit of the record: the server
//! remembers what each device holds, and an upload equal to that (the desktop re-stamps and
//! re-sends what it receives) changes nothing. So an edit that returns a record to what the
//! device last held counts as no edit, and so does a task whose only change is what tidying
//! would make of what the device held (moved out of a deleted list, a deleted tag dropped):
//! the desktop moves and untags such tasks on its own without re-stamping them, and an edit
//! that only does the same changes nothing either.
//!
//! A counted version replaces the record's version if it was made later; a delete is a
//! version too, so an edit made after a delete, on a device that had not seen it, brings the
//! record back. A task version that names a list or tag deleted by then is put in the inbox
//! or loses the tag; a list or tag delete that wins does the same to the tasks in it, and
//! leaves their time as it was, so an older edit of such a task that arrives later still
//! wins and is tidied in turn. Bringing a list or tag back does not undo that. Within one
//! sync, deletes are decided first (the device applied them to what it sends), then tasks,
//! lists and tags.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::desktop_model::{Clock, Device, db_time, short};

/// The id every device's inbox has in a [`View`].
pub const INBOX: &str = "INBOX";

/// A record: its kind (`task`, `list`, `tag`) and id.
pub type Key = (&'static str, String);

/// A device's tasks, lists and tags as they are compared across devices: every field but
/// the ones each device sets for itself (a task's or list's `updated_at`, which the desktop
/// re-stamps, and the inbox's id and `created_at`), with inbox ids as [`INBOX`].
pub type View = BTreeMap<Key, Value>;

/// The [`View`] of `device`; `inboxes` are the inbox ids of every device of the run.
pub fn view(device: &Device, inboxes: &BTreeSet<String>) -> View {
    let list_key = |id: &str| if inboxes.contains(id) { INBOX } else { id }.to_owned();
    let mut view = View::new();
    for (id, task) in device.tasks.iter() {
        let content = json!({
            "title": task.title, "description": task.description, "url": task.url,
            "priority": task.priority, "completed": task.completed,
            "list_id": list_key(&task.list_id), "tag_ids": device.tag_ids(id),
            "created_at": db_time(task.created_at),
            "completed_at": task.completed_at.map(db_time), "due_date": task.due_date.map(db_time),
        });
        view.insert(("task", id.to_owned()), content);
    }
    for (id, list) in device.lists.iter() {
        let mut content = json!({
            "name": list.name, "description": list.description, "icon": list.icon,
            "color": list.color, "is_inbox": list.is_inbox, "sort_order": list.sort_order,
        });
        if !list.is_inbox {
            content["created_at"] = json!(db_time(list.created_at));
        }
        view.insert(("list", list_key(id)), content);
    }
    for (id, tag) in device.tags.iter() {
        let content = json!({
            "name": tag.name, "color": tag.color, "created_at": db_time(tag.created_at),
            "updated_at": db_time(tag.updated_at),
        });
        view.insert(("tag", id.to_owned()), content);
    }
    view
}

/// What changed between two views of one device, one short phrase per record: `+` new,
/// `-` gone, `~` changed (with the fields that changed).
pub fn changes(before: &View, after: &View) -> Vec<String> {
    let keys: BTreeSet<&Key> = before.keys().chain(after.keys()).collect();
    let mut phrases = Vec::new();
    for key in keys {
        let name = |value: &Value| {
            let name = value.get("title").or(value.get("name"));
            name.map_or(String::new(), |name| format!(" {name}"))
        };
        let record = format!("{} {}", key.0, short(&key.1));
        match (before.get(key), after.get(key)) {
            (None, Some(new)) => phrases.push(format!("+{record}{}", name(new))),
            (Some(_), None) => phrases.push(format!("-{record}")),
            (Some(old), Some(new)) if old != new => {
                let fields: Vec<&str> = new
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(field, value)| old.get(field.as_str()) != Some(*value))
                    .map(|(field, _)| field.as_str())
                    .collect();
                phrases.push(format!("~{record}{} ({})", name(new), fields.join(", ")));
            }
            _ => {}
        }
    }
    phrases
}

/// The winning version of every record the devices' syncs have made count.
#[derive(Default)]
pub struct Oracle {
    versions: BTreeMap<Key, Version>,
}

/// A record's winning version.
struct Version {
    /// When the edit was made: the run's count of edits, so in real-time order.
    time: u64,
    /// Its content, or `None` once deleted.
    content: Option<Value>,
}

impl Oracle {
    /// A device's sync reaches the server: `held` is what it held after its previous sync,
    /// `now` what it holds now, `edited` the records it edited since, each with the time of
    /// its latest edit. Returns the edits that count and whether each won.
    pub fn count_sync(
        &mut self,
        held: &View,
        now: &View,
        edited: &BTreeMap<Key, u64>,
    ) -> Vec<String> {
        let mut counted: Vec<(&Key, u64, Option<&Value>)> = edited
            .iter()
            .map(|(key, &time)| (key, time, now.get(key)))
            .filter(|(key, _, content)| held.get(*key) != *content)
            .collect();
        let kind_order = |kind: &str| ["task", "list", "tag"].iter().position(|k| *k == kind);
        counted.sort_by_key(|(key, time, content)| (content.is_some(), kind_order(key.0), *time));
        let own_deletes: BTreeSet<Key> = counted
            .iter()
            .filter(|(_, _, content)| content.is_none())
            .map(|(key, _, _)| (*key).clone())
            .collect();
        let mut outcomes = Vec::new();
        for (key, time, content) in counted {
            if self.only_tidied(held.get(key), content, &own_deletes) {
                continue;
            }
            let sign = if content.is_some() { "" } else { "-" };
            let outcome = self.decide(key, time, content.cloned());
            outcomes.push(format!(
                "{sign}{} {} #{time} {outcome}",
                key.0,
                short(&key.1)
            ));
        }
        outcomes
    }

    /// Decides one counted version against the winner so far; says how it went.
    fn decide(&mut self, key: &Key, time: u64, mut content: Option<Value>) -> String {
        if let Some(stored) = self.versions.get(key).filter(|stored| stored.time > time) {
            return format!("loses to #{}", stored.time);
        }
        if let (Some(task), "task") = (content.as_mut(), key.0) {
            self.tidy(task);
        }
        let deleted = content.is_none();
        self.versions.insert(key.clone(), Version { time, content });
        if deleted {
            self.tidy_after_delete(key);
        }
        "wins".into()
    }

    /// Whether a task's new content is only the content it had as the device tidies it: moved
    /// to the inbox out of a deleted list, or without some deleted tags (deleted as far as
    /// the server knows, or by the device in this sync, won or not).
    fn only_tidied(&self, held: Option<&Value>, now: Option<&Value>, own: &BTreeSet<Key>) -> bool {
        let (Some(held), Some(now)) = (held, now) else {
            return false;
        };
        if held.get("title").is_none() {
            return false;
        }
        let deleted = |kind: &'static str, id: &Value| {
            let key = (kind, id.as_str().unwrap_or_default().to_owned());
            own.contains(&key)
                || self
                    .versions
                    .get(&key)
                    .is_some_and(|version| version.content.is_none())
        };
        let mut tidied = held.clone();
        if now["list_id"] == INBOX && deleted("list", &held["list_id"]) {
            tidied["list_id"] = json!(INBOX);
        }
        let kept_by_now = now["tag_ids"].as_array().cloned().unwrap_or_default();
        if let Some(tags) = tidied["tag_ids"].as_array_mut() {
            tags.retain(|tag| kept_by_now.contains(tag) || !deleted("tag", tag));
        }
        tidied == *now
    }

    /// A task version naming a deleted list goes to the inbox; deleted tags leave it.
    fn tidy(&self, task: &mut Value) {
        let deleted = |kind: &'static str, id: &str| {
            self.versions
                .get(&(kind, id.to_owned()))
                .is_some_and(|version| version.content.is_none())
        };
        if task["list_id"]
            .as_str()
            .is_some_and(|list| deleted("list", list))
        {
            task["list_id"] = json!(INBOX);
        }
        if let Some(tag_ids) = task["tag_ids"].as_array_mut() {
            tag_ids.retain(|tag| !tag.as_str().is_some_and(|tag| deleted("tag", tag)));
        }
    }

    /// After list or tag `key` is deleted: its tasks go to the inbox, or lose the tag,
    /// keeping their time.
    fn tidy_after_delete(&mut self, (kind, id): &Key) {
        for ((record_kind, _), version) in &mut self.versions {
            let Some(task) = version.content.as_mut().filter(|_| *record_kind == "task") else {
                continue;
            };
            if *kind == "list" && task["list_id"] == id.as_str() {
                task["list_id"] = json!(INBOX);
            }
            if let (Some(tag_ids), "tag") = (task["tag_ids"].as_array_mut(), *kind) {
                tag_ids.retain(|tag| tag != id.as_str());
            }
        }
    }

    /// What every device should hold: the live records, and the inbox as a new device
    /// makes it (no edit changes the inbox).
    pub fn expected(&self) -> View {
        let fresh = Device::new("", "", Clock::Fixed(jiff::Timestamp::UNIX_EPOCH));
        let mut expected = view(&fresh, &BTreeSet::from([String::new()]));
        for (key, version) in &self.versions {
            if let Some(content) = &version.content {
                expected.insert(key.clone(), content.clone());
            }
        }
        expected
    }
}
