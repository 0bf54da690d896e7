#!/usr/bin/env bash
# Validates the configurations in deploy/ (mounted by docker-compose.yml's `scale` profile, used
# by services/mesh/tests/scale.rs) with the binaries that run them: unknown keys, wrong types and
# unknown components fail here, not when a user starts the stack. Placeholder addresses only.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
collector="${TRACEBRIDGE_COLLECTOR:-$root/target/interop/otelcol-tracebridge}"
jaeger="${TRACEBRIDGE_JAEGER:-$root/target/interop/jaeger}"
for bin in "$collector" "$jaeger"; do
  [ -x "$bin" ] || { echo "check-deploy-configs: $bin missing (scripts/ensure-collector.sh, scripts/ensure-jaeger.sh build it)" >&2; exit 1; }
done
export FRONT_OTLP_GRPC=127.0.0.1:4317 SAMPLERS='[sampler-1:4317, sampler-2:4317]' \
  SAMPLER_OTLP_GRPC=127.0.0.1:4317 JAEGER_OTLP_GRPC=jaeger:4317 METRICS_HOST=127.0.0.1 METRICS_PORT=8888 \
  JAEGER_QUERY_HTTP=127.0.0.1:16686 JAEGER_QUERY_GRPC=127.0.0.1:16685 BADGER_DIR=/tmp/badger \
  OPENSEARCH_URL=http://opensearch:9200
"$collector" validate --config "$root/deploy/collector/front.yaml"
"$collector" validate --config "$root/deploy/collector/sampler.yaml"
"$jaeger" validate --config "$root/deploy/jaeger/badger.yaml"
"$jaeger" validate --config "$root/deploy/jaeger/opensearch.yaml"
echo "deploy/: collector and Jaeger configurations valid"
