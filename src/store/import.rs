//! The original tickit-sync (0.2.1) database read into this server's records, once: its
//! tables `lists`, `tags`, `tasks` (with `task_tags`) and `tombstones` become one account's
//! records and tombstones, every field as the original stored it. Every device's inbox is
//! folded into the account's one inbox, and tasks the original left pointing at a deleted
//! list or tag are tidied as this server would have. The original's tables are only read, so
//! going back to it stays possible.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::Value;

use super::clock::Clock;
use super::connection;
use super::decide::{Decision, Version, decide};
use super::delivery::ensure_applied;
use super::fingerprint;
use super::inbox::{OWNER_UNKNOWN, account_inbox};
use super::open_migrated;
use super::records::{load, newest_stamp, store};
use super::tidy::DeletedLookups;
use super::tidy_stored::tidy_after_deletes;
use super::unknown_inbox::transit_id;
use crate::problem::counted as count;
use crate::protocol::{Change, Kind};

mod original_tables;

use original_tables::Original;
pub use original_tables::holds_original_tables;

/// How the import of the database's own original tables is named in the `imports` table.
const IN_PLACE: &str = "in place";

/// What an import did, for the log and the `import` command.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub account: String,
    pub lists: usize,
    pub tags: usize,
    pub tasks: usize,
    /// Tag links of the imported tasks, from `task_tags`.
    pub tag_links: usize,
    pub tombstones: usize,
    /// The inbox lists (one per device) folded into the account's one inbox.
    pub inboxes: usize,
    /// Tasks the original left in a deleted list, moved to the inbox.
    pub moved_to_inbox: usize,
    /// Links to deleted tags the original left on tasks, removed.
    pub links_removed: usize,
    /// Records the account already held in a newer version (`import --merge`).
    pub kept_newer: usize,
    /// Rows no client could read, each with its table, id and fault; left out.
    pub skipped: Vec<String>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported into account {:?}: {} ({}), {}, {}, {}; {} folded into the account's \
             one inbox",
            self.account,
            count(self.tasks, "task"),
            count(self.tag_links, "tag link"),
            count(self.lists, "list"),
            count(self.tags, "tag"),
            count(self.tombstones, "tombstone"),
            count(self.inboxes, "inbox list"),
        )?;
        if self.moved_to_inbox > 0 {
            let tasks = count(self.moved_to_inbox, "task");
            write!(f, "; {tasks} of deleted lists moved to the inbox")?;
        }
        if self.links_removed > 0 {
            let links = count(self.links_removed, "link");
            write!(f, "; {links} to deleted tags removed")?;
        }
        if self.kept_newer > 0 {
            let records = count(self.kept_newer, "record");
            write!(f, "; {records} kept as this server had them, being newer")?;
        }
        for skipped in &self.skipped {
            write!(f, "\n  skipped (no client could read it): {skipped}")?;
        }
        Ok(())
    }
}

/// Whether the database's own original tables must be imported: they are there, were never
/// imported, and this server holds no records yet (a failed import is retried).
pub fn pending_in_place(conn: &Connection) -> rusqlite::Result<bool> {
    if !holds_original_tables(conn, "main")? {
        return Ok(false);
    }
    let done: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM imports WHERE source = ?1)
             OR EXISTS (SELECT 1 FROM records)",
        [IN_PLACE],
        |row| row.get(0),
    )?;
    Ok(!done)
}

/// Whether the account holds any record or tombstone.
fn account_holds_data(conn: &Connection, account: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM records WHERE account = ?1)",
        [account],
        |row| row.get(0),
    )
}

/// Imports the original's tables held in the database's own file into the default account,
/// the account every token of the original's config belongs to.
pub fn in_place(conn: &mut Connection, clock: &mut Clock) -> rusqlite::Result<ImportReport> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let account = crate::tokens::DEFAULT_ACCOUNT;
    let report = import(&tx, clock, "main", account, IN_PLACE)?;
    tx.commit()?;
    Ok(report)
}

