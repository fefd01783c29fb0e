//! A model of one device running the desktop client, tickit 0.5.8: its database, the edits
//! its CLI and TUI make, and what `tickit sync` (`run_sync_command` in src/main.rs) sends and
//! does with the answer. Everything here follows the client's code (src/db.rs, src/models.rs,
//! src/app/state.rs); `desktop_replay` checks it against recordings of the real client.
//!
//! Client facts the model keeps, each easy to get wrong:
//! - The database holds times as chrono's `to_rfc3339()` writes them (`...123456789+00:00`);
//!   the wire has chrono's serde form (`...Z`). The client compares them as text, which
//!   orders like the instants they spell, so the model compares instants.
//! - Tables are read in rowid order unless a query sorts; a new row goes last. The model
//!   keeps each table in that order ([`Table`]).
//! - `tickit sync` uploads rows with `updated_at` after `last_sync` and tombstones with
//!   `deleted_at` after it (`--force`, or no `last_sync` yet: every row, no tombstone); it
//!   applies the answer's lists, then tags, then tasks, then deletes, with foreign keys off,
//!   and stores `server_time` as `last_sync`.
//! - An incoming task or list replaces the local row only when strictly newer, and then gets
//!   `updated_at` = the device's own clock (`update_task`/`update_list`); an insert keeps the
//!   sender's. An incoming inbox with a foreign id is not inserted: the tasks in it move to the
//!   local inbox. A tag is written with INSERT OR REPLACE, whatever its time.
//! - Deletes are unconditional. With foreign keys off, a deleted task or tag leaves its
//!   `task_tags` rows behind, and a task inserted later with the same id inherits them.
//! - Local edits run with foreign keys on (the bundled SQLite's default): writing a task whose
//!   list or one of whose tags is missing fails with "FOREIGN KEY constraint failed".

mod wire;

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use wire::{Response, date_end};
pub use wire::{db_time, parse_time, wire_time};

/// The icon `List::new` gives a list (`tickit lists add` without `--icon`).
const LIST_ICON: &str = "📋";

/// What `update_task` and `insert_task` fail with when foreign keys are on and the list or a
/// tag of the task is missing.
const FOREIGN_KEY_FAILED: &str = "FOREIGN KEY constraint failed";

/// A device's clock: the real UTC clock plus a fixed offset, or, to replay recordings, one
/// fixed instant that marks every value the device stamps with "now".
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// Real time plus this offset (negative: the clock runs behind).
    Offset(SignedDuration),
    /// Always this instant.
    Fixed(Timestamp),
}

impl Clock {
    /// The device's `Utc::now()`.
    pub fn now(self) -> Timestamp {
        match self {
            Clock::Offset(offset) => Timestamp::now() + offset,
            Clock::Fixed(instant) => instant,
        }
    }
}

/// A row of `tasks`. Its tags are the `task_tags` rows of its id ([`Device::tag_ids`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub title: String,
    pub description: Option<String>,
    pub url: Option<String>,
    /// `low`, `medium`, `high` or `urgent`.
    pub priority: String,
    pub completed: bool,
    pub list_id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    pub due_date: Option<Timestamp>,
}

impl Task {
    /// `Task::new` as `tickit add` fills it: created and updated now, open, the due date's
    /// day at 23:59:59 UTC.
    fn added(
        title: &str,
        list_id: &str,
        priority: &str,
        due: Option<jiff::civil::Date>,
        now: Timestamp,
    ) -> Task {
        Task {
            title: title.to_owned(),
            description: None,
            url: None,
            priority: priority.to_owned(),
            completed: false,
            list_id: list_id.to_owned(),
            created_at: now,
            updated_at: now,
            completed_at: None,
            due_date: due.map(date_end),
        }
    }
}

/// A row of `lists`.
#[derive(Clone, Debug, PartialEq)]
pub struct List {
    pub name: String,
    pub description: Option<String>,
    pub icon: String,
    pub color: Option<String>,
    pub is_inbox: bool,
    pub sort_order: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A row of `tags`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tag {
    pub name: String,
    pub color: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A row of `sync_tombstones`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tombstone {
    /// `task`, `list` or `tag`.
    pub record_type: String,
    pub deleted_at: Timestamp,
}

/// A table keyed by id, in rowid order: SQLite gives a new row the largest rowid + 1, so an
/// insert (also the insert half of INSERT OR REPLACE) goes last.
#[derive(Clone, Debug, PartialEq)]
pub struct Table<T>(Vec<(String, T)>);

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table(Vec::new())
    }
}

