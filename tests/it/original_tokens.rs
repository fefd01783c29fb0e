//! Configs written by the original tickit-sync 0.2.1: its `token_hash` entries (argon2 PHC
//! strings, or plaintext when not one) load unchanged, authenticate, list and revoke.

use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};

use crate::harness::*;

const ARGON2_TOKEN: &str = "tks_test_original_server_argon2_token";
const PLAINTEXT_TOKEN: &str = "tks_test_original_server_plaintext_token";

/// What the original's `token` command writes: `Argon2::default()` and a random 16-byte salt.
fn original_token_hash(token: &str) -> String {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("salt");
    Argon2::default()
        .hash_password(token.as_bytes(), &salt)
        .expect("argon2")
        .to_string()
}

/// True once `check` holds, polling for up to three seconds (a reload takes up to two).
fn within_three_seconds(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn an_original_config_with_argon2_and_plaintext_token_hashes_serves_lists_and_revokes() {
    let token_hash = original_token_hash(ARGON2_TOKEN);
    assert!(token_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    let config = format!(
        "[[tokens]]\nname = \"laptop\"\ntoken_hash = \"{token_hash}\"\n\n\
         [[tokens]]\nname = \"phone\"\ntoken_hash = \"{PLAINTEXT_TOKEN}\"\n"
    );
    let server = Server::start_with_config(&config);
    let dir = server.dir.path().to_owned();

    assert_eq!(sync_status(&server, ARGON2_TOKEN), 200);
    assert_eq!(
        sync_status(&server, ARGON2_TOKEN),
        200,
        "and again, remembered"
    );
    assert_eq!(sync_status(&server, PLAINTEXT_TOKEN), 200);
    let (status, response) = server.sync(
        "tks_test_original_server_wrong_token",
        &sync_body(DEVICE_A, None, vec![]),
    );
    assert_eq!(status, 401);
    assert!(
        response["error"]
            .as_str()
            .is_some_and(|error| error.starts_with("unknown token")),
        "{response}"
    );

    let listed = run_cli(&dir, &["token", "--list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listed = stdout(&listed);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[0].starts_with("laptop\taccount: default\tstored: argon2\tlast use: "),
        "{listed}"
    );
    assert!(
        lines[1].starts_with("phone\taccount: default\tstored: plaintext\tlast use: "),
        "{listed}"
    );
    assert!(
        lines.iter().all(|line| line.ends_with(" (just now)")),
        "both tokens synced a moment ago: {listed}"
    );

    // A reload for another change keeps the argon2 token working.
    let desk = printed_token(&run_cli(&dir, &["token", "--name", "desk"]));
    assert!(within_three_seconds(|| sync_status(&server, &desk) == 200));
    assert_eq!(sync_status(&server, ARGON2_TOKEN), 200);

    let revoked = run_cli(&dir, &["token", "--revoke", "laptop"]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert!(
        within_three_seconds(|| sync_status(&server, ARGON2_TOKEN) == 401),
        "the revoked argon2 token is refused after the reload"
    );
    assert_eq!(sync_status(&server, PLAINTEXT_TOKEN), 200);
}
