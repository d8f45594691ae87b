# Shared set-up for the scripts: a project virtualenv in .venv with an extra installed (`test`,
# everything the test command needs, by default; `chat` for the demo: its runtime packages and
# mypyc, no test tools), and sigma_core's hot modules compiled with mypyc in place
# (ensure_build). Reinstalls when pyproject.toml changes. Installs python3-venv with apt when
# running as root on a Debian-like machine that lacks it. Long steps print their progress.
VENV="${SIGMA_VENV:-.venv}"
PY="${PYTHON:-python3}"

# Run "$@" (its output to the file LOG, or here if LOG is -) and, while it runs, say every 10 s
# that it still does and for how long. Usage: with_progress LABEL LOG COMMAND...
with_progress() {
  local label="$1" log="$2" start=$SECONDS pid rc=0
  shift 2
  if [ "$log" = - ]; then "$@" & else "$@" >"$log" 2>&1 & fi
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      sleep 1
      kill -0 "$pid" 2>/dev/null || break 2
    done
    echo "   ... $label: $((SECONDS - start)) s"
  done
  wait "$pid" || rc=$?
  return "$rc"
}

ensure_venv() {
  local extra="${1:-test}"
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Python 3.11+ is required (found $("$PY" --version))" >&2; exit 1; }
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PY" -m venv "$VENV" 2>/dev/null; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$VENV"; "$PY" -m venv "$VENV"
      else
        echo "python3 -m venv failed: install python3-venv" >&2; exit 1
      fi
    fi
  fi
  local stamp="$VENV/.sigma-installed" hash have
  hash=$(sha256sum pyproject.toml | cut -d' ' -f1)
  have=$(cat "$stamp" 2>/dev/null || true)
  # The test extra holds everything the chat extra does: either satisfies the chat.
  if [ "$have" != "$hash" ] && [ "$have" != "$extra:$hash" ] \
      && { [ "$extra" != chat ] || [ "$have" != "test:$hash" ]; }; then
    echo "== installing Python packages ($extra) into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    # Installed as pure Python; ensure_build compiles, with the venv's mypy, and again whenever
    # the sources change.
    # The test command also builds the docs site (the docs extra).
    local extras="$extra"
    [ "$extra" = test ] && extras="test,docs"
    SIGMA_NO_COMPILE=1 with_progress "pip install" - "$VENV/bin/python" -m pip install -q \
      --disable-pip-version-check -e ".[$extras]"
    echo "$extra:$hash" > "$stamp"
  fi
  ensure_build
}

# The compiled modules (setup.py) sit beside their sources and Python imports them first, so they
# are rebuilt whenever sigma_core, setup.py or mypy change. SIGMA_NO_COMPILE=1 removes them: pure
# Python. Without a C compiler the build warns and stays pure.
ensure_build() {
  local stamp="$VENV/.sigma-compiled" want log="$VENV/sigma-build.log"
  if [ -n "${SIGMA_NO_COMPILE:-}" ] && [ "$SIGMA_NO_COMPILE" != 0 ]; then
    find sigma_core -name '*.so' -delete; rm -f "$stamp"
    return
  fi
  # (sigma_core/codec/ is a package of compiled modules: every .py below sigma_core counts.)
  want=$({ cat setup.py sigma_core/*.c; find sigma_core -name '*.py' -not -path '*/_wire/*' \
           | LC_ALL=C sort | xargs cat; "$VENV/bin/python" -c 'import mypy.version, sys
print(mypy.version.__version__, sys.version)'; } | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "== build: compiling sigma_core with mypyc (a minute or two; log: $log)"
    find sigma_core -name '*.so' -delete
    if ! with_progress "compiling" "$log" "$VENV/bin/python" setup.py build_ext --inplace; then
      tail -20 "$log" >&2; echo "building sigma_core failed" >&2; exit 1
    fi
    grep -A1 '^sigmasockets:' "$log" >&2 || true  # the fallback's warning, if any
    # build_ext copies an unchanged module from build/ with its old mtime (an edit to a module
    # that is not compiled, or to a docstring, leaves the C alone): mark the build as of now,
    # or tests/test_build.py takes these up-to-date modules for stale ones.
    find sigma_core -name '*.so' -exec touch {} +
    echo "$want" > "$stamp"
  fi
}
