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
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(error.contains("schema version 99"), "{error}");
    }
}
