#!/usr/bin/env bash
# callgrind instructions per request of the in-process server-layer bench
# (middleware/benches/server_layer.rs; docs/performance.md, "Where the time goes"): one request
# with all four trace headers through the router / gRPC service, no sockets, no export.
#
#   scripts/callgrind.sh                          # the five: server/axum_bare, axum_tracebridge,
#                                                 # work_axum_tracebridge (+ an #[instrument]
#                                                 # span with one event), grpc_bare,
#                                                 # grpc_tracebridge
#   scripts/callgrind.sh server/axum_tracebridge  # one of them
#   KEEP=1 scripts/callgrind.sh ...               # keep the callgrind.out files (for
#                                                 # callgrind_annotate / kcachegrind)
#
# How: each bench runs alone under `valgrind --tool=callgrind` (criterion `--profile-time 2`:
# a fixed time, no analysis); every request is one call of the bench's `call` function, and
# callgrind records, per call site, the number of calls and their inclusive instruction count
# (Ir). Ir / calls of the `call` instantiation called most (the bench's own; the setup's
# checks call the others once) is the figure. Instruction counts do not depend on the load
# of the machine, unlike the timings.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! command -v valgrind >/dev/null; then
  echo "callgrind.sh: valgrind is not installed (Debian/Ubuntu: apt-get install valgrind)" >&2
  exit 1
fi

benches=("$@")
if [[ ${#benches[@]} -eq 0 ]]; then
  benches=(server/axum_bare server/axum_tracebridge server/work_axum_tracebridge server/grpc_bare server/grpc_tracebridge)
fi

echo "==> cargo bench --no-run (tracebridge, server_layer)" >&2
bin="$(cargo bench --locked -p tracebridge --bench server_layer --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "server_layer" and m.get("executable"):
        print(m["executable"])
')"
if [[ -z "$bin" ]]; then
  echo "callgrind.sh: could not build the server_layer bench (run: cargo bench -p tracebridge --bench server_layer --no-run)" >&2
  exit 1
fi

out_dir="$(mktemp -d)"
[[ -n "${KEEP:-}" ]] || trap 'rm -rf "$out_dir"' EXIT

printf '| bench | requests | Ir / request |\n|---|---:|---:|\n'
for b in "${benches[@]}"; do
  out="$out_dir/callgrind.out.${b//\//_}"
  # --demangle=no: every instantiation of the generic `call` keeps its own symbol (hash).
  valgrind --tool=callgrind --callgrind-out-file="$out" --demangle=no --compress-strings=no \
    --compress-pos=no "$bin" --bench --profile-time 2 "$b" >/dev/null 2>"$out.log" || {
    echo "callgrind.sh: valgrind failed for $b:" >&2
    tail -20 "$out.log" >&2
    exit 1
  }
  python3 - "$out" "$b" <<'EOF'
import re, sys
path, bench = sys.argv[1], sys.argv[2]
calls, cost = {}, {}
callee, pending = None, False
with open(path) as f:
    for line in f:
        if line.startswith("cfn="):
            callee = line[4:].strip()
        elif line.startswith("calls="):
            pending = True
            n = int(line[6:].split()[0])
        elif pending:
            pending = False
            # "<position> <Ir>": the inclusive cost of those calls.
            if callee and re.search(r"12server_layer4call17h[0-9a-f]{16}E", callee):
                calls[callee] = calls.get(callee, 0) + n
                cost[callee] = cost.get(callee, 0) + int(line.split()[1])
if not calls:
    sys.exit(f"callgrind.sh: no call of server_layer::call recorded for {bench}")
top = max(calls, key=calls.get)
print(f"| {bench} | {calls[top]} | {cost[top] / calls[top]:,.0f} |")
EOF
done
[[ -z "${KEEP:-}" ]] || echo "callgrind files kept in $out_dir" >&2
