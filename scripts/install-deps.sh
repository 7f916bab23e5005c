#!/usr/bin/env bash
# Installs every Debian and npm dependency Herald needs to build, run and test.
# Idempotent: only missing Debian packages are installed; `npm ci` runs only
# when a lockfile exists and node_modules is older than it.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config clang-format
  libboost1.81-all-dev libboost-json1.81-dev
  libsimdjson-dev libvalijson-dev libsqlite3-dev libhiredis-dev libjose-dev libxxhash-dev
  # OpenSSL 3: JWT signatures, JWKS over https://, rediss://; the openssl command makes
  # test_redis_tls.py's certificates; ca-certificates: the system CA store.
  libssl-dev openssl ca-certificates
  # permessage-deflate: zlib compresses outbound frames and inflates client messages.
  zlib1g-dev
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libbenchmark-dev
  clang libclang-rt-14-dev
  python3 python3-websockets python3-pytest python3-jwt python3-cryptography nodejs npm curl
  chromium sqlite3
  redis-server redis-tools python3-redis
  prometheus
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
# Node may come from outside Debian (nvm, nodesource); accept any node >= 18.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for pkg in "${missing[@]}"; do
    [[ "$pkg" == nodejs || "$pkg" == npm ]] || filtered+=("$pkg")
  done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  # prometheus is here for promtool (tests/integration/python/test_metrics.py
  # checks GET /metrics with it); its postinst would also start the Prometheus
  # server, and without systemd (a container) that start can fail and fail
  # the install. Unless the machine has its own policy, forbid service starts
  # for the install (policy-rc.d exiting 101; invoke-rc.d and
  # deb-systemd-invoke honour it), and leave the service disabled afterwards.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [[ " ${missing[*]} " == *" prometheus "* && ! -e $policy ]]; then
    trap '$SUDO rm -f "$policy"' EXIT
    printf '#!/bin/sh\n# install-deps.sh: no service starts during its apt-get install\nexit 101\n' |
      $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if ((own_policy)); then
    $SUDO rm -f "$policy"
    trap - EXIT
  fi
  if [[ " ${missing[*]} " == *" prometheus "* ]]; then
    $SUDO update-rc.d prometheus disable >/dev/null 2>&1 || true
    $SUDO deb-systemd-helper disable prometheus.service >/dev/null 2>&1 || true
  fi
fi

# npm dependencies of the integration tests, the JS SDKs, the chat demo and
# its browser tests, and the Next.js example (after clients/js: it links the
# SDK packages).
for dir in tests/integration/node clients/js examples/chat tests/e2e examples/nextjs-private-chat; do
  if [[ -f "$dir/package-lock.json" ]]; then
    if [[ ! -d "$dir/node_modules" || "$dir/package-lock.json" -nt "$dir/node_modules" ]]; then
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error && touch node_modules)
    fi
  fi
done
