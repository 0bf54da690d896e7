#!/usr/bin/env bash
# Runs every check and test of the workspace. README.md's test command; .ci/run calls it.
#
# Installs what the tests need (idempotent, quick when already present): the Python venv with
# the independent propagator implementations, Node packages for the browser test, Debian's
# Chromium, Bugsink. Set TRACEBRIDGE_SKIP_INSTALL=1 to skip the installs (then tests that need
# them fail with a message saying what is missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check

step "one opentelemetry version (cargo tree -d)"
if cargo tree -d --workspace --edges normal,build 2>/dev/null | grep -E '^opentelemetry' ; then
  echo "two versions of an opentelemetry crate are in the tree" >&2
  exit 1
fi

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

if [ "${TRACEBRIDGE_SKIP_INSTALL:-0}" != 1 ]; then
  for s in scripts/ensure-*.sh; do
    [ -e "$s" ] || continue
    step "$s"
    bash "$s"
  done
fi

step "cargo test --workspace"
status=0
cargo test --workspace --locked --no-fail-fast || status=$?

for s in scripts/check-*.sh; do
  [ -e "$s" ] || continue
  step "$s"
  bash "$s"
done

exit "$status"
