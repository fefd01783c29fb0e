//! Test support for the store's rules: a migrated in-memory database driven like the writer
//! drives it, and builders for the records the tests sync.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::clock::Clock;
use super::device_clock::ClockWarning;
use super::device_state::Caller;
use super::feed::in_answer_order;
use super::inbox::InboxIds;
use super::last_answer::LastAnswers;
use super::schema::migrate;
use super::sync::apply;
use super::tidy_stored::TIDIED_PER_TURN;
use crate::protocol::{self, Kind, Limits, parse_request};
use crate::timestamp::{format_server_time, now_nanos};

pub const ACCOUNT: &str = "default";
pub const LAPTOP: &str = "8555eb33-3505-42b5-b029-341b1734ad31";
pub const PHONE: &str = "0f8e4a52-6c1b-4d7e-9a43-2b5c8d9e1f70";
pub const DESKTOP: &str = "c3a9d1e2-7f4b-4c8d-9e0a-1b2c3d4e5f60";
pub const LAPTOP_INBOX: &str = "e47412ad-4c51-467d-be5f-966fb7d0db5d";
pub const PHONE_INBOX: &str = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d";
pub const WORK: &str = "7a2e964d-f566-4108-aed1-135b62afefac";
pub const ERRANDS: &str = "083f62a4-7e11-459f-9403-9136b2e4b7b8";
pub const REPORT: &str = "55794518-c168-4fc8-9cdf-17cfa7eca7be";
/// A `last_sync` before every stamp the tests hand out, so feeds hold all but echoes.
pub const LONG_AGO: &str = "2000-01-01T00:00:00.000Z";
pub const T0: &str = "2026-11-24T22:45:20.000000000Z";
pub const T1: &str = "2026-11-24T22:45:21.000000001Z";
pub const T2: &str = "2026-11-24T22:45:21.000000002Z";
/// Limits no test request reaches.
const NO_LIMITS: Limits = Limits {
    max_records: usize::MAX,
    max_text_bytes: usize::MAX,
};
/// The default skew allowance, 300 s.
pub const ALLOWANCE: i64 = 300_000_000_000;

/// A migrated in-memory database and the writer's clock.
pub struct Database {
    conn: Connection,
    clock: Clock,
    last_answers: LastAnswers,
    /// How many stored tasks a request's deletes tidy before the rest are queued.
    pub tidy_budget: usize,
}

impl Database {
    pub fn new() -> Database {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        Database {
            conn,
            clock: Clock::starting_after(0),
            last_answers: LastAnswers::default(),
            tidy_budget: TIDIED_PER_TURN,
        }
    }

    /// Applies a request as the writer would, after validating it like the API does, and
    /// reads its answer as the device receives it.
    pub fn sync(&mut self, device: &str, last_sync: Option<&str>, changes: &[Value]) -> Answer {
        let body = json!({ "device_id": device, "last_sync": last_sync, "changes": changes });
        let request = parse_request(body.to_string().into(), &NO_LIMITS).unwrap();
        let mut outcome = apply(
            &self.conn,
            &mut self.clock,
            &mut self.last_answers,
            &Caller::new(ACCOUNT, "test-token", None),
            &request,
            ALLOWANCE,
            self.tidy_budget,
        )
        .unwrap();
        let extras = std::mem::take(&mut outcome.extras);
        let rename = outcome.inbox_rename();
        let mut records = Vec::new();
        let feed = outcome.feed.as_ref().map(|feed| (&self.conn, feed));
        in_answer_order(feed, extras, |record| {
            let wire =
                protocol::outgoing(record.kind, record.deleted, &record.body, rename.as_ref());
            records.extend(wire);
            true
        })
        .unwrap();
        Answer {
            server_time: outcome.server_time,
            records,
            conflicts: outcome.conflicts,
            inbox: outcome.inbox,
            clock_warning: outcome.clock_warning,
        }
    }

