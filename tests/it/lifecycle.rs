//! The server's life under a service manager: sd_notify messages and their order, socket
//! activation (systemd-socket-activate, and a socket the test holds like systemd does), idle
//! exit, Unix sockets, graceful stop that loses no acknowledged sync, and config reloads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// `serve ARGS...` given `socket` the way systemd passes one: as fd 3, with LISTEN_FDS=1 and
/// LISTEN_PID set to the server's own pid (the shell execs the server, keeping its pid).
fn serve_with_socket(socket: &TcpListener, args: &[&str]) -> Command {
    let socket: OwnedFd = socket.try_clone().expect("dup socket").into();
    let script = r#"exec 3<&0 0</dev/null; LISTEN_FDS=1 LISTEN_PID=$$; export LISTEN_FDS LISTEN_PID; exec "$0" "$@""#;
    let mut command = serve_command(&["sh", "-c", script], args);
    command.stdin(Stdio::from(socket));
    command
}

/// A task id unique to (`group`, `n`).
fn task_id(group: usize, n: usize) -> String {
    format!("{group:08x}-0000-4000-8000-{n:012x}")
}

/// One sync creating the tasks `ids`.
fn sync_creating(device: &str, ids: &[String]) -> Value {
    let tasks = ids
        .iter()
        .map(|id| task(id, "lifecycle", DEVICE_B, "2026-11-24T22:45:21Z"))
        .collect();
    sync_body(device, None, tasks)
}

/// Every task id the default account holds, as a new device sees them.
fn all_ids(server: &Server) -> Vec<String> {
    ids(&everything(server, DEVICE_C))
}

/// The head of a sync with `token` for a body of `length` bytes, plus `extra` headers.
fn sync_head(token: &str, length: usize, extra: &[(&str, &str)]) -> String {
    let authorization = format!("Bearer {token}");
    let mut headers = vec![("Authorization", authorization.as_str())];
    headers.extend_from_slice(extra);
    request_head("POST", "/api/v1/sync", &headers, length)
}

/// One sync on an open connection, which stays open for the next request.
fn exchange_sync<S: Read + Write>(stream: &mut S, token: &str, body: &Value) -> Option<Response> {
    let body = body.to_string();
    exchange(stream, &sync_head(token, body.len(), &[]), body.as_bytes())
}

/// A sync on a fresh connection that tolerates the server going away: `None` when there was
/// no whole response (refused, reset, closed).
fn try_sync(port: u16, token: &str, body: &Value) -> Option<Response> {
    exchange_sync(&mut connect(port).ok()?, token, body)
}

/// `GET /health` on an open connection, which stays open for the next request.
fn get_health<S: Read + Write>(stream: &mut S) -> Option<Response> {
    exchange(stream, &request_head("GET", "/health", &[], 0), b"")
}

/// The sd_notify messages after index `from` that are not watchdog pings or status-only.
fn state_changes(messages: &[String], from: usize) -> Vec<String> {
    messages[from..]
        .iter()
        .filter(|message| !message.starts_with("WATCHDOG=1") && !message.starts_with("STATUS="))
        .cloned()
        .collect()
}

/// Retries `check` every 50 ms until it holds or `limit` passes; returns how long it took.
fn poll_until(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts the server exits 0 and its log ends with the database closed; returns stderr.
fn assert_clean_exit(server: &mut Server) -> String {
    let (status, stderr) = server.wait_exit();
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{stderr}"
    );
    assert!(
        stderr.ends_with("tickit-sync stopped; the database is closed\n"),
        "stderr:\n{stderr}"
    );
    stderr
}

/// The WAL is checkpointed into the database at close: no -wal file, or an empty one.
fn assert_wal_checkpointed(dir: &Path) {
    let wal = dir.join("tickit-sync.sqlite-wal");
    let size = std::fs::metadata(&wal).map_or(0, |meta| meta.len());
    assert_eq!(size, 0, "{} still holds {size} bytes", wal.display());
}

