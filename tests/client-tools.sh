# Sourced by tests/real-client.sh and tests/fixtures/capture-desktop.sh: the real desktop
# client, tickit 0.5.8, and Debian's faketime, installed when missing. The caller defines
# log and die. Sets TICKIT_VERSION, TICKIT_ROOT (default ~/.cache/tickit-sync-ci/tickit,
# kept between runs because building tickit takes 3-4 minutes) and TICKIT (the binary).

TICKIT_VERSION=0.5.8
TICKIT_ROOT=${TICKIT_ROOT:-$HOME/.cache/tickit-sync-ci/tickit}
TICKIT="$TICKIT_ROOT/bin/tickit"
TOOLS_INSTALL_TIMEOUT=1800 # seconds, for building tickit or installing faketime

# Installs tickit $TICKIT_VERSION into $TICKIT_ROOT and faketime, each only when missing.
ensure_client_tools() {
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
}