impl<T> Table<T> {
    /// The row with `id`.
    pub fn get(&self, id: &str) -> Option<&T> {
        self.0.iter().find(|(key, _)| key == id).map(|(_, row)| row)
    }

    /// The row with `id`, to change in place (an UPDATE keeps the rowid).
    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.0
            .iter_mut()
            .find(|(key, _)| key == id)
            .map(|(_, row)| row)
    }

    /// Adds a row with a new, largest rowid. The id must not be present.
    pub fn insert(&mut self, id: &str, row: T) {
        debug_assert!(self.get(id).is_none(), "duplicate id {id}");
        self.0.push((id.to_owned(), row));
    }

    /// Deletes the row with `id`, if any.
    pub fn remove(&mut self, id: &str) -> Option<T> {
        let index = self.0.iter().position(|(key, _)| key == id)?;
        Some(self.0.remove(index).1)
    }

    /// Deletes every row `keep` says no to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &T) -> bool) {
        self.0.retain(|(id, row)| keep(id, row));
    }

    /// The rows in rowid order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.0.iter().map(|(id, row)| (id.as_str(), row))
    }

    /// The rows in rowid order, to change in place.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut T)> {
        self.0.iter_mut().map(|(id, row)| (id.as_str(), row))
    }
}

/// An edit a user makes on a device (everything but a sync), with the ids it acts on. The
/// CLI makes some (`add`, `done`, `undo`, `lists add`, `tags add`), the TUI the others.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// `tickit add TITLE [--list L] [--tags T,...] [--priority P] [--due YYYY-MM-DD]`.
    AddTask {
        id: String,
        title: String,
        list_id: String,
        tag_ids: Vec<String>,
        priority: String,
        due: Option<jiff::civil::Date>,
    },
    /// `tickit done ID`.
    Complete { id: String },
    /// `tickit undo ID`.
    Uncomplete { id: String },
    /// TUI task editor: a new title.
    EditTitle { id: String, title: String },
    /// TUI task editor: another list.
    MoveTask { id: String, list_id: String },
    /// TUI task editor: one more tag.
    TagTask { id: String, tag_id: String },
    /// TUI task editor: one tag less.
    UntagTask { id: String, tag_id: String },
    /// TUI delete of a task: the row goes, a tombstone is recorded.
    DeleteTask { id: String },
    /// `tickit lists add NAME`.
    AddList { id: String, name: String },
    /// TUI list editor: a new name (the inbox cannot be edited).
    RenameList { id: String, name: String },
    /// TUI delete of a list: its tasks move to the inbox (not re-stamped), a tombstone.
    DeleteList { id: String },
    /// `tickit tags add NAME --color C`.
    AddTag {
        id: String,
        name: String,
        color: String,
    },
    /// TUI tag editor: a new name.
    RenameTag { id: String, name: String },
    /// TUI delete of a tag: its task links go, a tombstone is recorded.
    DeleteTag { id: String },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::AddTask {
                id,
                title,
                list_id,
                tag_ids,
                priority,
                due,
            } => write!(
                f,
                "add task {} {title:?} to list {} tags {:?} priority {priority}{}",
                short(id),
                short(list_id),
                tag_ids.iter().map(|t| short(t)).collect::<Vec<_>>(),
                due.map_or(String::new(), |due| format!(" due {due}"))
            ),
            Action::Complete { id } => write!(f, "complete task {}", short(id)),
            Action::Uncomplete { id } => write!(f, "uncomplete task {}", short(id)),
            Action::EditTitle { id, title } => write!(f, "retitle task {} {title:?}", short(id)),
            Action::MoveTask { id, list_id } => {
                write!(f, "move task {} to list {}", short(id), short(list_id))
            }
            Action::TagTask { id, tag_id } => {
                write!(f, "tag task {} with {}", short(id), short(tag_id))
            }
            Action::UntagTask { id, tag_id } => {
                write!(f, "untag task {} from {}", short(id), short(tag_id))
            }
            Action::DeleteTask { id } => write!(f, "delete task {}", short(id)),
            Action::AddList { id, name } => write!(f, "add list {} {name:?}", short(id)),
            Action::RenameList { id, name } => write!(f, "rename list {} {name:?}", short(id)),
            Action::DeleteList { id } => write!(f, "delete list {}", short(id)),
            Action::AddTag { id, name, color } => {
                write!(f, "add tag {} {name:?} {color}", short(id))
            }
            Action::RenameTag { id, name } => write!(f, "rename tag {} {name:?}", short(id)),
            Action::DeleteTag { id } => write!(f, "delete tag {}", short(id)),
        }
    }
}

