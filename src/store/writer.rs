//! The writer thread: it owns the SQLite connection and serves the commands [`Store`]
//! handles send. Sync requests that queue up together are committed in one durable
//! transaction, each inside its own savepoint so each is still applied whole or not at
//! all. Between them it tidies the stored tasks of deletes too large to tidy in one request
//! (see [`tidy_stored`](super::tidy_stored)), and checkpoints the WAL when it has nothing
//! else to do, so no sync waits behind a checkpoint.
//!
//! [`Store`]: super::Store

use std::sync::Arc;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::clock::Clock;
use super::large_work::with_large_page_cache;
use super::last_answer::LastAnswers;
use super::sync::apply;
use super::tidy_stored::{TIDIED_PER_TURN, any_queued, tidy_queued};
use super::wal;
use super::{Caller, Stats, StoreError, SyncOutcome, database_error};
use crate::metrics::Metrics;
use crate::protocol::SyncRequest;
use crate::timestamp::now_nanos;

/// How many queued commands the writer may take into one transaction.
const MAX_BATCH: usize = 64;
/// How many batches the writer runs between two turns of tidying while syncs keep coming.
const BATCHES_PER_TURN: usize = 2;
/// How many changes, all its syncs together, a batch may hold: what the others in it, and
/// every sync queued behind it, wait for stays bounded.
const MAX_BATCH_CHANGES: usize = 2_000;
/// Changes from which a sync is applied in a transaction of its own (see `runs_alone`).
const RUNS_ALONE_FROM: usize = 500;
/// The WAL pages from which the writer checkpoints when it has nothing else to do: the
/// threshold of SQLite's own automatic checkpoint.
const IDLE_CHECKPOINT_PAGES: usize = 1_000;
/// The WAL pages (64 MiB) from which the writer checkpoints even while syncs keep coming,
/// so that the WAL, which every read looks through, stays bounded.
const BUSY_CHECKPOINT_PAGES: usize = 16_384;

/// A day, in nanoseconds: devices that synced within it count as active in the stats.
const DAY: i64 = 86_400_000_000_000;

/// What a [`Store`](super::Store) handle asks the writer.
pub enum Command {
    Sync {
        caller: Caller,
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
        self.changes() >= RUNS_ALONE_FROM
    }

