//! Test harness: runs the real `tickit-sync` binary in its own temporary directory on an
//! ephemeral loopback port, learns readiness and the port from a NOTIFY_SOCKET the test owns
//! (no sleeps), and speaks plain HTTP/1.1 to it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The token of the default account in every test config.
pub const TOKEN: &str = "tks_test_default_account_token";
/// A second token of the default account (another person's device, same tasks).
pub const TOKEN_2: &str = "tks_test_default_account_token_2";
/// A token of a separate account.
pub const OTHER_ACCOUNT_TOKEN: &str = "tks_test_other_account_token";

pub const DEVICE_A: &str = "8555eb33-3505-42b5-b029-341b1734ad31";
pub const DEVICE_B: &str = "0f8e4a52-6c1b-4d7e-9a43-2b5c8d9e1f70";
pub const DEVICE_C: &str = "3b1f0f5e-2a4c-4d8e-9f10-112233445566";

/// How long any wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A config with the three test tokens, extra lines appended.
pub fn config_with(extra: &str) -> String {
    format!(
        "{extra}\n\n[[tokens]]\nname = \"a\"\ntoken = \"{TOKEN}\"\n\n\
         [[tokens]]\nname = \"b\"\ntoken = \"{TOKEN_2}\"\n\n\
         [[tokens]]\nname = \"other\"\ntoken = \"{OTHER_ACCOUNT_TOKEN}\"\naccount = \"other\"\n"
    )
}

/// A unique empty directory under the system temp dir, removed by [`TempDir`]'s drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "tickit-sync-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let path = std::env::temp_dir().join(unique);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path of the binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tickit-sync")
}