/// The first 8 characters of an id: enough to tell records apart in a log.
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// One device's database and sync state.
#[derive(Clone, Debug)]
pub struct Device {
    /// `~/.config/tickit/.device_id`.
    pub device_id: String,
    pub clock: Clock,
    pub tasks: Table<Task>,
    pub lists: Table<List>,
    pub tags: Table<Tag>,
    /// `task_tags` rows as (task id, tag id). The client reads a task's tags through the
    /// primary-key index, so in tag-id order: a sorted set keeps them so.
    pub task_tags: std::collections::BTreeSet<(String, String)>,
    pub tombstones: Table<Tombstone>,
    /// `sync_state.last_sync`: the last `server_time` received.
    pub last_sync: Option<Timestamp>,
}

impl Device {
    /// A device that opened its database for the first time: its own inbox (`List::inbox()`,
    /// stamped now), nothing else, never synced.
    pub fn new(device_id: &str, inbox_id: &str, clock: Clock) -> Device {
        let now = clock.now();
        let mut lists = Table::default();
        lists.insert(
            inbox_id,
            List {
                name: "Inbox".into(),
                description: Some("Default list for new tasks".into()),
                icon: "📥".into(),
                color: None,
                is_inbox: true,
                sort_order: -1,
                created_at: now,
                updated_at: now,
            },
        );
        Device {
            device_id: device_id.to_owned(),
            clock,
            tasks: Table::default(),
            lists,
            tags: Table::default(),
            task_tags: Default::default(),
            tombstones: Table::default(),
            last_sync: None,
        }
    }

    /// The id of the local inbox (`get_inbox`: the first list with `is_inbox`).
    pub fn inbox_id(&self) -> &str {
        self.lists
            .iter()
            .find(|(_, list)| list.is_inbox)
            .map(|(id, _)| id)
            .expect("a device always has its inbox (ensure_inbox)")
    }

    /// A task's tag ids as the client reads them (`get_task_tags`), in tag-id order.
    pub fn tag_ids(&self, task_id: &str) -> Vec<String> {
        self.task_tags
            .iter()
            .filter(|(task, _)| task == task_id)
            .map(|(_, tag)| tag.clone())
            .collect()
    }

    // ---------------------------------------------------------------------------------
    // Edits
    // ---------------------------------------------------------------------------------

