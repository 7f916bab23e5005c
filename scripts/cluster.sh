#!/usr/bin/env bash
# A local Herald cluster to try the redis engine (issue 13): one redis-server
# (Debian's, on a free or given port, in a temporary directory of its own,
# AOF on with appendfsync everysec, maxmemory-policy noeviction) and N Herald
# nodes (default 3, on 127.0.0.1:8081-8083) sharing it, each serving the chat
# demo (examples/chat/herald.toml with engine.type = "redis"). Open two nodes
# in two browser tabs: one chat. Ctrl-C stops everything it started and
# removes the temporary directory (kept, with the logs, when a process failed).
#
#   scripts/cluster.sh                    # build, then redis + 3 nodes
#   scripts/cluster.sh --nodes 2 --base-port 9001 --redis-port 6390 --no-build
#
# No root needed once the dependencies are installed (scripts/install-deps.sh,
# which the build step runs). Safe to run again: every run starts from a new
# temporary directory, so nothing of an earlier run is reused.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
usage: scripts/cluster.sh [options]

Starts a local redis-server and N Herald nodes (engine.type = "redis") that
share it, each serving the chat demo; Ctrl-C stops them all.

  --nodes N          Herald nodes (default 3)
  --base-port P      the first node listens on 127.0.0.1:P, the next on P+1... (default 8081)
  --redis-port P     redis-server's port (default: the first free one from 6380)
  --no-build         use build/release/herald and examples/chat/dist as they are
  -h, --help         this text
EOF
}

die() {
  echo "cluster: $*" >&2
  exit 1
}

nodes=3
base_port=8081
redis_port=""
build=1
while (($#)); do
  case "$1" in
    --nodes | --base-port | --redis-port)
      (($# >= 2)) || die "$1 needs a value"
      [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1: bad number $2"
      case "$1" in
        --nodes) nodes="$2" ;;
        --base-port) base_port="$2" ;;
        --redis-port) redis_port="$2" ;;
      esac
      shift 2
      ;;
    --no-build)
      build=0
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown option $1"
      ;;
  esac
done
((base_port + nodes - 1 <= 65535)) || die "--base-port $base_port + $nodes nodes goes past port 65535"
[[ -z "$redis_port" ]] || ((redis_port <= 65535)) || die "--redis-port: bad port $redis_port"

# Whether something accepts connections on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

if ((build)); then
  bash scripts/build.sh release
  (cd examples/chat && npm run build --silent)
fi
herald="$PWD/build/release/herald"
static_dir="$PWD/examples/chat/dist"
config="$PWD/examples/chat/herald.toml"
[[ -x "$herald" ]] || die "$herald missing: run without --no-build (or scripts/build.sh release)"
[[ -f "$static_dir/index.html" ]] || die "$static_dir missing: run without --no-build (or npm run build in examples/chat)"
command -v redis-server >/dev/null || die "redis-server not found: scripts/install-deps.sh installs it (Debian's redis-server)"
command -v redis-cli >/dev/null || die "redis-cli not found: scripts/install-deps.sh installs it (redis-tools)"
major="$(redis-server --version | sed -n 's/.* v=\([0-9]*\)\..*/\1/p')"
[[ -n "$major" && "$major" -ge 7 ]] || die "redis-server 7.0 or later needed (found: $(redis-server --version))"

for ((i = 0; i < nodes; ++i)); do
  p=$((base_port + i))
  ! port_in_use "$p" || die "port $p is taken (another cluster.sh or run.sh?): pick another --base-port"
done
if [[ -n "$redis_port" ]]; then
  ! port_in_use "$redis_port" || die "--redis-port $redis_port is taken"
else
  redis_port=6380
  while port_in_use "$redis_port" ||
    ((redis_port >= base_port && redis_port < base_port + nodes)); do
    ((++redis_port <= 65535)) || die "no free port for redis-server"
  done
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/herald-cluster.XXXXXX")"
pids=()
failed=0
stopping=0

