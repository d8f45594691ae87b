# Shared set-up for the scripts: a project virtualenv in .venv with the test extra installed.
# Reinstalls when pyproject.toml changes. Installs python3-venv with apt when running as root
# on a Debian-like machine that lacks it.
VENV="${SIGMA_VENV:-.venv}"
PY="${PYTHON:-python3}"

ensure_venv() {
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
  local stamp="$VENV/.sigma-installed" want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e '.[test]'
    echo "$want" > "$stamp"
  fi
}
