#!/usr/bin/env bash
# The 60-second soak of CI (issue 17): a fresh `herald serve` (sqlite engine
# in a temporary directory, 2 workers) and `herald-bench soak` with its
# defaults against it: 1000 connections kept open while 100 a second drop
# (RST, FIN without close frame, close frame) and reconnect, 500 publishes/s.
# Exit 0 when the server's fds are back to where they were and its RSS did
# not grow after the warm-up (the rule: bench/README.md, "soak").
# Usage: tests/soak.sh [build-dir] [extra herald-bench options]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/release}"
shift || true
repo=$PWD
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
workdir=$(mktemp -d)
# The server needs a descriptor per connection and more: raise the soft limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(cd "$workdir" && exec "$repo/$build/herald" serve --listen "127.0.0.1:$port" --workers 2 \
  --static-dir "") >"$workdir/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
if "$build/herald-bench" soak --no-progress --url "ws://127.0.0.1:$port/ws" --server-pid "$pid" "$@" \
    >"$workdir/soak.out" 2>&1; then
  grep -m1 '^{' "$workdir/soak.out"
  echo "soak: ok"
else
  cat "$workdir/soak.out"
  echo "--- server log (tail)"
  tail -n 30 "$workdir/server.log"
  echo "soak: FAILED"
  exit 1
fi
