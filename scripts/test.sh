#!/usr/bin/env bash
# The whole test suite, from a fresh clone: makes .venv, installs what it needs, then runs
# ruff, mypy (strict), the docs site (mkdocs build --strict, scripts/docs.sh), pytest (core,
# adapters over real sockets, fuzz runner, the docs' examples and API reference, and the chat's
# browser tests in Debian's chromium, installed with apt when missing and running as root), and
# the JS client's tests (npm ci + node --test; needs Node 20.19+). pytest runs on sigma_core
# compiled with mypyc (scripts/_env.sh), then the core tests again on the pure-Python modules;
# SIGMA_NO_COMPILE=1 runs everything on pure Python.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
ensure_venv
echo "== ruff";   "$VENV/bin/ruff" check .
echo "== mypy";   "$VENV/bin/mypy"
echo "== redis-server (the cluster engine's tests start their own)"
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis-server is missing: install Debian's redis-server (or valkey-server)" >&2; exit 1
  fi
fi
echo "== docs site (mkdocs build --strict -> site/)"; bash scripts/docs.sh
export SIGMA_DOCS_SITE="$PWD/site"  # tests/test_docs.py checks this build's API reference
echo "== browser tests setup (Debian chromium, web app build)"; bash tests/browser/setup.sh
echo "== deploy tests setup (Debian nginx)"; bash deploy/test-setup.sh
echo "== pytest"; "$VENV/bin/pytest" "$@"
if compgen -G "sigma_core/*.so" >/dev/null; then
  echo "== pytest, core tests on the pure-Python modules (sigma_core copied without .so)"
  pure=$(mktemp -d); trap 'rm -rf "$pure"' EXIT
  cp -r sigma_core "$pure/"; find "$pure/sigma_core" -name '*.so' -delete
  # The editable install's finder would still hand out the checkout's built C helpers
  # (sigma_core._speedups) to the copy: a stand-in that fails to import keeps this run pure.
  echo 'raise ModuleNotFoundError("the pure-Python test run leaves the C helpers out")' \
    > "$pure/sigma_core/_speedups.py"
  PYTHONPATH="$pure" "$VENV/bin/pytest" -p no:cacheprovider tests/test_build.py tests/test_codec.py \
    tests/test_asgi_core.py tests/test_codec_fuzz.py tests/test_connection.py tests/test_framer.py \
    tests/test_fuzz_targets.py tests/test_purity.py tests/test_pump.py tests/test_ratelimit.py \
    tests/test_receive_path.py tests/test_sessions.py tests/test_stateful.py tests/test_websocket.py \
    tests/test_cluster.py "$@"
fi
echo "== js client (node --test)"; bash clients/js/scripts/test.sh
