#!/usr/bin/env bash
# Checks the static binary and the scratch container image, run from the repository root:
#  - `cargo build --release --target x86_64-unknown-linux-musl` gives a static binary of
#    at most MAX_BINARY_BYTES;
#  - Containerfile builds (podman, vfs storage, a minimal context) an image of at most
#    MAX_IMAGE_BYTES holding only /tickit-sync and an empty /data owned by the runtime user;
#  - the image's own Entrypoint + Cmd, User, WorkingDir and Env, run from its exported
#    filesystem under chroot (`podman run` cannot start containers on the CI machines):
#    first start with an empty /data prints a token, /health answers, `tickit-sync health`
#    exits 0, one desktop full sync with that token answers 200 with the 4 records,
#    `devices`, `backup` and `check` work beside it as the image's user, and SIGTERM stops
#    it with exit status 0.
# Everything podman stores goes into a temporary directory that is removed at the end.
# Environment: CARGO_TARGET_DIR (default target).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MAX_BINARY_BYTES=4000000 # 4 MB
MAX_IMAGE_BYTES=6000000  # 6 MB
TRIPLE=x86_64-unknown-linux-musl
IMAGE=localhost/tickit-sync-container-test:latest
fixture=tests/fixtures/desktop-0.5.8/full-sync-request.json

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "container: ok: $*"; }
fail() { failed=$((failed + 1)); echo "container: FAIL: $*"; }
finish() {
    echo "container: $passed passed, $failed failed"
    ((failed == 0)) || exit 1
    exit 0
}
# A failure that leaves nothing further worth checking.
fatal() {
    fail "$@"
    finish
}

[[ -f Cargo.toml && -f Containerfile ]] || { echo "container: run me from the repository root" >&2; exit 2; }
[[ -f "$fixture" ]] || { echo "container: no fixture at $fixture" >&2; exit 2; }

