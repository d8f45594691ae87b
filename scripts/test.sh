#!/usr/bin/env bash
# The whole test suite, from a fresh clone: makes .venv, installs what it needs, then runs
# ruff, mypy (strict), pytest (core, adapters over real sockets, fuzz runner, and the chat's
# browser tests in Debian's chromium, installed with apt when missing and running as root), and
# the JS client's tests (npm ci + node --test; needs Node 20.19+).
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
ensure_venv
echo "== ruff";   "$VENV/bin/ruff" check .
echo "== mypy";   "$VENV/bin/mypy"
echo "== browser tests setup (Debian chromium, web app build)"; bash tests/browser/setup.sh
echo "== pytest"; "$VENV/bin/pytest" "$@"
echo "== js client (node --test)"; bash clients/js/scripts/test.sh
