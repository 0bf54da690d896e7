#!/usr/bin/env python3
"""Where a traced service's extra resident memory is: service c (`GET /work`, the same request
as scripts/callgrind-service.py) traced and with `OTEL_SDK_DISABLED=true`, each under the same
fixed-rate load (`tb-bench load`, open loop) for a few seconds, server on CPU 0 and load on
CPU 1; then VmRSS of both and the mappings whose resident size differs most (docs/performance.md,
"Eighth session"). Needs `cargo build --release -p service-c -p tracebridge-bench`.

    scripts/rss-service.py [--binary target/release/service-c] [--rate 20000] [--secs 6]
    scripts/rss-service.py --env OTEL_BSP_MAX_QUEUE_SIZE=512   # the same with a setting

The bench's `tb-bench rate` reports the same RSS difference; this script says where it sits
(the binary's code pages, a thread's malloc arena, the queue's ring). Ports are free ports;
every process started is stopped.
"""
import argparse
import collections
import http.server
import importlib.util
import os
import re
import signal
import subprocess
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The receiver, free ports, the service's environment and the wait for a listener are
# callgrind-service.py's.
_spec = importlib.util.spec_from_file_location(
    "callgrind_service", os.path.join(ROOT, "scripts", "callgrind-service.py"))
cgs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cgs)

TRACE_ID, SPAN_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def resident_by_mapping(pid):
    """KiB resident per mapping: files by path, anonymous ones by their size."""
    out = collections.Counter()
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                start, end = (int(x, 16) for x in parts[0].split("-"))
                name = parts[5] if len(parts) > 5 else f"[anon {(end - start) // 1024} KiB]"
            elif line.startswith("Rss:"):
                out[name] += int(line.split()[1])
    return out


def vm_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])


def run(binary, tb_bench, traced, otlp_port, rate, secs, extra_env):
    http_port = cgs.free_port()
    env = cgs.service_env(http_port, otlp_port, traced)
    env.update(extra_env)
    proc = subprocess.Popen(["taskset", "-c", "0", binary], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        cgs.wait_listening(http_port, proc)
        subprocess.run(["taskset", "-c", "1", tb_bench, "load", "--proto", "http",
                        "--addr", f"127.0.0.1:{http_port}", "--path", "/work",
                        "--millis", str(int(secs * 1000)), "--rate", str(rate),
                        "--trace-id", TRACE_ID, "--span-id", SPAN_ID],
                       check=True, stdout=subprocess.DEVNULL)
        return vm_rss(proc.pid), resident_by_mapping(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/service-c"))
    ap.add_argument("--tb-bench", default=os.path.join(ROOT, "target/release/tb-bench"))
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--secs", type=float, default=6)
    ap.add_argument("--env", action="append", default=[], help="NAME=value for both runs")
    a = ap.parse_args()
    extra_env = dict(e.split("=", 1) for e in a.env)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), cgs.Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    otlp_port = server.server_address[1]
    try:
        bare = run(a.binary, a.tb_bench, False, otlp_port, a.rate, a.secs, extra_env)
        traced = run(a.binary, a.tb_bench, True, otlp_port, a.rate, a.secs, extra_env)
    finally:
        server.shutdown()
    print(f"VmRSS at {a.rate} req/s: bare {bare[0]} KiB, traced {traced[0]} KiB, "
          f"traced - bare {traced[0] - bare[0]:+} KiB")
    print("| mapping | bare KiB | traced KiB | traced - bare |")
    print("|---|---:|---:|---:|")
    names = set(bare[1]) | set(traced[1])
    rows = sorted(names, key=lambda n: -abs(traced[1][n] - bare[1][n]))
    for n in rows[:12]:
        if traced[1][n] != bare[1][n]:
            print(f"| {n} | {bare[1][n]} | {traced[1][n]} | {traced[1][n] - bare[1][n]:+} |")


if __name__ == "__main__":
    main()
