//! Test harness: runs the real `tickit-sync` binary in its own temporary directory on an
//! ephemeral loopback port, learns readiness and the port from a NOTIFY_SOCKET the test owns
//! (no sleeps), and speaks plain HTTP/1.1 to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The token of the default account in every test config.
pub const TOKEN: &str = "tks_test_default_account_token";
/// A second token of the default account (another person's device, same tasks).
pub const TOKEN_2: &str = "tks_test_default_account_token_2";
/// A token of a separate account.
pub const OTHER_ACCOUNT_TOKEN: &str = "tks_test_other_account_token";

// Ids the tests make up (the fixtures' own ids are read from the fixtures).
/// A device.
pub const DEVICE_A: &str = "a1c2e3f4-0b1d-4e5f-8a9b-0c1d2e3f4a5b";
/// Another device.
pub const DEVICE_B: &str = "b2d3f4a5-1c2e-4f60-9b0c-1d2e3f4a5b6c";
/// A third device.
pub const DEVICE_C: &str = "3b1f0f5e-2a4c-4d8e-9f10-112233445566";
/// A fourth device.
pub const DEVICE_D: &str = "9d2c7e1a-5b3f-4c6d-8e7f-a0b1c2d3e4f5";
/// A task.
pub const NEW_TASK: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
/// Another task.
pub const NEW_TASK_2: &str = "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e";
/// A tag.
pub const NEW_TAG: &str = "c3d4e5f6-a7b8-4c9d-8e0f-2a3b4c5d6e7f";
/// A list.
pub const NEW_LIST: &str = "d4e5f6a7-b8c9-4d0e-9f1a-3b4c5d6e7f80";

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
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates the directory.
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

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh directory holding config.toml with `config`.
pub fn dir_with_config(config: &str) -> TempDir {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("config.toml"), config).expect("write config");
    dir
}

/// The path of the binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tickit-sync")
}

/// Runs a CLI command of the binary to completion in `dir`.
pub fn run_cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(dir)
        .env_remove("TICKIT_SYNC_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .output()
        .expect("run tickit-sync")
}

/// What a command printed on stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a command printed on stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The token that a successful `tickit-sync token --name` printed on a line of its own.
pub fn printed_token(output: &Output) -> String {
    assert!(output.status.success(), "token failed: {}", stderr(output));
    stdout(output)
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("tks_"))
        .unwrap_or_else(|| panic!("no token printed: {}", stdout(output)))
        .to_owned()
}

/// `[WRAPPER...] tickit-sync serve --config config.toml ARGS...` with stdin closed. A wrapper
/// is a program and its arguments that ends up exec'ing the server (the rest of its command
/// line); with none, the server runs directly.
pub fn serve_command(wrapper: &[&str], args: &[&str]) -> Command {
    let mut words = wrapper.to_vec();
    words.extend([binary(), "serve", "--config", "config.toml"]);
    words.extend_from_slice(args);
    let mut command = Command::new(words[0]);
    command.args(&words[1..]).stdin(Stdio::null());
    command
}

