//! The limits on what one sync request may carry (`[sync] max_records_per_request` and
//! `max_text_bytes`): a request over either is refused whole, with an error naming the
//! setting, and changes nothing.

use serde_json::{Value, json};

use crate::harness::*;

const UPDATED_AT: &str = "2026-11-24T22:45:21.000000001Z";

/// `count` distinct tasks.
fn tasks(count: usize) -> Vec<Value> {
    (0..count)
        .map(|n| {
            let id = format!("{n:08x}-0000-4000-8000-000000000000");
            task(&id, &format!("Task {n}"), NEW_LIST, UPDATED_AT)
        })
        .collect()
}

/// What a device that never synced receives: the account's records.
fn stored(server: &Server) -> Value {
    everything(server, DEVICE_D)["changes"].clone()
}

#[test]
fn more_records_than_allowed_is_413_naming_the_setting_and_stores_nothing() {
    let server = Server::start_with_config(&config_with("[sync]\nmax_records_per_request = 3"));
    let (status, response) = server.sync(TOKEN, &sync_body(DEVICE_A, None, tasks(4)));
    assert_eq!(status, 413);
    assert_eq!(
        response,
        json!({"error": "the request carries 4 records, over this server's limit of 3 per \
                         request; raise [sync] max_records_per_request in the server's \
                         config.toml"})
    );
    assert_eq!(
        stored(&server),
        json!([]),
        "a refused request stored nothing"
    );
    // The limit itself is allowed.
    server.sync_ok(TOKEN, &sync_body(DEVICE_A, None, tasks(3)));
    assert_eq!(stored(&server).as_array().map(Vec::len), Some(3));
}

#[test]
fn a_string_over_the_text_limit_is_400_naming_change_field_and_setting() {
    let server = Server::start();
    let mut long_title = tasks(2);
    long_title[1]["title"] = json!("t".repeat(64 * 1024 + 1));
    let (status, response) = server.sync(TOKEN, &sync_body(DEVICE_A, None, long_title));
    assert_eq!(status, 400);
    assert_eq!(
        response,
        json!({"error": "changes[1].title: is 65537 bytes long, over this server's limit of \
                         65536 bytes per text field; shorten it, or raise [sync] max_text_bytes \
                         in the server's config.toml"})
    );
    // A field the server does not know is held to it too, at any depth.
    let mut long_note = tasks(1);
    long_note[0]["attachments"] = json!([{"name": "a.txt", "text": "n".repeat(70_000)}]);
    let (status, response) = server.sync(TOKEN, &sync_body(DEVICE_A, None, long_note));
    assert_eq!(status, 400);
    assert_eq!(
        response,
        json!({"error": "changes[0].attachments[0].text: is 70000 bytes long, over this \
                         server's limit of 65536 bytes per text field; shorten it, or raise \
                         [sync] max_text_bytes in the server's config.toml"})
    );
    assert_eq!(
        stored(&server),
        json!([]),
        "a refused request stored nothing"
    );
    // The limit itself is allowed.
    let mut at_limit = tasks(1);
    at_limit[0]["title"] = json!("t".repeat(64 * 1024));
    server.sync_ok(TOKEN, &sync_body(DEVICE_A, None, at_limit.clone()));
    assert_eq!(stored(&server), Value::from(at_limit));
}
