//! Connections and the listening socket: a bind path that is not a socket, answers sent
//! before the body was read, and errors the HTTP stack answers itself.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::harness::*;

/// Bytes every half-sent sync declares; half of them are sent.
const HALF_SENT_LENGTH: usize = 200;

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
