//! `tickit-sync check`: every config problem with its line, warnings that leave the exit
//! code 0, a database read without a change (beside a running server too), damage and a
//! broken inbox rule found, and the JSON shape.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::harness::*;

const DATABASE: &str = "tickit-sync.sqlite";
const UPDATED_AT: &str = "2026-11-24T22:45:21.000000001Z";
/// Device A's inbox, the account's inbox as A syncs first.
const INBOX_A: &str = "e47412ad-4c51-467d-be5f-966fb7d0db5d";
/// Device B's inbox, an alias of A's.
const INBOX_B: &str = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d";

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A stopped server's directory: config.toml readable by its owner only, and a database
/// where devices A and B synced their inboxes and a task each.
fn synced_and_stopped() -> TempDir {
    let mut server = Server::start();
    server.sync_ok(
        TOKEN,
        &sync_body(
            DEVICE_A,
            None,
            vec![
                list(INBOX_A, "Inbox", true, UPDATED_AT),
                task(NEW_TASK, "from A", INBOX_A, UPDATED_AT),
            ],
        ),
    );
    server.sync_ok(
        TOKEN_2,
        &sync_body(
            DEVICE_B,
            None,
            vec![
                list(INBOX_B, "Inbox", true, UPDATED_AT),
                task(NEW_TASK_2, "from B", INBOX_B, UPDATED_AT),
            ],
        ),
    );
    server.stop_ok();
    let dir = server.into_dir();
    chmod(&dir.path().join("config.toml"), 0o600);
    dir
}

/// `check ARGS` in `dir`, with nothing from the environment naming other files.
fn check(dir: &Path, args: &[&str]) -> Output {
    let mut words = vec!["check"];
    words.extend_from_slice(args);
    run_cli(dir, &words)
}

/// The schema version this build writes, as `check --json` reports it.
fn latest_schema_version(dir: &Path) -> u64 {
    let report: Value = serde_json::from_slice(&check(dir, &["--json"]).stdout).expect("JSON");
    report["database"]["latest_schema_version"]
        .as_u64()
        .expect("a number")
}

/// The names of the files in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn a_healthy_installation_passes_and_its_database_is_left_untouched() {
    let dir = synced_and_stopped();
    let database = dir.path().join(DATABASE);
    let bytes = std::fs::read(&database).expect("read database");
    let files = files_in(dir.path());
    assert!(
        !files.iter().any(|name| name.ends_with("-wal")),
        "{files:?}"
    );
    let schema = latest_schema_version(dir.path());

    let output = check(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "ok: config config.toml: 3 tokens\n\
             ok: database {DATABASE}: schema version {schema}, 3 records in 1 account and 2 \
             devices; intact, inbox rules hold\n\
             check: healthy (config config.toml, 3 tokens; database {DATABASE} schema \
             {schema}, 3 records)\n"
        )
    );
    assert_eq!(stderr(&output), "");
    assert_eq!(std::fs::read(&database).expect("read database"), bytes);
    assert_eq!(files_in(dir.path()), files, "no -wal or -shm left behind");
}

#[test]
fn a_fresh_install_without_a_database_is_healthy() {
    let dir = dir_with_config(&config_with(""));
    chmod(&dir.path().join("config.toml"), 0o600);
    let output = check(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "ok: config config.toml: 3 tokens\n\
             ok: database {DATABASE}: not there yet; `serve` creates it\n\
             check: healthy (config config.toml, 3 tokens; database {DATABASE}: not there \
             yet; `serve` creates it)\n"
        )
    );
    assert_eq!(files_in(dir.path()), ["config.toml"]);
}

