//! PROTOCOL.md "HTTP errors": every status the server returns, its JSON body, its headers,
//! and that a refused request changes nothing.

use serde_json::json;

use crate::harness::*;

#[test]
fn health_needs_no_token() {
    let server = Server::start();
    let response = server.request("GET", "/health", &[], b"");
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["status"], "ok");
}

#[test]
fn unknown_path_is_404_with_a_json_error() {
    let server = Server::start();
    let response = server.request("GET", "/api/v2/sync", &[], b"");
    assert_eq!(response.status, 404);
    assert_eq!(
        response.json(),
        json!({"error": "no such endpoint: GET /api/v2/sync; this server answers POST /api/v1/sync and GET /health"})
    );
}

#[test]
fn wrong_method_is_405_with_allow() {
    let server = Server::start();
    let response = server.request("GET", "/api/v1/sync", &[], b"");
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("POST"));
    assert_eq!(
        response.json(),
        json!({"error": "method not allowed here; use POST"})
    );
    let response = server.request("DELETE", "/health", &[], b"");
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
}

#[test]
fn missing_or_unknown_token_is_401_with_www_authenticate() {
    let server = Server::start();
    let body = sync_body(DEVICE_A, None, vec![]).to_string();
    let missing = server.request("POST", "/api/v1/sync", &[], body.as_bytes());
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert!(
        missing.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("missing Authorization header")
    );
    let (status, response) =
        server.sync("tks_not_a_real_token", &sync_body(DEVICE_A, None, vec![]));
    assert_eq!(status, 401);
    assert!(
        response["error"]
            .as_str()
            .unwrap()
            .starts_with("unknown token")
    );
}

#[test]
fn body_over_the_limit_is_413_naming_the_limit_and_the_setting() {
    let server = Server::start_with_config(&config_with("[server]\nmax_body_bytes = 1000"));
    let big = sync_body(
        DEVICE_A,
        None,
        vec![task(
            NEW_TASK,
            &"x".repeat(2000),
            DEVICE_B,
            "2026-11-24T22:45:21Z",
        )],
    );
    let (status, response) = server.sync(TOKEN, &big);
    assert_eq!(status, 413);
    let error = response["error"].as_str().unwrap();
    assert!(error.contains("limit of 1000 bytes"), "{error}");
    assert!(error.contains("max_body_bytes"), "{error}");
    let everything = server.sync_ok(TOKEN, &sync_body(DEVICE_B, None, vec![]));
    assert_eq!(
        everything["changes"],
        json!([]),
        "a refused request stored nothing"
    );
}

#[test]
fn malformed_json_is_400_and_changes_nothing() {
    let server = Server::start();
    let response = server.request(
        "POST",
        "/api/v1/sync",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"{\"device_id\": ",
    );
    assert_eq!(response.status, 400);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("request body is not valid JSON")
    );
}

#[test]
fn one_invalid_record_refuses_the_whole_request_naming_index_and_field() {
    let server = Server::start();
    let good = task(NEW_TASK, "fine", DEVICE_B, "2026-11-24T22:45:21Z");
    let mut bad = task(NEW_TASK_2, "bad", DEVICE_B, "2026-11-24T22:45:21Z");
    bad["priority"] = json!("asap");
    let (status, response) = server.sync(TOKEN, &sync_body(DEVICE_A, None, vec![good, bad]));
    assert_eq!(status, 400);
    assert_eq!(
        response,
        json!({"error": "changes[1].priority: must be one of low, medium, high, urgent (got \"asap\")"})
    );
    let everything = server.sync_ok(TOKEN, &sync_body(DEVICE_B, None, vec![]));
    assert_eq!(everything["changes"], json!([]));
}
