#!/usr/bin/env bash
# Builds Jaeger v2 (module github.com/jaegertracing/jaeger v1.76.0 = Jaeger v2.13.0, its
# cmd/jaeger) from the Go module proxy into target/interop/jaeger, pinned by
# interop/jaeger/go.mod + go.sum. Idempotent: quick when the binary is newer than the pins.
# Tests find the binary through $TRACEBRIDGE_JAEGER (set it to use another build) or at
# target/interop/jaeger.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mod="$root/interop/jaeger"
out="${TRACEBRIDGE_JAEGER:-$root/target/interop/jaeger}"

if [ -x "$out" ] && [ "$out" -nt "$mod/go.mod" ] && [ "$out" -nt "$mod/go.sum" ]; then
  exit 0
fi
command -v go >/dev/null || { echo "ensure-jaeger: 'go' is not on PATH (Go 1.26 is needed to build Jaeger)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
start=$(date +%s)
# -mod=readonly: the build uses exactly the versions go.sum pins, never updates them.
(cd "$mod" && go build -mod=readonly -trimpath -o "$out.tmp" github.com/jaegertracing/jaeger/cmd/jaeger)
mv "$out.tmp" "$out"
echo "jaeger built in $(( $(date +%s) - start )) s: $out ($("$out" version 2>/dev/null | head -c 200 || true))"
