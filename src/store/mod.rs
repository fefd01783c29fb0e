//! The database: one writer thread owns the SQLite connection and serves typed commands sent
//! over a channel by cloneable [`Store`] handles. Sync requests that queue up together are
//! committed in one durable transaction, each inside its own savepoint so each is still
//! applied whole or not at all.

mod clock;
mod connection;
#[cfg(test)]
mod convergence_tests;
mod copies;
mod decide;
mod delivery;
mod device_clock;
mod feed;
mod fingerprint;
mod import;
#[cfg(test)]
mod import_tests;
mod inbox;
mod last_answer;
mod readers;
mod records;
mod schema;
mod sent_through;
mod sync;
#[cfg(test)]
mod test_support;
mod tidy;
mod unknown_inbox;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use crate::protocol::SyncRequest;
use clock::Clock;
pub use feed::{FeedRange, OutgoingRecord};
pub use import::{ImportReport, from_file as import_file};
use last_answer::LastAnswers;
use readers::Readers;
use records::newest_stamp;
pub use sync::SyncOutcome;
use sync::apply;

/// How many queued commands the writer may take into one transaction.
const MAX_BATCH: usize = 64;
/// Changes from which a sync is applied in a transaction of its own (see `runs_alone`).
const RUNS_ALONE_FROM: usize = 500;
/// How many commands may wait for the writer before senders wait too.
const QUEUE_DEPTH: usize = 1024;

/// A cheap, cloneable handle to the writer thread, and to the connections that read
/// answers after their commit.
#[derive(Clone, Debug)]
pub struct Store {
    commands: mpsc::Sender<Command>,
    readers: Arc<Readers>,
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
    pub records: u64,
}

enum Command {
    Sync {
        account: String,
        request: SyncRequest,
        /// How far off a device's clock may be before it is reported, in nanoseconds.
        skew_allowance: i64,
        reply: oneshot::Sender<Result<SyncOutcome, StoreError>>,
    },
    Stats {
        reply: oneshot::Sender<Result<Stats, StoreError>>,
    },
}

impl Command {
    /// A sync this large gets a transaction of its own, with no savepoint: SQLite keeps a
    /// savepoint's journal in memory (`temp_store = MEMORY`) and walks all of it as each
    /// statement ends, which made a request of 50,000 changes take a minute instead of a
    /// second and every other sync wait behind it.
    fn runs_alone(&self) -> bool {
        matches!(self, Command::Sync { request, .. } if request.changes.len() >= RUNS_ALONE_FROM)
    }

    /// Answers the command when its write transaction could not begin (`e`): a sync with
    /// the error; stats are read all the same, as reading needs no write lock, so another
    /// process holding one does not pass for a wedged writer.
    fn fail(self, conn: &Connection, e: &rusqlite::Error) {
        match self {
            Command::Sync { reply, .. } => drop(reply.send(Err(database_error(e)))),
            Command::Stats { reply } => drop(reply.send(stats(conn).map_err(database_error))),
        }
    }
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
    /// tables the first time it finds them there, then starts the writer thread.
    pub fn open(path: &Path) -> Result<Opened, String> {
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
            .spawn(move || run_writer(conn, receiver, clock))
            .map_err(|e| format!("cannot start the database writer thread: {e}"))?;
        Ok(Opened {
            store: Store {
                commands,
                readers: Arc::new(Readers::new(path.to_owned())),
            },
            writer,
            imported,
        })
    }

