#!/usr/bin/env bash
# Create bench/.venv-bench: the project (editable, with uvloop and trio) plus the peers pinned in
# bench/requirements.txt (PyPI), and bench/node_modules: Node's `ws`, pinned by
# bench/package-lock.json (npm). Safe to re-run. Without node/npm the Node peer is skipped
# (bench/run.py says so).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
venv="$here/.venv-bench"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e "$here/..[uvloop,trio,ops]" -r "$here/requirements.txt"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("sigmasockets", "websockets", "aiohttp", "picows", "uvloop", "trio", "psutil", "wsproto",
             "prometheus-client", "python-socketio", "python-engineio"):
    print(f"{name:17} {md.version(name)}")
PY
if command -v npm >/dev/null && command -v node >/dev/null; then
    (cd "$here" && npm ci --silent --no-audit --no-fund)
    echo "node            $(node --version)"
    echo "ws              $(node -p "require('$here/node_modules/ws/package.json').version")"
else
    echo "node/npm not found: the node_ws peer will be skipped" >&2
fi
