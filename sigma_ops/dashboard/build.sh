#!/usr/bin/env bash
# Rebuild sigma_ops/dashboard/dashboard.js from src/main.ts and the TypeScript client, with the
# chat web app's Vite (bash examples/chat/build.sh installs it). The output is committed;
# tests/test_ops_dashboard_build.py checks it is what this script makes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
repo=../..
vite="$repo/examples/chat/web/node_modules/.bin/vite"
[[ -x "$vite" ]] || bash "$repo/examples/chat/build.sh" >/dev/null

"$vite" build --config vite.config.mjs
cp .build/dashboard.js dashboard.js
rm -rf .build