    /// Applies one sync request for `account` atomically and durably; a device whose clock
    /// is off by more than `skew_allowance` is reported in the outcome, once.
    pub async fn sync(
        &self,
        account: &str,
        request: SyncRequest,
        skew_allowance: std::time::Duration,
    ) -> Result<SyncOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Sync {
            account: account.to_owned(),
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

fn run_writer(conn: Connection, mut receiver: mpsc::Receiver<Command>, mut clock: Clock) {
    let mut last_answers = LastAnswers::default();
    let mut held_back = None;
    while let Some(first) = held_back.take().or_else(|| receiver.blocking_recv()) {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && !batch[0].runs_alone() {
            match receiver.try_recv() {
                Ok(command) if command.runs_alone() => {
                    held_back = Some(command);
                    break;
                }
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        run_batch(&conn, &mut clock, &mut last_answers, batch);
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        eprintln!("warning: could not checkpoint the database on shutdown: {e}");
    }
    if let Err((_, e)) = conn.close() {
        eprintln!("warning: could not close the database cleanly: {e}");
    }
}

/// Runs a batch in one transaction; replies only after it has committed. If the commit
/// fails, the answers it held are forgotten, as they are never sent.
fn run_batch(
    conn: &Connection,
    clock: &mut Clock,
    last_answers: &mut LastAnswers,
    batch: Vec<Command>,
) {
    type Pending = (
        (String, String),
        Result<SyncOutcome, StoreError>,
        oneshot::Sender<Result<SyncOutcome, StoreError>>,
    );
    let mut pending: Vec<Pending> = Vec::new();
    // Shares the connection, so the stats of a batch that cannot begin are still read. The
    // writer never nests transactions.
    let transaction = Transaction::new_unchecked(conn, TransactionBehavior::Immediate);
    let mut tx = match transaction {
        Ok(tx) => tx,
        Err(e) => {
            for command in batch {
                command.fail(conn, &e);
            }
            return;
        }
    };
    // A sync alone in its transaction needs no savepoint: if it fails, the whole
    // transaction is rolled back instead of committed.
    let alone = batch.len() == 1;
    for command in batch {
        match command {
            Command::Sync {
                account,
                request,
                skew_allowance,
                reply,
            } => {
                let outcome = if alone {
                    apply(&tx, clock, last_answers, &account, &request, skew_allowance)
                } else {
                    apply_in_savepoint(
                        &mut tx,
                        clock,
                        last_answers,
                        &account,
                        &request,
                        skew_allowance,
                    )
                };
                let device = (account, request.device_id);
                pending.push((device, outcome.map_err(database_error), reply));
            }
            Command::Stats { reply } => {
                let _ = reply.send(stats(&tx).map_err(database_error));
            }
        }
    }
    if alone && pending.iter().any(|(_, outcome, _)| outcome.is_err()) {
        // Dropping the transaction rolls the failed sync back whole.
        drop(tx);
        for (_, outcome, reply) in pending {
            let _ = reply.send(outcome);
        }
        return;
    }
    if let Err(e) = tx.commit() {
        for ((account, device), _, reply) in pending {
            last_answers.forget(&account, &device);
            let _ = reply.send(Err(database_error(&e)));
        }
        return;
    }
    for (_, outcome, reply) in pending {
        let _ = reply.send(outcome);
    }
}

fn apply_in_savepoint(
    tx: &mut rusqlite::Transaction,
    clock: &mut Clock,
    last_answers: &mut LastAnswers,
    account: &str,
    request: &SyncRequest,
    skew_allowance: i64,
) -> rusqlite::Result<SyncOutcome> {
    let savepoint = tx.savepoint()?;
    let outcome = apply(
        &savepoint,
        clock,
        last_answers,
        account,
        request,
        skew_allowance,
    )?;
    savepoint.commit()?;
    Ok(outcome)
}

fn stats(conn: &Connection) -> rusqlite::Result<Stats> {
    conn.query_row(
        "SELECT (SELECT COUNT(DISTINCT account) FROM devices),
                (SELECT COUNT(*) FROM devices),
                (SELECT COUNT(*) FROM records WHERE deleted = 0)",
        [],
        |row| {
            Ok(Stats {
                accounts: row.get(0)?,
                devices: row.get(1)?,
                records: row.get(2)?,
            })
        },
    )
}
