#!/usr/bin/env bash
# Static check of docker-compose.yml: the Compose specification's schema plus the lint rules that
# matter (ports bound to an interface, explicit image tags, no duplicate ports). No Docker engine
# runs on CI machines, so this is what can be checked; the docs give the commands that run it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
lint="$root/scripts/compose-lint"
if [ ! -x "$lint/node_modules/.bin/dclint" ]; then
  (cd "$lint" && npm ci --silent --no-audit --no-fund)
fi
"$lint/node_modules/.bin/dclint" -c "$lint/dclint.json" "$root/docker-compose.yml"
echo "docker-compose.yml: valid"