/// The systemd-socket-activate program; the tests that use it fail without it.
fn find_systemd_socket_activate() -> &'static str {
    [
        "/usr/bin/systemd-socket-activate",
        "/lib/systemd/systemd-socket-activate",
    ]
    .into_iter()
    .find(|path| Path::new(path).exists())
    .expect("systemd-socket-activate is missing: apt-get install systemd")
}

#[test]
fn a_socket_systemd_names_metrics_serves_metrics_and_the_other_syncs() {
    let activate = find_systemd_socket_activate();
    let (sync_port, metrics_port) = (free_port(), free_port());
    let (sync_address, metrics_address) = (
        format!("127.0.0.1:{sync_port}"),
        format!("127.0.0.1:{metrics_port}"),
    );
    // The metrics socket comes first, as systemd may order two socket units either way;
    // the config has no [metrics] section.
    let command = serve_command(
        &[
            activate,
            "-l",
            &metrics_address,
            "-l",
            &sync_address,
            "--fdname=metrics:tickit-sync.socket",
            "-E",
            "NOTIFY_SOCKET",
        ],
        &[],
    );
    let mut server = Server::spawn_command(dir_with_config(&config_with("")), command);
    server.port = sync_port;
    let mut answer = None;
    poll_until(WAIT, || {
        answer = try_sync(sync_port, TOKEN, &sync_creating(DEVICE_A, &[task_id(4, 1)]));
        answer.is_some()
    });
    assert_eq!(answer.expect("the sync port answers").status, 200);
    let ready = server.wait_for_message("READY=1");
    assert!(
        ready.starts_with(&format!(
            "READY=1\nSTATUS=listening on {sync_address} (from systemd); metrics on \
             {metrics_address}; "
        )),
        "{ready:?}"
    );
    let scrape = http_request(metrics_port, "GET", "/metrics", &[], b"");
    assert_eq!(scrape.status, 200);
    assert!(
        scrape
            .body
            .lines()
            .any(|line| line == "tickit_sync_syncs_total{outcome=\"ok\",status=\"200\"} 1"),
        "{}",
        scrape.body
    );
    server.signal("TERM");
    assert_clean_exit(&mut server);
}

// ---------------------------------------------------------------------------------------
// sd_notify
// ---------------------------------------------------------------------------------------

#[test]
fn notify_ready_watchdog_reload_and_stopping_in_order() {
    let mut server = Server::start_with(&config_with(""), &[], &[("WATCHDOG_USEC", "400000")]);
    let port = server.port;
    assert_eq!(
        server.messages[0],
        format!(
            "READY=1\nSTATUS=listening on 127.0.0.1:{port}; 0 accounts, 0 devices (0 seen in the last day), 0 records; \
             no sync since start\n"
        ),
        "READY is the first message and says where and what"
    );

    // No WATCHDOG_PID (as with `systemd-run`): pings at half of WATCHDOG_USEC, paced.
    let first = Instant::now();
    for _ in 0..3 {
        let ping = server.wait_for_message("WATCHDOG=1");
        assert!(ping.starts_with("WATCHDOG=1\nSTATUS="), "{ping:?}");
    }
    let three_pings = first.elapsed();
    assert!(
        three_pings < Duration::from_secs(2),
        "3 pings at 200 ms took {three_pings:?}"
    );

    server.sync_ok(
        TOKEN,
        &sync_creating(DEVICE_A, &[task_id(1, 1), task_id(1, 2)]),
    );
    let ping = server.wait_for_message("last sync");
    assert_eq!(
        ping,
        "WATCHDOG=1\nSTATUS=1 accounts, 1 devices (1 seen in the last day), 2 records; last sync 0s ago\n"
    );

    let mark = server.messages.len();
    server.signal("HUP");
    server.wait_for_message("READY=1");
    let changes = state_changes(&server.messages, mark);
    assert_eq!(changes.len(), 2, "{changes:?}");
    let usec = changes[0]
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("RELOADING with MONOTONIC_USEC: {:?}", changes[0]));
    assert!(usec.parse::<u64>().is_ok_and(|usec| usec > 0), "{usec:?}");
    assert_eq!(changes[1], "READY=1\nSTATUS=reloaded configuration\n");

    // Still pinging after the reload.
    server.wait_for_message("WATCHDOG=1");

    let mark = server.messages.len();
    server.signal("TERM");
    server.wait_for_message("STOPPING=1");
    assert_eq!(
        state_changes(&server.messages, mark),
        ["STOPPING=1\nSTATUS=shutting down (SIGTERM)\n"]
    );
    let stderr = assert_clean_exit(&mut server);
    assert!(
        stderr.contains("shutting down (SIGTERM): finishing requests in flight\n"),
        "{stderr}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_wal_checkpointed(server.dir.path());
}

