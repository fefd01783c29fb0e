//! Reads a database without changing it, to tell whether it is sound: it opens, its schema
//! version is one this build knows, SQLite's integrity check passes, and the account inbox
//! rules hold (see `inbox.rs`). `check` runs it, on a stopped server's database or beside a
//! running server.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, Row};

use super::writer::stats;
use super::{Stats, read_only, schema};
use crate::problem::Problem;

/// Rows listed for each rule broken; more are summed up in one line.
const LISTED: usize = 10;
/// What to do about a state no tickit-sync writes.
const RESTORE_OR_REPORT: &str = "tickit-sync never writes this: restore the database from a \
                                 backup, or report it as a bug with this output";

/// What inspecting a database found.
#[derive(Debug)]
pub struct Inspection {
    /// Whether the file is there (`serve` creates it when not).
    pub exists: bool,
    /// Its `PRAGMA user_version`, once it opened.
    pub schema_version: Option<usize>,
    /// Its accounts, devices and live records, when it holds this server's tables.
    pub stats: Option<Stats>,
    /// Every problem found, all errors.
    pub problems: Vec<Problem>,
}

/// Inspects the database at `path`, creating and changing nothing (see [`read_only`](super::read_only)).
/// A missing file is no problem: `serve` creates it.
pub fn inspect(path: &Path) -> Inspection {
    let mut found = Inspection {
        exists: path.exists(),
        schema_version: None,
        stats: None,
        problems: Vec::new(),
    };
    if found.exists
        && let Err(e) = inspect_file(path, &mut found)
    {
        found.problems.push(unusable(&e));
    }
    found
}

fn inspect_file(path: &Path, found: &mut Inspection) -> rusqlite::Result<()> {
    if path.is_dir() {
        found.problems.push(Problem::error(
            None,
            "is a directory; set [database] path or TICKIT_SYNC_DB to a file in it",
        ));
        return Ok(());
    }
    let mut conn = read_only::connect(path)?;
    // One snapshot for every check, whatever a running server commits meanwhile.
    let snapshot = conn.transaction()?;
    let version: usize = snapshot.pragma_query_value(None, "user_version", |row| row.get(0))?;
    found.schema_version = Some(version);
    if version > schema::CURRENT {
        found.problems.push(Problem::error(
            None,
            format!(
                "schema version {version} is newer than this tickit-sync knows ({}), so `serve` \
                 would refuse it: run the newer tickit-sync that wrote it, or restore a backup",
                schema::CURRENT
            ),
        ));
    }
    let damage = integrity_check(&snapshot)?;
    let sound = damage.is_none();
    found.problems.extend(damage);
    // The rules read this server's tables, which schema 1 made and a newer one may have
    // changed; on a damaged file they would only report the damage again.
    if sound && (1..=schema::CURRENT).contains(&version) {
        for rule in &INBOX_RULES {
            broken(&snapshot, rule, &mut found.problems)?;
        }
        found.stats = Some(stats(&snapshot)?);
    }
    Ok(())
}

/// SQLite's `PRAGMA integrity_check`: `None` when it says `ok`, else its findings.
fn integrity_check(conn: &Connection) -> rusqlite::Result<Option<Problem>> {
    let mut statement = conn.prepare("PRAGMA integrity_check")?;
    let findings: Vec<String> = statement
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if findings == ["ok"] {
        return Ok(None);
    }
    let more = match findings.len().saturating_sub(LISTED) {
        0 => String::new(),
        more => format!(" (and {more} more)"),
    };
    Ok(Some(Problem::error(
        None,
        format!(
            "is damaged; SQLite's integrity check says: {}{more}. Stop the server and restore \
             the database from a backup",
            findings[..findings.len().min(LISTED)].join("; ")
        ),
    )))
}

/// Why the database could not be read, and what to do.
fn unusable(e: &rusqlite::Error) -> Problem {
    let message = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => format!(
            "is not an SQLite database ({e}); set [database] path or TICKIT_SYNC_DB to \
             tickit-sync's database file, or restore it from a backup"
        ),
        Some(ErrorCode::DatabaseCorrupt) => {
            format!("is damaged ({e}); stop the server and restore the database from a backup")
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => format!(
            "is locked by another process ({e}); check again once it lets go (a server \
             holds no lock this long)"
        ),
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => format!(
            "cannot be opened ({e}); run the check as a user who may read the file and its \
             directory"
        ),
        _ => format!("cannot be read: {e}"),
    };
    Problem::error(None, message)
}

