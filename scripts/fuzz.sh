#!/usr/bin/env bash
# The documented long fuzzing run of every header parser (see docs/operations.md, "Fuzzing").
#
#   scripts/fuzz.sh [ITERATIONS] [SEED]
#
# ITERATIONS (default 1000000) random header maps, plus ITERATIONS/4 lone traceparents checked
# against a reference parser; SEED (default the CI seed) makes a run reproducible. It is the
# same test as the CI smoke run (middleware/tests/hostile_headers.rs), only longer; it prints
# one `fuzz:` line with the numbers and fails on the first panic or broken invariant, showing
# the input.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations="${1:-1000000}"
seed="${2:-8390876135275262564}"
FUZZ_ITERATIONS="$iterations" FUZZ_SEED="$seed" \
  cargo test -p tracebridge --test hostile_headers fuzz_every_header_parser -- --nocapture
