#!/usr/bin/env bash
# Benchmark: the glibc release build against the static musl release build, under concurrent
# load on loopback. Prints requests/s, p99 latency and peak memory for an empty incremental
# sync and for a full sync of 500 tasks, and the musl/glibc ratio. Not part of CI.
#
# Usage (repo root): bash tests/bench/allocator.sh   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/bench
duration=${DURATION:-10s}

command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet
cargo build --release --quiet --target x86_64-unknown-linux-musl
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
declare -A binary=([glibc]="$target/release/tickit-sync" [musl]="$target/x86_64-unknown-linux-musl/release/tickit-sync")

work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import json, sys, uuid
inbox = str(uuid.uuid4())
at = "2026-11-24T22:45:21.061633123Z"
changes = [{"type": "list", "id": inbox, "name": "Inbox", "description": None, "icon": "📥",
            "color": None, "is_inbox": True, "created_at": at, "updated_at": at, "sort_order": -1}]
changes += [{"type": "task", "id": str(uuid.uuid4()), "title": f"Task {i}", "description": "benchmark",
             "url": None, "priority": "medium", "completed": False, "list_id": inbox, "tag_ids": [],
             "created_at": at, "updated_at": at, "completed_at": None, "due_date": None} for i in range(500)]
device = lambda: str(uuid.uuid4())
bodies = {"seed": {"device_id": device(), "last_sync": None, "changes": changes},
          "incremental": {"device_id": device(), "last_sync": "2099-01-01T00:00:00.000Z", "changes": []},
          "full": {"device_id": device(), "last_sync": None, "changes": []}}
for name, body in bodies.items():
    json.dump(body, open(f"{sys.argv[1]}/{name}.json", "w"))
PY

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
printf '%-6s %-12s %10s %9s %10s\n' build load 'req/s' 'p99 ms' 'peak RSS'
declare -A rps
for build in glibc musl; do
  dir="$work/$build" && mkdir -p "$dir"
  p=$(port)
  "${binary[$build]}" serve --config "$dir/config.toml" --bind 127.0.0.1 --port "$p" >"$dir/out" 2>"$dir/err" &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$dir/err" && break; sleep 0.1; done
  token=$(grep -o 'tks_[0-9a-f]*' "$dir/out" | head -1)
  url=http://127.0.0.1:$p/api/v1/sync
  curl -sf -o /dev/null -H "Authorization: Bearer $token" --data-binary @"$work/seed.json" "$url"
  for load in incremental full; do
    result=$(wrk -t2 -c16 -d"$duration" -s "$here/sync.lua" "$url" -- "$token" "$work/$load.json" | grep '^RESULT')
    [[ $result == *"errors(status)=0 "* ]] || { echo "non-200 answers: $result" >&2; exit 1; }
    r=$(sed 's/.* rps=\([0-9.]*\).*/\1/' <<<"$result"); p99=$(sed 's/.* p99_ms=\([0-9.]*\).*/\1/' <<<"$result")
    rps[$build/$load]=$r
    printf '%-6s %-12s %10.0f %9s %10s\n' "$build" "$load" "$r" "$p99" "$(awk '/VmHWM/ {print $2 " kB"}' "/proc/$pid/status")"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
for load in incremental full; do
  python3 -c "print(f'musl/glibc $load: {${rps[musl/$load]}/${rps[glibc/$load]}:.2f}')"
done
