//! What `mesh` prints per trace: a title, then testkit's waterfall, which opens with the trace
//! id in the forms each backend shows it (W3C `traceparent`, Jaeger `uber-trace-id`, Sentry
//! `sentry-trace`) and draws the span tree with service, name, kind, duration bar and status.

use tracebridge_testkit::SpanRecord;

/// One trace's section of the report; `color` for a terminal (ANSI), plain otherwise.
pub fn trace_section(title: &str, spans: &[SpanRecord], color: bool) -> String {
    let waterfall = if color {
        tracebridge_testkit::waterfall::render_ansi(spans)
    } else {
        tracebridge_testkit::waterfall::render(spans)
    };
    format!("== {title}\n{waterfall}")
}
