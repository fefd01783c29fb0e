#!/usr/bin/env bash
# Checks the unit files in systemd/, run from the repository root:
#  - `systemd-analyze verify` finds nothing wrong with them, except that the
#    binary /usr/bin/tickit-sync is not installed on the CI machine;
#  - the service's sandbox keeps `systemd-analyze security` at an overall
#    exposure of at most MAX_EXPOSURE (0 is best, 10 worst).
# Neither command needs systemd running as PID 1.
set -euo pipefail

MAX_EXPOSURE=1.5
service=systemd/tickit-sync.service
socket=systemd/tickit-sync.socket
metrics_socket=systemd/tickit-sync-metrics.socket
# The one complaint we expect: the units point at the installed binary.
missing_binary='tickit-sync.service: Command /usr/bin/tickit-sync is not executable: No such file or directory'

# systemd-analyze comes with systemd; verify also wants ExecReload's /bin/kill
# (procps) to exist.
packages=()
command -v systemd-analyze >/dev/null 2>&1 || packages+=(systemd)
[[ -x /bin/kill ]] || packages+=(procps)
if ((${#packages[@]})); then
    echo "systemd-units: installing ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
echo "systemd-units: $(systemd-analyze --version | head -n1)"

# verify: its exit status is 1 for the missing binary alone, so judge by what
# it prints. --man=no: don't look up man pages named in Documentation=.
rc=0
out=$(systemd-analyze verify --man=no "$service" "$socket" "$metrics_socket" 2>&1) || rc=$?
others=$(grep -vxF -- "$missing_binary" <<<"$out" || true)
if [[ -n "$others" ]] || { [[ $rc -ne 0 ]] && ! grep -qxF -- "$missing_binary" <<<"$out"; }; then
    echo "systemd-units: FAIL: systemd-analyze verify (exit $rc) complained:"
    echo "$out"
    exit 1
fi
echo "systemd-units: verify ok"

# security: --offline=true reads the unit file itself instead of asking the
# running manager.
rc=0
out=$(systemd-analyze security --offline=true --no-pager "$service" 2>&1) || rc=$?
score_line=$(grep -F 'Overall exposure level' <<<"$out" || true)
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p' <<<"$score_line")
if [[ $rc -ne 0 || -z "$score" ]]; then
    echo "systemd-units: FAIL: systemd-analyze security (exit $rc) gave no score:"
    echo "$out"
    exit 1
fi
# What still counts against the score, then the score itself.
grep -F '✗' <<<"$out" || true
echo "$score_line"
if ! awk -v s="$score" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(s + 0 <= max + 0) }'; then
    echo "systemd-units: FAIL: exposure $score is above $MAX_EXPOSURE; tighten the sandbox in $service"
    exit 1
fi
echo "systemd-units: security ok ($score <= $MAX_EXPOSURE)"
