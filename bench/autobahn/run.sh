#!/usr/bin/env bash
# Autobahn WebSocket test suite (fuzzingclient, all cases but 9.*, 12.*, 13.*) against the two
# plain echo servers, `python -m sigma_asyncio.echo` and `python -m sigma_trio.echo`.
#
#   sudo bash bench/autobahn/run.sh            # install wstest if needed, run, summarise
#   WSTEST_SKIP_INSTALL=1 bash bench/autobahn/run.sh   # use an existing /opt/wstest
#
# Idempotent: every install step checks first. Takes a few minutes; not part of the test suite.
# wstest is Python 2 code (autobahntestsuite 0.8.2 / autobahn 0.10.9 / Twisted 20.3.0), and
# Debian 12 has no python2.7, so python2.7 comes from the Debian 11 (bullseye) suite of the same
# Debian archive, pinned at priority 100 so that nothing else is taken from it. The Python 2
# environment lives in /opt/wstest (outside the repo). Only loopback traffic.
#
# Environment: WSTEST_HOME (default /opt/wstest), REPORT_DIR (default /tmp/autobahn-reports;
# the spec's outdir), PYTHON (the project's Python 3, default .venv/bin/python of this repo).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WSTEST_HOME="${WSTEST_HOME:-/opt/wstest}"
REPORT_DIR="${REPORT_DIR:-/tmp/autobahn-reports}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO/.venv/bin/python" ]]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
WSTEST="$WSTEST_HOME/venv/bin/wstest"
PY27=/usr/bin/python2.7

# pip for Python 2 ignores this machine's pip config (extra local indexes / find-links that
# pip 20.3 trips over); PyPI only.
py2pip_env=(env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null)

install_python27() {
    if [[ -x "$PY27" ]] && dpkg -s python2.7-dev >/dev/null 2>&1; then
        return
    fi
    if [[ $EUID -ne 0 ]]; then
        echo "run.sh: installing python2.7 needs root (apt-get)" >&2
        exit 1
    fi
    if [[ ! -f /etc/apt/sources.list.d/bullseye.sources ]]; then
        cat > /etc/apt/sources.list.d/bullseye.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bullseye
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    if [[ ! -f /etc/apt/preferences.d/bullseye ]]; then
        cat > /etc/apt/preferences.d/bullseye <<'EOF'
Package: *
Pin: release n=bullseye
Pin-Priority: 100
EOF
    fi
    apt-get update
    # Pulls only python2.7's own packages plus libffi7 and libssl1.1 from bullseye; nothing of
    # bookworm is upgraded or replaced.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -t bullseye python2.7 python2.7-dev
}

install_wstest() {
    if [[ -x "$WSTEST" ]] && "$WSTEST" -a 2>/dev/null | grep -q 'AutobahnTestSuite 0.8.2'; then
        return
    fi
    install_python27
    mkdir -p "$WSTEST_HOME/dl"
    # 1. pip, setuptools, wheel and virtualenv 16 wheels for Python 2.7, fetched with Python 3's
    #    pip (all are py2.py3 wheels).
    "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 2.7 \
        --implementation cp --abi cp27mu --platform manylinux1_x86_64 \
        pip==20.3.4 setuptools==44.1.1 wheel==0.37.1 virtualenv==16.7.12 -d "$WSTEST_HOME/dl"
    # 2. virtualenv 16.7.12 (the last single-file virtualenv, runs on 2.7 and bundles pip 20.3.4
    #    / setuptools 44.1.1) installed with pip run straight from its wheel.
    if [[ ! -f "$WSTEST_HOME/bootstrap/virtualenv.py" ]]; then
        "${py2pip_env[@]}" "$PY27" "$WSTEST_HOME/dl/pip-20.3.4-py2.py3-none-any.whl/pip" install \
            --no-index --find-links "$WSTEST_HOME/dl" --target "$WSTEST_HOME/bootstrap" \
            virtualenv==16.7.12
    fi
    # 3. a Python 2.7 virtualenv at $WSTEST_HOME/venv from the bundled wheels (no download).
    if [[ ! -x "$WSTEST_HOME/venv/bin/pip" ]]; then
        PYTHONPATH="$WSTEST_HOME/bootstrap" "$PY27" -m virtualenv --no-download -p "$PY27" \
            "$WSTEST_HOME/venv"
    fi
    # 4. wstest with every dependency pinned to the versions that were verified on Python 2.7
    #    (binary wheels for cffi/cryptography; zope.interface etc. build with gcc + python2.7-dev).
    cat > "$WSTEST_HOME/requirements.txt" <<'EOF'
autobahntestsuite==0.8.2
autobahn==0.10.9
Twisted==20.3.0
txaio==2.1.0
attrs==21.4.0
Automat==22.10.0
cffi==1.15.1
constantly==15.1.0
cryptography==3.3.2
enum34==1.1.10
hyperlink==21.0.0
idna==2.10
incremental==22.10.0
ipaddress==1.0.23
Jinja2==2.11.3
klein==20.6.0
linecache2==1.0.0
MarkupSafe==1.1.1
pyasn1==0.5.1
pyasn1-modules==0.3.0
pycparser==2.21
PyHamcrest==1.10.1
pyOpenSSL==21.0.0
service-identity==21.1.0
six==1.17.0
traceback2==1.4.0
Tubes==0.2.1
typing==3.10.0.0
unittest2==1.1.0
Werkzeug==1.0.1
zope.interface==5.5.2
EOF
    "${py2pip_env[@]}" "$WSTEST_HOME/venv/bin/pip" install -r "$WSTEST_HOME/requirements.txt"
    "$WSTEST" -a 2>/dev/null
}

