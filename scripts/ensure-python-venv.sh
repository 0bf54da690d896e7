#!/usr/bin/env bash
# Creates <repo>/.venv-interop with the independent propagator implementations the interop test
# compares against (Python OpenTelemetry W3C/Jaeger/B3 propagators and sentry-sdk), pinned.
# Idempotent and fast when present: a stamp file records the pinned set it was built from.
# Prints the venv's python path on the last line. Exits non-zero, loudly, when it cannot.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${INTEROP_VENV:-$repo/.venv-interop}"
packages=(
  "opentelemetry-api==1.45.2"
  "opentelemetry-sdk==1.45.2"
  "opentelemetry-propagator-jaeger==1.45.1"
  "opentelemetry-propagator-b3==1.45.1"
  "sentry-sdk==2.75.0"
)
want="${packages[*]}"
stamp="$venv/.tracebridge-interop"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "$venv/bin/python"
  exit 0
fi

python="${PYTHON:-$(command -v python3 || true)}"
if [[ -z "$python" ]]; then
  echo "ensure-python-venv: python3 not found (install python3 and python3-venv)" >&2
  exit 1
fi

# Build next to the target and move into place, so a half-built venv is never used.
tmp="$venv.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
if ! "$python" -m venv "$tmp" >&2; then
  echo "ensure-python-venv: '$python -m venv' failed (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
if ! "$tmp/bin/python" -m pip install --disable-pip-version-check --quiet "${packages[@]}" >&2; then
  echo "ensure-python-venv: pip install of ${packages[*]} failed" >&2
  exit 1
fi
echo "$want" > "$tmp/.tracebridge-interop"
# Only bin/python is used (never the entry-point scripts with absolute shebangs), and it finds
# its site-packages relative to itself, so the finished venv can be moved into place.
rm -rf "$venv"
mv "$tmp" "$venv"
trap - EXIT
echo "$venv/bin/python"
