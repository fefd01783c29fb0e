//! A simulated device: its id, inbox and connection, the `server_time` it carries forward as
//! its next `last_sync`, the tasks it made, and the ids it has received. `Device::sync`
//! sends one request and checks and measures its answer.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use hyper::body::Bytes;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::client::{Client, Target};
use crate::records;

/// A task this device made, enough to send it again edited.
struct OwnTask {
    id: Uuid,
    created_at: String,
}

/// One simulated client device.
pub struct Device {
    /// A short name for messages, e.g. `d3` or `h12.d1`.
    pub name: String,
    /// Its place in the scenario's list of devices.
    pub index: usize,
    /// Which account (token) it syncs as.
    pub account: usize,
    /// Its `device_id`.
    pub id: Uuid,
    /// The id of its own inbox list.
    pub inbox: Uuid,
    token: Arc<str>,
    client: Client,
    gzip: bool,
    last_sync: Option<String>,
    own: HashSet<Uuid>,
    tasks: Vec<OwnTask>,
    /// Every record id any answer has carried to this device.
    pub received: HashSet<Uuid>,
    edits: u64,
}

/// What one answer held, and how long it took.
pub struct Answer {
    /// From sending the request to having the whole body.
    pub elapsed: Duration,
    /// From sending the request to the answer's head: the server had applied it.
    pub head_elapsed: Duration,
    /// Body bytes over the wire.
    pub wire_bytes: usize,
    /// Body bytes once decompressed.
    pub body_bytes: usize,
    /// True when the answer came gzipped.
    pub gzipped: bool,
    /// Records in `changes`.
    pub records: usize,
    /// Task records in `changes`.
    pub tasks: usize,
    /// Records whose id this device had neither made nor received before.
    pub new_records: usize,
    /// Compact JSON bytes of those new records.
    pub new_record_json: usize,
    /// Ids in `conflicts`.
    pub conflicts: usize,
    /// The first record of `changes`, shortened, for messages.
    pub first_record: Option<String>,
}

impl Device {
    /// A device of account `account` that has never synced.
    pub fn new(
        index: usize,
        name: String,
        account: usize,
        token: Arc<str>,
        client: Client,
        gzip: bool,
    ) -> Self {
        Self {
            name,
            index,
            account,
            id: records::new_id(),
            inbox: records::new_id(),
            token,
            client,
            gzip,
            last_sync: None,
            own: HashSet::new(),
            tasks: Vec::new(),
            received: HashSet::new(),
            edits: 0,
        }
    }

    /// A new device for each of `count` devices, `name(i)` naming device `i`.
    pub fn many(
        count: usize,
        target: &Target,
        keep_alive: bool,
        gzip: bool,
        account_and_token: impl Fn(usize) -> (usize, Arc<str>),
        name: impl Fn(usize) -> String,
    ) -> Vec<Self> {
        (0..count)
            .map(|i| {
                let (account, token) = account_and_token(i);
                let client = Client::new(target.clone(), keep_alive);
                Self::new(i, name(i), account, token, client, gzip)
            })
            .collect()
    }

    /// Its inbox list record; marks the inbox as its own.
    pub fn inbox_record(&mut self) -> Value {
        self.own.insert(self.inbox);
        records::inbox(self.inbox, &records::now())
    }

    /// A new task in its inbox.
    pub fn new_task(&mut self) -> Value {
        let id = records::new_id();
        let at = records::now();
        let title = format!("{} task {}", self.name, self.tasks.len() + 1);
        self.own.insert(id);
        self.tasks.push(OwnTask {
            id,
            created_at: at.clone(),
        });
        records::task(id, &title, self.inbox, &at, &at)
    }

    /// One of its tasks again, retitled and with a new `updated_at`; a new task if it has none.
    pub fn edit_task(&mut self) -> Value {
        if self.tasks.is_empty() {
            return self.new_task();
        }
        self.edits += 1;
        let pick = rand::random_range(0..self.tasks.len());
        let task = &self.tasks[pick];
        let title = format!("{} edit {}", self.name, self.edits);
        records::task(
            task.id,
            &title,
            self.inbox,
            &task.created_at,
            &records::now(),
        )
    }