/// `import --from`: imports an original tickit-sync database file into `account` of the
/// database at `path`, refusing an account that holds data unless `merge` (then each record
/// keeps its newer version). Safe beside a running server: it holds the write lock throughout.
pub fn from_file(
    path: &Path,
    from: &Path,
    account: &str,
    merge: bool,
) -> Result<ImportReport, String> {
    let mut conn = open_migrated(path)?;
    let same_file = match (std::fs::canonicalize(from), std::fs::canonicalize(path)) {
        (Ok(from), Ok(path)) => from == path,
        _ => false,
    };
    let schema = if same_file { "main" } else { "original" };
    let failed = |e: rusqlite::Error| format!("import from {} failed: {e}", from.display());
    if !same_file {
        if !from.is_file() {
            return Err(format!(
                "{} is not a file; give the original server's database file (its [database] \
                 path, by default tickit-sync.sqlite)",
                from.display()
            ));
        }
        let uri = connection::uri(from, "mode=ro");
        conn.execute("ATTACH DATABASE ?1 AS original", [uri])
            .map_err(failed)?;
    }
    if !holds_original_tables(&conn, schema).map_err(failed)? {
        return Err(format!(
            "{} does not hold the original tickit-sync's tables (lists, tags, tasks, task_tags, \
             tombstones); is it the right file?",
            from.display()
        ));
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    if !merge && account_holds_data(&tx, account).map_err(failed)? {
        return Err(format!(
            "account {account:?} in {} already holds tasks; nothing imported. Add --merge to \
             import anyway (of two versions of a record, the newer stays), or --account NAME \
             to import into another account",
            path.display()
        ));
    }
    let mut clock = Clock::starting_after(newest_stamp(&tx).map_err(failed)?);
    let source = std::path::absolute(from).unwrap_or_else(|_| from.to_owned());
    let report = import(
        &tx,
        &mut clock,
        schema,
        account,
        &source.display().to_string(),
    )
    .map_err(failed)?;
    tx.commit().map_err(failed)?;
    Ok(report)
}

/// Imports the original's tables in `schema` into `account`, each version competing with what
/// the account holds (nothing, unless merging), and notes the import as coming from `source`.
pub fn import(
    tx: &Connection,
    clock: &mut Clock,
    schema: &str,
    account: &str,
    source: &str,
) -> rusqlite::Result<ImportReport> {
    let mut report = ImportReport {
        account: account.to_owned(),
        ..ImportReport::default()
    };
    let original = Original::read(tx, schema, &mut report.skipped)?;
    let now = clock.horizon();
    let (records, tombstones) = original.resolve_deletes(now);

    let inboxes: Vec<&Change> = records
        .iter()
        .filter(|change| change.kind == Kind::List && is_inbox(change))
        .collect();
    report.inboxes = inboxes.len();
    let account_inbox = fold_inboxes(tx, clock, account, &inboxes, now, &mut report)?;

    let target = Target {
        tx,
        account,
        account_inbox,
        inbox_ids: inboxes.iter().map(|inbox| inbox.id.clone()).collect(),
        now,
    };
    target.put_records(clock, &records, &mut report)?;
    target.put_tombstones(clock, &tombstones, &mut report)?;
    tx.execute(
        "INSERT INTO imports (account, source, imported_at, summary) VALUES (?1, ?2, ?3, ?4)",
        params![account, source, now, report.to_string()],
    )?;
    Ok(report)
}

/// Where the import goes: the account, its inbox and every inbox id folded into it.
struct Target<'a> {
    tx: &'a Connection,
    account: &'a str,
    account_inbox: Option<String>,
    inbox_ids: HashSet<String>,
    /// No version competes as if made later than the import.
    now: i64,
}

