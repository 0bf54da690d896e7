"""Independent propagator implementations for tracebridge's interop test.

`emit`: prints JSON cases, each the headers one implementation writes for a known context,
        with that context's ids (taken from the implementation's own objects).
`parse`: reads JSON headers on stdin, prints what each implementation extracts from them.
"""

import json
import sys

from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.propagators.jaeger import JaegerPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import sentry_sdk
from sentry_sdk.tracing_utils import Baggage as SentryBaggage
from sentry_sdk.transport import Transport

OTEL = {
    "tracecontext": TraceContextTextMapPropagator(),
    "jaeger": JaegerPropagator(),
    "b3": B3SingleFormat(),
    "b3multi": B3MultiFormat(),
}


class NoTransport(Transport):
    def capture_envelope(self, envelope):
        pass


def sentry_init(traces_sample_rate):
    sentry_sdk.init(
        dsn="https://49d0f7386ad645858ae85020e393bef3@o1.ingest.invalid/1",
        traces_sample_rate=traces_sample_rate,
        release="web@1.0",
        environment="interop",
        transport=NoTransport,
    )


def otel_cases():
    cases = []
    for i, (name, prop) in enumerate(OTEL.items()):
        for sampled in (True, False):
            trace_id = 0x4BF92F3577B34DA6A3CE929D0E0E4700 + i * 2 + int(sampled)
            span_id = 0x00F067AA0BA90200 + i * 2 + int(sampled)
            flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
            state = TraceState([("vendor", "v1"), ("other", "x")])
            sc = SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags, trace_state=state)
            ctx = trace.set_span_in_context(NonRecordingSpan(sc))
            # No spaces: Python writes a space as `+`, which W3C Baggage reads as a literal `+`.
            ctx = baggage.set_baggage("user", "alice/smith,€" if name == "tracecontext" else "alice smith", ctx)
            carrier = {}
            prop.inject(carrier, context=ctx)
            if name == "tracecontext":
                W3CBaggagePropagator().inject(carrier, context=ctx)
            cases.append(
                {
                    "format": name,
                    "headers": carrier,
                    "trace_id": format(trace_id, "032x"),
                    "span_id": format(span_id, "016x"),
                    "sampled": sampled,
                }
            )
    # A 64-bit Jaeger trace id as Jaeger clients still send it.
    carrier = {"uber-trace-id": "a3ce929d0e0e4736:f067aa0ba902b7:0:1"}
    ctx = OTEL["jaeger"].extract(carrier)
    sc = trace.get_current_span(ctx).get_span_context()
    cases.append(
        {
            "format": "jaeger",
            "headers": carrier,
            "trace_id": format(sc.trace_id, "032x"),
            "span_id": format(sc.span_id, "016x"),
            "sampled": sc.trace_flags.sampled,
        }
    )
    return cases


def sentry_cases():
    cases = []
    for sampled in (True, False):
        sentry_init(1.0)
        with sentry_sdk.start_transaction(name="interop", op="http.client", sampled=sampled) as tx:
            cases.append(
                {
                    "format": "sentry",
                    "headers": {
                        "sentry-trace": sentry_sdk.get_traceparent(),
                        "baggage": sentry_sdk.get_baggage(),
                    },
                    "trace_id": tx.trace_id,
                    "span_id": tx.span_id,
                    "sampled": sampled,
                }
            )
    # Tracing off in the head SDK: propagation context only, sampling deferred.
    sentry_init(None)
    header = sentry_sdk.get_traceparent()
    trace_id, span_id = header.split("-")[:2]
    cases.append(
        {
            "format": "sentry",
            "headers": {"sentry-trace": header, "baggage": sentry_sdk.get_baggage()},
            "trace_id": trace_id,
            "span_id": span_id,
            "sampled": None,
        }
    )
    return cases


def parse(headers):
    out = {}
    for name, prop in OTEL.items():
        ctx = prop.extract(headers)
        sc = trace.get_current_span(ctx).get_span_context()
        out[name] = {
            "valid": sc.is_valid,
            "trace_id": format(sc.trace_id, "032x"),
            "span_id": format(sc.span_id, "016x"),
            "sampled": sc.trace_flags.sampled,
            "flags": int(sc.trace_flags),
            "tracestate": sc.trace_state.to_header() if name == "tracecontext" else None,
            "baggage": {k: str(v) for k, v in baggage.get_all(ctx).items()},
        }
    out["baggage"] = {
        k: str(v) for k, v in baggage.get_all(W3CBaggagePropagator().extract(headers)).items()
    }
    sentry_init(1.0)
    tx = sentry_sdk.continue_trace(headers, op="http.server", name="interop")
    incoming = SentryBaggage.from_incoming_header(headers.get("baggage"))
    out["sentry"] = {
        "trace_id": tx.trace_id,
        "parent_span_id": tx.parent_span_id,
        "parent_sampled": tx.parent_sampled,
        "dsc": incoming.sentry_items,
        "third_party": incoming.third_party_items,
    }
    return out


def main():
    mode = sys.argv[1]
    if mode == "emit":
        print(json.dumps(otel_cases() + sentry_cases()))
    elif mode == "parse":
        print(json.dumps(parse(json.load(sys.stdin))))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