/// One rule of the account inbox, as a query returning the rows that break it.
struct Rule {
    /// Rows that break the rule (without `LIMIT`).
    query: &'static str,
    /// The problem one row is, naming the account and the ids, and what to do.
    describe: fn(&Row) -> rusqlite::Result<String>,
    /// What the rows are, for the line summing up those not listed.
    what: &'static str,
}

/// The account inbox (`inbox.rs`): an account has one inbox, a live list marked as the
/// inbox; every inbox id a device used is an alias of the inbox of its account, the inbox's
/// own id among them; no other list is marked as an inbox; and tasks are stored in the
/// inbox itself, never under an alias.
const INBOX_RULES: [Rule; 6] = [
    Rule {
        // The key forbids it; read past the key's index, which would hide them.
        query: "SELECT account, COUNT(*), group_concat(list_id, ', ') FROM inboxes NOT INDEXED
                GROUP BY account HAVING COUNT(*) > 1",
        describe: |row| {
            Ok(format!(
                "account {:?} has {} inboxes ({}); {RESTORE_OR_REPORT}",
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?
            ))
        },
        what: "accounts with several inboxes",
    },
    Rule {
        query: "SELECT i.account, i.list_id,
                       CASE WHEN r.id IS NULL THEN 'missing'
                            WHEN r.deleted THEN 'deleted'
                            ELSE 'unmarked' END
                FROM inboxes AS i
                LEFT JOIN records AS r
                       ON r.account = i.account AND r.kind = 'list' AND r.id = i.list_id
                WHERE r.id IS NULL OR r.deleted
                   OR json_extract(r.body, '$.is_inbox') IS NOT 1",
        describe: |row| {
            let (account, inbox) = (row.get::<_, String>(0)?, row.get::<_, String>(1)?);
            Ok(match row.get_ref(2)?.as_str()? {
                "missing" => format!(
                    "account {account:?}: its inbox, list {inbox}, is not stored; run `tickit \
                     sync --force` on one of the account's devices, which sends its inbox again"
                ),
                "deleted" => format!(
                    "account {account:?}: its inbox, list {inbox}, is stored deleted; \
                     {RESTORE_OR_REPORT}"
                ),
                _ => format!(
                    "account {account:?}: its inbox, list {inbox}, is not marked \"is_inbox\": \
                     true; {RESTORE_OR_REPORT}"
                ),
            })
        },
        what: "accounts whose inbox is not a live inbox list",
    },
    Rule {
        query: "SELECT i.account, i.list_id FROM inboxes AS i
                WHERE NOT EXISTS (SELECT 1 FROM inbox_aliases AS a
                                  WHERE a.account = i.account AND a.list_id = i.list_id)",
        describe: |row| {
            Ok(format!(
                "account {:?}: its inbox, list {}, is not among its inbox ids, so a device \
                 could delete it; {RESTORE_OR_REPORT}",
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?
            ))
        },
        what: "accounts whose inbox is not among their inbox ids",
    },
    Rule {
        query: "SELECT a.account, a.list_id, a.device FROM inbox_aliases AS a
                WHERE NOT EXISTS (SELECT 1 FROM inboxes AS i WHERE i.account = a.account)",
        describe: |row| {
            let device = row.get::<_, String>(2)?;
            let device = match device.as_str() {
                "" => "a device of the original server".to_owned(),
                device => format!("device {device}"),
            };
            Ok(format!(
                "account {:?}: inbox id {} (of {device}) belongs to no inbox, as the account \
                 has none; {RESTORE_OR_REPORT}",
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?
            ))
        },
        what: "inbox ids of accounts without an inbox",
    },
    Rule {
        query: "SELECT r.account, r.id, i.list_id FROM records AS r
                LEFT JOIN inboxes AS i ON i.account = r.account
                WHERE r.kind = 'list' AND NOT r.deleted
                  AND json_extract(r.body, '$.is_inbox') IS 1
                  AND r.id IS NOT i.list_id",
        describe: |row| {
            let inbox = row.get::<_, Option<String>>(2)?;
            Ok(format!(
                "account {:?}: list {} is marked as an inbox, but the account's inbox is {}, \
                 so devices would show two inboxes; {RESTORE_OR_REPORT}",
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                inbox.as_deref().unwrap_or("none")
            ))
        },
        what: "lists marked as an inbox besides their account's",
    },
    Rule {
        // Alias by alias, each one's tasks found by `records_by_list`: CROSS JOIN keeps that
        // order, and `|| ''` takes the column's affinity off the alias, which would keep
        // SQLite from comparing it with the index's expression.
        query: "SELECT r.account, r.id, a.list_id, i.list_id FROM inbox_aliases AS a
                CROSS JOIN inboxes AS i ON i.account = a.account AND i.list_id != a.list_id
                CROSS JOIN records AS r
                  ON r.account = a.account AND json_extract(r.body, '$.list_id') = a.list_id || ''
                WHERE r.kind = 'task' AND NOT r.deleted",
        describe: |row| {
            Ok(format!(
                "account {:?}: task {} is stored in list {}, another id of the inbox, not in \
                 the inbox itself ({}), so devices without that id show it in no list; \
                 editing the task on any device moves it into the inbox",
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?
            ))
        },
        what: "tasks under another id of their inbox",
    },
];