impl Target<'_> {
    /// Stores the lists, tags and tasks but the inboxes (folded already), tasks tidied.
    fn put_records(
        &self,
        clock: &mut Clock,
        records: &[Change],
        report: &mut ImportReport,
    ) -> rusqlite::Result<()> {
        let mut live = Liveness::new(self.tx, self.account, records);
        for change in records.iter().filter(|change| !is_inbox(change)) {
            let mut change = change.clone();
            let tidied =
                change.kind == Kind::Task && self.tidy_task(&mut change, &mut live, report)?;
            if !put(self.tx, clock, self.account, &change, self.now)? {
                report.kept_newer += 1;
                continue;
            }
            if tidied {
                // Devices hold the untidied task at this `updated_at`.
                let held = Some(change.version);
                ensure_applied(self.tx, clock, self.account, Kind::Task, &change.id, held)?;
            }
            match change.kind {
                Kind::List => report.lists += 1,
                Kind::Tag => report.tags += 1,
                Kind::Task => {
                    report.tasks += 1;
                    report.tag_links += tag_ids(&change).count();
                }
                Kind::TaskTag => {}
            }
        }
        Ok(())
    }

    /// Stores the tombstones but those of inboxes, which every device keeps (a sync drops
    /// them too), tidying what a winning one leaves dangling in the account.
    fn put_tombstones(
        &self,
        clock: &mut Clock,
        tombstones: &[Change],
        report: &mut ImportReport,
    ) -> rusqlite::Result<()> {
        let deletes_an_inbox = |tombstone: &Change| {
            tombstone.kind == Kind::List
                && (self.inbox_ids.contains(&tombstone.id)
                    || self.account_inbox.as_ref() == Some(&tombstone.id))
        };
        let mut stored = Vec::new();
        for tombstone in tombstones.iter().filter(|t| !deletes_an_inbox(t)) {
            if put(self.tx, clock, self.account, tombstone, self.now)? {
                stored.push(tombstone);
                report.tombstones += 1;
            } else {
                report.kept_newer += 1;
            }
        }
        let inbox = self.account_inbox.as_ref();
        let lookups = DeletedLookups::default();
        // Before the server answers anyone: all at once.
        let all = usize::MAX;
        tidy_after_deletes(self.tx, clock, &lookups, self.account, inbox, stored, all)?;
        Ok(())
    }

    /// Points the task at the account inbox when it was in some device's inbox (a renaming,
    /// as for every upload) or in a list that is gone, and drops links to tags that are gone.
    /// Returns whether the task changed in a way devices must apply.
    fn tidy_task(
        &self,
        task: &mut Change,
        live: &mut Liveness,
        report: &mut ImportReport,
    ) -> rusqlite::Result<bool> {
        let mut tidied = false;
        let list = task
            .body
            .get("list_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let Some(inbox) = &self.account_inbox
            && list != *inbox
        {
            let in_an_inbox = self.inbox_ids.contains(&list);
            if in_an_inbox || !live.is_live(Kind::List, &list)? {
                task.body
                    .insert("list_id".into(), Value::from(inbox.as_str()));
                if !in_an_inbox {
                    report.moved_to_inbox += 1;
                    tidied = true;
                }
            }
        }
        let mut kept = Vec::new();
        for tag in tag_ids(task).map(str::to_owned).collect::<Vec<_>>() {
            if live.is_live(Kind::Tag, &tag)? {
                kept.push(Value::from(tag));
            } else {
                report.links_removed += 1;
                tidied = true;
            }
        }
        task.body.insert("tag_ids".into(), Value::Array(kept));
        Ok(tidied)
    }
}

/// Which lists and tags a task may point at: imported live ones, or live ones the account
/// already holds.
struct Liveness<'a> {
    tx: &'a Connection,
    account: &'a str,
    imported: HashSet<(Kind, String)>,
    stored: HashMap<(Kind, String), bool>,
}

impl<'a> Liveness<'a> {
    fn new(tx: &'a Connection, account: &'a str, records: &[Change]) -> Self {
        Liveness {
            tx,
            account,
            imported: records
                .iter()
                .map(|change| (change.kind, change.id.clone()))
                .collect(),
            stored: HashMap::new(),
        }
    }

