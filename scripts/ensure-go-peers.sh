#!/usr/bin/env bash
# Builds the Go peer services of the interop tests (interop/go, a Go module of the project's
# own, pinned by its go.mod + go.sum) into target/interop/. Idempotent: quick when every binary
# is newer than the module's files. Tests find them at target/interop/<name> (or through
# $TRACEBRIDGE_GO_PEERS, a directory).
#   sentry-peer — sentry-go with tracing (sentryhttp): continues sentry-trace + baggage (DSC)
#   jaeger-peer — opentracing + jaeger-client-go: uber-trace-id + uberctx-*, spans to Jaeger (Thrift HTTP)
#   otel-peer   — OpenTelemetry Go: ping.PingB over gRPC (otelgrpc) calling C_HTTP_URL/work (otelhttp), OTLP
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mod="$root/interop/go"
out="${TRACEBRIDGE_GO_PEERS:-$root/target/interop}"
peers=(sentry-peer jaeger-peer otel-peer)

newest="$(find "$mod" -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -printf '%T@\n' | sort -n | tail -1)"
stale=0
for p in "${peers[@]}"; do
  if [ ! -x "$out/$p" ] || [ "$(stat -c %Y "$out/$p")" -lt "${newest%.*}" ]; then stale=1; fi
done
[ "$stale" = 0 ] && exit 0
command -v go >/dev/null || { echo "ensure-go-peers: 'go' is not on PATH (Go 1.26 builds interop/go)" >&2; exit 1; }
mkdir -p "$out"
for p in "${peers[@]}"; do
  # -mod=readonly: exactly the versions go.sum pins.
  (cd "$mod" && go build -mod=readonly -trimpath -o "$out/$p.tmp" "./cmd/$p")
  mv "$out/$p.tmp" "$out/$p"
  echo "ensure-go-peers: built $out/$p"
done
