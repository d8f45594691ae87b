#!/usr/bin/env bash
# What the browser tests (tests/browser) need besides the venv: Debian's chromium (installed with
# apt as root when missing), Playwright in the venv (normally from the test extra), and the
# built web app. Idempotent and quick when everything is there. Usage: bash tests/browser/setup.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
venv="${SIGMA_VENV:-.venv}"

if [[ ! -x /usr/bin/chromium ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "== apt-get install chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "tests/browser: /usr/bin/chromium is missing: install Debian's chromium package" >&2
    echo "  (as root: apt-get update && apt-get install -y --no-install-recommends chromium)" >&2
    exit 1
  fi
fi

# Never `playwright install`: the tests drive /usr/bin/chromium.
if ! "$venv/bin/python" -c 'import playwright' 2>/dev/null; then
  echo "== pip install playwright"
  "$venv/bin/python" -m pip install -q 'playwright==1.65.2'
fi

bash examples/chat/build.sh