#[test]
fn watchdog_meant_for_another_pid_sends_status_but_no_pings() {
    let mut server = Server::start_with(
        &config_with(""),
        &[],
        &[("WATCHDOG_USEC", "200000"), ("WATCHDOG_PID", "1")],
    );
    // The status report still runs (its first round is right after READY) ...
    let status = server.wait_for_message("STATUS=0 accounts");
    assert_eq!(
        status,
        "STATUS=0 accounts, 0 devices (0 seen in the last day), 0 records; no sync since start\n"
    );
    // ... but for 1 s (five watchdog periods) nothing pings.
    server.collect_messages_for(Duration::from_secs(1));
    assert!(
        !server.messages.iter().any(|m| m.contains("WATCHDOG=1")),
        "{:?}",
        server.messages
    );
    server.stop();
}

#[test]
fn without_notify_socket_the_server_runs_and_stops_quietly() {
    let port = free_port();
    let dir = dir_with_config(&config_with(""));
    let port_arg = port.to_string();
    let command = serve_command(
        &["sh", "-c", r#"unset NOTIFY_SOCKET; exec "$0" "$@""#],
        &["--bind", "127.0.0.1", "--port", &port_arg],
    );
    let mut server = Server::spawn_command(dir, command);
    server.port = port;
    let healthy = poll_until(WAIT, || {
        connect(port).is_ok() && server.request("GET", "/health", &[], b"").status == 200
    });
    assert!(healthy.is_some(), "no /health answer on {port}");
    server.sync_ok(TOKEN, &sync_creating(DEVICE_A, &[task_id(2, 1)]));
    server.signal("TERM");
    let stderr = assert_clean_exit(&mut server);
    assert!(!stderr.contains("notify"), "{stderr}");
    assert!(server.messages.is_empty(), "{:?}", server.messages);
}

// ---------------------------------------------------------------------------------------
// Socket activation and idle exit
// ---------------------------------------------------------------------------------------

#[test]
fn systemd_socket_activate_starts_it_on_demand_and_it_exits_when_idle() {
    let activate = find_systemd_socket_activate();
    let configured = free_port();
    let dir = dir_with_config(&config_with(&format!(
        "[server]\nbind = \"127.0.0.1\"\nport = {configured}"
    )));
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let command = serve_command(
        &[activate, "-l", &address, "-E", "NOTIFY_SOCKET"],
        &["--exit-idle-after", "1"],
    );
    let mut server = Server::spawn_command(dir, command);
    server.port = port;

    // The first connection starts the server (systemd-socket-activate execs it on demand).
    let mut answer = None;
    poll_until(WAIT, || {
        answer = try_sync(port, TOKEN, &sync_creating(DEVICE_A, &[task_id(3, 1)]));
        answer.is_some()
    });
    let answer = answer.expect("the first connection is answered");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let ready = server.wait_for_message("READY=1");
    assert_eq!(
        ready,
        format!(
            "READY=1\nSTATUS=listening on 127.0.0.1:{port} (from systemd); 0 accounts, \
             0 devices (0 seen in the last day), 0 records; no sync since start\n"
        )
    );
    assert!(
        connect(configured).is_err(),
        "the configured port {configured} must not be bound when systemd passes a socket"
    );
    assert_eq!(all_ids(&server), [task_id(3, 1)]);
    let last_connection_closed = Instant::now();

    let stopping = server.wait_for_message("STOPPING=1");
    let idle = last_connection_closed.elapsed();
    assert_eq!(
        stopping,
        "STOPPING=1\nSTATUS=shutting down (idle limit reached)\n"
    );
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(3),
        "exited {idle:?} after the last connection with --exit-idle-after 1"
    );
    let stderr = assert_clean_exit(&mut server);
    assert!(
        stderr.contains(&format!("listening on 127.0.0.1:{port} (from systemd)")),
        "{stderr}"
    );
    assert!(
        stderr.contains("shutting down (idle limit reached)"),
        "{stderr}"
    );
    assert_wal_checkpointed(server.dir.path());
}

