//! When the WAL is copied back into the database file. SQLite's automatic checkpoint runs
//! inside the commit that takes the WAL past 1,000 pages, so the sync being committed, and
//! every sync queued behind it, would wait for it. Instead SQLite's WAL hook tells the
//! writer how many pages the WAL holds after each commit, and the writer checkpoints when it
//! has nothing else to do, or when the WAL has grown large while syncs keep coming.

use std::ffi::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::Connection;
use rusqlite::hooks::Wal;

/// Pages in the writer's WAL after its last commit. SQLite's hook takes a plain function,
/// and the process has one writer connection, so the count lives here.
static PAGES: AtomicUsize = AtomicUsize::new(0);

/// Takes checkpointing over from SQLite for `conn` (the hook replaces its automatic
/// checkpoint).
pub fn take_over_checkpoints(conn: &Connection) {
    conn.wal_hook(Some(note_pages));
}

fn note_pages(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    PAGES.store(usize::try_from(pages).unwrap_or(0), Ordering::Relaxed);
    Ok(())
}

/// Copies what the WAL holds into the database file, as far as readers allow, if it holds
/// at least `min_pages`. A failure only lets the WAL grow, and the next checkpoint tries
/// again.
pub fn checkpoint_from(conn: &Connection, min_pages: usize) {
    if PAGES.load(Ordering::Relaxed) < min_pages {
        return;
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        eprintln!("warning: could not checkpoint the database: {e}");
    }
    PAGES.store(0, Ordering::Relaxed);
}
