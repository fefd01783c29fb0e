# shellcheck shell=bash
# Sourced by the test scripts that count checks (tests/real-client.sh,
# tests/switch-from-original.sh): log and die; the counters PASS and FAIL and the list FAILED;
# pass, fail and check, which print `  ok   [LABEL] ...` and `  FAIL [LABEL] ...`; and
# checks_end, the end of the EXIT trap, which prints the summary. Its last line (as die's),
# `NAME: N passed, M failed`, is the result line CI looks for; NAME is the script's file name
# without .sh. The caller calls checks_init, sets WORK (its temporary directory, removed at the
# end when every check passed) and calls checks_finished once everything ran.

CHECKS_NAME=$(basename "$0" .sh)
PASS=0
FAIL=0
FAILED=()
CHECKS_DONE=0
CHECKS_LABEL_VAR= # set by checks_init
CHECKS_DIR_VAR=

log() { printf '%s\n' "$*"; }
die() { printf '%s: FATAL: %s\n%s: 0 passed, 1 failed\n' "$CHECKS_NAME" "$*" "$CHECKS_NAME" >&2; exit 1; }

# checks_init LABEL_VAR DIR_VAR: the names of the caller's variables that hold, when a check
# runs, the label its lines carry (the current run, the current phase) and the directory its
# output goes to (check.out).
checks_init() { CHECKS_LABEL_VAR=$1; CHECKS_DIR_VAR=$2; }

pass() { PASS=$((PASS + 1)); log "  ok   [${!CHECKS_LABEL_VAR}] $1"; }
# fail DESCRIPTION [FILE]: counts a failure and shows the last 30 lines of FILE, if any.
fail() {
  local label=${!CHECKS_LABEL_VAR}
  FAIL=$((FAIL + 1)); FAILED+=("[$label] $1"); log "  FAIL [$label] $1"
  if [ -n "${2:-}" ] && [ -s "$2" ]; then sed 's/^/         | /' "$2" | tail -n 30; fi
}

# check DESCRIPTION COMMAND...: run COMMAND, count a pass if it exits 0.
check() {
  local desc=$1; shift
  local out="${!CHECKS_DIR_VAR}/check.out"
  if "$@" >"$out" 2>&1; then pass "$desc"; else fail "$desc" "$out"; fi
}

# checks_finished: everything ran; exits 0, and the EXIT trap (checks_end) prints the summary
# and sets the exit status.
checks_finished() { CHECKS_DONE=1; exit 0; }

# checks_end RC WHERE KEPT [LINE...]: the end of the caller's EXIT trap, once it has stopped
# what it started (RC: the exit status the trap was entered with). An exit before
# checks_finished counts as a failure, "script aborted early (exit RC) during WHERE". WORK is
# removed when every check passed (unless KEEP_TMP=1), else kept and said so (KEPT: what it
# holds). Then the summary: the failed checks, the LINEs, the result line; exits 0 when no
# check failed, else 1.
checks_end() {
  local rc=$1 where=$2 kept=$3 line
  shift 3
  trap - EXIT
  if [ "$CHECKS_DONE" != 1 ]; then
    FAIL=$((FAIL + 1))
    FAILED+=("script aborted early (exit $rc) during $where")
  fi
  if [ "$FAIL" -eq 0 ] && [ "${KEEP_TMP:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    log "temporary files ($kept) kept in $WORK"
  fi
  log ""
  log "================ summary ================"
  if [ "${#FAILED[@]}" -gt 0 ]; then
    log "failed checks:"
    printf '  - %s\n' "${FAILED[@]}"
  fi
  for line in "$@"; do log "$line"; done
  log "$CHECKS_NAME: $PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ] && exit 0
  exit 1
}