#[test]
fn after_an_idle_exit_the_next_connection_waits_for_the_next_start() {
    // The test holds the listening socket, as systemd does, and passes it like systemd does.
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let dir = dir_with_config(&config_with("[server]\nbind = \"unix:not-bound.sock\""));
    let args = ["--exit-idle-after", "1"];
    let mut first = Server::spawn_command(dir, serve_with_socket(&socket, &args));
    first.port = port;
    let ready = first.wait_for_message("READY=1");
    assert!(
        ready.starts_with(&format!(
            "READY=1\nSTATUS=listening on 127.0.0.1:{port} (from systemd); "
        )),
        "{ready:?}"
    );
    assert!(
        !first.dir.path().join("not-bound.sock").exists(),
        "nothing is bound when systemd passes a socket"
    );
    first.sync_ok(TOKEN, &sync_creating(DEVICE_A, &[task_id(4, 1)]));
    let stopping = first.wait_for_message("STOPPING=1");
    assert_eq!(
        stopping,
        "STOPPING=1\nSTATUS=shutting down (idle limit reached)\n"
    );
    assert_clean_exit(&mut first);

    // Nobody serves the port now, yet a client connecting is queued, not refused ...
    let mut client = connect(port).expect("not refused after idle exit");
    let body = sync_creating(DEVICE_A, &[task_id(4, 2)]).to_string();
    let head = sync_head(TOKEN, body.len(), &[("Connection", "close")]);
    client.write_all(head.as_bytes()).expect("send head");
    client.write_all(body.as_bytes()).expect("send body");

    // ... and the next start (what systemd does on that connection) answers it.
    let mut second = Server::spawn_command(first.into_dir(), serve_with_socket(&socket, &args));
    second.port = port;
    let response = read_response(&mut client).expect("the queued request is answered");
    assert_eq!(response.status, 200, "{}", response.body);
    drop(client);
    second.wait_for_message("READY=1");
    let mut ids = all_ids(&second);
    ids.sort();
    assert_eq!(ids, [task_id(4, 1), task_id(4, 2)]);
    second.wait_for_message("STOPPING=1");
    assert_clean_exit(&mut second);
}

// ---------------------------------------------------------------------------------------
// Unix socket
// ---------------------------------------------------------------------------------------

