#!/usr/bin/env bash
# tests/package/test_package.sh: builds the .deb from a built tree (cpack)
# and checks it as an operator would get it (issue 17 item 3):
#   - its control data: name, version, Depends from the linked shared
#     libraries, /etc/herald/herald.toml a conffile, the maintainer scripts;
#   - its files: the binary, the unit, the config, the docs;
#   - the unit: the sandboxing and reload the docs promise, and
#     `systemd-analyze verify` when the machine has it;
#   - unpacked into a temporary root (dpkg-deb -x): the packaged binary
#     checks and serves the packaged config (data_dir moved to a temporary
#     directory by HERALD_ENGINE_DATA_DIR, a free port by
#     HERALD_SERVER_LISTEN): /healthz, then a publish over the HTTP API read
#     back from history, then a clean stop on SIGTERM.
# Usage: tests/package/test_package.sh [build-dir]   (about 20 s)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
build=$(realpath "${1:-build/release}")
tmp=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "package: FAILED: $*" >&2
  exit 1
}
ok() { echo "package: ok: $*"; }

# --- build the package
(cd "$build" && cpack -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1) || {
  cat "$tmp/cpack.log"
  fail "cpack"
}
debs=("$tmp"/out/herald_*.deb)
[[ -f ${debs[0]} ]] || fail "no herald_*.deb in $(ls "$tmp/out")"
deb=${debs[0]}
ok "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"

# --- control data
info=$(dpkg-deb -I "$deb")
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == herald ]] || fail "Package is '$(field Package)'"
version=$(sed -n 's/^project(herald VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
[[ $(field Version) == "$version" ]] || fail "Version '$(field Version)' is not $version"
depends=$(field Depends)
# The libraries the binary links (CMakeLists.txt): each must be a dependency,
# or the package installs on a machine where the binary cannot start.
for lib in libc6 libstdc++6 libssl3 libsqlite3-0 libhiredis libjose0 libspdlog libfmt \
  libtomlplusplus libboost-json; do
  grep -q "\b$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
ok "Depends: $depends"
dpkg-deb -e "$deb" "$tmp/control"
[[ $(cat "$tmp/control/conffiles") == /etc/herald/herald.toml ]] ||
  fail "conffiles: $(cat "$tmp/control/conffiles" 2>/dev/null)"
for script in postinst prerm postrm; do
  [[ -x $tmp/control/$script ]] || fail "no executable $script"
  sh -n "$tmp/control/$script" || fail "$script does not parse"
done
grep -q "Installed-Size" <<<"$info" || fail "dpkg-deb -I: no Installed-Size"
ok "conffiles: /etc/herald/herald.toml; postinst, prerm, postrm"

# --- files
contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
for f in ./usr/bin/herald ./etc/herald/herald.toml ./usr/lib/systemd/system/herald.service \
  ./usr/share/doc/herald/operations.md ./usr/share/doc/herald/config.md; do
  grep -qx -- "$f" <<<"$contents" || fail "$f is not in the package"
done
if [[ -f examples/chat/dist/index.html ]]; then
  grep -qx -- ./usr/share/herald/chat/index.html <<<"$contents" ||
    fail "the chat demo is built but not packaged"
fi
# Nothing outside the FHS places a package may use, nothing from the build tree.
if grep -Ev '^\./(usr/(bin|lib/systemd/system|share/(herald|doc/herald))|etc/herald)?(/|$)' <<<"$contents" |
  grep -v '^\./usr/$\|^\./usr/lib/$\|^\./usr/lib/systemd/$\|^\./usr/share/$\|^\./usr/share/doc/$\|^\./etc/$'; then
  fail "unexpected paths in the package (above)"
fi
ok "files: binary, unit, config, docs"

root="$tmp/root"
dpkg-deb -x "$deb" "$root"
unit="$root/usr/lib/systemd/system/herald.service"
for line in "DynamicUser=yes" "StateDirectory=herald" "ProtectSystem=strict" "ProtectHome=yes" \
  "NoNewPrivileges=yes" "PrivateTmp=yes" "Restart=on-failure" \
  "ExecStartPre=/usr/bin/herald check-config --config /etc/herald/herald.toml" \
  "ExecStart=/usr/bin/herald serve --config /etc/herald/herald.toml" \
  'ExecReload=/bin/kill -HUP $MAINPID' "LimitNOFILE=524288" "AmbientCapabilities="; do
  grep -qxF -- "$line" "$unit" || fail "the unit lacks '$line'"
done
grep -q '^AmbientCapabilities=.' "$unit" && fail "the unit grants a capability by default"
config="$root/etc/herald/herald.toml"
grep -qx 'data_dir = "/var/lib/herald"' "$config" || fail "config: data_dir is not /var/lib/herald"
grep -qx 'static_dir = ""' "$config" || fail "config: static_dir is not off"
ok "unit: sandboxing, reload, check-config; config: data in /var/lib/herald"

if command -v systemd-analyze >/dev/null; then
  # verify checks that ExecStart's binary exists: point it at the unpacked one.
  sed "s|/usr/bin/herald|$root/usr/bin/herald|g" "$unit" >"$tmp/herald.service"
  if ! out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$tmp/herald.service" 2>&1); then
    echo "$out"
    fail "systemd-analyze verify"
  fi
  # Warnings about other units of this machine are not ours.
  if grep -i "herald.service" <<<"$out"; then fail "systemd-analyze verify warns about the unit"; fi
  ok "systemd-analyze verify: clean"
else
  echo "package: note: no systemd-analyze on this machine, the unit is not verified"
fi

# --- the packaged binary with the packaged config
bin="$root/usr/bin/herald"
"$bin" --version >/dev/null || fail "the packaged binary does not run"
"$bin" check-config --config "$config" >/dev/null || fail "check-config rejects the packaged config"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/state" "$tmp/cwd"
(cd "$tmp/cwd" && exec env HERALD_ENGINE_DATA_DIR="$tmp/state" HERALD_SERVER_LISTEN="127.0.0.1:$port" \
  HERALD_SERVER_WORKERS=1 "$bin" serve --config "$config") >"$tmp/server.log" 2>&1 &
pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 100); do
  curl -fs "$url/healthz" >/dev/null && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
curl -fs "$url/healthz" >/dev/null || {
  cat "$tmp/server.log"
  fail "the packaged server does not answer /healthz"
}
curl -fsS -X POST -H 'Content-Type: application/json' \
  -d '{"channel":"pkg:test","event":"hello","data":{"n":17}}' "$url/api/publish" >"$tmp/ack" ||
  fail "publish: $(cat "$tmp/ack")"
curl -fsS "$url/api/channels/pkg%3Atest/history" >"$tmp/history" || fail "history"
python3 - "$tmp/history" <<'PY' || fail "history does not hold the publish: $(cat "$tmp/history")"
import json, sys
h = json.load(open(sys.argv[1]))
events = h.get("events", h.get("publications", []))
assert len(events) == 1 and events[0]["event"] == "hello" and events[0]["data"] == {"n": 17}, h
PY
[[ -f $tmp/state/herald.db ]] || fail "no herald.db in the data_dir given by HERALD_ENGINE_DATA_DIR"
[[ -z $(ls -A "$tmp/cwd") ]] || fail "the server wrote into its working directory: $(ls -A "$tmp/cwd")"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[[ $rc -eq 0 ]] || {
  cat "$tmp/server.log"
  fail "the server exited $rc on SIGTERM"
}
ok "packaged binary + config: /healthz, publish -> history in $tmp/state/herald.db, clean stop"
echo "package: all checks passed"