    /// The ids of the tasks it made.
    pub fn task_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.tasks.iter().map(|task| task.id)
    }

    /// Forgets its `last_sync`, so its next sync is a full one.
    pub fn forget_last_sync(&mut self) {
        self.last_sync = None;
    }

    /// Connections it has opened.
    pub fn connects(&self) -> u64 {
        self.client.connects
    }

    /// Sends `changes` and its `last_sync`; checks the answer is a 200 with a sync body, and
    /// carries its `server_time` forward.
    pub async fn sync(&mut self, changes: Vec<Value>) -> Result<Answer, String> {
        self.sync_with(changes, self.gzip).await
    }

    /// As `sync`, asking for a gzipped answer if `gzip`.
    pub async fn sync_with(&mut self, changes: Vec<Value>, gzip: bool) -> Result<Answer, String> {
        let request = json!({ "device_id": self.id.to_string(), "last_sync": self.last_sync, "changes": changes });
        let body = serde_json::to_vec(&request)
            .map_err(|e| format!("{}: cannot encode the request: {e}", self.name))?;
        let started = Instant::now();
        let reply = self
            .client
            .post_sync(&self.token, Bytes::from(body), gzip)
            .await
            .map_err(|e| format!("{}: {e}", self.name))?;
        let elapsed = started.elapsed();
        if reply.status != StatusCode::OK {
            return Err(format!(
                "{}: answer is HTTP {}, not 200: {}",
                self.name,
                reply.status,
                excerpt(&reply.body)
            ));
        }
        let parsed: Value = serde_json::from_slice(&reply.body).map_err(|e| {
            format!(
                "{}: answer is not JSON ({e}): {}",
                self.name,
                excerpt(&reply.body)
            )
        })?;
        let mut answer = Answer {
            elapsed,
            head_elapsed: reply.head_at.saturating_duration_since(started),
            wire_bytes: reply.wire_bytes,
            body_bytes: reply.body.len(),
            gzipped: reply.gzipped,
            records: 0,
            tasks: 0,
            new_records: 0,
            new_record_json: 0,
            conflicts: 0,
            first_record: None,
        };
        self.take_answer(&parsed, &mut answer)
            .map_err(|e| format!("{}: {e}", self.name))?;
        Ok(answer)
    }

    /// Reads `server_time`, `changes` and `conflicts` into `answer` and this device's state.
    fn take_answer(&mut self, parsed: &Value, answer: &mut Answer) -> Result<(), String> {
        let server_time = parsed
            .get("server_time")
            .and_then(Value::as_str)
            .ok_or("answer has no server_time string")?;
        let changes = parsed
            .get("changes")
            .and_then(Value::as_array)
            .ok_or("answer has no changes array")?;
        let conflicts = parsed
            .get("conflicts")
            .and_then(Value::as_array)
            .ok_or("answer has no conflicts array")?;
        for record in changes {
            self.take_record(record, answer)?;
        }
        answer.first_record = changes
            .first()
            .map(|record| excerpt(record.to_string().as_bytes()));
        answer.conflicts = conflicts.len();
        self.last_sync = Some(server_time.to_owned());
        Ok(())
    }

    fn take_record(&mut self, record: &Value, answer: &mut Answer) -> Result<(), String> {
        answer.records += 1;
        let kind = record.get("type").and_then(Value::as_str);
        if kind == Some("task") {
            answer.tasks += 1;
        }
        // task_tag records have no id of their own.
        let Some(id) = record.get("id") else {
            return Ok(());
        };
        let id = id
            .as_str()
            .and_then(|text| Uuid::parse_str(text).ok())
            .ok_or_else(|| format!("a {} record's id is not a UUID: {id}", kind.unwrap_or("?")))?;
        if self.received.insert(id) && !self.own.contains(&id) {
            answer.new_records += 1;
            answer.new_record_json += serde_json::to_vec(record).map_or(0, |json| json.len());
        }
        Ok(())
    }
}

/// The start of a body, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut excerpt: String = text.chars().take(300).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    excerpt
}