#[test]
fn bind_unix_path_serves_http_on_that_socket() {
    let dir = dir_with_config(&config_with(""));
    let socket = dir.path().join("api.sock");
    let mut server = Server::spawn_command(dir, serve_command(&[], &["--bind", "unix:api.sock"]));
    let ready = server.wait_for_message("READY=1");
    let expected = format!("READY=1\nSTATUS=listening on unix:{}; ", socket.display());
    assert!(ready.starts_with(&expected), "{ready:?}");

    let mut stream = UnixStream::connect(&socket).expect("connect to the Unix socket");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let health = get_health(&mut stream).expect("answer");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let sync = sync_creating(DEVICE_A, &[task_id(5, 1)]);
    let answer = exchange_sync(&mut stream, TOKEN, &sync).expect("answer");
    assert_eq!(answer.status, 200, "{}", answer.body);
    drop(stream);

    // A second server refuses to take over a socket that still answers.
    let refused = run_cli(
        server.dir.path(),
        &[
            "serve",
            "--config",
            "config.toml",
            "--bind",
            "unix:api.sock",
        ],
    );
    assert!(!refused.status.success());
    let stderr = stderr(&refused);
    assert!(
        stderr.contains("another server is already answering on that socket"),
        "{stderr}"
    );

    server.signal("TERM");
    assert_clean_exit(&mut server);

    // A socket file left behind by a stopped server does not stop the next start.
    let mut again = Server::spawn_command(
        server.into_dir(),
        serve_command(&[], &["--bind", "unix:api.sock"]),
    );
    again.wait_for_message("READY=1");
    let mut stream = UnixStream::connect(&socket).expect("connect again");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    assert_eq!(get_health(&mut stream).expect("answer").status, 200);
    drop(stream);
    again.stop();
}

// ---------------------------------------------------------------------------------------
// Graceful stop
// ---------------------------------------------------------------------------------------

#[test]
fn sigterm_during_concurrent_syncs_loses_no_acknowledged_change() {
    const THREADS: usize = 8;
    const TASKS_PER_REQUEST: usize = 4;
    const MAX_REQUESTS_PER_THREAD: usize = 150;
    let mut server = Server::start_with_config(&config_with(""));
    let port = server.port;
    let acknowledged = Arc::new(AtomicUsize::new(0));

    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let acknowledged = acknowledged.clone();
            std::thread::spawn(move || {
                let device = format!("00000000-0000-4000-8000-{:012x}", 0x100 + thread);
                let mut log = Vec::new();
                for n in 0..MAX_REQUESTS_PER_THREAD {
                    let ids: Vec<String> = (0..TASKS_PER_REQUEST)
                        .map(|k| task_id(0x600 + thread, n * TASKS_PER_REQUEST + k))
                        .collect();
                    let status = try_sync(port, TOKEN, &sync_creating(&device, &ids))
                        .map(|response| response.status);
                    log.push((ids, status));
                    if status != Some(200) {
                        break;
                    }
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                }
                log
            })
        })
        .collect();

    let enough = poll_until(WAIT, || acknowledged.load(Ordering::SeqCst) >= 40);
    assert!(enough.is_some(), "the syncs did not get going");
    server.signal("TERM");
    let logs: Vec<_> = workers
        .into_iter()
        .map(|worker| worker.join().expect("worker"))
        .collect();
    let stderr = assert_clean_exit(&mut server);
    assert!(!stderr.contains("cut off"), "{stderr}");

    let mut restarted = Server::start_in(server.into_dir(), &[], &[]);
    let stored: std::collections::HashSet<String> = all_ids(&restarted).into_iter().collect();
    let mut acked = 0;
    for (ids, status) in logs.iter().flatten() {
        let present = ids.iter().filter(|id| stored.contains(*id)).count();
        if *status == Some(200) {
            acked += 1;
            assert_eq!(present, ids.len(), "acknowledged sync lost: {ids:?}");
        } else {
            // No answer: refused, or queued in the kernel when the listener closed (only a
            // socket systemd holds keeps those for the next start). Either way, atomic.
            assert!(
                present == 0 || present == ids.len(),
                "half-applied sync ({status:?}): {present} of {ids:?}"
            );
            if let Some(status) = status {
                assert_eq!(*status, 503, "a sync refused while stopping is a 503");
            }
        }
    }
    assert!(acked >= 40, "{acked}");
    restarted.stop();
}