if [[ -z "${WSTEST_SKIP_INSTALL:-}" ]]; then
    install_wstest
fi

# --- run ---------------------------------------------------------------------------------------
WORK="$(mktemp -d /tmp/autobahn-run.XXXXXX)"
PIDS=()
stop_servers() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap stop_servers EXIT

# start_server MODULE LOGNAME -> sets PORT; --port 0 lets the OS pick a free port, which the
# server reports as "listening on ws://HOST:PORT/".
start_server() {
    local module="$1" log="$WORK/$2.log" line=""
    (cd "$REPO" && exec "$PYTHON" -m "$module" --port 0) >"$log" 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 300); do
        line="$(grep -m1 -o 'listening on ws://[^ ]*' "$log" || true)"
        [[ -n "$line" ]] && break
        kill -0 "$!" 2>/dev/null || { echo "run.sh: $module exited:" >&2; cat "$log" >&2; exit 1; }
        sleep 0.1
    done
    [[ -n "$line" ]] || { echo "run.sh: $module did not start:" >&2; cat "$log" >&2; exit 1; }
    PORT="${line##*:}"; PORT="${PORT%/}"
    echo "$module: $line (pid $!)"
}

start_server sigma_asyncio.echo sigma_asyncio
ASYNCIO_PORT="$PORT"
start_server sigma_trio.echo sigma_trio
TRIO_PORT="$PORT"

sed -e "s/\${ASYNCIO_PORT}/$ASYNCIO_PORT/" -e "s/\${TRIO_PORT}/$TRIO_PORT/" \
    -e "s#\"outdir\": \"[^\"]*\"#\"outdir\": \"$REPORT_DIR\"#" \
    "$HERE/fuzzingclient.json" > "$WORK/spec.json"
rm -rf "$REPORT_DIR"
mkdir -p "$REPORT_DIR"
# wstest writes nothing but the reports; run it from the scratch dir all the same.
(cd "$WORK" && "$WSTEST" -m fuzzingclient -s "$WORK/spec.json") >"$WORK/wstest.log" 2>&1 || {
    echo "run.sh: wstest failed, log follows" >&2; tail -50 "$WORK/wstest.log" >&2; exit 1; }

# A server that died during the run leaves its remaining cases out of the report (wstest only
# logs "Connection refused"): say so loudly.
died=0
for name in sigma_asyncio sigma_trio; do
    if [[ $name == sigma_asyncio ]]; then pid="${PIDS[0]}"; else pid="${PIDS[1]}"; fi
    if ! kill -0 "$pid" 2>/dev/null; then
        died=1
        echo "run.sh: $name (pid $pid) died during the run; its log ends with:" >&2
        tail -30 "$WORK/$name.log" >&2
    fi
done
stop_servers

echo "reports: $REPORT_DIR/index.html  (logs: $WORK)"
status=0
"$PYTHON" "$HERE/summarize.py" "$REPORT_DIR" || status=$?
if [[ $died -ne 0 && $status -eq 0 ]]; then status=1; fi
exit "$status"
