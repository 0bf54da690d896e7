#!/usr/bin/env bash
# Starts a throwaway Bugsink (Sentry-compatible server) on a free loopback port with a fresh data
# dir, sets it up non-interactively (phone-home off, admin user, API token, a team, one project
# per name given, default `mesh`) and prints one JSON line on stdout:
#   {"url": ..., "api": ..., "token": ..., "pid": ..., "data_dir": ...,
#    "projects": {NAME: {"id": ..., "dsn": ...}, ...}, "dsn": ..., "project_id": ...}
# (`dsn` and `project_id` are the first project's.)   scripts/bugsink-start.sh [PROJECT...]
# Stop it with scripts/bugsink-stop.sh PID DATA_DIR (by pid, never by name).
# Needs scripts/ensure-bugsink.sh first. Env: BUGSINK_VENV (default <repo>/.venv-bugsink),
# BUGSINK_DATA_DIR (default: a new temp dir).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${BUGSINK_VENV:-$root/.venv-bugsink}"
py="$venv/bin/python"
if [ ! -x "$venv/bin/gunicorn" ]; then
  echo "bugsink-start: no Bugsink in $venv; run scripts/ensure-bugsink.sh" >&2
  exit 1
fi

data="${BUGSINK_DATA_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/tracebridge-bugsink.XXXXXX")}"
mkdir -p "$data"
cd "$data"
log() { printf 'bugsink-start: %s\n' "$*" >&2; }

free_port() {
  "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
port="$(free_port)"
url="http://127.0.0.1:$port"

"$venv/bin/bugsink-create-conf" --template=local --host=127.0.0.1 --port="$port" -o bugsink_conf.py >/dev/null
# No phone-home from a test server (and the network is closed anyway).
"$py" - <<'PY'
import re
path = "bugsink_conf.py"
text = open(path).read()
text, n = re.subn(r"^BUGSINK = \{", 'BUGSINK = {\n    "PHONEHOME": False,', text, count=1, flags=re.M)
if n != 1:
    raise SystemExit("bugsink_conf.py has no BUGSINK = { dict to turn PHONEHOME off in")
open(path, "w").write(text)
PY

export DJANGO_SETTINGS_MODULE=bugsink_conf PYTHONPATH="$data${PYTHONPATH:+:$PYTHONPATH}"
"$venv/bin/bugsink-manage" migrate -v0 >&2
"$venv/bin/bugsink-manage" migrate snappea --database=snappea -v0 >&2
DJANGO_SUPERUSER_PASSWORD=admin "$venv/bin/bugsink-manage" createsuperuser --noinput \
  --username admin --email admin@example.com >/dev/null
token="$("$venv/bin/bugsink-manage" create_auth_token | tail -n 1 | tr -d '[:space:]')"

# Detached from our stdout, so a caller reading this script's output is not kept waiting.
"$venv/bin/gunicorn" --bind="127.0.0.1:$port" --workers=1 --threads=4 --no-control-socket \
  --pid "$data/gunicorn.pid" bugsink.wsgi </dev/null >"$data/bugsink.log" 2>&1 &
pid=$!

for _ in $(seq 1 300); do
  if curl -fsS -o /dev/null "$url/health/ready" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    log "gunicorn exited; its log:"
    cat "$data/bugsink.log" >&2
    exit 1
  fi
  sleep 0.1
done
if ! curl -fsS -o /dev/null "$url/health/ready"; then
  log "not ready after 30 s; stopping pid $pid"
  kill "$pid" 2>/dev/null || true
  exit 1
fi

api="$url/api/canonical/0"
call() { # METHOD PATH [JSON]
  curl -fsS -X "$1" -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
    ${3:+--data "$3"} "$api$2"
}
field() { "$py" -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
team="$(call POST /teams/ '{"name":"demo"}' | field id)"
[ "$#" -gt 0 ] || set -- mesh
projects=()
for name in "$@"; do
  case "$name" in
    *[!A-Za-z0-9_.-]*|"") log "project name $name: use letters, digits, . _ -"; kill "$pid"; exit 1 ;;
  esac
  id="$(call POST /projects/ "{\"name\":\"$name\",\"team\":\"$team\"}" | field id)"
  dsn="$(call GET "/projects/$id/" | field dsn)"
  projects+=("$name" "$id" "$dsn")
done

"$py" - "$url" "$api" "$token" "$pid" "$data" "${projects[@]}" <<'PY' | tee "$data/bugsink.json"
import json, sys
url, api, token, pid, data, *rest = sys.argv[1:]
projects = {rest[i]: {"id": rest[i + 1], "dsn": rest[i + 2]} for i in range(0, len(rest), 3)}
first = projects[rest[0]]
print(json.dumps({"url": url, "api": api, "token": token, "pid": int(pid), "data_dir": data,
                  "projects": projects, "dsn": first["dsn"], "project_id": first["id"]}))
PY
