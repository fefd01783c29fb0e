//! The database schema and its forward migrations, tracked with `PRAGMA user_version`.

use rusqlite::Connection;

/// Each entry moves the schema from version `index` to `index + 1`. Append, never edit.
const MIGRATIONS: &[&str] = &[
    // 1: records (and tombstones) with their server stamps; the account inbox and its aliases.
    "CREATE TABLE records (
        account TEXT NOT NULL,
        kind    TEXT NOT NULL,
        id      TEXT NOT NULL,
        deleted INTEGER NOT NULL,
        version INTEGER NOT NULL,
        stamp   INTEGER NOT NULL,
        origin  TEXT,
        body    TEXT NOT NULL,
        PRIMARY KEY (account, kind, id)
    ) WITHOUT ROWID;
    CREATE INDEX records_by_stamp ON records (account, stamp);
    CREATE TABLE inboxes (
        account TEXT PRIMARY KEY,
        list_id TEXT NOT NULL
    );
    CREATE TABLE inbox_aliases (
        account TEXT NOT NULL,
        list_id TEXT NOT NULL,
        device  TEXT NOT NULL,
        UNIQUE (account, list_id)
    );
    CREATE INDEX inbox_aliases_by_device ON inbox_aliases (account, device);
    CREATE TABLE devices (
        account TEXT NOT NULL,
        device  TEXT NOT NULL,
        PRIMARY KEY (account, device)
    ) WITHOUT ROWID;",
    // 2: what each device holds of each record, so a re-stamped copy is told from an edit;
    // each record's content fingerprint and the instant of its `updated_at` (backfilled by
    // `records::backfill` for rows written by schema 1); each device's clock offset and when
    // its last request arrived, with its `last_sync` and the `server_time` it was answered with.
    "ALTER TABLE records ADD COLUMN fingerprint BLOB NOT NULL DEFAULT x'';
    ALTER TABLE records ADD COLUMN updated_at INTEGER;
    CREATE TABLE device_copies (
        account     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        id          TEXT NOT NULL,
        device      TEXT NOT NULL,
        fingerprint BLOB NOT NULL,
        body        TEXT NOT NULL,
        updated_at  INTEGER,
        sent_at     INTEGER,
        last_upload BLOB,
        UNIQUE (account, kind, id, device)
    );
    ALTER TABLE devices ADD COLUMN clock_offset INTEGER;
    ALTER TABLE devices ADD COLUMN clock_warned INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE devices ADD COLUMN last_received_at INTEGER;
    ALTER TABLE devices ADD COLUMN last_server_time INTEGER;
    ALTER TABLE devices ADD COLUMN last_last_sync INTEGER;",
    // 3: the imports of an original tickit-sync database, so each runs once.
    "CREATE TABLE imports (
        account     TEXT NOT NULL,
        source      TEXT NOT NULL,
        imported_at INTEGER NOT NULL,
        summary     TEXT NOT NULL
    );",
    // 4: each device's last answer is remembered in memory (`last_answer`), so a sync that
    // changes nothing writes nothing; a device holds every record stamped up to its
    // `sent_through` without a copy of each, and its own copies are found by device
    // (`sent_through`); an answer reads its records a group at a time (`feed`).
    "ALTER TABLE devices ADD COLUMN sent_through INTEGER;
    CREATE INDEX records_by_group ON records (account, kind, deleted, stamp);
    CREATE INDEX device_copies_by_device ON device_copies (account, device);
    ALTER TABLE devices DROP COLUMN last_received_at;
    ALTER TABLE devices DROP COLUMN last_server_time;
    ALTER TABLE devices DROP COLUMN last_last_sync;",
    // 5: a list or tag delete finds the tasks it tidies by index (`tidy`), not by reading
    // every task of the account: live tasks by their list, and each tag a live task's
    // `tag_ids` holds (kept by `records::store`, filled here from the stored tasks).
    // (A partial index on records would make SQLite re-prepare every statement that binds
    // `kind` or `deleted` each time it runs, to check the index still applies.)
    "CREATE INDEX records_by_list ON records (account, json_extract(body, '$.list_id'));
    CREATE TABLE tag_references (
        account TEXT NOT NULL,
        tag     TEXT NOT NULL,
        task    TEXT NOT NULL,
        PRIMARY KEY (account, tag, task)
    ) WITHOUT ROWID;
    CREATE INDEX tag_references_by_task ON tag_references (account, task);
    INSERT OR IGNORE INTO tag_references (account, tag, task)
        SELECT r.account, t.value, r.id
        FROM records AS r, json_each(r.body, '$.tag_ids') AS t
        WHERE r.kind = 'task' AND r.deleted = 0
          AND json_type(r.body, '$.tag_ids') = 'array' AND t.type = 'text';",
    // 6: a task's tag references are changed by what its new version adds and drops, read
    // from the version it replaces (`tag_references::referenced_tags`), so nothing looks
    // them up by task: the index that did cost every task write a second tree to change.
    // The deletes whose stored tasks are still to be tidied (`tidy_stored`). The stamp
    // index holds each record's origin, so "what changed since, and not by this device"
    // (`feed::any_changed`) reads the index alone, not a row per record.
    "DROP INDEX tag_references_by_task;
    DROP INDEX records_by_stamp;
    CREATE INDEX records_by_stamp ON records (account, stamp, origin);
    CREATE TABLE pending_tidy (
        account TEXT NOT NULL,
        kind    TEXT NOT NULL,
        id      TEXT NOT NULL,
        PRIMARY KEY (account, kind, id)
    ) WITHOUT ROWID;",
    // 7: what `tickit-sync devices` tells of each device (`device_state`): when it was
    // first seen and last synced, the token entry and client (User-Agent) it synced with,
    // and the stamp its last answer was complete to, after which what waits for it is
    // stamped; when each token was last used (`token --list`). What a backup's copy asks
    // of each device once it is restored (`restore`): the instant to have it upload again
    // from, and when the copy was taken.
    "ALTER TABLE devices ADD COLUMN first_seen_at INTEGER;
    ALTER TABLE devices ADD COLUMN last_sync_at INTEGER;
    ALTER TABLE devices ADD COLUMN answered_through INTEGER;
    ALTER TABLE devices ADD COLUMN token_name TEXT;
    ALTER TABLE devices ADD COLUMN user_agent TEXT;
    ALTER TABLE devices ADD COLUMN upload_again_from INTEGER;
    CREATE TABLE token_use (
        name         TEXT PRIMARY KEY,
        last_used_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE backup_taken (taken_at INTEGER NOT NULL);",
];

