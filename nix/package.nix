{
  lib,
  rustPlatform,
}:

let
  cargoToml = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "tickit-sync";
  inherit (cargoToml.package) version;

  # What the build and the tests read, and nothing else: editing the Nix files,
  # docs or CI scripts does not change the source hash and so does not rebuild
  # the package. config.example.toml is include_str!'d by the code and its
  # tests; tests/ holds the integration tests and their fixtures; examples/ the
  # load generator, which `cargo test` builds too.
  # .ci/source-set.sh checks this list against what the Rust code reads.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../config.example.toml
      ../src
      ../tests
      ../examples
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  # rusqlite builds its bundled SQLite with the stdenv C compiler, so no
  # system sqlite is needed (and the static build links it in).

  # The test suite runs in the repository's CI (`cargo test`). Its end-to-end
  # tests start the server, talk to it over loopback, fake systemd's
  # NOTIFY_SOCKET/LISTEN_FDS and wait on the 2 s config-file watcher; that is
  # timing-dependent inside the Nix build sandbox and on slow (emulated
  # aarch64) builders, so the package build skips it. `nix flake check` runs
  # it through `checks.<system>.tests` (this package with doCheck = true).
  doCheck = false;

  meta = {
    description = "Self-hosted sync server for the Tickit task manager";
    license = lib.licenses.mit;
    mainProgram = "tickit-sync";
    platforms = lib.platforms.unix;
  };
}
