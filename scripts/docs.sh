#!/usr/bin/env bash
# Build the documentation site (mkdocs.yml, docs/) into site/, strictly: a broken link, a missing
# reference or a docstring that fails to render is an error. Offline (no plugin fetches anything).
# Uses the project venv (made, with the docs extra, by scripts/test.sh or this script).
# Usage: bash scripts/docs.sh [extra mkdocs build args, e.g. -d /tmp/site]
# Preview with live reload instead: .venv/bin/mkdocs serve   (http://127.0.0.1:8000/)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
ensure_venv
export NO_MKDOCS_2_WARNING=1  # Material's banner about MkDocs 2; the docs extra pins mkdocs<2
"$VENV/bin/mkdocs" build --strict --quiet "$@"
