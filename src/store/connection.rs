//! Opens the writer's connection: WAL, durable commits, a short wait for other processes'
//! locks, and a write that proves the database can be written, so a server that could not
//! save a sync refuses to start and says what to change instead of answering 500s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use crate::permissions;

/// The settings that choose the database file.
const SETTING: &str = "[database] path or TICKIT_SYNC_DB";
/// How many prepared statements the connection keeps.
const STATEMENT_CACHE: usize = 64;
/// How long the writer waits for another process's lock on the file before it answers
/// "busy": short, because every account's syncs wait behind it meanwhile.
const BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// Opens the database at `path` (creating it if needed) for writing, and proves it can be.
pub fn open(path: &Path) -> Result<Connection, String> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(format!(
            "database {}: directory {} does not exist; create it or set {SETTING} to a \
             writable place",
            path.display(),
            dir.display()
        ));
    }
    if path.is_dir() {
        return Err(format!(
            "database {} is a directory; set {SETTING} to a file in it, e.g. {}",
            path.display(),
            path.join("tickit-sync.sqlite").display()
        ));
    }
    let refused = |e: rusqlite::Error| unwritable(path, &e);
    let mut conn = Connection::open(path).map_err(refused)?;
    // A sync runs a few dozen distinct statements; each is prepared once.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(refused)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(refused)?;
    prove_writable(&mut conn).map_err(refused)?;
    Ok(conn)
}

/// The file SQLite keeps beside the database at `path` under `suffix` (`-wal`, `-shm`,
/// `-journal`).
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The `file:` URI of the database at `path` with `query` (`mode=ro`, `immutable=1`), for
/// the settings only a URI can give.
pub fn uri(path: &Path, query: &str) -> String {
    let escaped = path
        .display()
        .to_string()
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23");
    format!("file:{escaped}?{query}")
}

/// True when SQLite refused because another connection holds a lock: trying again later
/// may succeed.
pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Commits a write that changes nothing visible (the header's `user_version`, rewritten
/// with its own value): SQLite opens a file it may not write read-only without a word, and
/// fails only at the first write, which would be a device's sync.
fn prove_writable(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let probe = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    probe.pragma_update(None, "user_version", version)?;
    probe.commit()
}

/// Why the database at `path` cannot be written, after SQLite refused with `e`, and what
/// to change: the file's permissions, its directory's (SQLite creates the `-wal` and
/// `-shm` files beside it), or the setting.
fn unwritable(path: &Path, e: &rusqlite::Error) -> String {
    if is_busy(e) {
        return format!(
            "database {}: another process holds a lock on it ({e}); stop that process (a \
             second tickit-sync, or a tool with the file open), or set {SETTING} to another \
             file",
            path.display()
        );
    }
    let denied = matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied)
    );
    if !denied {
        return format!(
            "cannot use database {}: {e}; set {SETTING} to a tickit-sync database file, or to \
             a new file",
            path.display()
        );
    }
    let file_refused = path
        .exists()
        .then(|| std::fs::OpenOptions::new().write(true).open(path).err());
    match file_refused.flatten() {
        Some(io) => permissions::file_write_error(path, &io, SETTING),
        // The file itself may be written (or is not there yet): what SQLite could not
        // create is beside it, in the directory.
        None => {
            let reason = format!("{e} (SQLite creates its -wal and -shm files beside it)");
            let denied = std::io::Error::new(std::io::ErrorKind::PermissionDenied, reason);
            permissions::write_error(path, &denied, SETTING)
        }
    }
}
