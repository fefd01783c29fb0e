//! The end-of-run checks that changes really travelled: every task a device made reached
//! every other device of its account, and no record crossed from one account to another.

use std::collections::HashMap;

use uuid::Uuid;

use crate::device::Device;

/// How many example messages a finding keeps.
const EXAMPLES: usize = 3;

/// Occurrences of one problem, with a few examples.
#[derive(Default)]
pub struct Finding {
    /// How many times it happened.
    pub count: u64,
    /// The first few, described.
    pub examples: Vec<String>,
}

impl Finding {
    fn add(&mut self, describe: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(describe());
        }
    }

    /// One line: the count, `what`, and the examples; `None` when it never happened.
    pub fn summary(&self, what: &str) -> Option<String> {
        (self.count > 0)
            .then(|| format!("{} {what}, e.g. {}", self.count, self.examples.join("; ")))
    }
}

/// Pairs (task, device of the same account but not its maker) where the device never
/// received the task.
pub fn missing_deliveries(devices: &[Device]) -> Finding {
    let mut by_account: HashMap<usize, Vec<&Device>> = HashMap::new();
    for device in devices {
        by_account.entry(device.account).or_default().push(device);
    }
    let mut missing = Finding::default();
    for group in by_account.values() {
        for maker in group {
            for task in maker.task_ids() {
                for receiver in group.iter().filter(|d| d.index != maker.index) {
                    if !receiver.received.contains(&task) {
                        missing.add(|| {
                            format!(
                                "task {task} of {} never reached {}",
                                maker.name, receiver.name
                            )
                        });
                    }
                }
            }
        }
    }
    missing
}

/// Records (tasks, inboxes) a device received from another account.
pub fn foreign_records(devices: &[Device]) -> Finding {
    let mut account_of: HashMap<Uuid, usize> = HashMap::new();
    for device in devices {
        account_of.insert(device.inbox, device.account);
        account_of.extend(device.task_ids().map(|task| (task, device.account)));
    }
    let mut foreign = Finding::default();
    for device in devices {
        for id in &device.received {
            if account_of
                .get(id)
                .is_some_and(|&account| account != device.account)
            {
                foreign
                    .add(|| format!("{} (account {}) received {id}", device.name, device.account));
            }
        }
    }
    foreign
}