/// The schema version this release writes.
pub const CURRENT: usize = MIGRATIONS.len();

/// The schema version of the database `conn` has open.
pub fn version(conn: &Connection) -> rusqlite::Result<usize> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the schema up to date, refusing a database written by a newer release.
pub fn migrate(conn: &mut Connection) -> Result<(), String> {
    let current = version(conn).map_err(|e| format!("cannot read the schema version: {e}"))?;
    if current > CURRENT {
        return Err(format!(
            "the database has schema version {current}, newer than this tickit-sync understands \
             ({CURRENT}); run the newer tickit-sync that wrote it, or restore a backup"
        ));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn
            .transaction()
            .map_err(|e| format!("cannot start migration {}: {e}", index + 1))?;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", index + 1))
            .and_then(|()| tx.commit())
            .map_err(|e| format!("migration to schema version {} failed: {e}", index + 1))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_an_empty_database_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
    }

    #[test]
    fn upgrading_from_schema_1_keeps_records_and_fills_their_fingerprints() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let body = r##"{"id":"083f62a4-7e11-459f-9403-9136b2e4b7b8","name":"a","color":"#f00","created_at":"2026-11-24T22:45:21Z","updated_at":"2026-11-24T22:45:22Z"}"##;
        conn.execute(
            "INSERT INTO records VALUES ('default', 'tag', '083f62a4-7e11-459f-9403-9136b2e4b7b8', 0, 5, 6, NULL, ?1)",
            [body],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        crate::store::records::backfill(&conn).unwrap();
        let (fingerprint, updated_at): (Vec<u8>, i64) = conn
            .query_row("SELECT fingerprint, updated_at FROM records", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!(fingerprint.len(), 32);
        assert_eq!(updated_at, 1_795_560_322_000_000_000);
    }

    #[test]
    fn upgrading_from_schema_4_indexes_the_tags_of_stored_live_tasks() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (index, sql) in MIGRATIONS[..4].iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", index + 1).unwrap();
        }
        let mut insert = conn
            .prepare(
                "INSERT INTO records (account, kind, id, deleted, version, stamp, body)
                 VALUES (?1, ?2, ?3, ?4, 1, 1, ?5)",
            )
            .unwrap();
        for (account, kind, id, deleted, body) in [
            ("a", "task", "t1", false, r#"{"tag_ids":["x","y","x",7]}"#),
            ("b", "task", "t1", false, r#"{"tag_ids":["x"]}"#),
            ("a", "task", "t2", true, r#"{"tag_ids":["x"]}"#),
            ("a", "task", "t3", false, r#"{"tag_ids":"x"}"#),
            ("a", "task", "t4", false, r#"{}"#),
            ("a", "tag", "x", false, r#"{"tag_ids":["y"]}"#),
        ] {
            insert
                .execute(rusqlite::params![account, kind, id, deleted, body])
                .unwrap();
        }
        drop(insert);
        migrate(&mut conn).unwrap();
        let references: Vec<(String, String, String)> = conn
            .prepare("SELECT account, tag, task FROM tag_references ORDER BY account, tag")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let expected = [("a", "x", "t1"), ("a", "y", "t1"), ("b", "x", "t1")]
            .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
        assert_eq!(references, expected);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(error.contains("schema version 99"), "{error}");
    }
}