/// Adds a problem for each row (up to [`LISTED`]) that breaks `rule`.
fn broken(conn: &Connection, rule: &Rule, problems: &mut Vec<Problem>) -> rusqlite::Result<()> {
    let query = format!("{} LIMIT {}", rule.query, LISTED + 1);
    let mut statement = conn.prepare(&query)?;
    let mut rows = statement.query([])?;
    let mut listed = 0;
    while let Some(row) = rows.next()? {
        if listed == LISTED {
            problems.push(Problem::error(
                None,
                format!("and more {}: the first {LISTED} are listed", rule.what),
            ));
            break;
        }
        problems.push(Problem::error(None, (rule.describe)(row)?));
        listed += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::store::test_support::*;

    /// The database as a file of its own in a fresh directory, as a stopped server leaves it.
    fn saved(db: &Database, name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tickit-sync-inspect-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tickit-sync.sqlite");
        db.connection()
            .execute("VACUUM INTO ?1", [path.to_str().unwrap()])
            .unwrap();
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(conn);
        path
    }

    const PHONE_TASK: &str = "5e0b7c1a-2d3f-4a5b-9c6d-7e8f9a0b1c2d";

    /// The laptop and the phone, each with its inbox and a task in it.
    fn two_devices() -> Database {
        let mut phone_task = task("on the phone", PHONE_INBOX, &[], T1);
        phone_task["id"] = PHONE_TASK.into();
        let mut db = Database::new();
        db.sync(
            LAPTOP,
            None,
            &[
                list(LAPTOP_INBOX, "Inbox", true, T0),
                task("on the laptop", LAPTOP_INBOX, &[], T0),
            ],
        );
        db.sync(
            PHONE,
            None,
            &[list(PHONE_INBOX, "Inbox", true, T1), phone_task],
        );
        db
    }

    fn messages(path: &Path) -> Vec<String> {
        let found = inspect(path);
        found.problems.iter().map(|p| p.message.clone()).collect()
    }

    fn broken_by(name: &str, sql: &str) -> Vec<String> {
        let path = saved(&two_devices(), name);
        Connection::open(&path).unwrap().execute_batch(sql).unwrap();
        let found = messages(&path);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        found
    }

    #[test]
    fn a_sound_database_has_no_problems_and_is_left_as_it_was() {
        let path = saved(&two_devices(), "sound");
        let before = std::fs::read(&path).unwrap();
        let found = inspect(&path);
        assert_eq!(found.problems, []);
        assert!(found.exists);
        assert_eq!(found.schema_version, Some(schema::CURRENT));
        let stats = found.stats.unwrap();
        assert_eq!((stats.accounts, stats.devices, stats.records), (1, 2, 3));
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let dir = path.parent().unwrap();
        let files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(files, ["tickit-sync.sqlite"], "no -wal or -shm created");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_file_is_no_problem_and_another_file_is() {
        let dir = std::env::temp_dir().join(format!("tickit-sync-inspect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = inspect(&dir.join("none.sqlite"));
        assert!(!missing.exists);
        assert_eq!(missing.problems, []);
        let text = dir.join("notes.txt");
        std::fs::write(
            &text,
            "not a database, but long enough to be read as one ".repeat(20),
        )
        .unwrap();
        let found = messages(&text);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("is not an SQLite database"),
            "{found:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_newer_schema_is_an_error() {
        let found = broken_by(
            "newer",
            &format!("PRAGMA user_version = {}", schema::CURRENT + 1),
        );
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with(&format!(
                "schema version {} is newer than this tickit-sync knows ({})",
                schema::CURRENT + 1,
                schema::CURRENT
            )),
            "{found:?}"
        );
    }

    #[test]
    fn each_inbox_rule_broken_is_named_with_its_ids() {
        let missing = broken_by(
            "missing",
            &format!("DELETE FROM records WHERE kind = 'list' AND id = '{LAPTOP_INBOX}'"),
        );
        assert_eq!(
            missing,
            [format!(
                "account \"default\": its inbox, list {LAPTOP_INBOX}, is not stored; run \
                 `tickit sync --force` on one of the account's devices, which sends its inbox \
                 again"
            )]
        );
        let unmarked = broken_by(
            "unmarked",
            "UPDATE records SET body = json_set(body, '$.is_inbox', json('false'))
             WHERE kind = 'list'",
        );
        assert_eq!(unmarked.len(), 1);
        assert!(unmarked[0].contains("is not marked \"is_inbox\": true"));
        let no_alias = broken_by(
            "no-alias",
            &format!("DELETE FROM inbox_aliases WHERE list_id = '{LAPTOP_INBOX}'"),
        );
        assert_eq!(no_alias.len(), 1);
        assert!(no_alias[0].contains("is not among its inbox ids"));
        let orphan_alias = broken_by(
            "orphan-alias",
            &format!(
                "INSERT INTO inbox_aliases VALUES ('kids', '{WORK}', '{DESKTOP}'), \
                 ('kids', '{ERRANDS}', '')"
            ),
        );
        assert_eq!(
            orphan_alias,
            [
                format!(
                    "account \"kids\": inbox id {WORK} (of device {DESKTOP}) belongs to no \
                     inbox, as the account has none; {RESTORE_OR_REPORT}"
                ),
                format!(
                    "account \"kids\": inbox id {ERRANDS} (of a device of the original server) \
                     belongs to no inbox, as the account has none; {RESTORE_OR_REPORT}"
                ),
            ]
        );
        let second_inbox = broken_by(
            "second-inbox",
            &format!(
                "INSERT INTO records (account, kind, id, deleted, version, stamp, body)
                 VALUES ('default', 'list', '{WORK}', 0, 1, 1, '{{\"is_inbox\":true}}')"
            ),
        );
        assert_eq!(second_inbox.len(), 1);
        assert!(
            second_inbox[0].starts_with(&format!(
                "account \"default\": list {WORK} is marked as an inbox, but the account's \
                 inbox is {LAPTOP_INBOX}"
            )),
            "{second_inbox:?}"
        );
        let task_under_alias = broken_by(
            "under-alias",
            &format!(
                "UPDATE records SET body = json_set(body, '$.list_id', '{PHONE_INBOX}')
                 WHERE kind = 'task' AND json_extract(body, '$.title') = 'on the phone'"
            ),
        );
        assert_eq!(task_under_alias.len(), 1);
        assert!(
            task_under_alias[0].contains(&format!(
                "is stored in list {PHONE_INBOX}, another id of the inbox, not in the inbox \
                 itself ({LAPTOP_INBOX})"
            )),
            "{task_under_alias:?}"
        );
        let two_inboxes = broken_by(
            "two-inboxes",
            &format!(
                "ALTER TABLE inboxes RENAME TO keyed;
                 CREATE TABLE inboxes (account TEXT, list_id TEXT);
                 INSERT INTO inboxes SELECT * FROM keyed;
                 INSERT INTO inboxes VALUES ('default', '{PHONE_INBOX}');"
            ),
        );
        assert!(
            two_inboxes[0].starts_with(&format!(
                "account \"default\" has 2 inboxes ({LAPTOP_INBOX}, {PHONE_INBOX})"
            )),
            "{two_inboxes:?}"
        );
    }

    #[test]
    fn rows_beyond_the_listed_ones_are_summed_up() {
        let aliases: Vec<String> = (0..LISTED + 3)
            .map(|n| format!("('kids', 'list-{n}', '')"))
            .collect();
        let found = broken_by(
            "many",
            &format!("INSERT INTO inbox_aliases VALUES {}", aliases.join(", ")),
        );
        assert_eq!(found.len(), LISTED + 1);
        assert_eq!(
            found[LISTED],
            "and more inbox ids of accounts without an inbox: the first 10 are listed"
        );
    }

    #[test]
    fn damage_found_by_the_integrity_check_is_reported() {
        // An index that no longer agrees with its table, as damage leaves it.
        let found = broken_by(
            "damaged",
            "PRAGMA writable_schema = ON;
             UPDATE sqlite_schema
                SET sql = 'CREATE INDEX records_by_stamp ON records (account, version, origin)'
              WHERE name = 'records_by_stamp';",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("is damaged; SQLite's integrity check says: "),
            "{found:?}"
        );
        assert!(found[0].contains("records_by_stamp"), "{found:?}");
        assert!(
            found[0].ends_with(". Stop the server and restore the database from a backup"),
            "{found:?}"
        );
    }
}
