#!/usr/bin/env bash
# Make .venv and compile sigma_core's hot modules with mypyc, in place (see setup.py), if the
# sources changed since the last build. SIGMA_NO_COMPILE=1 removes the compiled modules instead.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
ensure_venv
