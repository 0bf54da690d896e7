#!/usr/bin/env bash
# Installs the demo page's npm packages (npm ci, from the committed lockfile) and builds
# frontend/dist (index.html + the bundled app.js), which service a serves from FRONTEND_DIR.
# Idempotent: skips `npm ci` when node_modules is newer than package-lock.json, and the build
# when dist is newer than every source file.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/frontend"

newer_than_all() { # TARGET FILE...: true when TARGET exists and is newer than every FILE
  local target="$1"; shift
  [ -e "$target" ] || return 1
  [ -z "$(find "$@" -newer "$target" -print -quit)" ]
}

# npm ci touches node_modules/.package-lock.json last, so its time says the install finished.
if ! newer_than_all node_modules/.package-lock.json package-lock.json package.json; then
  npm ci --no-audit --no-fund --loglevel=error
fi

if ! newer_than_all dist/app.js src build.mjs package-lock.json node_modules/.package-lock.json \
   || [ ! -e dist/index.html ]; then
  npm run --silent build
fi
