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
];

/// Brings the schema up to date, refusing a database written by a newer release.
pub fn migrate(conn: &mut Connection) -> Result<(), String> {
    let current: usize = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| format!("cannot read the schema version: {e}"))?;
    if current > MIGRATIONS.len() {
        return Err(format!(
            "the database has schema version {current}, newer than this tickit-sync understands ({}); \
             run the newer tickit-sync that wrote it, or restore a backup",
            MIGRATIONS.len()
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
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(error.contains("schema version 99"), "{error}");
    }
}