/// Runs a CLI command of the binary to completion in `dir`.
pub fn run_cli(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .current_dir(dir)
        .env_remove("TICKIT_SYNC_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .output()
        .expect("run tickit-sync")
}

/// A running server and the notification socket it reports to.
pub struct Server {
    pub dir: TempDir,
    pub port: u16,
    child: Option<Child>,
    notify: UnixDatagram,
    /// Every sd_notify message received so far, in order.
    pub messages: Vec<String>,
}

impl Server {
    /// Starts a server with the default test config.
    pub fn start() -> Server {
        Server::start_with_config(&config_with(""))
    }

    /// Starts a server whose config.toml holds `config`.
    pub fn start_with_config(config: &str) -> Server {
        Server::start_with(config, &[], &[])
    }

    /// Starts a server with extra `serve` arguments and environment variables.
    pub fn start_with(config: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = TempDir::new();
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        Server::start_in(dir, args, env)
    }

    /// Starts a server in an existing directory holding config.toml (and maybe a database).
    pub fn start_in(dir: TempDir, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(binary());
        command
            .args(["serve", "--config", "config.toml"])
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        let mut server = Server::spawn_command(dir, command);
        let ready = server.wait_for_message("READY=1");
        server.port = port_from_status(&ready).expect("READY carries the listening address");
        server
    }

    /// Waits for the next notification containing `needle`; earlier ones are kept too.
    pub fn wait_for_message(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut buffer = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let stderr = self.stop_and_read_stderr();
                panic!(
                    "no notification with {needle:?} within {WAIT:?}; got {:?}; stderr:\n{stderr}",
                    self.messages
                );
            }
            self.notify
                .set_read_timeout(Some(left))
                .expect("set timeout");
            if let Ok(size) = self.notify.recv(&mut buffer) {
                let message = String::from_utf8_lossy(&buffer[..size]).into_owned();
                self.messages.push(message.clone());
                if message.contains(needle) {
                    return message;
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal (`TERM`, `HUP`, `KILL`, ...) to the server.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the server to exit on its own and returns its status and stderr.
    pub fn wait_exit(&mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("server still running");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return (status, stderr);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not exit within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server with SIGTERM and returns its status and stderr.
    pub fn stop(&mut self) -> (ExitStatus, String) {
        self.signal("TERM");
        self.wait_exit()
    }

    fn stop_and_read_stderr(&mut self) -> String {
        match self.child.as_mut() {
            Some(child) => {
                let _ = child.kill();
                self.wait_exit().1
            }
            None => String::new(),
        }
    }

    /// Sends a raw HTTP request to the server.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        http_request(self.port, method, path, headers, body)
    }

    /// POSTs a sync body with a bearer token and returns status and parsed JSON body.
    pub fn sync(&self, token: &str, body: &Value) -> (u16, Value) {
        let response = self.request(
            "POST",
            "/api/v1/sync",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        );
        (response.status, response.json())
    }

    /// A sync that must succeed; returns the response body.
    pub fn sync_ok(&self, token: &str, body: &Value) -> Value {
        let (status, response) = self.sync(token, body);
        assert_eq!(status, 200, "sync failed: {response}");
        response
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `STATUS=listening on 127.0.0.1:PORT; ...` -> PORT.
fn port_from_status(message: &str) -> Option<u16> {
    let status = message
        .lines()
        .find_map(|line| line.strip_prefix("STATUS="))?;
    let address = status.strip_prefix("listening on ")?;
    let address = address.split([';', ' ']).next()?;
    address.rsplit(':').next()?.parse().ok()
}

/// An HTTP response as the test sees it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {:?}", self.body))
    }
}

/// One HTTP/1.1 request on a fresh connection, read until the server closes it.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to server");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut with_close = vec![("Connection", "close")];
    with_close.extend_from_slice(headers);
    let head = request_head(method, path, &with_close, body.len());
    stream.write_all(head.as_bytes()).expect("send head");
    // The server may answer (413) and close before reading a large body; that is fine.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw)
}

/// The request line and headers of an HTTP/1.1 request with a body of `length` bytes.
pub fn request_head(method: &str, path: &str, headers: &[(&str, &str)], length: usize) -> String {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {length}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("incomplete HTTP response: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A sync request body.
pub fn sync_body(device: &str, last_sync: Option<&str>, changes: Vec<Value>) -> Value {
    json!({ "device_id": device, "last_sync": last_sync, "changes": changes })
}

/// A fixture from ../shared/fixtures, parsed.
pub fn fixture(path: &str) -> Value {
    let full = format!("{}/../shared/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {full}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A desktop-shaped task.
pub fn task(id: &str, title: &str, list_id: &str, updated_at: &str) -> Value {
    json!({
        "type": "task", "id": id, "title": title, "description": null, "url": null,
        "priority": "medium", "completed": false, "list_id": list_id, "tag_ids": [],
        "created_at": "2026-11-24T22:45:21.061633123Z", "updated_at": updated_at,
        "completed_at": null, "due_date": null
    })
}

/// A desktop-shaped list.
pub fn list(id: &str, name: &str, is_inbox: bool, updated_at: &str) -> Value {
    json!({
        "type": "list", "id": id, "name": name, "description": null, "icon": "📋",
        "color": null, "is_inbox": is_inbox, "created_at": "2026-11-24T22:45:21.054071788Z",
        "updated_at": updated_at, "sort_order": 0
    })
}

/// A desktop-shaped tag.
pub fn tag(id: &str, name: &str, updated_at: &str) -> Value {
    json!({
        "type": "tag", "id": id, "name": name, "color": "#a6e3a1",
        "created_at": "2026-11-24T22:45:21.055009519Z", "updated_at": updated_at
    })
}

/// A tombstone.
pub fn deleted(id: &str, record_type: &str, deleted_at: &str) -> Value {
    json!({ "type": "deleted", "id": id, "record_type": record_type, "deleted_at": deleted_at })
}

/// The ids of the records in a response, in order.
pub fn ids(response: &Value) -> Vec<String> {
    response["changes"]
        .as_array()
        .expect("changes array")
        .iter()
        .map(|record| record["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The record with `id` in a response, if any.
pub fn find<'a>(response: &'a Value, id: &str) -> Option<&'a Value> {
    response["changes"]
        .as_array()?
        .iter()
        .find(|record| record["id"] == id)
}

// Lifecycle helpers (tests/lifecycle.rs): start `serve` behind wrappers, and restart in a dir.

impl Server {
    /// Spawns `command` (a `serve`, or a wrapper that execs one) in `dir`, reporting to a
    /// NOTIFY_SOCKET the test owns, without waiting for READY (use `wait_for_message`, and
    /// set `port` if needed). stdin is the caller's to set, e.g. to pass a listening socket.
    pub fn spawn_command(dir: TempDir, mut command: Command) -> Server {
        let notify_path = dir.path().join("notify.sock");
        let _ = std::fs::remove_file(&notify_path);
        let notify = UnixDatagram::bind(&notify_path).expect("bind notify socket");
        command
            .current_dir(dir.path())
            .env("NOTIFY_SOCKET", &notify_path)
            .env_remove("TICKIT_SYNC_CONFIG")
            .env_remove("TICKIT_SYNC_HOST")
            .env_remove("TICKIT_SYNC_PORT")
            .env_remove("TICKIT_SYNC_DB")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = command.spawn().expect("start tickit-sync");
        Server {
            dir,
            port: 0,
            child: Some(child),
            notify,
            messages: Vec::new(),
        }
    }

    /// Collects every notification that arrives within `window` into `messages`; returns
    /// how many arrived.
    pub fn collect_messages_for(&mut self, window: Duration) -> usize {
        let deadline = Instant::now() + window;
        let before = self.messages.len();
        let mut buffer = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return self.messages.len() - before;
            }
            self.notify
                .set_read_timeout(Some(left))
                .expect("set timeout");
            if let Ok(size) = self.notify.recv(&mut buffer) {
                let message = String::from_utf8_lossy(&buffer[..size]).into_owned();
                self.messages.push(message);
            }
        }
    }

    /// The server's directory (config and database), to start another server in it; kills
    /// the server if it is still running.
    pub fn into_dir(mut self) -> TempDir {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        std::mem::replace(&mut self.dir, TempDir(PathBuf::new()))
    }
}
