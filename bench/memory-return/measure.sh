#!/usr/bin/env bash
# bench/memory-return/measure.sh: a Herald's RSS after a large churn, per
# allocator (bench/RESULTS.md, "Returning freed memory"). For each variant a
# fresh `herald serve` (sqlite engine, 2 workers) takes `herald-bench soak`
# with 18,000 members on 20 channels (all connecting at once, 200 drops/s,
# RATE publishes/s, 45 s; the bench then drops every connection); its RSS is
# read before, at the peak, and 5 s and 15 s after all closed.
# Variants: glibc (as is), trim (trim_shim.c: malloc_trim(0) every second),
# jemalloc, mimalloc (Debian's libjemalloc2, libmimalloc2.0 by LD_PRELOAD).
# Usage: bench/memory-return/measure.sh BUILD_DIR [ROUNDS] [VARIANTS]
#   RATE=0 for connections only (default 200).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "${1:-build/release}")
rounds=${2:-1}
variants=${3:-"glibc trim jemalloc mimalloc"}
bin="$build/herald"
bench="$build/herald-bench"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -shared -fPIC -o "$work/trim_shim.so" "$here/trim_shim.c" -lpthread
ulimit -n "$(ulimit -Hn)"
st() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status"; }
for r in $(seq "$rounds"); do
  for v in $variants; do
    case $v in
      glibc) pre="" ;;
      trim) pre="$work/trim_shim.so" ;;
      jemalloc) pre=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ;;
      mimalloc) pre=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 ;;
      *) echo "unknown variant $v" >&2; exit 2 ;;
    esac
    d=$(mktemp -d "$work/run-XXXX")
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    (cd "$d" && exec env LD_PRELOAD="$pre" "$bin" serve --listen "127.0.0.1:$port" --workers 2 \
      --static-dir "" >server.log 2>&1) &
    pid=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    sleep 1
    r0=$(st $pid VmRSS)
    "$bench" soak --no-progress --connections 18000 --channels 20 --rate "${RATE:-200}" \
      --churn-rate 200 --duration 45s --settle 1s --rss-window 1s --connect-concurrency 500 \
      --server-pid $pid --url "ws://127.0.0.1:$port/ws" >"$d/soak.out" 2>&1 || true
    peak=$(awk '/^ +[0-9.]+ +[0-9.]+ +[0-9]+ /{if($2>m)m=$2}END{print m}' "$d/soak.out")
    subs=$(awk '/^ +[0-9.]+ +[0-9.]+ +[0-9]+ /{if($6>m)m=$6}END{print m}' "$d/soak.out")
    sleep 5
    r1=$(st $pid VmRSS); a1=$(st $pid RssAnon)
    sleep 10
    r2=$(st $pid VmRSS); a2=$(st $pid RssAnon)
    echo "round $r $v: start $((r0 / 1024)) MiB, peak ${peak} MiB (max subscribed $subs)," \
      "5 s after all closed $((r1 / 1024)) MiB (anon $((a1 / 1024))), 15 s after $((r2 / 1024)) MiB" \
      "(anon $((a2 / 1024))); $(grep -o '"connections_opened":[0-9]*' "$d/soak.out")"
    kill $pid
    wait $pid 2>/dev/null || true
  done
done
