//! The command line: `init`, `token`, first-run `serve`, and start-up failures that must say
//! what is wrong and exit non-zero.

use crate::harness::*;

#[test]
fn init_writes_a_config_and_refuses_to_overwrite_it_without_force() {
    let dir = TempDir::new();
    let first = run_cli(dir.path(), &["init"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let written = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    let example = include_str!("../../config.example.toml");
    assert!(
        example.starts_with(&written),
        "init's output is the example's head"
    );

    std::fs::write(dir.path().join("config.toml"), "# mine\n").unwrap();
    let again = run_cli(dir.path(), &["init"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        stderr(&again),
        "error: config.toml already exists; keeping it. Use --force to replace it (its tokens would be lost)\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("config.toml")).unwrap(),
        "# mine\n"
    );
    let forced = run_cli(dir.path(), &["init", "--force"]);
    assert!(forced.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("config.toml")).unwrap(),
        written
    );
}

#[test]
fn token_adds_a_hash_keeps_comments_lists_and_revokes() {
    let dir = dir_with_config("# my server\n[server]\nport = 4040 # not the default\n");
    let config = dir.path().join("config.toml");

    let added = run_cli(dir.path(), &["token", "--name", "laptop"]);
    assert!(added.status.success(), "{}", stderr(&added));
    let token = printed_token(&added);
    assert_eq!(token.len(), "tks_".len() + 64, "256 bits as hex");
    assert!(stdout(&added).contains(&format!(
        "[sync]\nenabled = true\nserver = \"http://YOUR-SERVER:4040\"\ntoken = \"{token}\"\ninterval_secs = 300\n"
    )));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.starts_with("# my server\n[server]\nport = 4040 # not the default\n"));
    assert!(
        !text.contains(&token),
        "the plaintext token is never stored"
    );
    assert!(text.contains("hash = \"sha256:"), "{text}");

    let kids = run_cli(
        dir.path(),
        &["token", "--name", "tablet", "--account", "kids"],
    );
    assert!(kids.status.success());
    let listed = run_cli(dir.path(), &["token", "--list"]);
    assert_eq!(
        stdout(&listed),
        "laptop\taccount: default\tstored: sha256\tlast use: unknown\n\
         tablet\taccount: kids\tstored: sha256\tlast use: unknown\n"
    );
    assert!(
        stderr(&listed).starts_with("note: no database at "),
        "{}",
        stderr(&listed)
    );

    let duplicate = run_cli(dir.path(), &["token", "--name", "laptop"]);
    assert_eq!(duplicate.status.code(), Some(1));
    assert!(stderr(&duplicate).contains("already has a token named \"laptop\""));

    let unknown = run_cli(dir.path(), &["token", "--revoke", "phone"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        stderr(&unknown),
        "error: config.toml has no token named \"phone\"; `tickit-sync token --list` shows the names\n"
    );
    let revoked = run_cli(dir.path(), &["token", "--revoke", "laptop"]);
    assert!(revoked.status.success());
    let listed = run_cli(dir.path(), &["token", "--list"]);
    assert_eq!(
        stdout(&listed),
        "tablet\taccount: kids\tstored: sha256\tlast use: unknown\n"
    );
}

#[test]
fn token_revoke_of_a_name_two_entries_share_says_so_and_changes_nothing() {
    let config = format!(
        "[[tokens]]\nname = \"laptop\"\ntoken = \"{TOKEN}\"\n\n\
         [[tokens]]\nname = \"laptop\"\ntoken = \"{TOKEN_2}\"\naccount = \"kids\"\n"
    );
    let dir = dir_with_config(&config);
    let revoked = run_cli(dir.path(), &["token", "--revoke", "laptop"]);
    assert_eq!(revoked.status.code(), Some(1));
    assert_eq!(
        stderr(&revoked),
        "error: config.toml has 2 tokens named \"laptop\" (line 1, account default; line 5, \
         account kids); nothing was revoked. Rename all but one of them in the file (names must \
         be unique), then revoke the one meant by its name\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("config.toml")).unwrap(),
        config
    );
}

#[test]
fn concurrent_token_commands_each_add_their_entry() {
    let dir = dir_with_config("# eight devices at once\n");
    let names: Vec<String> = (0..8).map(|n| format!("d{n}")).collect();
    let commands: Vec<_> = names
        .iter()
        .map(|name| {
            std::process::Command::new(binary())
                .args(["token", "--name", name, "--config", "config.toml"])
                .current_dir(dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start tickit-sync token")
        })
        .collect();
    for command in commands {
        let output = command.wait_with_output().expect("wait for token");
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let listed = stdout(&run_cli(dir.path(), &["token", "--list"]));
    let mut listed: Vec<&str> = listed
        .lines()
        .filter_map(|line| line.split('\t').next())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, names);
}

#[test]
fn token_keeps_the_config_permissions_and_leaves_no_temporary_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = dir_with_config("# private\n");
    let config = dir.path().join("config.toml");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let added = run_cli(dir.path(), &["token", "--name", "laptop"]);
    assert!(added.status.success(), "{}", stderr(&added));
    let revoked = run_cli(dir.path(), &["token", "--revoke", "laptop"]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# private\n");
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort_unstable();
    assert_eq!(files, ["config.toml", "config.toml.lock"]);
}

#[test]
fn token_list_says_when_there_are_none_and_token_needs_one_action() {
    let dir = dir_with_config("");
    let listed = run_cli(dir.path(), &["token", "--list"]);
    assert!(listed.status.success());
    assert_eq!(
        stdout(&listed),
        "config.toml has no tokens; add one with `tickit-sync token --name NAME`.\n"
    );
    let nothing = run_cli(dir.path(), &["token"]);
    assert_eq!(nothing.status.code(), Some(1));
    assert!(stderr(&nothing).contains("--name NAME to add a token, --list, or --revoke NAME"));
}

#[test]
fn first_serve_creates_a_config_with_one_token_and_a_database() {
    let dir = TempDir::new();
    let mut server = Server::start_in(dir, &[], &[]);
    let config = std::fs::read_to_string(server.dir.path().join("config.toml")).unwrap();
    assert!(config.contains("name = \"first-device\""), "{config}");
    assert!(server.dir.path().join("tickit-sync.sqlite").exists());
    let stderr = server.stop_ok();
    assert!(
        stderr.contains("No config at config.toml: created one with the defaults."),
        "{stderr}"
    );
}

#[test]
fn a_token_printed_by_the_cli_authenticates() {
    let dir = dir_with_config("");
    let added = run_cli(dir.path(), &["token", "--name", "phone"]);
    let token = printed_token(&added);
    let server = Server::start_in(dir, &[], &[]);
    assert_eq!(sync_status(&server, &token), 200);
}

#[test]
fn a_wrong_config_line_stops_serve_naming_the_line() {
    let dir = dir_with_config("[server]\nbind = \"127.0.0.1\"\nport = \"three thousand\"\n");
    let output = run_cli(dir.path(), &["serve"]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(error.starts_with("error: config config.toml: "), "{error}");
    assert!(error.contains("line 3"), "{error}");
    assert!(error.contains("port"), "{error}");
}

#[test]
fn a_port_in_use_stops_serve_saying_so() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let dir = dir_with_config(&config_with(""));
    let output = run_cli(
        dir.path(),
        &["serve", "--bind", "127.0.0.1", "--port", &port],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{error}"
    );
    assert!(error.contains("already in use"), "{error}");
}

#[test]
fn a_database_in_a_missing_directory_stops_serve_naming_the_setting() {
    let dir = dir_with_config(&config_with("[database]\npath = \"missing/db.sqlite\""));
    let output = run_cli(dir.path(), &["serve", "--bind", "127.0.0.1", "--port", "0"]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains("directory missing does not exist"),
        "{error}"
    );
    assert!(error.contains("TICKIT_SYNC_DB"), "{error}");
}
