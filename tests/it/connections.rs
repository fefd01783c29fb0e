//! Connections a hostile or slow client holds open, and the listening socket: a bind path
//! that is not a socket, answers sent before the body was read, errors the HTTP stack
//! answers itself, the memory budget for bodies, keep-alive and request time limits, slots
//! shed to make room for a real sync, SIGTERM with every slot taken, and the open-file limit
//! those slots need.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

/// Bytes every half-sent sync declares; half of them are sent.
const HALF_SENT_LENGTH: usize = 200;

/// A connection that sent a sync's headers with a valid token for a body of `length`
/// bytes, once the server has started reading that body (the client asks with `Expect:
/// 100-continue` and waits for its go-ahead): the server holds it as a body arriving.
fn body_started(port: u16, length: usize) -> TcpStream {
    let mut stream = connect(port).expect("connect");
    let head = request_head(
        "POST",
        "/api/v1/sync",
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Expect", "100-continue"),
        ],
        length,
    );
    stream.write_all(head.as_bytes()).expect("send head");
    let mut interim = [0u8; CONTINUE.len()];
    stream.read_exact(&mut interim).expect("100 Continue");
    assert_eq!(&interim, CONTINUE);
    stream
}

/// A connection that sent a sync's headers with a valid token and half its body, and then
/// nothing more, once the server holds it as a body arriving.
fn body_half_sent(port: u16) -> TcpStream {
    let mut stream = body_started(port, HALF_SENT_LENGTH);
    stream
        .write_all(&[b' '; HALF_SENT_LENGTH / 2])
        .expect("send half the body");
    stream
}

/// What the server sends when it starts reading a body the client asked about.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The answer to a sync with `token` (none, or not a valid one) whose headers and half its
/// body were sent, which must come at once, and the connection it came on.
fn refused_half_sent(port: u16, token: Option<&str>) -> (TcpStream, Response) {
    let mut stream = connect(port).expect("connect");
    let authorization = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|value| ("Authorization", value.as_str()))
        .collect();
    let head = request_head("POST", "/api/v1/sync", &headers, HALF_SENT_LENGTH);
    let response = exchange(&mut stream, &head, &[b' '; HALF_SENT_LENGTH / 2])
        .expect("an answer before the body is whole");
    (stream, response)
}

/// A sync body of exactly `length` bytes (an empty sync padded with spaces).
fn sync_body_of_length(length: usize) -> Vec<u8> {
    let mut body = sync_body(DEVICE_A, None, vec![]).to_string().into_bytes();
    assert!(body.len() <= length);
    body.resize(length, b' ');
    body
}

/// The sync head with `token` for a body of `length` bytes, on a keep-alive connection.
fn sync_head(token: &str, length: usize) -> String {
    request_head(
        "POST",
        "/api/v1/sync",
        &[("Authorization", &format!("Bearer {token}"))],
        length,
    )
}

/// Whether the server has closed `stream`: a read finds its end (or a reset) within WAIT.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(read) => read == 0,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Raises this process's soft limit on open files to `wanted` if it is lower (a server
/// started afterwards inherits it), as far as the hard limit allows.
fn raise_open_file_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only to the struct it is given, which outlives the call.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    if limit.rlim_cur >= wanted {
        return;
    }
    assert!(
        limit.rlim_max >= wanted,
        "this test needs {wanted} open files, over the hard limit: `ulimit -Hn {wanted}`"
    );
    limit.rlim_cur = wanted;
    // SAFETY: setrlimit only reads the struct it is given, which outlives the call.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
}

/// How long a real sync takes, from connecting to its whole answer, which must be a 200.
fn timed_real_sync(port: u16) -> Duration {
    let started = Instant::now();
    let response = http_request(
        port,
        "POST",
        "/api/v1/sync",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        sync_body(DEVICE_B, None, vec![]).to_string().as_bytes(),
    );
    let took = started.elapsed();
    assert_eq!(response.status, 200, "{}", response.body);
    took
}

// ---------------------------------------------------------------------------------------
// Bind path
// ---------------------------------------------------------------------------------------

