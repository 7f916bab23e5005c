#!/usr/bin/env bash
# Smoke run of every herald-bench scenario with tiny parameters against a
# real server, plus the bench's self-test: proves the benchmark suite works
# (exit 0: nothing lost, duplicated or out of order). Not a performance test:
# no figure is checked. Usage: tests/bench_smoke.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/release}"
bench="$build/herald-bench"
server="$build/herald"

"$bench" selftest
# The micro-benchmarks must still run (tiny time budget; figures ignored).
"$build/herald-micro" --benchmark_min_time=0.01 >/dev/null
echo "herald-micro: ok"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
workdir=$(mktemp -d)
repo=$PWD
# The config of bench/compare's "Herald schema" column: every publish of the
# scenarios is validated, which also proves the bench's payloads match it.
# Run in the temporary directory: the default sqlite engine keeps its
# database in ./data, which must not be the repository's (nor shared).
(cd "$workdir" && exec "$repo/$server" serve --listen "127.0.0.1:$port" --workers 2 \
  --static-dir "" --config "$repo/bench/schema/herald.toml") >"$workdir/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done

# For --token-file: the open server ignores tokens (nothing could verify
# them), so any compact-JWS-shaped lines prove the bench's connect path;
# bench/compare-auth runs it against servers that verify.
for i in 0 1 2; do echo "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLSRpIn0.c2lnbmF0dXJl$i"; done >"$workdir/tokens"

passed=0
failed=0
# Each line: a name, then the scenario and its extra options.
while read -r name scenario args; do
  # shellcheck disable=SC2086  # $args: several options
  if "$bench" "$scenario" --smoke --no-progress --url "ws://127.0.0.1:$port/ws" \
      --server-pid "$pid" $args >"$workdir/$name.out" 2>&1; then
    echo "bench smoke $name: ok ($(grep -m1 '^{' "$workdir/$name.out" | cut -c1-120)...)"
    passed=$((passed + 1))
  else
    echo "bench smoke $name: FAILED"
    cat "$workdir/$name.out"
    failed=$((failed + 1))
  fi
done <<EOF2
fanout fanout
publishers16 fanout --publishers 16 --subscribers 1 --messages 1600
publishers16-keys fanout --publishers 16 --subscribers 1 --messages 1600 --idempotency-keys
rooms-keys rooms --idempotency-keys
rooms rooms
connect connect
idle idle
idle-events idle --events 1
history history
connect-token connect --token-file $workdir/tokens
connect-pipelined connect --token-file $workdir/tokens --pipeline-connect
fanout-connect fanout --connect-first
fanout-urls fanout --subscriber-urls ws://127.0.0.1:$port/ws,ws://localhost:$port/ws
churn-off churn --presence off
soak soak
EOF2
# churn with servers of its own (a fresh one with presence and join_leave on,
# then one with both off): join/leave, the own-join checks and the final
# presence-stats check.
if "$bench" churn --smoke --no-progress --herald "$server" >"$workdir/churn-both.out" 2>&1; then
  echo "bench smoke churn-both: ok ($(grep -m1 '^{' "$workdir/churn-both.out" | cut -c1-120)...)"
  passed=$((passed + 1))
else
  echo "bench smoke churn-both: FAILED"
  cat "$workdir/churn-both.out"
  failed=$((failed + 1))
fi
# bench/compare-tail's harness (Herald columns only: uWS needs the peers'
# npm install), which also reads the publish stage histograms from /metrics.
if node bench/compare-tail --quick --servers herald,herald-w1,herald-sqlite --out "" \
    >"$workdir/compare-tail.out" 2>&1; then
  echo "bench smoke compare-tail: ok"
  passed=$((passed + 1))
else
  echo "bench smoke compare-tail: FAILED"
  cat "$workdir/compare-tail.out"
  failed=$((failed + 1))
fi
echo "bench smoke: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
