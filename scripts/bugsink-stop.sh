#!/usr/bin/env bash
# Stops a Bugsink started by scripts/bugsink-start.sh, by its pid (never by name), and removes its
# data dir when given.   scripts/bugsink-stop.sh PID [DATA_DIR]
set -euo pipefail
pid="${1:?usage: bugsink-stop.sh PID [DATA_DIR]}"
data="${2:-}"
if kill -TERM "$pid" 2>/dev/null; then
  # gunicorn's master stops its worker on TERM; give it 10 s, then KILL.
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
fi
if [ -n "$data" ] && [ -f "$data/bugsink_conf.py" ]; then
  rm -rf "$data"
fi
