#!/usr/bin/env bash
# Runs Herald's integration suites against a real server binary: the Python
# suite (python/, python3-websockets + pytest) and the Node suite (node/,
# `ws` + node --test). The binary is the first argument, else $HERALD_BIN,
# else <repo>/build/release/herald (e.g. `run.sh build/asan/herald`).
# Extra arguments after the binary go to pytest (e.g. -k ping).
# Exits non-zero if either suite fails.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

bin="${1:-${HERALD_BIN:-$repo/build/release/herald}}"
[[ $# -gt 0 ]] && shift
# A relative path is taken from the current directory, else from the repo root.
if [[ "$bin" != /* ]]; then
  if [[ -e "$PWD/$bin" ]]; then bin="$PWD/$bin"; else bin="$repo/$bin"; fi
fi
if [[ ! -x "$bin" ]]; then
  echo "run.sh: herald binary not found or not executable: $bin" >&2
  exit 2
fi
export HERALD_BIN="$bin"
echo "== herald integration tests against $HERALD_BIN"

# Debian's python3 has python3-websockets and python3-pytest; a pyenv or venv
# python3 earlier on PATH usually does not.
python="${HERALD_PYTHON:-/usr/bin/python3}"

# Hard bound per suite on top of the tests' own timeouts, so that a hung
# server can never hang the run.
limit="${HERALD_SUITE_TIMEOUT:-600}"

status=0
echo "== python suite"
if (cd "$here/python" && timeout -k 10 "$limit" "$python" -m pytest -q "$@"); then
  echo "== python suite: passed"
else
  echo "== python suite: FAILED"
  status=1
fi

echo "== node suite"
if [[ ! -d "$here/node/node_modules/ws" ]]; then
  (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error) || status=1
fi
if (cd "$here/node" && timeout -k 10 "$limit" node --test --test-concurrency=1 --test-reporter=spec); then
  echo "== node suite: passed"
else
  echo "== node suite: FAILED"
  status=1
fi

exit $status