    /// Makes `action` the way the client does. An error is what the client would report
    /// (its edit then fails); the device is left as it was.
    pub fn perform(&mut self, action: &Action) -> Result<(), String> {
        let now = self.clock.now();
        match action {
            Action::AddTask {
                id,
                title,
                list_id,
                tag_ids,
                priority,
                due,
            } => {
                let task = Task::added(title, list_id, priority, *due, now);
                self.add_task(id, task, tag_ids)
            }
            Action::Complete { id } => self.set_completed(id, true, now),
            Action::Uncomplete { id } => self.set_completed(id, false, now),
            Action::EditTitle { id, title } => {
                self.save_task(id, now, |task, _| task.title = title.clone())
            }
            Action::MoveTask { id, list_id } => {
                self.save_task(id, now, |task, _| task.list_id = list_id.clone())
            }
            Action::TagTask { id, tag_id } => self.save_task(id, now, |_, tags| {
                if !tags.contains(tag_id) {
                    tags.push(tag_id.clone());
                }
            }),
            Action::UntagTask { id, tag_id } => {
                self.save_task(id, now, |_, tags| tags.retain(|tag| tag != tag_id))
            }
            Action::DeleteTask { id } => {
                self.tasks.remove(id).ok_or(format!("no task {id}"))?;
                self.task_tags.retain(|(task, _)| task != id); // ON DELETE CASCADE
                self.record_tombstone(id, "task", now);
                Ok(())
            }
            Action::AddList { id, name } => self.add_list(id, name, now),
            Action::RenameList { id, name } => self.rename_list(id, name, now),
            Action::DeleteList { id } => self.delete_list(id, now),
            Action::AddTag { id, name, color } => self.add_tag(id, name, color, now),
            Action::RenameTag { id, name } => self.rename_tag(id, name, now),
            Action::DeleteTag { id } => {
                self.tags.remove(id).ok_or(format!("no tag {id}"))?;
                self.task_tags.retain(|(_, tag)| tag != id); // ON DELETE CASCADE
                self.record_tombstone(id, "tag", now);
                Ok(())
            }
        }
    }

    /// `tickit add`'s `insert_task`: the row, and a link per tag.
    fn add_task(&mut self, id: &str, task: Task, tag_ids: &[String]) -> Result<(), String> {
        self.check_references(&task.list_id, tag_ids)?;
        self.tasks.insert(id, task);
        self.link_tags(id, tag_ids);
        Ok(())
    }

    /// `tickit done` / `tickit undo`: `complete()` / `uncomplete()`, then `update_task` with
    /// the task's tags as read (a link to a missing tag makes it fail).
    fn set_completed(&mut self, id: &str, completed: bool, now: Timestamp) -> Result<(), String> {
        let task = self.tasks.get(id).ok_or(format!("no task {id}"))?;
        let tag_ids = self.tag_ids(id);
        self.check_references(&task.list_id, &tag_ids)?;
        let task = self.tasks.get_mut(id).expect("checked above");
        task.completed = completed;
        task.completed_at = completed.then_some(now);
        task.updated_at = now;
        Ok(())
    }

    /// The TUI task editor: `start_edit_task` takes the task's list (the first list, by
    /// sort order and name, when it is missing) and those of its tags that exist; `edit`
    /// changes them; `save_task` writes every field back through `update_task` (updated_at
    /// now, an empty description as none). The editor keeps only a due date's day and saves
    /// it at 23:59:59, which is what the desktop makes due dates as, so they stay.
    fn save_task(
        &mut self,
        id: &str,
        now: Timestamp,
        edit: impl FnOnce(&mut Task, &mut Vec<String>),
    ) -> Result<(), String> {
        let mut task = self.tasks.get(id).ok_or(format!("no task {id}"))?.clone();
        if self.lists.get(&task.list_id).is_none() {
            task.list_id = self.lists_in_order()[0].to_owned();
        }
        let mut tag_ids: Vec<String> = self
            .tag_ids(id)
            .into_iter()
            .filter(|tag| self.tags.get(tag).is_some())
            .collect();
        edit(&mut task, &mut tag_ids);
        self.check_references(&task.list_id, &tag_ids)?;
        task.updated_at = now;
        task.description = task.description.filter(|text| !text.is_empty());
        *self.tasks.get_mut(id).expect("read above") = task;
        self.set_tags(id, &tag_ids);
        Ok(())
    }

    /// `tickit lists add NAME`: `List::new` (icon 📋, sort order 0) and `insert_list`.
    fn add_list(&mut self, id: &str, name: &str, now: Timestamp) -> Result<(), String> {
        let list = List {
            name: name.to_owned(),
            description: None,
            icon: LIST_ICON.to_owned(),
            color: None,
            is_inbox: false,
            sort_order: 0,
            created_at: now,
            updated_at: now,
        };
        self.lists.insert(id, list);
        Ok(())
    }

    /// The TUI's list editor: a new name, `update_list` (updated now).
    fn rename_list(&mut self, id: &str, name: &str, now: Timestamp) -> Result<(), String> {
        let list = self.lists.get_mut(id).ok_or(format!("no list {id}"))?;
        if list.is_inbox {
            return Err("Cannot edit inbox".into());
        }
        list.name = name.to_owned();
        list.updated_at = now;
        Ok(())
    }