#[test]
fn a_bind_path_that_is_not_a_socket_is_refused_and_left_alone() {
    let dir = dir_with_config(&config_with(""));
    let precious = dir.path().join("tickit-sync.sqlite");
    std::fs::write(&precious, "the database").expect("write");
    let refused = run_cli(
        dir.path(),
        &[
            "serve",
            "--config",
            "config.toml",
            "--bind",
            "unix:tickit-sync.sqlite",
        ],
    );
    assert!(!refused.status.success());
    let stderr = stderr(&refused);
    assert!(
        stderr.contains(&format!(
            "{} is a regular file, not a socket, and was left as it is",
            precious.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&precious).expect("still there"),
        "the database"
    );
}

// ---------------------------------------------------------------------------------------
// Early answers
// ---------------------------------------------------------------------------------------

#[test]
fn answers_sent_before_the_body_was_read_close_the_connection() {
    let server = Server::start_with_config(&config_with("[server]\nmax_body_bytes = 1000"));
    let port = server.port;

    let (mut no_token, response) = refused_half_sent(port, None);
    assert_eq!(response.status, 401);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(closed_by_server(&mut no_token));

    let mut too_large = connect(port).expect("connect");
    too_large
        .write_all(sync_head(TOKEN, 5000).as_bytes())
        .expect("send head");
    let response = read_response(&mut too_large).expect("413");
    assert_eq!(response.status, 413);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(closed_by_server(&mut too_large));

    let mut elsewhere = connect(port).expect("connect");
    let head = request_head("POST", "/api/v2/sync", &[], 100);
    elsewhere.write_all(head.as_bytes()).expect("send head");
    let response = read_response(&mut elsewhere).expect("404");
    assert_eq!(response.status, 404);
    assert_eq!(response.header("connection"), Some("close"));

    // An answer to a whole request keeps the connection for the next one.
    let mut kept = connect(port).expect("connect");
    let body = sync_body_of_length(300);
    let answer = exchange(&mut kept, &sync_head(TOKEN, body.len()), &body).expect("200");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("connection"), None);
    let health = request_head("GET", "/health", &[], 0);
    assert_eq!(exchange(&mut kept, &health, b"").expect("200").status, 200);
}

/// What hyper (the HTTP stack) sends for a request it cannot parse, before our code sees it:
/// the status, `connection: close` and an empty body; it offers no way to add a JSON body.
#[test]
fn requests_the_http_stack_refuses_get_its_status_and_a_closed_connection() {
    let server = Server::start();
    let cases = [
        ("a bad request line", b"GARBAGE\r\n\r\n".to_vec(), 400),
        (
            "headers over 64 KiB",
            format!(
                "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(100_000)
            )
            .into_bytes(),
            431,
        ),
        (
            "an unknown HTTP version",
            b"GET /health HTTP/3.0\r\nHost: x\r\n\r\n".to_vec(),
            400,
        ),
    ];
    for (what, request, status) in cases {
        let mut stream = connect(server.port).expect("connect");
        let _ = stream.write_all(&request);
        let response = read_response(&mut stream).unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(response.status, status, "{what}");
        assert_eq!(response.header("connection"), Some("close"), "{what}");
        assert_eq!(response.header("content-length"), Some("0"), "{what}");
    }
}

// ---------------------------------------------------------------------------------------
// Memory budget
// ---------------------------------------------------------------------------------------

