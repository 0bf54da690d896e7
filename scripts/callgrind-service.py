#!/usr/bin/env python3
"""Instructions per request of a whole service process — request threads *and* the export
thread — under callgrind: a load-independent, all-in figure for machines whose timings are too
noisy to compare (docs/performance.md, "Sixth session").

    scripts/callgrind-service.py [--binary target/release/service-c] [--requests 400,2000]
    KEEP=/tmp/cg scripts/callgrind-service.py   # keep the callgrind files (callgrind_annotate)

It starts the service (service c's `GET /work`: the SERVER span + `trace3`, every request with
traceparent, uber-trace-id, sentry-trace and baggage) under `valgrind --tool=callgrind`,
traced (OTLP http/protobuf to a receiver in this script that counts the spans' bytes) and with
`OTEL_SDK_DISABLED=true`, each at two request counts; stops it with SIGTERM (the pipeline
flushes) and prints (Ir at the larger count − Ir at the smaller) / (difference in requests):
start-up and shutdown cancel out. Ports are free ports; every process started is stopped.
"""
import argparse
import http.client
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver(http.server.BaseHTTPRequestHandler):
    posts = 0
    body_bytes = 0

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        self.rfile.read(n)
        Receiver.posts += 1
        Receiver.body_bytes += n
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def wait_listening(port, proc, secs=120):
    deadline = time.time() + secs
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the service exited early ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the service did not listen")


def service_env(http_port, otlp_port, traced):
    """Service c's environment: its two ports, no demo delay, OTLP http/protobuf to the
    receiver, and `OTEL_SDK_DISABLED` unless `traced`; the caller's tracing settings removed."""
    env = dict(os.environ)
    for k in ["OTEL_SDK_DISABLED", "OTEL_PROPAGATORS", "OTEL_TRACES_SAMPLER", "RUST_LOG",
              "SENTRY_DSN", "OTEL_BSP_MAX_QUEUE_SIZE"]:
        env.pop(k, None)
    env.update({
        "C_LISTEN": f"127.0.0.1:{free_port()}",
        "C_HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "DEMO_DELAY_MS": "0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    })
    if not traced:
        env["OTEL_SDK_DISABLED"] = "true"
    return env


def run(binary, requests, traced, otlp_port, out_dir):
    http_port = free_port()
    out = os.path.join(out_dir, f"cg.{'traced' if traced else 'bare'}.{requests}")
    env = service_env(http_port, otlp_port, traced)
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(out + ".log", "w"))
    try:
        wait_listening(http_port, proc)
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=30)
        t, s = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        headers = {
            "traceparent": f"00-{t}-{s}-01",
            "uber-trace-id": f"{t}:{s}:0:1",
            "sentry-trace": f"{t}-{s}-1",
            "baggage": f"sentry-trace_id={t},sentry-public_key=benchkey,sentry-sample_rate=1,"
                       "sentry-sampled=true,sentry-environment=bench,user.tier=gold",
        }
        for _ in range(requests):
            conn.request("GET", "/work", headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit(f"GET /work: {r.status}")
        conn.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with open(out) as f:
        for line in f:
            m = re.match(r"(summary|totals): (\d+)", line)
            if m:
                return int(m.group(2))
    raise SystemExit(f"no totals in {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/service-c"))
    ap.add_argument("--requests", default="400,2000")
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    lo, hi = (int(x) for x in a.requests.split(","))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    otlp_port = server.server_address[1]
    keep = os.environ.get("KEEP")
    with tempfile.TemporaryDirectory() as tmp:
        d = keep or tmp
        if keep:
            os.makedirs(keep, exist_ok=True)
        rows = []
        for traced in (False, True):
            before = Receiver.body_bytes
            ir = [run(a.binary, n, traced, otlp_port, d) for n in (lo, hi)]
            per = (ir[1] - ir[0]) / (hi - lo)
            rows.append((traced, per, Receiver.body_bytes - before))
    server.shutdown()
    bare = rows[0][1]
    print(f"| service c `GET /work` {a.label} | Ir / request | vs OTEL_SDK_DISABLED | OTLP bytes received |")
    print("|---|---:|---:|---:|")
    for traced, per, received in rows:
        name = "traced" if traced else "OTEL_SDK_DISABLED"
        print(f"| {name} | {per:,.0f} | {bare / per:.3f} | {received:,} |")


if __name__ == "__main__":
    main()
