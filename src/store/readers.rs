//! Read-only connections beside the writer's, for reading answers after their commit: a
//! large answer streams from the database on a blocking thread while the writer goes on.
//! SQLite's WAL mode lets them read a consistent snapshot while the writer writes.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

/// How many idle read connections are kept for the next answers.
const IDLE: usize = 8;

/// A pool of read-only connections to one database file.
#[derive(Debug)]
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Readers of the database at `path`, opened as they are first needed.
    pub fn new(path: PathBuf) -> Readers {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` inside one read transaction (one snapshot of the database). Blocks: call
    /// it from a blocking thread.
    pub fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        conn.execute_batch("BEGIN")?;
        let result = read(&conn);
        let ended = conn.execute_batch("COMMIT");
        if ended.is_ok()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE
        {
            idle.push(conn);
        }
        let value = result?;
        ended?;
        Ok(value)
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // They read a range once, front to back: a small cache keeps their memory small.
        conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA cache_size = -1024;")?;
        Ok(conn)
    }
}
