#!/usr/bin/env bash
# bench/peers/install.sh: installs what bench/compare's peer servers need:
# the npm dependencies of bench/peers/node-ws and bench/peers/uws (with
# `npm ci`, from their lockfiles; skipped when node_modules already matches
# the lockfile) and Debian's nats-server (apt-get, only when missing).
# Idempotent; safe to run before every bench/compare.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

for peer in node-ws uws; do
  dir="$here/$peer"
  # npm writes node_modules/.package-lock.json on install; when it equals the
  # lockfile's package set the install is current.
  if [[ -f "$dir/node_modules/.package-lock.json" ]] &&
     node -e '
       const [a, b] = process.argv.slice(1).map(f => require(f).packages);
       const strip = p => JSON.stringify(Object.keys(p).filter(k => k && !p[k].optional).sort().map(k => [k, p[k].version]));
       process.exit(strip(a) === strip(b) ? 0 : 1);' \
       "$dir/package-lock.json" "$dir/node_modules/.package-lock.json" 2>/dev/null; then
    echo "install.sh: $peer: npm dependencies up to date"
  else
    echo "install.sh: $peer: npm ci"
    # --omit=optional: uws-js-unofficial lists native helpers (bufferutil,
    # utf-8-validate) for its pure-JS fallback, which the peer never uses.
    (cd "$dir" && npm ci --omit=optional --no-audit --no-fund --loglevel=error)
  fi
done

if command -v nats-server >/dev/null 2>&1; then
  echo "install.sh: nats-server present ($(nats-server --version 2>&1))"
else
  echo "install.sh: apt-get install nats-server"
  if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
  if ! "${sudo[@]}" apt-get install -y -qq nats-server; then
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq nats-server
  fi
fi
