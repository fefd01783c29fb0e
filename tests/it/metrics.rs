//! README "Metrics": `[metrics] bind` serves Prometheus' text format at GET /metrics on a
//! port of its own, counting each sync once by outcome; without the section nothing listens.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::harness::*;

const UPDATED_AT: &str = "2026-11-24T22:45:21.000000001Z";

/// The metrics port a server reported in its READY status ("metrics on 127.0.0.1:PORT").
fn metrics_port(server: &Server) -> u16 {
    let ready = server
        .messages
        .iter()
        .find(|message| message.contains("READY=1"))
        .expect("the server sent READY");
    let (_, rest) = ready
        .split_once("metrics on ")
        .unwrap_or_else(|| panic!("READY names no metrics address: {ready}"));
    let address = rest.split(';').next().unwrap_or_default();
    address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {address:?}"))
}

/// POSTs `body` to the sync endpoint with `token`; returns the response as it came.
fn post_sync(server: &Server, token: &str, body: &[u8]) -> Response {
    let bearer = format!("Bearer {token}");
    server.request(
        "POST",
        "/api/v1/sync",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        body,
    )
}

/// How many records an answer carries.
fn records_in(response: &Response) -> usize {
    response.json()["changes"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_scrape_counts_each_sync_once_by_outcome_with_records_bytes_and_batches() {
    let server = Server::start_with_config(&config_with("[metrics]\nbind = \"127.0.0.1:0\""));
    let port = metrics_port(&server);
    let upload = sync_body(
        DEVICE_A,
        None,
        vec![
            list(NEW_LIST, "Errands", false, UPDATED_AT),
            task(NEW_TASK, "Buy milk", NEW_LIST, UPDATED_AT),
        ],
    )
    .to_string();
    let download = sync_body(DEVICE_B, None, vec![]).to_string();
    let invalid = br#"{"device_id": 1}"#;
    let answers = [
        post_sync(&server, TOKEN, upload.as_bytes()),
        post_sync(&server, TOKEN_2, download.as_bytes()),
        post_sync(&server, "tks_not_a_real_token", upload.as_bytes()),
        post_sync(&server, TOKEN, invalid),
    ];
    let statuses: Vec<u16> = answers.iter().map(|answer| answer.status).collect();
    assert_eq!(statuses, [200, 200, 401, 400]);
    assert_eq!(records_in(&answers[1]), 2, "device B receives both records");
    let sent = records_in(&answers[0]) + records_in(&answers[1]);
    // The 401 was refused before its body was read.
    let request_bytes = upload.len() + download.len() + invalid.len();
    let response_bytes: usize = answers.iter().map(|answer| answer.bytes.len()).sum();

    let scrape = http_request(port, "GET", "/metrics", &[], b"");
    assert_eq!(scrape.status, 200);
    assert_eq!(
        scrape.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = &scrape.body;
    for line in [
        format!(
            "tickit_sync_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
        "tickit_sync_syncs_total{outcome=\"ok\",status=\"200\"} 2".into(),
        "tickit_sync_syncs_total{outcome=\"unauthorized\",status=\"401\"} 1".into(),
        "tickit_sync_syncs_total{outcome=\"bad_request\",status=\"400\"} 1".into(),
        "tickit_sync_syncs_total{outcome=\"too_large\",status=\"413\"} 0".into(),
        "tickit_sync_syncs_total{outcome=\"error\",status=\"500\"} 0".into(),
        "tickit_sync_request_duration_seconds_count 4".into(),
        "tickit_sync_request_duration_seconds_bucket{le=\"+Inf\"} 4".into(),
        "tickit_sync_records_received_total 2".into(),
        format!("tickit_sync_records_sent_total {sent}"),
        format!("tickit_sync_request_bytes_total {request_bytes}"),
        format!("tickit_sync_response_bytes_total {response_bytes}"),
        "tickit_sync_writer_queue_depth 0".into(),
        "tickit_sync_writer_batch_size_count 2".into(),
        "tickit_sync_writer_batch_size_sum 2".into(),
        "tickit_sync_accounts 1".into(),
        "tickit_sync_devices 2".into(),
        "tickit_sync_devices_seen_last_day 2".into(),
        "tickit_sync_records 2".into(),
    ] {
        assert!(
            text.lines().any(|candidate| candidate == line),
            "no line {line:?} in the scrape:\n{text}"
        );
    }
    let database_bytes: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("tickit_sync_database_bytes "))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no database size in the scrape:\n{text}"));
    assert!(database_bytes > 0, "{text}");
    // Scraping counts no sync.
    let again = http_request(port, "GET", "/metrics", &[], b"").body;
    assert!(again.contains("tickit_sync_request_duration_seconds_count 4\n"));
}

#[test]
fn the_metrics_port_answers_only_get_metrics() {
    let server = Server::start_with_config(&config_with("[metrics]\nbind = \"127.0.0.1:0\""));
    let port = metrics_port(&server);
    let missing = http_request(port, "GET", "/api/v1/sync", &[], b"");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        "no such endpoint: /api/v1/sync; metrics are at GET /metrics\n"
    );
    let posted = http_request(port, "POST", "/metrics", &[], b"{}");
    assert_eq!(posted.status, 405);
    assert_eq!(posted.header("allow"), Some("GET, HEAD"));
    // HEAD: the same head as GET, and no body.
    let mut stream = connect(port).expect("connect to the metrics port");
    let request = request_head("HEAD", "/metrics", &[("Connection", "close")], 0);
    stream.write_all(request.as_bytes()).expect("send HEAD");
    let mut head = String::new();
    stream.read_to_string(&mut head).expect("read the answer");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "a body came with HEAD: {head}");
    // The sync port serves no metrics.
    let on_sync_port = server.request("GET", "/metrics", &[], b"");
    assert_eq!(on_sync_port.status, 404);
}

#[test]
fn without_a_metrics_section_nothing_is_served() {
    let mut server = Server::start();
    let ready = server
        .messages
        .iter()
        .find(|message| message.contains("READY=1"))
        .expect("the server sent READY")
        .clone();
    assert!(!ready.contains("metrics"), "{ready}");
    let stderr = server.stop_ok();
    assert!(!stderr.contains("metrics"), "{stderr}");
}

#[test]
fn a_metrics_address_in_use_stops_the_start_naming_the_setting() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let address = taken.local_addr().expect("its address");
    let config = config_with(&format!("[metrics]\nbind = \"{address}\""));
    let command = serve_command(&[], &["--bind", "127.0.0.1", "--port", "0"]);
    let mut server = Server::spawn_command(dir_with_config(&config), command);
    let (status, stderr) = server.wait_exit();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: cannot serve metrics on {address} ([metrics] bind)"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("choose another port"), "{stderr}");
}