    /// The TUI's list delete: `delete_list` (tasks to the inbox, not re-stamped; the inbox
    /// itself is never deleted), then `record_tombstone`.
    fn delete_list(&mut self, id: &str, now: Timestamp) -> Result<(), String> {
        let list = self.lists.get(id).ok_or(format!("no list {id}"))?;
        if list.is_inbox {
            return Err("Cannot delete inbox".into());
        }
        self.move_tasks_to_inbox(id);
        self.lists.remove(id);
        self.record_tombstone(id, "list", now);
        Ok(())
    }

    /// `tickit tags add NAME --color C`: `Tag::new` and `insert_tag` (names are unique).
    fn add_tag(&mut self, id: &str, name: &str, color: &str, now: Timestamp) -> Result<(), String> {
        self.check_tag_name_free(id, name)?;
        let tag = Tag {
            name: name.to_owned(),
            color: color.to_owned(),
            created_at: now,
            updated_at: now,
        };
        self.tags.insert(id, tag);
        Ok(())
    }

    /// The TUI's tag editor: a new name, `touch()` (updated now), `update_tag`.
    fn rename_tag(&mut self, id: &str, name: &str, now: Timestamp) -> Result<(), String> {
        self.check_tag_name_free(id, name)?;
        let tag = self.tags.get_mut(id).ok_or(format!("no tag {id}"))?;
        tag.name = name.to_owned();
        tag.updated_at = now;
        Ok(())
    }

    /// `record_tombstone`: INSERT OR REPLACE of (id, type, now).
    fn record_tombstone(&mut self, id: &str, record_type: &str, now: Timestamp) {
        self.tombstones.remove(id);
        let tombstone = Tombstone {
            record_type: record_type.to_owned(),
            deleted_at: now,
        };
        self.tombstones.insert(id, tombstone);
    }

    /// Foreign keys on: the list and every tag must exist.
    fn check_references(&self, list_id: &str, tag_ids: &[String]) -> Result<(), String> {
        let missing_tag = tag_ids.iter().find(|tag| self.tags.get(tag).is_none());
        match (self.lists.get(list_id), missing_tag) {
            (None, _) => Err(format!("{FOREIGN_KEY_FAILED} (list {list_id})")),
            (_, Some(tag)) => Err(format!("{FOREIGN_KEY_FAILED} (tag {tag})")),
            _ => Ok(()),
        }
    }

    /// `tags.name` is UNIQUE: another tag may not have `name`.
    fn check_tag_name_free(&self, id: &str, name: &str) -> Result<(), String> {
        match self
            .tags
            .iter()
            .find(|(other, tag)| *other != id && tag.name == name)
        {
            Some(_) => Err(format!("UNIQUE constraint failed: tags.name ({name})")),
            None => Ok(()),
        }
    }

    /// Ids of the lists as `get_lists` orders them: by sort order, then name.
    fn lists_in_order(&self) -> Vec<&str> {
        let mut lists: Vec<(&str, &List)> = self.lists.iter().collect();
        lists.sort_by(|(_, a), (_, b)| (a.sort_order, &a.name).cmp(&(b.sort_order, &b.name)));
        lists.into_iter().map(|(id, _)| id).collect()
    }

    /// `UPDATE tasks SET list_id = <inbox> WHERE list_id = ?`: no re-stamp.
    fn move_tasks_to_inbox(&mut self, list_id: &str) {
        let inbox = self.inbox_id().to_owned();
        for (_, task) in self.tasks.iter_mut() {
            if task.list_id == list_id {
                task.list_id = inbox.clone();
            }
        }
    }

    /// `INSERT OR IGNORE INTO task_tags` for each tag: links already there stay.
    fn link_tags(&mut self, task_id: &str, tag_ids: &[String]) {
        for tag in tag_ids {
            self.task_tags.insert((task_id.to_owned(), tag.clone()));
        }
    }