    fn is_live(&mut self, kind: Kind, id: &str) -> rusqlite::Result<bool> {
        let key = (kind, id.to_owned());
        if self.imported.contains(&key) {
            return Ok(true);
        }
        if let Some(&live) = self.stored.get(&key) {
            return Ok(live);
        }
        let live = load(self.tx, self.account, kind, id)?.is_some_and(|row| !row.deleted);
        self.stored.insert(key, live);
        Ok(live)
    }
}

/// Makes the account's one inbox out of every device's: the id of the account's inbox if it
/// has one, else of the oldest; the content of the latest. Its `updated_at` moves just past
/// the latest, so each device takes it as an update of its own inbox, and sends its inbox
/// (and so its id) back at its next sync. Every id becomes an alias whose device is not
/// known yet, and so does the inbox's transit id (see `unknown_inbox`). Returns the account
/// inbox id.
fn fold_inboxes(
    tx: &Connection,
    clock: &mut Clock,
    account: &str,
    inboxes: &[&Change],
    now: i64,
    report: &mut ImportReport,
) -> rusqlite::Result<Option<String>> {
    let existing = account_inbox(tx, account)?;
    let oldest = inboxes
        .iter()
        .min_by_key(|inbox| (created_at(inbox), inbox.id.clone()))
        .map(|inbox| inbox.id.clone());
    let Some(account_inbox) = existing.or(oldest) else {
        return Ok(None);
    };
    tx.execute(
        "INSERT OR IGNORE INTO inboxes (account, list_id) VALUES (?1, ?2)",
        params![account, account_inbox],
    )?;
    let transit = transit_id(&account_inbox);
    for alias in inboxes.iter().map(|inbox| &inbox.id).chain([&transit]) {
        tx.execute(
            "INSERT OR IGNORE INTO inbox_aliases (account, list_id, device) VALUES (?1, ?2, ?3)",
            params![account, alias, OWNER_UNKNOWN],
        )?;
    }
    let Some(latest) = inboxes
        .iter()
        .max_by_key(|inbox| (inbox.version, inbox.id.clone()))
    else {
        return Ok(Some(account_inbox));
    };
    let mut folded = (*latest).clone();
    folded.id.clone_from(&account_inbox);
    folded
        .body
        .insert("id".into(), Value::from(account_inbox.as_str()));
    if put(tx, clock, account, &folded, now)? {
        ensure_applied(
            tx,
            clock,
            account,
            Kind::List,
            &account_inbox,
            Some(latest.version),
        )?;
    } else {
        report.kept_newer += 1;
    }
    Ok(Some(account_inbox))
}

/// Stores the version unless the account holds a newer one; says whether it was stored.
fn put(
    tx: &Connection,
    clock: &mut Clock,
    account: &str,
    change: &Change,
    now: i64,
) -> rusqlite::Result<bool> {
    let stored = load(tx, account, change.kind, &change.id)?;
    let stored_version = stored.as_ref().map(|row| Version {
        kind: change.kind,
        deleted: row.deleted,
        instant: row.version,
        body: &row.body,
    });
    match decide(&version_at(change, now), stored_version.as_ref()) {
        Decision::Insert | Decision::Replace => {
            let mut change = change.clone();
            change.version = change.version.min(now);
            let fingerprint = fingerprint::content(change.kind, change.deleted, &change.body);
            store(
                tx,
                clock,
                account,
                None,
                &change,
                &fingerprint,
                stored.as_ref(),
            )?;
            Ok(true)
        }
        Decision::Same | Decision::Lose => Ok(false),
    }
}

/// The version as it competes: at its own time, but never later than `now`.
fn version_at(change: &Change, now: i64) -> Version<'_> {
    Version {
        kind: change.kind,
        deleted: change.deleted,
        instant: change.version.min(now),
        body: &change.body,
    }
}

fn is_inbox(change: &Change) -> bool {
    change.kind == Kind::List && change.body.get("is_inbox") == Some(&Value::Bool(true))
}

fn created_at(change: &Change) -> i64 {
    change
        .body
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(crate::timestamp::parse_nanos)
        .unwrap_or(i64::MAX)
}

fn tag_ids(task: &Change) -> impl Iterator<Item = &str> {
    task.body
        .get("tag_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}