#[test]
fn every_config_problem_is_listed_with_its_line() {
    let dir = dir_with_config(&format!(
        "[server]\nprot = 3030\nmax_body_bytes = 0\n\n[sync]\nmax_records_per_request = \
         \"many\"\n\n[[tokens]]\nname = \"a\"\nhash = \"sha256:00\"\n\n[[tokens]]\nname = \
         \"b\"\ntoken = \"{TOKEN}\"\n"
    ));
    chmod(&dir.path().join("config.toml"), 0o600);
    let output = check(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    let report = stdout(&output);
    let lines: Vec<&str> = report.lines().collect();
    let expected_starts = [
        "error: config.toml line 2: unknown field `prot`, expected one of `bind`, `port`, ",
        "error: config.toml line 6: invalid type: string \"many\", expected usize",
        "error: config.toml line 8: token \"a\": hash must be \"sha256:\" and 64 hex digits",
        "error: config.toml line 3: [server] max_body_bytes must be more than 0",
        "ok: database tickit-sync.sqlite: not there yet",
        "check: 4 errors: the server would not start",
    ];
    assert_eq!(lines.len(), expected_starts.len(), "{report}");
    for (line, start) in lines.iter().zip(expected_starts) {
        assert!(
            line.starts_with(start),
            "{line:?} should start with {start:?}"
        );
    }
}

#[test]
fn a_token_listed_twice_names_both_lines() {
    let dir = dir_with_config(&format!(
        "[[tokens]]\nname = \"laptop\"\ntoken = \"{TOKEN}\"\n\n[[tokens]]\nname = \
         \"phone\"\ntoken = \"{TOKEN}\"\naccount = \"kids\"\n"
    ));
    chmod(&dir.path().join("config.toml"), 0o600);
    let output = check(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).starts_with(
            "error: config.toml line 5: token \"phone\" holds the same token as \"laptop\" (at \
             config.toml line 1), so the server could not tell whether that device is in \
             account \"default\" or \"kids\"; "
        ),
        "{}",
        stdout(&output)
    );
    assert!(!stdout(&output).contains(TOKEN), "never the secret");
}