# Stops what this script started (by pid, TERM then KILL), then removes the
# temporary directory unless something failed.
cleanup() {
  ((stopping)) && return
  stopping=1
  trap - INT TERM EXIT
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((failed)); then
    echo "cluster: logs kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap 'echo; echo "cluster: stopping"; cleanup; exit 0' INT TERM
trap 'cleanup' EXIT

# Prints the end of a log and fails the run.
fail_with_log() {
  failed=1
  echo "cluster: $1; the end of $2:" >&2
  tail -n 20 "$2" >&2 || true
  exit 1
}

# redis-server: no RDB snapshots (save ""), the AOF fsynced every second, and
# noeviction (docs/operations.md, "Scaling out with Redis": an evicted key
# loses acknowledged history). Bound to loopback, no password: a toy.
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$tmp" --save "" \
  --appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
  --logfile "$tmp/redis.log" &
pids+=("$!")
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
  kill -0 "${pids[0]}" 2>/dev/null || fail_with_log "redis-server exited at start" "$tmp/redis.log"
  sleep 0.1
done
redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG ||
  fail_with_log "redis-server did not answer PING within 10 s" "$tmp/redis.log"
redis_url="redis://127.0.0.1:$redis_port"

# The nodes: the chat demo's config (namespaces, schema, presence) with the
# engine switched to redis by environment (which beats the file). Each runs
# in the temporary directory, so no ./herald.toml is picked up by accident.
for ((i = 0; i < nodes; ++i)); do
  p=$((base_port + i))
  (cd "$tmp" && HERALD_ENGINE_TYPE=redis HERALD_ENGINE_REDIS_URL="$redis_url" \
    exec "$herald" serve --config "$config" --listen "127.0.0.1:$p" --static-dir "$static_dir" \
    >"$tmp/node$((i + 1)).log" 2>&1) &
  pids+=("$!")
done
for ((i = 0; i < nodes; ++i)); do
  p=$((base_port + i))
  log="$tmp/node$((i + 1)).log"
  for _ in $(seq 150); do
    curl -sf "http://127.0.0.1:$p/healthz" >/dev/null 2>&1 && break
    kill -0 "${pids[i + 1]}" 2>/dev/null || fail_with_log "node $((i + 1)) (port $p) exited at start" "$log"
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$p/healthz" >/dev/null 2>&1 ||
    fail_with_log "node $((i + 1)) did not answer /healthz on port $p within 15 s" "$log"
done

cat <<EOF

Herald cluster: $nodes node(s) on one redis-server ($redis_url, AOF everysec, noeviction)

$(for ((i = 0; i < nodes; ++i)); do echo "  node $((i + 1)): http://localhost:$((base_port + i))  (log $tmp/node$((i + 1)).log)"; done)
  redis:  redis-cli -p $redis_port  (log $tmp/redis.log)

Open http://localhost:$base_port/#/room/lobby and http://localhost:$((base_port + (nodes > 1 ? 1 : 0)))/#/room/lobby in two tabs:
the same chat, whichever node a tab is on.
Publish over HTTP to any node (the room "lobby" of the demo):
  curl -s http://127.0.0.1:$base_port/api/publish -H 'content-type: application/json' \\
    -d '{"channel":"chat:lobby","event":"chat.message","data":{"name":"curl","text":"hello"}}'
Try a failure: stop a node (kill ${pids[1]}) and open its tabs' room on another node: the
history is there (a load balancer would have moved them for you); pause Redis
(kill -STOP ${pids[0]}, later kill -CONT ${pids[0]}): publishes fail with "unavailable" after
engine.redis_command_timeout_ms while the tabs stay connected.

Ctrl-C stops everything.
EOF

# Until Ctrl-C. A process that exits by itself (a node you stopped) is
# reported once; the others keep running.
reported=()
while :; do
  alive=0
  for ((k = 0; k < ${#pids[@]}; ++k)); do
    if kill -0 "${pids[k]}" 2>/dev/null; then
      alive=1
    elif [[ -z "${reported[k]:-}" ]]; then
      reported[k]=1
      failed=1
      if ((k == 0)); then
        echo "cluster: redis-server (pid ${pids[0]}) exited; see $tmp/redis.log" >&2
      else
        echo "cluster: node $k (pid ${pids[k]}, port $((base_port + k - 1))) exited; see $tmp/node$k.log" >&2
      fi
    fi
  done
  ((alive)) || { echo "cluster: every process exited" >&2; exit 1; }
  sleep 1
done
