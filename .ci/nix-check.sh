#!/usr/bin/env bash
# Checks the Nix packaging without nixpkgs or network access beyond Debian's
# archive: every .nix file must parse, and the stub evaluations of the NixOS
# module (nix/tests/eval-module.nix) and of flake.nix + nix/package.nix
# (nix/tests/eval-flake.nix) must print `true`, and the package's source set
# (nix/tests/source-set.nix) must hold every file the build and tests read
# (.ci/source-set.py).
#
# Usage: bash .ci/nix-check.sh   (from anywhere; it works on the repo root)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v nix-instantiate >/dev/null 2>&1; then
    echo "nix-check: installing Debian's nix-bin"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nix-bin >/dev/null
    command -v nix-instantiate >/dev/null 2>&1 || { echo "nix-check: nix-bin gave no nix-instantiate" >&2; exit 1; }
fi
echo "nix-check: using $(nix-instantiate --version)"

# Evaluate in isolation: no daemon, no /nix/var state, no host or user
# nix.conf, no NIX_PATH. Nothing here builds or copies into a store.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/state" "$scratch/log" "$scratch/conf" "$scratch/cache"
: >"$scratch/conf/nix.conf"
export NIX_STATE_DIR="$scratch/state" NIX_LOG_DIR="$scratch/log"
export NIX_CONF_DIR="$scratch/conf" NIX_USER_CONF_FILES="$scratch/conf/nix.conf"
export XDG_CACHE_HOME="$scratch/cache" NIX_REMOTE=""
unset NIX_PATH

# A store that needs nothing on disk; older Nix lacks dummy:// but can
# evaluate read-only against the default store path.
if nix-instantiate --store dummy:// --eval --expr 1 >/dev/null 2>&1; then
    store=(--store dummy://)
else
    store=(--readonly-mode)
fi
echo "nix-check: evaluating with ${store[*]}"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; printf '%s\n' "$2" | sed 's/^/     /'; }

mapfile -t nix_files < <(find . \( -path ./.git -o -path ./target -o -name node_modules -o -name result \) -prune \
    -o -type f -name '*.nix' -print | sort)
if [ "${#nix_files[@]}" -eq 0 ]; then
    fail "find .nix files" "none found"
fi
for f in "${nix_files[@]}"; do
    if out="$(nix-instantiate "${store[@]}" --parse "$f" 2>&1 >/dev/null)"; then
        pass "parse $f"
    else
        fail "parse $f" "$out"
    fi
done

for t in nix/tests/eval-module.nix nix/tests/eval-flake.nix; do
    if out="$(nix-instantiate "${store[@]}" --eval --strict "$t" 2>&1)" && [ "$out" = "true" ]; then
        pass "eval $t"
    else
        fail "eval $t" "$out"
    fi
done

if sources="$(nix-instantiate "${store[@]}" --eval --strict --json nix/tests/source-set.nix 2>&1)" \
    && out="$(printf '%s' "$sources" | python3 .ci/source-set.py 2>&1)"; then
    pass "source set holds every file the Rust code reads"
    printf '%s\n' "$out" | sed 's/^/     /'
else
    fail "source set holds every file the Rust code reads" "${out:-$sources}"
fi

echo "nix-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