#[test]
fn a_request_in_flight_at_sigterm_is_finished_and_kept() {
    let mut server = Server::start();
    // An idle keep-alive connection must not hold up the stop.
    let mut idle = connect(server.port).expect("connect");
    assert_eq!(get_health(&mut idle).expect("answer").status, 200);

    // A sync whose body is half sent when SIGTERM arrives.
    let mut busy = connect(server.port).expect("connect");
    assert_eq!(get_health(&mut busy).expect("answer").status, 200);
    let body = sync_creating(DEVICE_A, &[task_id(7, 1)]).to_string();
    let (first_half, second_half) = body.as_bytes().split_at(body.len() / 2);
    let head = sync_head(TOKEN, body.len(), &[]);
    busy.write_all(head.as_bytes()).expect("send head");
    busy.write_all(first_half).expect("send half the body");
    // Give the server a moment to read the head and start on the request.
    std::thread::sleep(Duration::from_millis(300));

    server.signal("TERM");
    server.wait_for_message("STOPPING=1");
    // The idle connection is closed at once.
    let mut rest = Vec::new();
    assert_eq!(
        idle.read_to_end(&mut rest).map(|_| rest.len()).ok(),
        Some(0)
    );
    // New connections are no longer accepted.
    let refused = poll_until(Duration::from_secs(3), || {
        try_sync(server.port, TOKEN, &sync_body(DEVICE_B, None, vec![]))
            .is_none_or(|response| response.status == 503)
    });
    assert!(refused.is_some(), "still accepting syncs after SIGTERM");

    busy.write_all(second_half).expect("send the rest");
    let response = read_response(&mut busy).expect("the in-flight sync is answered");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_clean_exit(&mut server);
    assert_wal_checkpointed(server.dir.path());

    let mut restarted = Server::start_in(server.into_dir(), &[], &[]);
    assert_eq!(all_ids(&restarted), [task_id(7, 1)]);
    restarted.stop();
}

#[test]
fn a_request_still_running_after_the_grace_period_is_cut_off_and_not_applied() {
    let mut server = Server::start_with_config(&config_with("[server]\nshutdown_grace_secs = 1"));
    let mut stuck = connect(server.port).expect("connect");
    let body = sync_creating(DEVICE_A, &[task_id(8, 1)]).to_string();
    let head = sync_head(TOKEN, body.len(), &[]);
    stuck.write_all(head.as_bytes()).expect("send head");
    stuck
        .write_all(&body.as_bytes()[..body.len() / 2])
        .expect("send half the body");
    std::thread::sleep(Duration::from_millis(300));

    let stopped = Instant::now();
    server.signal("TERM");
    let stderr = assert_clean_exit(&mut server);
    let took = stopped.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "stopped {took:?} after SIGTERM with a 1 s grace period"
    );
    assert!(
        stderr.contains("requests still running after the 1s grace period were cut off"),
        "{stderr}"
    );
    assert!(read_response(&mut stuck).is_none(), "no answer for it");

    let mut restarted = Server::start_in(server.into_dir(), &[], &[]);
    assert!(all_ids(&restarted).is_empty());
    restarted.stop();
}

// ---------------------------------------------------------------------------------------
// Reload
// ---------------------------------------------------------------------------------------