    /// `update_task`'s links: every link of the task goes, then one per tag.
    fn set_tags(&mut self, task_id: &str, tag_ids: &[String]) {
        self.task_tags.retain(|(task, _)| task != task_id);
        self.link_tags(task_id, tag_ids);
    }

    // ---------------------------------------------------------------------------------
    // Sync
    // ---------------------------------------------------------------------------------

    /// The body `tickit sync` (`--force`) sends: tasks, lists, tags changed after
    /// `last_sync` in rowid order, then tombstones after it; everything in the full
    /// listing's order, and no tombstone, when there is no `last_sync` or on `--force`.
    pub fn sync_request(&self, force: bool) -> Value {
        let since = if force { None } else { self.last_sync };
        let mut changes: Vec<Value> = Vec::new();
        changes.extend(
            self.tasks_to_send(since)
                .into_iter()
                .map(|id| self.task_record(id)),
        );
        changes.extend(
            self.lists_to_send(since)
                .into_iter()
                .map(|id| self.list_record(id)),
        );
        changes.extend(
            self.tags_to_send(since)
                .into_iter()
                .map(|id| self.tag_record(id)),
        );
        if let Some(since) = since {
            let mut tombstones: Vec<(&str, &Tombstone)> = self
                .tombstones
                .iter()
                .filter(|(_, tombstone)| tombstone.deleted_at > since)
                .collect();
            // Read through the index on deleted_at.
            tombstones.sort_by_key(|(_, tombstone)| tombstone.deleted_at);
            changes.extend(tombstones.into_iter().map(|(id, tombstone)| {
                json!({
                    "type": "deleted", "id": id, "record_type": tombstone.record_type,
                    "deleted_at": wire_time(tombstone.deleted_at)
                })
            }));
        }
        json!({
            "device_id": self.device_id,
            "last_sync": since.map(wire_time),
            "changes": changes,
        })
    }

    /// `get_tasks_since` (rowid order) or `get_all_tasks` (open first, then by priority as
    /// text descending, then newest first).
    fn tasks_to_send(&self, since: Option<Timestamp>) -> Vec<&str> {
        let mut tasks: Vec<(&str, &Task)> = self
            .tasks
            .iter()
            .filter(|(_, task)| since.is_none_or(|since| task.updated_at > since))
            .collect();
        if since.is_none() {
            tasks.sort_by(|(_, a), (_, b)| {
                (a.completed, &b.priority, b.created_at).cmp(&(
                    b.completed,
                    &a.priority,
                    a.created_at,
                ))
            });
        }
        tasks.into_iter().map(|(id, _)| id).collect()
    }

    /// `get_lists_since` (rowid order) or `get_lists` (by sort order, then name).
    fn lists_to_send(&self, since: Option<Timestamp>) -> Vec<&str> {
        match since {
            Some(since) => self
                .lists
                .iter()
                .filter(|(_, list)| list.updated_at > since)
                .map(|(id, _)| id)
                .collect(),
            None => self.lists_in_order(),
        }
    }

    /// `get_tags_since` (rowid order) or `get_tags` (by name).
    fn tags_to_send(&self, since: Option<Timestamp>) -> Vec<&str> {
        let mut tags: Vec<(&str, &Tag)> = self
            .tags
            .iter()
            .filter(|(_, tag)| since.is_none_or(|since| tag.updated_at > since))
            .collect();
        if since.is_none() {
            tags.sort_by(|(_, a), (_, b)| a.name.cmp(&b.name));
        }
        tags.into_iter().map(|(id, _)| id).collect()
    }

    /// A task as the client serialises it (`SyncRecord::Task`).
    fn task_record(&self, id: &str) -> Value {
        let task = self.tasks.get(id).expect("a task of this device");
        json!({
            "type": "task", "id": id, "title": task.title, "description": task.description,
            "url": task.url, "priority": task.priority, "completed": task.completed,
            "list_id": task.list_id, "tag_ids": self.tag_ids(id),
            "created_at": wire_time(task.created_at), "updated_at": wire_time(task.updated_at),
            "completed_at": task.completed_at.map(wire_time),
            "due_date": task.due_date.map(db_time),
        })
    }

