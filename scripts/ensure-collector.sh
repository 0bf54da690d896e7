#!/usr/bin/env bash
# Builds otelcol-tracebridge, the project's own OpenTelemetry Collector distribution
# (interop/collector: otlp receiver, loadbalancing exporter, tail_sampling, batch,
# memory_limiter, otlp and debug exporters; collector release v0.161.0) from the Go module proxy
# into target/interop/otelcol-tracebridge, pinned by interop/collector/go.mod + go.sum.
# Idempotent: quick when the binary is newer than the sources and pins.
# Tests find the binary through $TRACEBRIDGE_COLLECTOR (set it to use another build) or at
# target/interop/otelcol-tracebridge.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mod="$root/interop/collector"
out="${TRACEBRIDGE_COLLECTOR:-$root/target/interop/otelcol-tracebridge}"

if [ -x "$out" ] && [ "$out" -nt "$mod/go.mod" ] && [ "$out" -nt "$mod/go.sum" ] && [ "$out" -nt "$mod/main.go" ]; then
  exit 0
fi
command -v go >/dev/null || { echo "ensure-collector: 'go' is not on PATH (Go 1.26 is needed to build the collector)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
start=$(date +%s)
# -mod=readonly: the build uses exactly the versions go.sum pins, never updates them.
(cd "$mod" && go build -mod=readonly -trimpath -o "$out.tmp" .)
mv "$out.tmp" "$out"
echo "otelcol-tracebridge built in $(( $(date +%s) - start )) s: $out ($("$out" --version 2>/dev/null | head -c 200 || true))"
