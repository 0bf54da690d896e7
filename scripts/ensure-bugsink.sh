#!/usr/bin/env bash
# Installs Bugsink (a Sentry-compatible server, PyPI `bugsink` 2.6.x) into <repo>/.venv-bugsink for
# the browser end-to-end test. Idempotent: quick when the venv already has it.
# Start and stop an instance with scripts/bugsink-start.sh / scripts/bugsink-stop.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${BUGSINK_VENV:-$root/.venv-bugsink}"

if [ -x "$venv/bin/gunicorn" ] && [ -x "$venv/bin/bugsink-manage" ] \
   && "$venv/bin/python" -c 'import bugsink' 2>/dev/null; then
  exit 0
fi

python="${PYTHON:-python3}"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check 'bugsink==2.6.*'
echo "bugsink installed in $venv: $("$venv/bin/pip" show bugsink 2>/dev/null | sed -n 's/^Version: //p')"