/// A running server and the notification socket it reports to.
pub struct Server {
    /// Its working directory: config.toml, the database, the notification socket.
    pub dir: TempDir,
    /// The loopback port it listens on (0 until known).
    pub port: u16,
    /// The process, until it has exited.
    child: Option<Child>,
    /// The NOTIFY_SOCKET it reports to.
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
        Server::start_in(dir_with_config(config), args, env)
    }

    /// Starts a server in an existing directory holding config.toml (and maybe a database).
    pub fn start_in(dir: TempDir, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = serve_command(&[], &["--bind", "127.0.0.1", "--port", "0"]);
        command.args(args).envs(env.iter().copied());
        let mut server = Server::spawn_command(dir, command);
        let ready = server.wait_for_message("READY=1");
        server.port = port_from_status(&ready).expect("READY carries the listening address");
        server
    }

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

    /// Waits for the next notification containing `needle`; earlier ones are kept too.
    pub fn wait_for_message(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.receive_before(deadline) {
                Some(message) if message.contains(needle) => return message,
                Some(_) => {}
                None => {
                    let stderr = self.stop_and_read_stderr();
                    panic!(
                        "no notification with {needle:?} within {WAIT:?}; got {:?}; stderr:\n{stderr}",
                        self.messages
                    );
                }
            }
        }
    }

    /// Collects every notification that arrives within `window` into `messages`; returns
    /// how many arrived.
    pub fn collect_messages_for(&mut self, window: Duration) -> usize {
        let deadline = Instant::now() + window;
        let before = self.messages.len();
        while self.receive_before(deadline).is_some() {}
        self.messages.len() - before
    }

    /// The next notification, also added to `messages`; `None` if none arrives by `deadline`.
    fn receive_before(&mut self, deadline: Instant) -> Option<String> {
        let mut buffer = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.notify
                .set_read_timeout(Some(left))
                .expect("set timeout");
            if let Ok(size) = self.notify.recv(&mut buffer) {
                let message = String::from_utf8_lossy(&buffer[..size]).into_owned();
                self.messages.push(message.clone());
                return Some(message);
            }
        }
    }

    /// The server's process id (0 once it has exited).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal (`TERM`, `HUP`, `KILL`, ...) to the server.
    pub fn signal(&self, name: &str) {
        let pid = self.pid();
        let status = Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
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

    /// From now on reads the server's stderr on a thread of its own, so a server that logs
    /// a lot never blocks on a full pipe; the thread returns all of it once the server has
    /// exited (and `wait_exit` then returns none).
    pub fn read_stderr_in_background(&mut self) -> std::thread::JoinHandle<String> {
        let mut pipe = self
            .child
            .as_mut()
            .and_then(|child| child.stderr.take())
            .expect("the server runs and its stderr is still unread");
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }

    /// Stops the server with SIGTERM and returns its status and stderr.
    pub fn stop(&mut self) -> (ExitStatus, String) {
        self.signal("TERM");
        self.wait_exit()
    }

    /// Stops the server with SIGTERM, which it must exit 0 on; returns its stderr.
    pub fn stop_ok(&mut self) -> String {
        let (status, stderr) = self.stop();
        assert!(
            status.success(),
            "exit status {status:?}; stderr:\n{stderr}"
        );
        stderr
    }

    /// Kills the server, if it still runs, and returns its stderr.
    fn stop_and_read_stderr(&mut self) -> String {
        match self.child.as_mut() {
            Some(child) => {
                let _ = child.kill();
                self.wait_exit().1
            }
            None => String::new(),
        }
    }

    /// The server's directory (config and database), to start another server in. The server
    /// must have exited: stop it first (`stop`, or `signal` and `wait_exit`).
    pub fn into_dir(mut self) -> TempDir {
        assert!(
            self.child.is_none(),
            "the server still runs; stop it before taking its directory"
        );
        std::mem::replace(&mut self.dir, TempDir(PathBuf::new()))
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

/// The status of an empty sync with `token` (200 when the token is accepted).
pub fn sync_status(server: &Server, token: &str) -> u16 {
    server.sync(token, &sync_body(DEVICE_A, None, vec![])).0
}

/// Everything the account holds, as `device`, which never synced, receives it.
pub fn everything(server: &Server, device: &str) -> Value {
    let response = server.sync_ok(TOKEN, &sync_body(device, None, vec![]));
    assert_eq!(response["conflicts"], json!([]));
    response
}

/// An HTTP response as the test sees it.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Each header's name and value, in order.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
    /// The body as it came (compressed, if it is).
    pub bytes: Vec<u8>,
}

impl Response {
    /// The value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body, parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {:?}", self.body))
    }
}

/// A connection to the server on loopback `port`, whose reads give up after [`WAIT`].
pub fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(WAIT))?;
    Ok(stream)
}

/// One HTTP/1.1 request on a fresh connection that the server closes after answering.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = connect(port).expect("connect to server");
    let mut with_close = vec![("Connection", "close")];
    with_close.extend_from_slice(headers);
    let head = request_head(method, path, &with_close, body.len());
    exchange(&mut stream, &head, body)
        .unwrap_or_else(|| panic!("no whole HTTP response to {method} {path}"))
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

/// Sends `head` (see [`request_head`]) and `body` on `stream` and reads one response, leaving
/// the connection open. `None` if the connection breaks before a whole response. The body
/// need not all be sent: the server may answer (413) and close before reading a large one.
pub fn exchange<S: Read + Write>(stream: &mut S, head: &str, body: &[u8]) -> Option<Response> {
    stream.write_all(head.as_bytes()).ok()?;
    let _ = stream.write_all(body);
    read_response(stream)
}

