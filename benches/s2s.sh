#!/usr/bin/env bash
# benches/s2s.sh: stanzas/s and latency over one server-to-server connection, presenced -> presenced and
# presenced -> Prosody 0.12 (issue 19).
#
# One command, as root (Prosody runs as the prosody user through runuser):
#     benches/s2s.sh [presenced] [prosody]
# Builds presenced --release (unless PRESENCED_BIN names a binary), then runs benches/s2s_bench.py, which starts
# the servers on loopback exactly as the e2e federation tests do (static routes both ways, STARTTLS + dialback),
# and appends its JSON lines to benches/s2s.jsonl. Sizes from the environment: PAIRS=4 (sender/receiver client
# pairs, all over the one s2s stream) RATE=500 (messages/s in the paced phase) SECS=10 BURST=5000 (messages per
# sender in the burst phase). The clients are Python (slixmpp) on the same machine: the burst rate is a lower
# bound of what the s2s path carries.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
OUT=${OUT:-$REPO/benches/s2s.jsonl}
[ "$(id -u)" = 0 ] || { echo "benches/s2s.sh: run as root (Prosody is started as the prosody user)" >&2; exit 1; }
command -v prosody >/dev/null || { echo "benches/s2s.sh: install Debian's prosody" >&2; exit 1; }
if [ -z "${PRESENCED_BIN:-}" ]; then
    cargo build --release --bin presenced
    export PRESENCED_BIN=$REPO/target/release/presenced
fi
python3 -m pip install --quiet --disable-pip-version-check -r server-xmpp/tests/e2e/requirements.txt
ulimit -n 20000
python3 benches/s2s_bench.py "$@" | tee -a "$OUT"
