#!/usr/bin/env bash
# Build what the chat needs, only when something changed: the TypeScript client (clients/js) and
# the web app (examples/chat/web -> web/dist). `npm ci` runs when node_modules is missing or
# package-lock.json changed; a build runs when its inputs' hash differs from the last build's.
# Needs Node >= 20.19 with npm (Vite 8). Usage: bash examples/chat/build.sh [--force]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
force="${1:-}"

command -v node >/dev/null && command -v npm >/dev/null \
  || { echo "chat: node and npm are required (Node >= 20.19)" >&2; exit 1; }
node -e 'const [a, b] = process.versions.node.split(".").map(Number);
         process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
  || { echo "chat: Node >= 20.19 is required by Vite 8 (found $(node --version))" >&2; exit 1; }

# npm ci in $1 unless its node_modules matches its package-lock.json (same stamp as
# clients/js/scripts/test.sh uses).
npm_ci() {
  local dir="$1" want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [[ ! -f "$dir/node_modules/.sigma-lock-sha256" \
        || "$(cat "$dir/node_modules/.sigma-lock-sha256")" != "$want" ]]; then
    echo "== npm ci ($dir)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$dir/node_modules/.sigma-lock-sha256"
  fi
}

# Hash of the files (and directories, recursively) given, for build stamps.
inputs_hash() {
  find "$@" -type f -not -path '*/node_modules/*' -print0 | LC_ALL=C sort -z \
    | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

js=clients/js
npm_ci "$js"
want="$(inputs_hash "$js/src" "$js/tsconfig.json" "$js/package-lock.json")"
if [[ "$force" == --force || ! -f "$js/dist/src/index.js" \
      || "$(cat "$js/dist/.sigma-build-sha256" 2>/dev/null)" != "$want" ]]; then
  echo "== build $js"
  (cd "$js" && npm run --silent build)
  echo "$want" > "$js/dist/.sigma-build-sha256"
fi

web=examples/chat/web
npm_ci "$web"
want="$(inputs_hash "$web/src" "$web/index.html" "$web/vite.config.ts" "$web/tsconfig.json" \
                    "$web/package-lock.json" "$js/src")"
if [[ "$force" == --force || ! -f "$web/dist/index.html" \
      || "$(cat "$web/dist/.sigma-build-sha256" 2>/dev/null)" != "$want" ]]; then
  echo "== build $web"
  (cd "$web" && npm run --silent build >/dev/null)
  echo "$want" > "$web/dist/.sigma-build-sha256"
fi
