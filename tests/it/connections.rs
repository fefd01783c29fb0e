//! Connections and the listening socket: a bind path that is not a socket.

use crate::harness::*;

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
