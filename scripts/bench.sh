#!/usr/bin/env bash
# The load benchmark of docs/performance.md, in one command: builds the harness and the demo
# services (release), then runs every variant against bare axum / bare tonic in interleaved
# rounds, server pinned to CPU 0 and load to CPU 1, and prints the markdown table.
#
#   scripts/bench.sh            # full run: 5 rounds × 10 s per variant + the a→b→c mesh (~20 min)
#   scripts/bench.sh --quick    # smoke test: 2 rounds × 2 s
#   scripts/bench.sh --only axum-tracebridge,tonic-tracebridge --no-mesh --rounds 3
#   scripts/bench.sh --backends                 # dead / slow collector + unreachable Sentry vs
#                                               # healthy: 5 rounds × 10 s (~15 min)
#   scripts/bench.sh --backends --quick         # smoke test: 2 rounds × 2 s
#   scripts/bench.sh --rate                     # fixed-rate server CPU per request (issue 11's
#                                               # main figure): 20% and 50% of bare capacity,
#                                               # 5 rounds × 10 s per pair (~30 min)
#   scripts/bench.sh --rate --quick             # smoke test: 2 rounds × 3 s
#   scripts/bench.sh --rate --only service-c --percents 50 --secs 60 --rounds 1   # zero-drop check
#
# Extra arguments go to `tb-bench run` (see `tb-bench list` for the variants). The numbers are
# only meaningful on an otherwise idle machine: the script prints the load average first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

cmd=run
if [[ "${1:-}" == "--rate" ]]; then
  # `tb-bench rate` (docs/performance.md, "Fixed-rate CPU per request"): every pair, the
  # service-c and mesh pairs need the demo services.
  cmd=rate
  shift
  echo "==> cargo build --release (tb-bench, service-a, service-b, service-c)" >&2
  cargo build --release --locked -p tracebridge-bench -p service-a -p service-b -p service-c >&2
elif [[ "${1:-}" == "--backends" ]]; then
  # `tb-bench backends` (docs/operations.md, "Dead or slow backends: throughput"): the
  # tracebridge variants only, no mesh, so the demo services are not needed.
  cmd=backends
  shift
  echo "==> cargo build --release (tb-bench)" >&2
  cargo build --release --locked -p tracebridge-bench >&2
else
  echo "==> cargo build --release (tb-bench, service-a, service-b, service-c)" >&2
  cargo build --release --locked -p tracebridge-bench -p service-a -p service-b -p service-c >&2
fi

echo "==> machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(uname -sr); $(rustc --version)" >&2
echo "==> load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (numbers are noisy above ~1.5 on 2 CPUs)" >&2
exec "$target/release/tb-bench" "$cmd" "$@"