# --- tools -----------------------------------------------------------------------------
packages=()
command -v podman >/dev/null 2>&1 || packages+=(podman)
command -v musl-gcc >/dev/null 2>&1 || packages+=(musl-tools)
command -v file >/dev/null 2>&1 || packages+=(file)
command -v curl >/dev/null 2>&1 || packages+=(curl)
command -v jq >/dev/null 2>&1 || packages+=(jq)
if ((${#packages[@]})); then
    echo "container: installing ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$TRIPLE"; then
    rustup target add "$TRIPLE"
fi
echo "container: $(podman --version)"

# --- scratch space and cleanup -----------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/tickit-container.XXXXXX")
# Root's podman still writes a blob-info cache under /var/lib/containers and a directory
# under /run/containers whatever --root says; remove them afterwards if this run made them.
created_outside=()
for dir in /var/lib/containers /run/containers; do
    [[ -e $dir ]] || created_outside+=("$dir")
done
server_pid=
container=
pod() {
    podman --root "$work/storage" --runroot "$work/runroot" --tmpdir "$work/libpod" \
        --storage-driver vfs --cgroup-manager cgroupfs --events-backend file \
        --network-config-dir "$work/networks" "$@"
}
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    [[ -n $container ]] && pod rm -f -v "$container" >/dev/null 2>&1 || true
    pod rmi -f "$IMAGE" >/dev/null 2>&1 || true
    pod system reset -f >/dev/null 2>&1 || true
    rm -rf "$work"
    ((${#created_outside[@]} == 0)) || rm -rf "${created_outside[@]}"
    return 0
}
trap cleanup EXIT

# --- static binary -----------------------------------------------------------------------
echo "container: cargo build --release --target $TRIPLE"
cargo build --release --locked --target "$TRIPLE" --quiet
binary=${CARGO_TARGET_DIR:-target}/$TRIPLE/release/tickit-sync
[[ -x $binary ]] || fatal "no binary at $binary"

kind=$(file -b "$binary")
if [[ $kind == *"statically linked"* || $kind == *"static-pie linked"* ]]; then
    pass "binary is static ($kind)"
else
    fail "binary is not static: $kind"
fi
binary_bytes=$(stat -c %s "$binary")
echo "container: binary size: $binary_bytes bytes ($((binary_bytes / 1024)) KiB)"
if ((binary_bytes <= MAX_BINARY_BYTES)); then
    pass "binary size $binary_bytes <= $MAX_BINARY_BYTES bytes"
else
    fail "binary size $binary_bytes > $MAX_BINARY_BYTES bytes"
fi

# --- image ---------------------------------------------------------------------------------
# Both ignore files must agree: podman reads .containerignore, docker .dockerignore.
if cmp -s .containerignore .dockerignore; then
    pass ".containerignore and .dockerignore are identical"
else
    fail ".containerignore and .dockerignore differ"
fi

# A minimal context: the binary and the empty directory that becomes /data.
context=$work/context
mkdir -p "$context/container/data"
cp "$binary" "$context/tickit-sync"
# --format docker keeps the HEALTHCHECK (the OCI format has no field for it).
if ! build_log=$(pod build --format docker --build-arg BINARY=tickit-sync \
    -f "$PWD/Containerfile" -t "$IMAGE" "$context" 2>&1); then
    echo "$build_log"
    fatal "podman build failed"
fi
pass "image builds from Containerfile"

image_bytes=$(pod image inspect --format '{{.Size}}' "$IMAGE")
echo "container: image size: $image_bytes bytes ($((image_bytes / 1024)) KiB)"
if ((image_bytes <= MAX_IMAGE_BYTES)); then
    pass "image size $image_bytes <= $MAX_IMAGE_BYTES bytes"
else
    fail "image size $image_bytes > $MAX_IMAGE_BYTES bytes"
fi

# The image's own configuration decides how the server is run below.
# One element a line; podman adds a final newline of its own, so drop empty lines.
lines() { pod image inspect --format "{{range $1}}{{println .}}{{end}}" "$IMAGE" | sed "/^$/d"; }
mapfile -t entrypoint < <(lines .Config.Entrypoint)
mapfile -t cmd < <(lines .Config.Cmd)
mapfile -t image_env < <(lines .Config.Env)
user=$(pod image inspect --format '{{.Config.User}}' "$IMAGE")
workdir=$(pod image inspect --format '{{.Config.WorkingDir}}' "$IMAGE")
health=$(pod image inspect --format '{{json .HealthCheck.Test}}' "$IMAGE")
volumes=$(pod image inspect --format '{{json .Config.Volumes}}' "$IMAGE")
ports=$(pod image inspect --format '{{json .Config.ExposedPorts}}' "$IMAGE")
echo "container: image runs ${entrypoint[*]} ${cmd[*]} as $user in $workdir; env: ${image_env[*]}"
if [[ $user =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]]; then
    pass "image runs as numeric non-root user $user"
else
    fail "image user is $user, not a numeric non-root uid:gid"
fi
uid=${user%%:*} gid=${user##*:}
if [[ $health == '["CMD","/tickit-sync","health"]' && $volumes == '{"/data":{}}' &&
    $ports == '{"3030/tcp":{}}' && " ${image_env[*]} " == *" TICKIT_SYNC_CONFIG=/data/config.toml "* ]]; then
    pass "image has the health check, volume /data, port 3030 and TICKIT_SYNC_CONFIG"
else
    fail "image config: healthcheck $health, volumes $volumes, ports $ports, env ${image_env[*]}"
fi

# --- exported filesystem -------------------------------------------------------------------
container=$(pod create --no-healthcheck "$IMAGE")
rootfs=$work/rootfs
mkdir -p "$rootfs"
pod export "$container" | tar -x -C "$rootfs"
listing=$(cd "$rootfs" && find . -mindepth 1 -printf '%p %U:%G %m\n' | sort)
expected="./data $uid:$gid 755
./tickit-sync 0:0 755"
if [[ $listing == "$expected" ]]; then
    pass "image holds only /tickit-sync and an empty /data owned by $uid:$gid"
else
    fail "image contents:"$'\n'"$listing"
fi

# A free loopback port: nothing answers a connection on it.
port=
for _ in $(seq 50); do
    candidate=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        port=$candidate
        break
    fi
done
[[ -n $port ]] || fatal "no free loopback port found"

# Runs a command in the exported filesystem the way the image would: as its user (no
# supplementary groups), in its working directory, with only its environment plus the
# loopback overrides. A plain command, not a function, so that `&` gives the server's pid
# (env and unshare exec it).
in_image=(env -i "${image_env[@]}" TICKIT_SYNC_HOST=127.0.0.1 TICKIT_SYNC_PORT="$port"
    unshare --root="$rootfs" --wd="$workdir" --setuid="$uid" --setgid="$gid" --)

# --- first start ---------------------------------------------------------------------------
log=$work/server.log
"${in_image[@]}" "${entrypoint[@]}" "${cmd[@]}" >"$log" 2>&1 &
server_pid=$!
healthy=
for _ in $(seq 100); do
    if curl -fsS --max-time 2 "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
        healthy=1
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z $healthy ]]; then
    cat "$log"
    fatal "server did not answer /health on port $port within 10 s"
fi
pass "server answers /health on 127.0.0.1:$port"

token=$(grep -oE 'tks_[0-9a-f]{64}' "$log" | head -n1 || true)
config=$rootfs/data/config.toml
if [[ -n $token ]]; then
    pass "first start printed a token"
else
    cat "$log"
    fail "first start printed no token"
fi
if [[ -f $config && $(stat -c %u:%g "$config") == "$uid:$gid" ]] &&
    grep -q '^hash = "sha256:' "$config" && ! grep -qF -- "${token:-no token}" "$config"; then
    pass "first start wrote /data/config.toml as $uid:$gid with the token hashed"
else
    fail "no /data/config.toml owned by $uid:$gid holding only the token's hash"
fi

if "${in_image[@]}" /tickit-sync health; then
    pass "tickit-sync health exits 0"
else
    fail "tickit-sync health exited $?"
fi

# --- one sync ------------------------------------------------------------------------------
response=$work/response.json
status=$(curl -sS --max-time 10 -o "$response" -w '%{http_code}' \
    -H "Authorization: Bearer ${token:-none}" -H 'Content-Type: application/json' \
    --data-binary "@$fixture" "http://127.0.0.1:$port/api/v1/sync" || true)
sent=$(jq '.changes | length' "$fixture")
got=$(jq '.changes | length' "$response" 2>/dev/null || echo "no JSON")
if [[ $status == 200 && $got == "$sent" ]]; then
    pass "full sync answered 200 with the $got records"
else
    fail "full sync answered $status with $got records (expected 200 and $sent): $(head -c 300 "$response")"
fi

# --- operating it, beside the running server, as the image's user -------------------------
devices=$("${in_image[@]}" /tickit-sync devices --json 2>&1 || true)
if [[ $(jq '.devices | length' <<<"$devices" 2>/dev/null) == 1 ]]; then
    pass "tickit-sync devices lists the device that synced"
else
    fail "tickit-sync devices: $devices"
fi
backup=$rootfs/data/backup.sqlite
if "${in_image[@]}" /tickit-sync backup /data/backup.sqlite >"$work/backup.out" 2>&1 &&
    [[ $(stat -c %u:%g:%a "$backup") == "$uid:$gid:600" ]]; then
    pass "tickit-sync backup writes /data/backup.sqlite as $uid:$gid, mode 600"
else
    fail "tickit-sync backup: $(cat "$work/backup.out")"
fi
if "${in_image[@]}" /tickit-sync check >"$work/check.out" 2>&1; then
    pass "tickit-sync check finds the config and the database sound"
else
    fail "tickit-sync check: $(cat "$work/check.out")"
fi

# --- stop ----------------------------------------------------------------------------------
kill -TERM "$server_pid"
for _ in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$server_pid" 2>/dev/null; then
    fail "server still running 10 s after SIGTERM"
else
    rc=0
    wait "$server_pid" || rc=$?
    server_pid=
    if [[ $rc -eq 0 ]]; then
        pass "SIGTERM stops the server with exit status 0"
    else
        cat "$log"
        fail "server exited $rc after SIGTERM"
    fi
fi

finish