#[test]
fn a_body_beyond_the_memory_budget_waits_then_gets_503_with_retry_after() {
    let server = Server::start_with_config(&config_with(
        "[server]\nmax_body_bytes = 1000\nmax_bodies_in_flight_bytes = 1500",
    ));
    let port = server.port;
    // 1000 of the 1500 bytes held by a body still arriving.
    let holder_body = sync_body_of_length(1000);
    let mut holder = body_started(port, 1000);
    holder.write_all(&holder_body[..500]).expect("send half");

    // A small body fits beside it.
    let small = sync_body_of_length(400);
    let answer = exchange(
        &mut connect(port).expect("connect"),
        &sync_head(TOKEN, 400),
        &small,
    )
    .expect("answer");
    assert_eq!(answer.status, 200, "{}", answer.body);

    // A large one waits for room, then is refused.
    let started = Instant::now();
    let large = sync_body_of_length(1000);
    let refused = exchange(
        &mut connect(port).expect("connect"),
        &sync_head(TOKEN, 1000),
        &large,
    )
    .expect("answer");
    let waited = started.elapsed();
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert_eq!(refused.header("connection"), Some("close"));
    assert_eq!(
        refused.json(),
        json!({"error": "the server is holding as many request bodies as it may (1500 bytes, \
            [server] max_bodies_in_flight_bytes) and none finished within 3s; nothing was \
            changed, sync again later, or raise that setting in the server's config.toml"})
    );
    assert!(
        waited >= Duration::from_millis(2900) && waited < Duration::from_secs(6),
        "{waited:?}"
    );

    // The body that held the budget completes, and its room is given back.
    holder
        .write_all(&holder_body[500..])
        .expect("send the rest");
    assert_eq!(read_response(&mut holder).expect("answer").status, 200);
    let again = exchange(
        &mut connect(port).expect("connect"),
        &sync_head(TOKEN, 1000),
        &large,
    )
    .expect("answer");
    assert_eq!(again.status, 200, "{}", again.body);
}

// ---------------------------------------------------------------------------------------
// Time limits
// ---------------------------------------------------------------------------------------