#[test]
fn sighup_applies_an_edited_config_without_dropping_connections() {
    const ADDED: &str = "tks_test_added_by_editing_the_config";
    let mut server = Server::start();
    let mut kept = connect(server.port).expect("connect");
    assert_eq!(get_health(&mut kept).expect("answer").status, 200);
    assert_eq!(sync_status(&server, ADDED), 401);

    let config = server.dir.path().join("config.toml");
    let edited = format!(
        "{}\n[[tokens]]\nname = \"added\"\ntoken = \"{ADDED}\"\n",
        config_with("")
    );
    std::fs::write(&config, edited).expect("edit config");
    let mark = server.messages.len();
    server.signal("HUP");
    server.wait_for_message("READY=1");
    let changes = state_changes(&server.messages, mark);
    assert!(changes[0].starts_with("RELOADING=1\n"), "{changes:?}");
    assert_eq!(changes[1], "READY=1\nSTATUS=reloaded configuration\n");
    assert_eq!(sync_status(&server, ADDED), 200);

    // The connection opened before the reload still works.
    let sync = sync_body(DEVICE_A, None, vec![]);
    let answer = exchange_sync(&mut kept, ADDED, &sync)
        .expect("the kept-alive connection survives the reload");
    assert_eq!(answer.status, 200, "{}", answer.body);
    drop(kept);

    let stderr = server.stop_ok();
    assert!(
        stderr.contains("reloaded config.toml (SIGHUP): 4 tokens"),
        "{stderr}"
    );
}

#[test]
fn token_command_takes_effect_within_two_seconds_without_a_signal() {
    let mut server = Server::start();
    let dir = server.dir.path().to_owned();
    let added = run_cli(
        &dir,
        &["token", "--name", "phone", "--config", "config.toml"],
    );
    let token = printed_token(&added);
    let took = poll_until(Duration::from_secs(3), || {
        sync_status(&server, &token) == 200
    });
    assert!(
        took.is_some_and(|took| took <= Duration::from_secs(2)),
        "new token accepted after {took:?}"
    );
    server.wait_for_message("READY=1\nSTATUS=reloaded configuration");
    let reload = state_changes(&server.messages, 1);
    assert!(
        reload[0].starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reload:?}"
    );

    // Tokens added back to back, racing the reloads they cause, are all picked up.
    let more: Vec<String> = ["tablet", "watch", "desktop"]
        .iter()
        .map(|name| {
            printed_token(&run_cli(
                &dir,
                &["token", "--name", name, "--config", "config.toml"],
            ))
        })
        .collect();
    let took = poll_until(Duration::from_secs(3), || {
        more.iter().all(|token| sync_status(&server, token) == 200)
    });
    assert!(
        took.is_some_and(|took| took <= Duration::from_secs(2)),
        "tokens added back to back accepted after {took:?}"
    );

    let revoked = run_cli(
        &dir,
        &["token", "--revoke", "phone", "--config", "config.toml"],
    );
    assert!(revoked.status.success(), "{revoked:?}");
    let took = poll_until(Duration::from_secs(3), || {
        sync_status(&server, &token) == 401
    });
    assert!(
        took.is_some_and(|took| took <= Duration::from_secs(2)),
        "revoked token refused after {took:?}"
    );
    assert_eq!(sync_status(&server, TOKEN), 200);

    let stderr = server.stop_ok();
    assert!(
        stderr.contains("reloaded config.toml (the file changed): 4 tokens"),
        "{stderr}"
    );
    assert!(
        stderr.contains("reloaded config.toml (the file changed): 6 tokens"),
        "{stderr}"
    );
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn sighup_right_after_ready_reloads_rather_than_kills() {
    for _ in 0..3 {
        let mut server = Server::start();
        server.signal("HUP");
        server.wait_for_message("RELOADING=1");
        server.wait_for_message("READY=1");
        assert_eq!(sync_status(&server, TOKEN), 200);
        server.stop_ok();
    }
}

