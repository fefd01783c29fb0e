# Sourced by the scripts that drive the real desktop client (tests/real-client.sh,
# tests/fixtures/capture-desktop.sh, tests/fixtures/record-sequences.sh): tickit 0.5.8 and
# Debian's faketime, installed when missing, python3 with sqlite3 (tests/client_db.py edits
# the client's database), and the server binary. The caller defines log and die. Sets
# TICKIT_VERSION, TICKIT_ROOT (default ~/.cache/tickit-sync-ci/tickit, kept between runs
# because building tickit takes 3-4 minutes), TICKIT (the binary) and LIBFAKETIME; and, for
# the scripts that run the original server (tests/switch-from-original.sh,
# tests/bench/side-by-side.sh), ORIGINAL_VERSION, ORIGINAL_ROOT (default
# ~/.cache/tickit-sync-ci/original) and ORIGINAL.
#
# A command runs on a shifted clock as `env LD_PRELOAD="$LIBFAKETIME" FAKETIME=-60s CMD`,
# not through the faketime wrapper: the wrapper keeps a semaphore named after its PID in
# /dev/shm, a wrapper that is killed leaves it behind, and a later wrapper that gets the
# same PID (they wrap at 32768) fails with "sem_open: File exists".

TICKIT_VERSION=0.5.8
TICKIT_ROOT=${TICKIT_ROOT:-$HOME/.cache/tickit-sync-ci/tickit}
TICKIT="$TICKIT_ROOT/bin/tickit"
TOOLS_INSTALL_TIMEOUT=1800 # seconds, for building tickit or the original, or installing faketime
ORIGINAL_VERSION=0.2.1
ORIGINAL_ROOT=${ORIGINAL_ROOT:-$HOME/.cache/tickit-sync-ci/original}
ORIGINAL="$ORIGINAL_ROOT/bin/tickit-sync"

# Installs the original tickit-sync $ORIGINAL_VERSION into $ORIGINAL_ROOT when missing.
ensure_original() {
  if timeout 60 "$ORIGINAL" --version 2>/dev/null | grep -qx "tickit-sync $ORIGINAL_VERSION"; then
    log "using the original $("$ORIGINAL" --version) at $ORIGINAL"
    return
  fi
  log "installing the original tickit-sync $ORIGINAL_VERSION into $ORIGINAL_ROOT"
  timeout "$TOOLS_INSTALL_TIMEOUT" cargo install tickit-sync --version "$ORIGINAL_VERSION" --locked \
    --root "$ORIGINAL_ROOT" \
    || die "cargo install tickit-sync $ORIGINAL_VERSION failed or took over $TOOLS_INSTALL_TIMEOUT s"
  timeout 60 "$ORIGINAL" --version | grep -qx "tickit-sync $ORIGINAL_VERSION" \
    || die "$ORIGINAL does not report version $ORIGINAL_VERSION"
}

# Installs tickit $TICKIT_VERSION into $TICKIT_ROOT and faketime, each only when missing;
# python3 with its sqlite3 module must be there already.
ensure_client_tools() {
  command -v python3 >/dev/null || die "python3 is required"
  python3 -c 'import sqlite3' 2>/dev/null || die "python3 lacks the sqlite3 module"
  if timeout 60 "$TICKIT" --version 2>/dev/null | grep -qx "tickit $TICKIT_VERSION"; then
    log "using $("$TICKIT" --version) at $TICKIT"
  else
    log "installing tickit $TICKIT_VERSION into $TICKIT_ROOT"
    timeout "$TOOLS_INSTALL_TIMEOUT" cargo install tickit --version "$TICKIT_VERSION" --locked --root "$TICKIT_ROOT" \
      || die "cargo install tickit $TICKIT_VERSION failed or took over $TOOLS_INSTALL_TIMEOUT s"
    timeout 60 "$TICKIT" --version | grep -qx "tickit $TICKIT_VERSION" \
      || die "$TICKIT does not report version $TICKIT_VERSION"
  fi
  if ! command -v faketime >/dev/null; then
    log "installing faketime"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    "${sudo[@]}" timeout "$TOOLS_INSTALL_TIMEOUT" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" timeout "$TOOLS_INSTALL_TIMEOUT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q faketime \
      || die "could not install faketime"
  fi
  LIBFAKETIME=$(find /usr/lib /usr/lib64 /usr/local/lib -name libfaketime.so.1 2>/dev/null | head -n1)
  [ -n "$LIBFAKETIME" ] || die "libfaketime.so.1 not found (it comes with Debian's faketime package)"
}

# Sets SERVER_BIN to the absolute path of the server to test: $TICKIT_SYNC_BIN if set, else
# the debug build of this repository, built first.
find_server_binary() {
  local repo
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [ -n "${TICKIT_SYNC_BIN:-}" ]; then
    SERVER_BIN=$TICKIT_SYNC_BIN
  else
    (cd "$repo" && cargo build --quiet) || die "cargo build failed"
    local target_dir
    target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    SERVER_BIN="$target_dir/debug/tickit-sync"
  fi
  [ -x "$SERVER_BIN" ] || die "server binary $SERVER_BIN not found"
  SERVER_BIN=$(realpath "$SERVER_BIN")
}
