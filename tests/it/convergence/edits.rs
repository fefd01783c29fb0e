//! Random edits for one device, drawn from what it holds, each one the desktop client can
//! make (see [`Action`]).

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use crate::desktop_model::{Action, Device};

/// Task titles: few, so that an edit now and then returns a task to what it was.
const TITLES: &[&str] = &["milk", "bread", "call mum", "taxes", "gym"];

/// The colours `Tag::random_color` picks from.
const COLORS: &[&str] = &["#f38ba8", "#fab387", "#a6e3a1", "#89b4fa", "#cba6f7"];

const PRIORITIES: &[&str] = &["low", "medium", "high", "urgent"];

/// Makes one kind of edit on `device`, if it holds what the edit needs.
type MakeEdit = fn(&mut StdRng, &Device, &mut Names) -> Option<Action>;

/// Each kind of edit and how often it is drawn.
const EDITS: &[(u32, MakeEdit)] = &[
    (4, add_task),
    (3, edit_title),
    (2, complete),
    (1, uncomplete),
    (2, move_task),
    (2, tag_task),
    (1, untag_task),
    (1, delete_task),
    (1, add_list),
    (1, rename_list),
    (1, delete_list),
    (1, add_tag),
    (1, rename_tag),
    (1, delete_tag),
];

/// Names for new lists and tags, unique in the run: tag names are UNIQUE in the client's
/// database, so two devices must never make the same one.
#[derive(Default)]
pub struct Names {
    made: u32,
}

impl Names {
    fn next(&mut self, kind: &str) -> String {
        self.made += 1;
        format!("{kind} {}", self.made)
    }
}

/// A random edit that `device` can make now.
pub fn random_edit(rng: &mut StdRng, device: &Device, names: &mut Names) -> Action {
    loop {
        let (_, make) = EDITS
            .choose_weighted(rng, |(weight, _)| *weight)
            .expect("EDITS has positive weights");
        if let Some(action) = make(rng, device, names) {
            return action;
        }
    }
}

/// A new random (v4) UUID.
pub fn new_id(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

fn add_task(rng: &mut StdRng, device: &Device, _: &mut Names) -> Option<Action> {
    let lists: Vec<&str> = device.lists.iter().map(|(id, _)| id).collect();
    let tags: Vec<&str> = device.tags.iter().map(|(id, _)| id).collect();
    let tag_count = rng.random_range(0..=2.min(tags.len()));
    Some(Action::AddTask {
        id: new_id(rng),
        title: pick(rng, TITLES)?,
        list_id: pick(rng, &lists)?,
        tag_ids: tags
            .choose_multiple(rng, tag_count)
            .map(|tag| tag.to_string())
            .collect(),
        priority: pick(rng, PRIORITIES)?,
        due: None,
    })
}

fn edit_title(rng: &mut StdRng, device: &Device, _: &mut Names) -> Option<Action> {
    let id = pick(rng, &task_ids(device, |_| true))?.to_owned();
    let current = &device.tasks.get(&id)?.title;
    let titles: Vec<&str> = TITLES.iter().copied().filter(|t| t != current).collect();
    let title = pick(rng, &titles)?;
    Some(Action::EditTitle { id, title })
}

fn complete(rng: &mut StdRng, device: &Device, _: &mut Names) -> Option<Action> {
    let open = task_ids(device, |completed| !completed);
    Some(Action::Complete {
        id: pick(rng, &open)?,
    })
}

fn uncomplete(rng: &mut StdRng, device: &Device, _: &mut Names) -> Option<Action> {
    let done = task_ids(device, |completed| completed);
    Some(Action::Uncomplete {
        id: pick(rng, &done)?,
    })
}

fn move_task(rng: &mut StdRng, device: &Device, _: &mut Names) -> Option<Action> {
    let id = pick(rng, &task_ids(device, |_| true))?.to_owned();
    let current = &device.tasks.get(&id)?.list_id;
    let lists: Vec<&str> = device
        .lists
        .iter()
        .map(|(list, _)| list)
        .filter(|list| list != current)
        .collect();
    let list_id = pick(rng, &lists)?;
    Some(Action::MoveTask { id, list_id })
}

fn tag_task(rng: &mut StdRng, device: &Device, _: &mut Names) -> Option<Action> {
    let id = pick(rng, &task_ids(device, |_| true))?.to_owned();
    let current = device.tag_ids(&id);
    let tags: Vec<&str> = device
        .tags
        .iter()
        .map(|(tag, _)| tag)
        .filter(|tag| !current.iter().any(|t| t == tag))
        .collect();
    let tag_id = pick(rng, &tags)?;
    Some(Action::TagTask { id, tag_id })
}

fn untag_task(rng: &mut StdRng, device: &Device, _: &mut Names) -> Option<Action> {
    let id = pick(rng, &task_ids(device, |_| true))?.to_owned();
    let tags = device.tag_ids(&id);
    let tag_id = pick(rng, &tags)?;
    Some(Action::UntagTask { id, tag_id })
}

fn delete_task(rng: &mut StdRng, device: &Device, _: &mut Names) -> Option<Action> {
    let id = pick(rng, &task_ids(device, |_| true))?.to_owned();
    Some(Action::DeleteTask { id })
}

fn add_list(rng: &mut StdRng, _: &Device, names: &mut Names) -> Option<Action> {
    Some(Action::AddList {
        id: new_id(rng),
        name: names.next("list"),
    })
}

fn rename_list(rng: &mut StdRng, device: &Device, names: &mut Names) -> Option<Action> {
    let id = pick(rng, &list_ids(device))?.to_owned();
    Some(Action::RenameList {
        id,
        name: names.next("list"),
    })
}

fn delete_list(rng: &mut StdRng, device: &Device, _: &mut Names) -> Option<Action> {
    let id = pick(rng, &list_ids(device))?.to_owned();
    Some(Action::DeleteList { id })
}

fn add_tag(rng: &mut StdRng, _: &Device, names: &mut Names) -> Option<Action> {
    Some(Action::AddTag {
        id: new_id(rng),
        name: names.next("tag"),
        color: pick(rng, COLORS)?,
    })
}

fn rename_tag(rng: &mut StdRng, device: &Device, names: &mut Names) -> Option<Action> {
    let tags: Vec<&str> = device.tags.iter().map(|(id, _)| id).collect();
    let id = pick(rng, &tags)?;
    Some(Action::RenameTag {
        id,
        name: names.next("tag"),
    })
}

fn delete_tag(rng: &mut StdRng, device: &Device, _: &mut Names) -> Option<Action> {
    let tags: Vec<&str> = device.tags.iter().map(|(id, _)| id).collect();
    let id = pick(rng, &tags)?;
    Some(Action::DeleteTag { id })
}

/// Ids of the tasks whose completion `wanted` accepts.
fn task_ids(device: &Device, wanted: impl Fn(bool) -> bool) -> Vec<&str> {
    device
        .tasks
        .iter()
        .filter(|(_, task)| wanted(task.completed))
        .map(|(id, _)| id)
        .collect()
}

/// Ids of the lists a user may rename or delete (all but the inbox).
fn list_ids(device: &Device) -> Vec<&str> {
    device
        .lists
        .iter()
        .filter(|(_, list)| !list.is_inbox)
        .map(|(id, _)| id)
        .collect()
}

/// One of `items`, or `None` when there is none.
fn pick(rng: &mut StdRng, items: &[impl AsRef<str>]) -> Option<String> {
    items.choose(rng).map(|item| item.as_ref().to_owned())
}
