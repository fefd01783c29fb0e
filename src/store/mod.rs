//! The database: one writer thread ([`writer`]) owns the SQLite connection and serves typed
//! commands sent over a channel by cloneable [`Store`] handles; answers are read after their
//! commit through connections of their own ([`readers`]).

mod backup;
mod clock;
mod connection;
#[cfg(test)]
mod convergence_tests;
mod copies;
mod decide;
mod delivery;
mod device_clock;
mod device_listing;
mod device_state;
mod feed;
mod fingerprint;
mod import;
#[cfg(test)]
mod import_tests;
mod inbox;
mod inspect;
mod large_work;
mod last_answer;
mod read_only;
mod readers;
mod records;
mod restore;
mod schema;
mod sent_through;
mod sync;
mod tag_references;
#[cfg(test)]
mod test_support;
mod tidy;
mod tidy_stored;
mod unknown_inbox;
mod wal;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::protocol::SyncRequest;
pub use backup::backup;
use clock::Clock;
pub use device_listing::{DeviceListing, devices, token_last_use};
pub use device_state::Caller;
pub use feed::{FeedRange, OutgoingRecord};
pub use import::{ImportReport, from_file as import_file};
pub use inspect::{Inspection, inspect};
use readers::Readers;
use records::newest_stamp;
pub use schema::CURRENT as SCHEMA_VERSION;
pub use sync::SyncOutcome;
use writer::{Command, Writer};

/// How many commands may wait for the writer before senders wait too.
const QUEUE_DEPTH: usize = 1024;

/// A cheap, cloneable handle to the writer thread, and to the connections that read
/// answers after their commit.
#[derive(Clone, Debug)]
pub struct Store {
    commands: mpsc::Sender<Command>,
    readers: Arc<Readers>,
    /// The database file, for its size.
    path: Arc<PathBuf>,
}

/// Why the store could not answer.
#[derive(Debug)]
pub enum StoreError {
    /// The writer thread has stopped (shutdown, or it failed); nothing was written.
    WriterGone,
    /// Another process holds a lock on the database and did not let go in time; nothing
    /// was written, and trying again shortly may succeed.
    Busy(String),
    /// SQLite refused; the request's changes were rolled back.
    Database(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::WriterGone => f.write_str("the database writer has stopped"),
            StoreError::Busy(e) => write!(f, "the database is locked by another process: {e}"),
            StoreError::Database(e) => write!(f, "database error: {e}"),
        }
    }
}

/// Figures for a person reading `systemctl status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub accounts: u64,
    pub devices: u64,
    /// Devices that synced in the last 24 hours.
    pub devices_last_day: u64,
    pub records: u64,
}

fn database_error(e: impl std::borrow::Borrow<rusqlite::Error>) -> StoreError {
    let e = e.borrow();
    if connection::is_busy(e) {
        StoreError::Busy(e.to_string())
    } else {
        StoreError::Database(e.to_string())
    }
}

/// The database, opened: the handle, the writer thread, and what this start imported.
pub struct Opened {
    pub store: Store,
    /// Ends, checkpointing the WAL, once every handle has been dropped.
    pub writer: JoinHandle<()>,
    /// The original server's tables found in the file and imported on this start.
    pub imported: Option<ImportReport>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database, imports the original server's
    /// tables the first time it finds them there, then starts the writer thread, which
    /// counts the batches it commits in `metrics`.
    pub fn open(path: &Path, metrics: Arc<Metrics>) -> Result<Opened, String> {
        let mut conn = open_migrated(path)?;
        let failed = |e: rusqlite::Error| format!("cannot read database {}: {e}", path.display());
        let mut clock = Clock::starting_after(newest_stamp(&conn).map_err(failed)?);
        let imported = if import::pending_in_place(&conn).map_err(failed)? {
            Some(import::in_place(&mut conn, &mut clock).map_err(|e| {
                format!(
                    "database {}: holds the original tickit-sync's tables, and importing them \
                     failed: {e}; nothing was changed, and the next start tries again",
                    path.display()
                )
            })?)
        } else {
            None
        };
        let (commands, receiver) = mpsc::channel(QUEUE_DEPTH);
        let writer = std::thread::Builder::new()
            .name("tickit-sync-writer".into())
            .spawn(move || Writer::new(conn, clock, metrics).run(receiver))
            .map_err(|e| format!("cannot start the database writer thread: {e}"))?;
        Ok(Opened {
            store: Store {
                commands,
                readers: Arc::new(Readers::new(path.to_owned())),
                path: Arc::new(path.to_owned()),
            },
            writer,
            imported,
        })
    }

    /// Applies one sync request of `caller` atomically and durably; a device whose clock
    /// is off by more than `skew_allowance` is reported in the outcome, once.
    pub async fn sync(
        &self,
        caller: Caller,
        request: SyncRequest,
        skew_allowance: std::time::Duration,
    ) -> Result<SyncOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Sync {
            caller,
            request,
            skew_allowance: i64::try_from(skew_allowance.as_nanos()).unwrap_or(i64::MAX),
            reply,
        };
        self.ask(command, answer).await?
    }

    /// Calls `each` with every record of an answer, in the order they go out, until it
    /// returns false: `feed` read from one snapshot of the database, and `extras`. Blocks
    /// while it reads: call it from a blocking thread.
    pub fn each_record(
        &self,
        feed: Option<&FeedRange>,
        extras: Vec<OutgoingRecord>,
        each: impl FnMut(OutgoingRecord) -> bool,
    ) -> Result<(), StoreError> {
        match feed {
            Some(feed) => self
                .readers
                .read(|conn| feed::in_answer_order(Some((conn, feed)), extras, each)),
            None => feed::in_answer_order(None, extras, each),
        }
        .map_err(database_error)
    }

    /// Counts accounts, devices and records; also proves the writer is alive and not wedged.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.ask(Command::Stats { reply }, answer).await?
    }

    /// How many commands wait for the writer (the one it is carrying out not counted).
    pub fn queue_depth(&self) -> usize {
        self.commands.max_capacity() - self.commands.capacity()
    }

    /// The size of the database file and its write-ahead log, in bytes; a file that cannot
    /// be looked at counts as empty.
    pub fn database_bytes(&self) -> u64 {
        [
            self.path.to_path_buf(),
            connection::beside(&self.path, "-wal"),
        ]
        .iter()
        .filter_map(|file| std::fs::metadata(file).ok())
        .map(|metadata| metadata.len())
        .sum()
    }

    async fn ask<T>(
        &self,
        command: Command,
        answer: oneshot::Receiver<T>,
    ) -> Result<T, StoreError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)
    }
}

/// Opens the database and brings its schema up to date.
fn open_migrated(path: &Path) -> Result<Connection, String> {
    let mut conn = connection::open(path)?;
    schema::migrate(&mut conn).map_err(|e| format!("database {}: {e}", path.display()))?;
    records::backfill(&conn).map_err(|e| {
        format!(
            "database {}: cannot complete the schema upgrade: {e}",
            path.display()
        )
    })?;
    Ok(conn)
}
