#!/usr/bin/env bash
# The Debian package, installed for real: builds it from a built binary (examples/packaging/build-deb.sh),
# installs it with dpkg -i, checks what it put on the machine (binary, unit, config, the presenced user),
# starts the installed binary with the packaged config as the presenced user (no systemd in CI), checks that
# `presenced status` reports it up, stops it with SIGTERM, checks that `presenced status` then fails, and purges
# the package, checking that nothing of it is left. Needs root (dpkg). Usage:
#   bash examples/tests/packaging/test_deb.sh [BINARY]
# BINARY defaults to target/debug/presenced, which scripts/test has just built: the package's layout and
# scripts are under test, not the optimiser, and a release build would add minutes.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
bin="${1:-$target/debug/presenced}"
conf=/etc/presenced/presenced.toml
fail() { echo "test_deb: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "needs root to install a package"
if dpkg -s presenced >/dev/null 2>&1; then
    fail "a presenced package is installed already; this test installs and purges its own"
fi
# The packaged config uses the default ports; something else on them would make the test meaningless.
for port in 5222 5223 5060 5061 5280; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        fail "port $port is in use; the packaged config listens there"
    fi
done

server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    dpkg --purge presenced >/dev/null 2>&1 || true
}
trap cleanup EXIT

deb="$(PRESENCED_DEB_FAST=1 bash "$repo/examples/packaging/build-deb.sh" "$bin" "$target/debian")"
echo "test_deb: built $deb"
# Read whole before matching: with pipefail, `grep -q` quitting at the first match fails the pipe when the writer
# then meets a closed pipe (SIGPIPE), which made this check fail at random (a clean-clone CI run).
info="$(dpkg-deb --info "$deb")"
grep -q "Package: presenced" <<<"$info" || fail "no package name in $deb"
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null

# What the package put there.
[ -x /usr/bin/presenced ] || fail "/usr/bin/presenced missing"
[ -f /lib/systemd/system/presenced.service ] || fail "the unit is missing"
grep -q '^Type=notify' /lib/systemd/system/presenced.service || fail "the unit is not Type=notify"
[ -f "$conf" ] || fail "$conf missing"
getent passwd presenced >/dev/null || fail "no presenced user"
[ "$(stat -c %U /var/lib/presenced)" = presenced ] || fail "/var/lib/presenced is not the presenced user's"
[ "$(stat -c '%G %a' "$conf")" = "presenced 640" ] || fail "$conf is not root:presenced 0640"
# As an operator would, set the listeners in the packaged file: tests bind to loopback only (the shipped defaults
# listen on every interface).
sed -i -e 's|^# c2s_bind = "0.0.0.0:|c2s_bind = "127.0.0.1:|' -e 's|^# c2s_tls_bind = "0.0.0.0:|c2s_tls_bind = "127.0.0.1:|' \
    -e 's|^# bind = "0.0.0.0:5060"|bind = "127.0.0.1:5060"|' -e 's|^# tls_bind = "0.0.0.0:|tls_bind = "127.0.0.1:|' \
    -e 's|^# bind = "0.0.0.0:5269"|bind = "127.0.0.1:5269"|' "$conf"
[ "$(grep -c '^[a-z0-9_]*bind = "127.0.0.1:' "$conf")" = 5 ] || fail "the loopback binds were not set in $conf"
checked="$(/usr/bin/presenced --config "$conf" check-config)" || fail "the packaged config does not check: $checked"
grep -q ": ok" <<<"$checked" || fail "the packaged config does not check: $checked"

# Not running yet: status says down and fails.
if /usr/bin/presenced --config "$conf" status >/dev/null 2>&1; then
    fail "status succeeded with no server running"
fi

log="$(mktemp)"
# setpriv execs the server itself (runuser would stay its parent and die of the SIGTERM below, not exit 0).
(cd /var/lib/presenced && exec setpriv --reuid presenced --regid presenced --init-groups \
    /usr/bin/presenced --config "$conf" serve) >"$log" 2>&1 &
server_pid=$!
up=""
for _ in $(seq 1 150); do
    if out="$(/usr/bin/presenced --config "$conf" status 2>&1)"; then up=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; fail "the installed server exited"; }
    sleep 0.2
done
[ -n "$up" ] || { cat "$log" >&2; fail "presenced status never reported the server up: $out"; }
echo "$out"
grep -q "is up" <<<"$out" || fail "status does not say up"
grep -q "store: embedded (/var/lib/presenced/presenced.redb) ok" <<<"$out" || fail "status shows no healthy embedded store"
[ "$(stat -c %U /var/lib/presenced/presenced.redb)" = presenced ] || fail "the store is not the presenced user's"

kill -TERM "$server_pid"
wait "$server_pid" || fail "the server did not exit 0 on SIGTERM"
server_pid=""
if /usr/bin/presenced --config "$conf" status >/dev/null 2>&1; then
    fail "status succeeded after the server stopped"
fi
rm -f "$log"

dpkg --purge presenced >/dev/null
for path in /usr/bin/presenced /lib/systemd/system/presenced.service /etc/presenced /var/lib/presenced; do
    [ ! -e "$path" ] || fail "$path left after purge"
done
! getent passwd presenced >/dev/null || fail "the presenced user is left after purge"
! getent group presenced >/dev/null || fail "the presenced group is left after purge"
echo "test_deb: ok"
