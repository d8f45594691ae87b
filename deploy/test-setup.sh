#!/usr/bin/env bash
# What the deploy tests (tests/test_deploy_*.py) need besides the venv: Debian's nginx, run by
# the tests as a plain process (never as a service). Installed with apt when missing and running
# as root; quick when it is there. Usage: bash deploy/test-setup.sh
set -euo pipefail
if [[ ! -x /usr/sbin/nginx ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "== apt-get install nginx-light (for tests/test_deploy_nginx.py)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light \
      >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends nginx >/dev/null
  else
    echo "deploy tests: /usr/sbin/nginx is missing: install Debian's nginx package" >&2
    exit 1
  fi
fi