/// Reads one response from `stream`: status line, headers, and a body of Content-Length
/// bytes (without one, up to the end of the connection). `None` if it is not all there.
pub fn read_response<S: Read>(stream: &mut S) -> Option<Response> {
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).ok()?;
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut response = Response {
        status,
        headers,
        body: String::new(),
        bytes: Vec::new(),
    };
    let mut body = Vec::new();
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"));
    match response.header("content-length") {
        _ if chunked => read_chunked(&mut reader, &mut body)?,
        Some(length) => {
            body.resize(length.parse().ok()?, 0);
            reader.read_exact(&mut body).ok()?;
        }
        None => {
            reader.read_to_end(&mut body).ok()?;
        }
    }
    response.body = String::from_utf8_lossy(&body).into_owned();
    response.bytes = body;
    Some(response)
}

/// Reads a chunked body (sizes in hex, each chunk followed by CRLF, ended by a 0 chunk)
/// into `body`.
fn read_chunked(reader: &mut impl BufRead, body: &mut Vec<u8>) -> Option<()> {
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line).ok()?;
        let size = usize::from_str_radix(size_line.trim(), 16).ok()?;
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = String::new();
        reader.read_line(&mut crlf).ok()?;
        if size == 0 {
            return Some(());
        }
    }
}

/// A sync request body.
pub fn sync_body(device: &str, last_sync: Option<&str>, changes: Vec<Value>) -> Value {
    json!({ "device_id": device, "last_sync": last_sync, "changes": changes })
}

/// A request fixture from tests/fixtures, parsed.
pub fn fixture(path: &str) -> Value {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {full}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{full} is not JSON: {e}"))
}

// Made-up records in the desktop's shape: every field it sends, times in nanoseconds.

/// A desktop-shaped task.
pub fn task(id: &str, title: &str, list_id: &str, updated_at: &str) -> Value {
    json!({
        "type": "task", "id": id, "title": title, "description": null, "url": null,
        "priority": "medium", "completed": false, "list_id": list_id, "tag_ids": [],
        "created_at": "2026-11-24T22:40:01.000000003Z", "updated_at": updated_at,
        "completed_at": null, "due_date": null
    })
}

/// A desktop-shaped list.
pub fn list(id: &str, name: &str, is_inbox: bool, updated_at: &str) -> Value {
    json!({
        "type": "list", "id": id, "name": name, "description": null, "icon": "📋",
        "color": null, "is_inbox": is_inbox, "created_at": "2026-11-24T22:40:01.000000001Z",
        "updated_at": updated_at, "sort_order": 0
    })
}

/// A desktop-shaped tag.
pub fn tag(id: &str, name: &str, updated_at: &str) -> Value {
    json!({
        "type": "tag", "id": id, "name": name, "color": "#a6e3a1",
        "created_at": "2026-11-24T22:40:01.000000002Z", "updated_at": updated_at
    })
}

/// A tombstone.
pub fn deleted(id: &str, record_type: &str, deleted_at: &str) -> Value {
    json!({ "type": "deleted", "id": id, "record_type": record_type, "deleted_at": deleted_at })
}

/// The ids of the records in a response, in order.
/// `records` in the order a full sync sends them: lists, tags, tasks, task-tag links, then
/// deletes of each of those kinds; by id within each.
pub fn in_full_sync_order(records: &[Value]) -> Value {
    let group = |record: &Value| {
        let kind = if record["type"] == "deleted" {
            &record["record_type"]
        } else {
            &record["type"]
        };
        let position = ["list", "tag", "task", "task_tag"]
            .iter()
            .position(|name| kind == name)
            .unwrap_or(4);
        (record["type"] == "deleted", position)
    };
    let mut sorted = records.to_vec();
    sorted.sort_by_cached_key(|record| (group(record), record["id"].to_string()));
    Value::from(sorted)
}

pub fn ids(response: &Value) -> Vec<String> {
    response["changes"]
        .as_array()
        .expect("changes array")
        .iter()
        .map(|record| record["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The record with `id` in a request's or response's changes, if any.
pub fn find<'a>(body: &'a Value, id: &str) -> Option<&'a Value> {
    body["changes"]
        .as_array()?
        .iter()
        .find(|record| record["id"] == id)
}