    /// How many changes the command applies.
    fn changes(&self) -> usize {
        match self {
            Command::Sync { request, .. } => request.changes.len(),
            Command::Stats { .. } => 0,
        }
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

/// The writer's state between commands.
pub struct Writer {
    conn: Connection,
    clock: Clock,
    last_answers: LastAnswers,
    /// A command taken from the queue that did not fit the batch before, or waited for a
    /// turn of tidying.
    held_back: Option<Command>,
    /// Whether deletes' tasks are queued for tidying.
    tidying: bool,
    batches_since_turn: usize,
    /// Where the size of each committed batch is counted.
    metrics: Arc<Metrics>,
}

impl Writer {
    /// The writer of `conn`, stamping with `clock`; it checkpoints the WAL itself, and
    /// counts its batches in `metrics`.
    pub fn new(conn: Connection, clock: Clock, metrics: Arc<Metrics>) -> Writer {
        wal::take_over_checkpoints(&conn);
        let tidying = any_queued(&conn).unwrap_or(true);
        Writer {
            conn,
            clock,
            last_answers: LastAnswers::default(),
            held_back: None,
            tidying,
            batches_since_turn: 0,
            metrics,
        }
    }

    /// Serves commands until every [`Store`](super::Store) handle is dropped. While deletes'
    /// tasks are queued for tidying, it takes a turn at them whenever no command waits, and
    /// otherwise after every [`BATCHES_PER_TURN`] batches: neither starves the other, and
    /// syncs that queued behind a large batch go before the next turn.
    pub fn run(mut self, mut receiver: mpsc::Receiver<Command>) {
        loop {
            let waiting = match self.held_back.take() {
                Some(command) => Some(command),
                None => match receiver.try_recv() {
                    Ok(command) => Some(command),
                    Err(mpsc::error::TryRecvError::Empty) => None,
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                },
            };
            if self.tidying && (waiting.is_none() || self.batches_since_turn >= BATCHES_PER_TURN) {
                self.held_back = waiting;
                self.take_tidy_turn();
                continue;
            }
            let first = match waiting {
                Some(command) => command,
                None => {
                    wal::checkpoint_from(&self.conn, IDLE_CHECKPOINT_PAGES);
                    match receiver.blocking_recv() {
                        Some(command) => command,
                        None => break,
                    }
                }
            };
            let batch = self.batch_from(first, &mut receiver);
            self.run_batch(batch);
        }
        self.close();
    }

    /// `first` and the commands queued behind it that may share its transaction.
    fn batch_from(
        &mut self,
        first: Command,
        receiver: &mut mpsc::Receiver<Command>,
    ) -> Vec<Command> {
        let mut changes = first.changes();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && !batch[0].runs_alone() {
            match receiver.try_recv() {
                Ok(command)
                    if command.runs_alone() || changes + command.changes() > MAX_BATCH_CHANGES =>
                {
                    self.held_back = Some(command);
                    break;
                }
                Ok(command) => {
                    changes += command.changes();
                    batch.push(command);
                }
                Err(_) => break,
            }
        }
        batch
    }

    /// Runs a batch, a large one with the large page cache.
    fn run_batch(&mut self, batch: Vec<Command>) {
        let (conn, clock, last_answers) = (&self.conn, &mut self.clock, &mut self.last_answers);
        let committed = if batch[0].runs_alone() {
            with_large_page_cache(conn, || apply_batch(conn, clock, last_answers, batch))
        } else {
            apply_batch(conn, clock, last_answers, batch)
        };
        if committed > 0 {
            self.metrics.batch_committed(committed);
        }
        self.batches_since_turn += 1;
        wal::checkpoint_from(&self.conn, BUSY_CHECKPOINT_PAGES);
        self.tidying = self.tidying || any_queued(&self.conn).unwrap_or(true);
    }

    /// Tidies up to [`TIDIED_PER_TURN`] queued tasks in a transaction of its own. A failure
    /// is logged, and the next batch tries again.
    fn take_tidy_turn(&mut self) {
        let (conn, clock) = (&self.conn, &mut self.clock);
        let turn = with_large_page_cache(conn, || -> rusqlite::Result<bool> {
            let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            let more = tidy_queued(&tx, clock, TIDIED_PER_TURN)?;
            tx.commit()?;
            Ok(more)
        });
        self.tidying = turn.unwrap_or_else(|e| {
            eprintln!(
                "warning: could not tidy the tasks of deleted lists and tags ({e}); \
                 the next sync tries again"
            );
            false
        });
        self.batches_since_turn = 0;
        wal::checkpoint_from(&self.conn, BUSY_CHECKPOINT_PAGES);
    }

    /// Checkpoints the whole WAL and closes the connection.
    fn close(self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
            eprintln!("warning: could not checkpoint the database on shutdown: {e}");
        }
        if let Err((_, e)) = self.conn.close() {
            eprintln!("warning: could not close the database cleanly: {e}");
        }
    }
}

/// Applies a batch in one transaction; replies only after it has committed. If the commit
/// fails, the answers it held are forgotten, as they are never sent. Returns how many syncs
/// it committed (none when it failed).
fn apply_batch(
    conn: &Connection,
    clock: &mut Clock,
    last_answers: &mut LastAnswers,
    batch: Vec<Command>,
) -> usize {
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
            return 0;
        }
    };
    // A sync alone in its transaction needs no savepoint: if it fails, the whole
    // transaction is rolled back instead of committed.
    let alone = batch.len() == 1;
    let tidy_share = TIDIED_PER_TURN / batch.len();
    for command in batch {
        match command {
            Command::Sync {
                caller,
                request,
                skew_allowance,
                reply,
            } => {
                // A sync's own changes count against the tidying it does itself: a large
                // one leaves it all to the writer's turns.
                let budget = tidy_share.saturating_sub(request.changes.len());
                let outcome = in_own_savepoint(&mut tx, !alone, |tx| {
                    apply(
                        tx,
                        clock,
                        last_answers,
                        &caller,
                        &request,
                        skew_allowance,
                        budget,
                    )
                });
                let device = (caller.account, request.device_id);
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
        return 0;
    }
    if let Err(e) = tx.commit() {
        for ((account, device), _, reply) in pending {
            last_answers.forget(&account, &device);
            let _ = reply.send(Err(database_error(&e)));
        }
        return 0;
    }
    let committed = pending.len();
    for (_, outcome, reply) in pending {
        let _ = reply.send(outcome);
    }
    committed
}

/// Runs `work` inside a savepoint of its own when `shared` (other syncs share the
/// transaction), so that a failure undoes it alone; otherwise on the transaction itself.
fn in_own_savepoint<T>(
    tx: &mut Transaction,
    shared: bool,
    work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    if !shared {
        return work(tx);
    }
    let savepoint = tx.savepoint()?;
    let outcome = work(&savepoint)?;
    savepoint.commit()?;
    Ok(outcome)
}

/// Counts accounts, devices (all, and those seen in the last day) and live records.
pub(super) fn stats(conn: &Connection) -> rusqlite::Result<Stats> {
    let day_ago = now_nanos().saturating_sub(DAY);
    conn.query_row(
        "SELECT (SELECT COUNT(DISTINCT account) FROM devices),
                (SELECT COUNT(*) FROM devices),
                (SELECT COUNT(*) FROM devices WHERE last_sync_at > ?1),
                (SELECT COUNT(*) FROM records WHERE deleted = 0)",
        [day_ago],
        |row| {
            Ok(Stats {
                accounts: row.get(0)?,
                devices: row.get(1)?,
                devices_last_day: row.get(2)?,
                records: row.get(3)?,
            })
        },
    )
}