#[test]
fn an_invalid_config_on_reload_keeps_the_old_one_and_names_the_mistake() {
    const ADDED: &str = "tks_test_added_with_a_mistake";
    let mut server = Server::start();
    let config = server.dir.path().join("config.toml");
    let with_token = |extra: &str| {
        format!(
            "{}\n[[tokens]]\nname = \"added\"\ntoken = \"{ADDED}\"\n",
            config_with(extra)
        )
    };
    std::fs::write(&config, with_token("[server]\nport = \"x\"")).expect("edit config");
    let mark = server.messages.len();
    server.signal("HUP");
    server.wait_for_message("READY=1");
    let changes = state_changes(&server.messages, mark);
    assert!(changes[0].starts_with("RELOADING=1\n"), "{changes:?}");
    assert_eq!(
        changes[1],
        "READY=1\nSTATUS=reload failed, still using the previous configuration; see the log\n"
    );
    assert_eq!(sync_status(&server, TOKEN), 200, "old tokens still work");
    assert_eq!(
        sync_status(&server, ADDED),
        401,
        "nothing of the bad file applies"
    );

    // Fixing the file is picked up by itself.
    std::fs::write(&config, with_token("[server]\nport = 3030")).expect("fix config");
    let took = poll_until(Duration::from_secs(3), || {
        sync_status(&server, ADDED) == 200
    });
    assert!(
        took.is_some_and(|took| took <= Duration::from_secs(2)),
        "fixed config applied after {took:?}"
    );

    let stderr = server.stop_ok();
    let failure = stderr
        .lines()
        .position(|line| {
            line.starts_with(
                "error: reload (SIGHUP) failed, still using the previous config: config config.toml: ",
            )
        })
        .unwrap_or_else(|| panic!("no reload error in:\n{stderr}"));
    let report: Vec<&str> = stderr.lines().skip(failure).take(6).collect();
    let report = report.join("\n");
    assert!(report.contains("line 2"), "{report}");
    assert!(report.contains("port = \"x\""), "{report}");
    assert!(report.contains("expected u16"), "{report}");
}

#[test]
fn status_lines_count_accounts_devices_and_records() {
    let mut server = Server::start_with(&config_with(""), &[], &[("WATCHDOG_USEC", "200000")]);
    server.sync_ok(TOKEN, &sync_creating(DEVICE_A, &[task_id(9, 1)]));
    server.sync_ok(TOKEN_2, &sync_body(DEVICE_B, None, vec![]));
    server.sync_ok(OTHER_ACCOUNT_TOKEN, &sync_body(DEVICE_C, None, vec![]));
    let status = server.wait_for_message("2 accounts");
    assert!(
        status.starts_with("WATCHDOG=1\nSTATUS=2 accounts, 3 devices (3 seen in the last day), 1 records; last sync "),
        "{status:?}"
    );
    server.stop();
}

// ---------------------------------------------------------------------------------------
// Writer liveness
// ---------------------------------------------------------------------------------------

#[test]
fn watchdog_pings_stop_while_the_database_writer_is_stuck() {
    let mut server = Server::start_with(&config_with(""), &[], &[("WATCHDOG_USEC", "400000")]);
    server.wait_for_message("WATCHDOG=1");

    // Another process holds the database's write lock: the writer blocks on it.
    let database = server.dir.path().join("tickit-sync.sqlite");
    let mut locker = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             db = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             db.execute('BEGIN IMMEDIATE')\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n\
             db.execute('COMMIT')\n",
        ])
        .arg(&database)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3 to lock the database");
    let mut said = String::new();
    BufReader::new(locker.stdout.take().expect("stdout"))
        .read_line(&mut said)
        .expect("read from python3");
    assert_eq!(said, "locked\n");

    // A ping already on its way may still arrive; after that, silence.
    server.collect_messages_for(Duration::from_millis(300));
    let mark = server.messages.len();
    server.collect_messages_for(Duration::from_secs(1));
    assert!(
        !server.messages[mark..]
            .iter()
            .any(|message| message.contains("WATCHDOG=1")),
        "pinged while the writer was stuck: {:?}",
        &server.messages[mark..]
    );

    drop(locker.stdin.take());
    assert!(locker.wait().expect("python3").success());
    server.wait_for_message("WATCHDOG=1");
    let stderr = server.stop_ok();
    assert!(
        stderr.contains(
            "warning: the database writer did not answer within 0.2s; withholding the watchdog ping"
        ),
        "{stderr}"
    );
}
