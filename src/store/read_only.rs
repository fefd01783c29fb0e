//! Opens the database read-only for the commands a person runs beside the server (`devices`,
//! `token --list`, `backup`), creating nothing beside it. While a server has the database
//! open its `-wal` and `-shm` files exist, and a reader shares them, so it reads the newest
//! commits and never blocks the writer. A stopped server leaves neither, and a read-only
//! connection would create them, owned by whoever ran the command (often root), which the
//! server's own user then cannot open: so with neither a `-wal` nor a rollback `-journal`
//! beside it, the file is opened immutable.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::connection;

/// How long a read waits for another process's lock (a server recovering its WAL, a
/// checkpoint) to let go.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the database at `path` read-only; the error says what is wrong with the path.
pub fn open(path: &Path) -> Result<Connection, String> {
    if !path.is_file() {
        return Err(if path.exists() {
            format!("database {} is not a file", path.display())
        } else {
            format!(
                "no database at {}: the server creates it at its first start (check [database] \
                 path in the config, or TICKIT_SYNC_DB)",
                path.display()
            )
        });
    }
    connect(path).map_err(|e| format!("cannot read database {}: {e}", path.display()))
}

/// Opens the database at `path` for reading only, creating nothing beside it: immutable
/// when neither a `-wal` nor a rollback `-journal` file is beside it (no server has it
/// open), else through them, as the server's own readers do.
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let server_has_it_open = ["-wal", "-journal"]
        .iter()
        .any(|suffix| connection::beside(path, suffix).exists());
    let query = if server_has_it_open {
        "mode=ro"
    } else {
        "immutable=1"
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(connection::uri(path, query), flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_servers_database_is_read_without_creating_files_beside_it() {
        let dir = std::env::temp_dir().join(format!("tickit-sync-ro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("odd ?#% name.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (7);",
        )
        .unwrap();
        drop(conn);
        let before: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        let reader = open(&path).unwrap();
        let x: i64 = reader
            .query_row("SELECT x FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(x, 7);
        drop(reader);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), before.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_database_says_where_it_was_looked_for() {
        let error = open(Path::new("/nonexistent/tickit.sqlite")).unwrap_err();
        assert!(
            error.starts_with("no database at /nonexistent/tickit.sqlite"),
            "{error}"
        );
    }
}
