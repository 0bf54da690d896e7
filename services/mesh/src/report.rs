//! What `mesh` prints per trace: the trace id in the forms each backend shows it, then the
//! span tree as a waterfall.

use std::fmt::Write as _;

use tracebridge_testkit::trace::Trace;

/// The trace id as W3C (`traceparent`), Jaeger (`uber-trace-id`, Jaeger UI search) and Sentry
/// (`sentry-trace`, `contexts.trace.trace_id`) write it, continuing from `span_id`.
pub fn id_forms(trace_id: &str, span_id: &str) -> String {
    let jaeger = trace_id.trim_start_matches('0');
    let jaeger = if jaeger.is_empty() { "0" } else { jaeger };
    let mut out = String::new();
    let _ = writeln!(out, "  W3C     traceparent:   00-{trace_id}-{span_id}-01");
    let _ = writeln!(out, "  Jaeger  uber-trace-id: {jaeger}:{span_id}:0:1   (Jaeger UI: search {trace_id})");
    let _ = writeln!(out, "  Sentry  sentry-trace:  {trace_id}-{span_id}-1   (contexts.trace.trace_id)");
    out
}

/// One trace's section of the report: a title, the id forms (from the root span), the
/// waterfall.
pub fn trace_section(title: &str, trace: &Trace) -> String {
    let root = trace.root();
    let mut out = format!("== {title}\n");
    out.push_str(&id_forms(trace.trace_id(), &root.span_id));
    out.push_str(&waterfall(trace));
    out
}

/// The waterfall of `trace`.
pub fn waterfall(trace: &Trace) -> String {
    trace.dump()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaeger_form_drops_leading_zeros() {
        let forms = id_forms("0000000000000000a3ce929d0e0e4736", "00f067aa0ba902b7");
        assert!(forms.contains("00-0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert!(forms.contains("uber-trace-id: a3ce929d0e0e4736:00f067aa0ba902b7:0:1"));
        assert!(forms.contains("sentry-trace:  0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-1"));
    }
}