#[test]
fn plaintext_tokens_others_may_read_are_a_warning_only() {
    let dir = dir_with_config(&config_with(""));
    chmod(&dir.path().join("config.toml"), 0o644);
    let output = check(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let report = stdout(&output);
    assert!(
        report.contains(
            "\nwarning: config.toml: holds plaintext tokens (\"a\" at line 3, \"b\" at line 7, \
             \"other\" at line 11) and its group and every user may read it (mode 0644). \
             Replace them with hashed tokens: `tickit-sync token --revoke NAME --config \
             config.toml`, then `tickit-sync token --name NAME --config config.toml`, and give \
             that device its new token; or, if tickit-sync runs as the file's owner, `chmod \
             600 config.toml`\n"
        ),
        "{report}"
    );
    assert!(
        report.ends_with("check: healthy, 1 warning (config config.toml, 3 tokens; database tickit-sync.sqlite: not there yet; `serve` creates it)\n"),
        "{report}"
    );
}

#[test]
fn a_check_beside_a_running_server_passes_and_the_server_serves_on() {
    let dir = synced_and_stopped();
    let server = Server::start_in(dir, &[], &[]);
    let files = files_in(server.dir.path());
    let output = check(server.dir.path(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).starts_with("ok: config config.toml: 3 tokens\nok: database "));
    assert_eq!(files_in(server.dir.path()), files);
    let answer = server.sync_ok(
        TOKEN,
        &sync_body(
            DEVICE_C,
            None,
            vec![task(NEW_TASK, "edited", INBOX_A, "2026-11-25T08:00:00Z")],
        ),
    );
    assert_eq!(answer["conflicts"], json!([]));
    let after = check(server.dir.path(), &[]);
    assert_eq!(after.status.code(), Some(0), "{}", stdout(&after));
}

#[test]
fn a_file_that_is_not_a_database_is_an_error() {
    let dir = dir_with_config(&config_with("[database]\npath = \"notes.txt\""));
    chmod(&dir.path().join("config.toml"), 0o600);
    std::fs::write(
        dir.path().join("notes.txt"),
        "shopping: milk, bread\n".repeat(100),
    )
    .expect("write");
    let output = check(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        "ok: config config.toml: 3 tokens\n\
         error: database notes.txt: is not an SQLite database (file is not a database); set \
         [database] path or TICKIT_SYNC_DB to tickit-sync's database file, or restore it from \
         a backup\n\
         check: 1 error: the database needs attention\n"
    );
}

#[test]
fn a_damaged_database_is_an_error() {
    let dir = synced_and_stopped();
    let database = dir.path().join(DATABASE);
    let mut bytes = std::fs::read(&database).expect("read database");
    // Every page but the first (the header and the schema) overwritten.
    let page = 4096;
    assert!(bytes.len() > 2 * page, "{} bytes", bytes.len());
    bytes[page..].fill(0xa5);
    std::fs::write(&database, &bytes).expect("write database");
    let output = check(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let report = stdout(&output);
    assert!(
        report.contains(&format!("\nerror: database {DATABASE}: is damaged")),
        "{report}"
    );
    assert!(
        report.ends_with(
            "restore the database from a backup\ncheck: 1 error: the database needs attention\n"
        ),
        "{report}"
    );
}

#[test]
fn a_task_left_under_another_inbox_id_breaks_the_inbox_rule() {
    let dir = synced_and_stopped();
    let conn = rusqlite::Connection::open(dir.path().join(DATABASE)).expect("open");
    let moved = conn
        .execute(
            "UPDATE records SET body = json_set(body, '$.list_id', ?1) WHERE id = ?2",
            [INBOX_B, NEW_TASK_2],
        )
        .expect("update");
    assert_eq!(moved, 1);
    drop(conn);
    let output = check(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "ok: config config.toml: 3 tokens\n\
             error: database {DATABASE}: account \"default\": task {NEW_TASK_2} is stored in \
             list {INBOX_B}, another id of the inbox, not in the inbox itself ({INBOX_A}), so \
             devices without that id show it in no list; editing the task on any device moves \
             it into the inbox\n\
             check: 1 error: the database needs attention\n"
        )
    );
}

#[test]
fn json_has_the_documented_shape() {
    let dir = synced_and_stopped();
    chmod(&dir.path().join("config.toml"), 0o640);
    let output = check(dir.path(), &["--json"]);
    assert_eq!(output.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    let schema = latest_schema_version(dir.path());
    let warning = report["config"]["problems"][0]["message"].clone();
    assert!(
        warning
            .as_str()
            .is_some_and(|text| text.starts_with("holds plaintext tokens")),
        "{report}"
    );
    assert_eq!(
        report,
        json!({
            "ok": true,
            "verdict": format!(
                "check: healthy, 1 warning (config config.toml, 3 tokens; database {DATABASE} \
                 schema {schema}, 3 records)"
            ),
            "config": {
                "path": "config.toml",
                "tokens": 3,
                "problems": [
                    {"severity": "warning", "place": "config.toml", "message": warning}
                ]
            },
            "database": {
                "path": DATABASE,
                "exists": true,
                "schema_version": schema,
                "latest_schema_version": schema,
                "accounts": 1,
                "devices": 2,
                "records": 3,
                "problems": []
            }
        })
    );

    let unreadable = check(dir.path(), &["--json", "--config", "missing.toml"]);
    assert_eq!(unreadable.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&unreadable.stdout).expect("one JSON object");
    assert_eq!(
        report,
        json!({
            "ok": false,
            "verdict": "check: 1 error: the config cannot be read",
            "config": {
                "path": "missing.toml",
                "tokens": null,
                "problems": [{
                    "severity": "error",
                    "place": null,
                    "message": "missing.toml does not exist; create it with `tickit-sync init \
                                --config missing.toml`"
                }]
            },
            "database": null
        })
    );
}

#[test]
fn help_explains_the_exit_codes() {
    let output = run_cli(Path::new("."), &["check", "--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = stdout(&output);
    assert!(help.contains("Usage: tickit-sync check [--config <config>] [--json]"));
    assert!(help.contains("Exit status: 0 when nothing is wrong (warnings allowed), 1 when"));
    assert!(help.contains("HEALTHCHECK"));
}
