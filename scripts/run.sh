#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run
# `herald serve` with the page at http://localhost:8080/.
# Extra arguments go to `herald serve` (e.g. --listen 127.0.0.1:9000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh release
exec ./build/release/herald serve --static-dir web "$@"