#[test]
fn an_idle_keep_alive_connection_is_closed_after_keep_alive_timeout() {
    let server = Server::start_with_config(&config_with("[server]\nkeep_alive_timeout_secs = 1"));
    let health = request_head("GET", "/health", &[], 0);

    // Used more often than the limit, it stays open past it.
    let mut busy = connect(server.port).expect("connect");
    for _ in 0..3 {
        let answer = exchange(&mut busy, &health, b"").expect("answer on the same connection");
        assert_eq!(answer.status, 200);
        std::thread::sleep(Duration::from_millis(600));
    }

    // Left idle, it is closed once the limit has passed.
    let mut idle = connect(server.port).expect("connect");
    assert_eq!(
        exchange(&mut idle, &health, b"").expect("answer").status,
        200
    );
    let answered = Instant::now();
    assert!(closed_by_server(&mut idle), "still open after {WAIT:?}");
    let took = answered.elapsed();
    println!("idle connection closed after {took:?} (keep_alive_timeout_secs = 1)");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn a_body_that_does_not_arrive_within_request_timeout_gets_408() {
    let server = Server::start_with_config(&config_with("[server]\nrequest_timeout_secs = 1"));
    let started = Instant::now();
    let mut stream = body_half_sent(server.port);
    let response = read_response(&mut stream).expect("an answer");
    let took = started.elapsed();
    assert_eq!(response.status, 408, "{}", response.body);
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(
        response.json(),
        json!({"error": "the request body did not arrive within 1s ([server] \
            request_timeout_secs); nothing was changed: sync again on a better connection, \
            or raise that setting in the server's config.toml"})
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(closed_by_server(&mut stream));
}

// ---------------------------------------------------------------------------------------
// Slots
// ---------------------------------------------------------------------------------------

#[test]
fn a_real_sync_gets_through_1100_idle_connections_and_1030_half_sent_bodies() {
    const IDLE: usize = 1100;
    const HALF_SENT: usize = 1030;
    // Both floods, the server's 1024 connections and the real sync's, with room to spare.
    raise_open_file_limit(4096);
    let server = Server::start();
    let port = server.port;
    // The old server took 25-28 s here; the desktop client gives up after 30 s.
    let bound = Duration::from_secs(3);

    // Half-sent bodies with no token, or one that is not valid, are refused at once.
    let idle: Vec<TcpStream> = (0..IDLE).map(|_| connect(port).expect("connect")).collect();
    let refused: Vec<TcpStream> = (0..HALF_SENT)
        .map(|n| {
            let token = (n % 2 == 1).then_some("tks_not_a_real_token");
            let (stream, response) = refused_half_sent(port, token);
            assert_eq!(response.status, 401, "{}", response.body);
            assert_eq!(response.header("connection"), Some("close"));
            stream
        })
        .collect();
    let took = timed_real_sync(port);
    println!(
        "real sync past {IDLE} idle connections and {HALF_SENT} half-sent bodies without a \
         valid token: {took:?}"
    );
    assert!(took < bound, "took {took:?}");
    drop((idle, refused));

    // With a valid token they hold their slots: the oldest are shed to make room, each told
    // so, once no idle connection is left to shed.
    let idle: Vec<TcpStream> = (0..IDLE).map(|_| connect(port).expect("connect")).collect();
    let mut half_sent: Vec<TcpStream> = (0..HALF_SENT).map(|_| body_half_sent(port)).collect();
    let took = timed_real_sync(port);
    println!(
        "real sync past {IDLE} idle connections and {HALF_SENT} half-sent bodies with a \
         valid token: {took:?}"
    );
    assert!(took < bound, "took {took:?}");
    let shed = read_response(&mut half_sent[0]).expect("an answer to the oldest");
    assert_eq!(shed.status, 503, "{}", shed.body);
    assert_eq!(shed.header("connection"), Some("close"));
    assert_eq!(shed.header("retry-after"), Some("5"));
    assert_eq!(
        shed.json(),
        json!({"error": "this request was still arriving when every connection slot was \
            taken ([server] max_connections = 1024), so it was set aside for a newer one; \
            nothing was changed, sync again"})
    );
    drop((idle, half_sent));
}

#[test]
fn sigterm_is_acted_on_at_once_with_every_slot_taken() {
    let mut server = Server::start_with_config(&config_with(
        "[server]\nmax_connections = 4\nshutdown_grace_secs = 1",
    ));
    let mut half_sent: Vec<TcpStream> = (0..4).map(|_| body_half_sent(server.port)).collect();
    // One more while all four are taken: the oldest body still arriving makes room.
    let newcomer = connect(server.port).expect("connect");
    let shed = read_response(&mut half_sent[0]).expect("the oldest is answered");
    assert_eq!(shed.status, 503, "{}", shed.body);

    let signalled = Instant::now();
    server.signal("TERM");
    server.wait_for_message("STOPPING=1");
    let noticed = signalled.elapsed();
    let (status, stderr) = server.wait_exit();
    let stopped = signalled.elapsed();
    println!("SIGTERM noticed after {noticed:?}, exited after {stopped:?}");
    assert!(status.success(), "{stderr}");
    assert!(noticed < Duration::from_secs(1), "{noticed:?}");
    // The bodies still arriving had the 1 s grace period, then were cut off.
    assert!(
        stopped >= Duration::from_millis(900) && stopped < Duration::from_secs(3),
        "{stopped:?}"
    );
    assert!(stderr.contains("grace period were cut off"), "{stderr}");
    drop((half_sent, newcomer));
}

// ---------------------------------------------------------------------------------------
// Open-file limit
// ---------------------------------------------------------------------------------------

/// What a server started with the soft open-file limit `soft` (and the hard one `hard`, if
/// given) says on stderr, up to its clean stop.
fn stderr_with_open_file_limit(soft: u32, hard: Option<u32>) -> String {
    let hard = hard.map_or(String::new(), |hard| format!("ulimit -H -n {hard}; "));
    let script = format!(r#"ulimit -S -n {soft}; {hard}exec "$0" "$@""#);
    let command = serve_command(
        &["sh", "-c", &script],
        &["--bind", "127.0.0.1", "--port", "0"],
    );
    let mut server = Server::spawn_command(dir_with_config(&config_with("")), command);
    server.wait_for_message("READY=1");
    server.stop_ok()
}

#[test]
fn a_low_soft_open_file_limit_is_raised_and_one_too_low_to_raise_is_reported() {
    // systemd's default soft limit for services, under a hard limit with room.
    let stderr = stderr_with_open_file_limit(256, None);
    assert!(!stderr.contains("warning"), "{stderr}");
    let stderr = stderr_with_open_file_limit(256, Some(512));
    assert!(
        stderr.contains(
            "warning: the open-file limit leaves room for 448 connections, fewer than [server] \
             max_connections (1024); serving at most 448 at once. Raise the limit to at least \
             1088 (`ulimit -Hn`, or LimitNOFILE= in the systemd service), or lower \
             max_connections"
        ),
        "{stderr}"
    );
}
