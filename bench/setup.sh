#!/usr/bin/env bash
# Create bench/.venv-bench: the project (editable, with uvloop and trio) plus the peers pinned in
# bench/requirements.txt. PyPI only. Safe to re-run.
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
for name in ("sigmasockets", "websockets", "aiohttp", "picows", "uvloop", "trio", "psutil", "wsproto", "prometheus-client"):
    print(f"{name:13} {md.version(name)}")
PY