    /// A list as the client serialises it (`SyncRecord::List`).
    fn list_record(&self, id: &str) -> Value {
        let list = self.lists.get(id).expect("a list of this device");
        json!({
            "type": "list", "id": id, "name": list.name, "description": list.description,
            "icon": list.icon, "color": list.color, "is_inbox": list.is_inbox,
            "created_at": wire_time(list.created_at), "updated_at": wire_time(list.updated_at),
            "sort_order": list.sort_order,
        })
    }

    /// A tag as the client serialises it (`SyncRecord::Tag`).
    fn tag_record(&self, id: &str) -> Value {
        let tag = self.tags.get(id).expect("a tag of this device");
        json!({
            "type": "tag", "id": id, "name": tag.name, "color": tag.color,
            "created_at": wire_time(tag.created_at), "updated_at": wire_time(tag.updated_at),
        })
    }

    /// Applies a 200 response as `tickit sync` does: the whole body must parse, then lists,
    /// tags, tasks and deletes are applied in that order and `server_time` becomes
    /// `last_sync`. An error is the client's "Failed to parse sync response"; nothing is
    /// applied then.
    pub fn apply_response(&mut self, response: &Value) -> Result<(), String> {
        let response = Response::parse(response)?;
        for (id, list) in response.lists {
            self.upsert_list(&id, list);
        }
        for (id, tag) in response.tags {
            self.upsert_tag(&id, tag);
        }
        for (id, task, tag_ids) in response.tasks {
            self.upsert_task(&id, task, &tag_ids);
        }
        for (id, record_type) in response.deletes {
            self.apply_delete(&id, &record_type);
        }
        self.last_sync = Some(response.server_time);
        Ok(())
    }

    /// `upsert_list`: a foreign inbox folds into the local one; otherwise insert, or update
    /// (re-stamped now) when strictly newer.
    fn upsert_list(&mut self, id: &str, incoming: List) {
        let inbox = self.inbox_id().to_owned();
        if incoming.is_inbox && id != inbox {
            self.move_tasks_to_inbox(id);
            let local = self.lists.get_mut(&inbox).expect("the inbox");
            if incoming.updated_at > local.updated_at {
                local.name = incoming.name;
                local.description = incoming.description;
                local.icon = incoming.icon;
            }
            return;
        }
        let now = self.clock.now();
        match self.lists.get_mut(id) {
            Some(local) if incoming.updated_at > local.updated_at => {
                // update_list: everything but is_inbox and created_at.
                *local = List {
                    is_inbox: local.is_inbox,
                    created_at: local.created_at,
                    updated_at: now,
                    ..incoming
                };
            }
            Some(_) => {}
            None => self.lists.insert(id, incoming),
        }
    }

    /// `upsert_tag`: INSERT OR REPLACE, which also deletes another tag of the same name.
    fn upsert_tag(&mut self, id: &str, incoming: Tag) {
        self.tags
            .retain(|other, tag| other != id && tag.name != incoming.name);
        self.tags.insert(id, incoming);
    }

    /// `upsert_task`: insert (old links stay, new ones are added), or update (re-stamped
    /// now, links replaced) when strictly newer.
    fn upsert_task(&mut self, id: &str, incoming: Task, tag_ids: &[String]) {
        let now = self.clock.now();
        match self.tasks.get_mut(id) {
            Some(local) if incoming.updated_at > local.updated_at => {
                // update_task: everything but created_at.
                *local = Task {
                    created_at: local.created_at,
                    updated_at: now,
                    ..incoming
                };
                self.set_tags(id, tag_ids);
            }
            Some(_) => {}
            None => {
                self.tasks.insert(id, incoming);
                self.link_tags(id, tag_ids);
            }
        }
    }

    /// An incoming delete, foreign keys off: a task or tag row goes (its links stay); a
    /// list's tasks move to the inbox first (`delete_list`); task_tag deletes are ignored.
    fn apply_delete(&mut self, id: &str, record_type: &str) {
        match record_type {
            "task" => {
                self.tasks.remove(id);
            }
            "list" => {
                self.move_tasks_to_inbox(id);
                self.lists
                    .retain(|other, list| other != id || list.is_inbox);
            }
            "tag" => {
                self.tags.remove(id);
            }
            _ => {}
        }
    }
}
