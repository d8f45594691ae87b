#!/usr/bin/env bash
# The chat demo (examples/chat): makes .venv when needed (the `chat` extra: what the demo needs
# to run, not the test tools), builds the TypeScript client and the
# web app when they changed (npm ci + npm run build; needs Node >= 20.19), then serves the app
# and its WebSocket on one port and prints "SigmaSockets chat: http://HOST:PORT/".
# Options go to the server, e.g. bash scripts/chat.sh --port 8080 --history-size 100
# (see python -m examples.chat --help, or the SIGMASOCKETS_* variables in examples/chat/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
ensure_venv chat  # the demo's packages only (no test tools)
bash examples/chat/build.sh
exec "$VENV/bin/python" -m examples.chat "$@"