    /// Runs `sql` (the original server's tables and rows) and imports them.
    pub fn import_original(&mut self, sql: &str) -> super::import::ImportReport {
        self.conn.execute_batch(sql).unwrap();
        assert!(super::import::pending_in_place(&self.conn).unwrap());
        let tx = self.conn.transaction().unwrap();
        let report = super::import::import(&tx, &mut self.clock, "main", ACCOUNT, "test").unwrap();
        tx.commit().unwrap();
        report
    }

    /// One turn of the writer between requests: tidies up to `budget` queued tasks, and
    /// says whether any are left.
    pub fn tidy_queued(&mut self, budget: usize) -> bool {
        super::tidy_stored::tidy_queued(&self.conn, &mut self.clock, budget).unwrap()
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Runs a query that yields one value.
    pub fn value<T: rusqlite::types::FromSql>(&self, sql: &str) -> T {
        self.conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    /// The stored row's (stamp, origin, body), if any.
    pub fn row(&self, kind: Kind, id: &str) -> Option<(i64, Option<String>, Value)> {
        self.conn
            .query_row(
                "SELECT stamp, origin, body FROM records WHERE account = ?1 AND kind = ?2 AND id = ?3",
                params![ACCOUNT, kind.as_str(), id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get::<_, String>(2)?)),
            )
            .optional()
            .unwrap()
            .map(|(stamp, origin, body)| (stamp, origin, serde_json::from_str(&body).unwrap()))
    }
}

/// An answer as the device receives it.
pub struct Answer {
    pub server_time: i64,
    /// The records, as they go out.
    pub records: Vec<Value>,
    pub conflicts: Vec<String>,
    pub inbox: Option<InboxIds>,
    pub clock_warning: Option<ClockWarning>,
}

/// The answer's records, in order.
/// The server's clock `seconds` from now, spelt as a device stamps it (a device whose clock
/// is that far ahead, or one acting that much later).
pub fn at(seconds: i64) -> String {
    format_server_time(now_nanos() + seconds * 1_000_000_000)
}

/// The laptop writes a task and edits it; the phone, its clock an hour fast, applies the
/// edit and uploads it re-stamped with its own clock. The answer to that upload.
pub fn phone_an_hour_fast_restamps_an_edit(db: &mut Database) -> Answer {
    db.sync(LAPTOP, None, &[task("Write report", WORK, &[], T1)]);
    db.sync(PHONE, None, &[]);
    db.sync(LAPTOP, None, &[task("Write the report", WORK, &[], T2)]);
    db.sync(PHONE, None, &[]);
    let restamped = task("Write the report", WORK, &[], &at(3600));
    db.sync(PHONE, None, std::slice::from_ref(&restamped))
}

pub fn bodies(answer: &Answer) -> Vec<Value> {
    answer.records.clone()
}

pub fn list(id: &str, name: &str, is_inbox: bool, updated_at: &str) -> Value {
    json!({
        "type": "list", "id": id, "name": name, "description": null, "icon": "📋",
        "color": null, "is_inbox": is_inbox, "created_at": T1, "updated_at": updated_at,
        "sort_order": 0
    })
}

pub fn tag(id: &str, name: &str) -> Value {
    json!({ "type": "tag", "id": id, "name": name, "color": "#a6e3a1", "created_at": T1, "updated_at": T1 })
}

pub fn task(title: &str, list_id: &str, tag_ids: &[&str], updated_at: &str) -> Value {
    json!({
        "type": "task", "id": REPORT, "title": title, "description": null, "url": null,
        "priority": "medium", "completed": false, "list_id": list_id, "tag_ids": tag_ids,
        "created_at": T1, "updated_at": updated_at, "completed_at": null, "due_date": null
    })
}

pub fn deleted(id: &str, record_type: &str, deleted_at: &str) -> Value {
    json!({ "type": "deleted", "id": id, "record_type": record_type, "deleted_at": deleted_at })
}
