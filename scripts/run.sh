#!/usr/bin/env bash
# The README's first command: install what is missing, build the server and
# the chat demo, and run `herald serve` with the demo at
# http://localhost:8080/ (config: examples/chat/herald.toml, history kept in
# data/chat). Extra arguments go to `herald serve` (e.g. --listen 127.0.0.1:9000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh release
(cd examples/chat && npm run build --silent)
exec ./build/release/herald serve --config examples/chat/herald.toml "$@"
