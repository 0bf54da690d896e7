//! Waterfall views of traces: the terminal view the `mesh` demo prints, and a self-contained
//! HTML page for its embedded browser view.
//!
//! Each trace gets a header with its id in the three forms a person pastes into a backend —
//! W3C `traceparent`, Jaeger `uber-trace-id`, Sentry `sentry-trace` — built from the trace's
//! root span, then one row per span: the span tree in start order, with service, name, kind, a
//! bar placed on the trace's time axis, duration and status.
//!
//! ```text
//! trace 4bf92f3577b34da6a3ce929d0e0e4736  3 spans  10.00 ms
//!   W3C     00-4bf92f3577b34da6a3ce929d0e0e4736-00000000000000a1-01
//!   Jaeger  4bf92f3577b34da6a3ce929d0e0e4736:00000000000000a1:0:1
//!   Sentry  4bf92f3577b34da6a3ce929d0e0e4736-00000000000000a1-1
//! SERVICE    SPAN             KIND      TIMELINE              DURATION  STATUS
//! service-a  GET /trace       server    ████████████████████  10.00 ms  ok
//! service-a  └─ trace1        internal  ░░████████████████░░   8.00 ms
//! service-b     └─ ping.Ping  server    ░░░░░░█████████░░░░░   5.00 ms  ERROR boom
//! ```

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::record::{SpanRecord, Status};
use crate::trace::{group, Trace};

/// Renders every trace in `spans` as plain text (no colour codes), traces in start order.
pub fn render(spans: &[SpanRecord]) -> String {
    Waterfall::new().render(spans)
}

/// Like [`render`], with ANSI colours: a colour per service for bars, ERROR in bold red.
pub fn render_ansi(spans: &[SpanRecord]) -> String {
    Waterfall::new().color(true).render(spans)
}

/// A complete, self-contained HTML page (inline CSS, no scripts, no external assets) showing
/// every trace in `spans`.
pub fn render_html(spans: &[SpanRecord]) -> String {
    Waterfall::new().render_html(spans)
}

/// The `<section>` elements of [`render_html`] without the page around them, plus the
/// [`HTML_STYLE`] they need, for embedding in a larger page.
pub fn render_html_fragment(spans: &[SpanRecord]) -> String {
    Waterfall::new().render_html_fragment(spans)
}

/// The stylesheet the HTML fragments use (put it in a `<style>` element).
pub const HTML_STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2330;background:#fff}
section.trace{margin:0 0 2em}
section.trace h2{font-size:1.05em;margin:.2em 0}
dl.ids{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;margin:.3em 0 .8em;font:12px ui-monospace,monospace}
dl.ids dt{color:#667}
dl.ids dd{margin:0}
table.waterfall{border-collapse:collapse;width:100%;font-size:13px}
table.waterfall th{text-align:left;color:#667;font-weight:600;border-bottom:1px solid #ccd;padding:.2em .5em}
table.waterfall td{padding:.15em .5em;border-bottom:1px solid #eef;white-space:nowrap}
td.name{font-family:ui-monospace,monospace}
td.timeline{width:45%}
td.dur{text-align:right;font-variant-numeric:tabular-nums}
.track{position:relative;height:12px;background:#f0f1f5;border-radius:2px}
.bar{position:absolute;top:0;bottom:0;min-width:2px;border-radius:2px}
.svc-0 .bar{background:#3b82f6}.svc-1 .bar{background:#10b981}.svc-2 .bar{background:#f59e0b}
.svc-3 .bar{background:#8b5cf6}.svc-4 .bar{background:#06b6d4}.svc-5 .bar{background:#ec4899}
tr.error .bar{background:#dc2626}
td.status.error{color:#dc2626;font-weight:700}
p.empty{color:#667}
";

const ANSI_SERVICE: [&str; 6] = [
    "\x1b[34m", "\x1b[32m", "\x1b[33m", "\x1b[35m", "\x1b[36m", "\x1b[94m",
];
const ANSI_ERROR: &str = "\x1b[1;31m";
const ANSI_DIM: &str = "\x1b[2m";
const ANSI_RESET: &str = "\x1b[0m";

/// Waterfall renderer settings.
#[derive(Clone, Debug)]
#[must_use]
pub struct Waterfall {
    bar_width: usize,
    max_name_width: usize,
    color: bool,
}

impl Default for Waterfall {
    fn default() -> Self {
        Waterfall {
            bar_width: 40,
            max_name_width: 48,
            color: false,
        }
    }
}

/// One row of the waterfall, laid out once and drawn as text or HTML.
struct Row<'a> {
    span: &'a SpanRecord,
    depth: usize,
    /// Tree prefix such as `│  └─ ` (empty for roots).
    prefix: String,
    /// Index of the span's service in order of first appearance (for colours).
    service_index: usize,
}

impl Waterfall {
    /// Defaults: 40-cell bars, names cut at 48 characters, no colour.
    pub fn new() -> Self {
        Self::default()
    }

    /// Width of the timeline column in characters (at least 1). Default 40.
    pub fn bar_width(mut self, cells: usize) -> Self {
        self.bar_width = cells.max(1);
        self
    }

    /// Longest span-name column (tree prefix included) before names are cut with `…`.
    /// Default 48.
    pub fn max_name_width(mut self, chars: usize) -> Self {
        self.max_name_width = chars.max(8);
        self
    }

    /// ANSI colours on or off. Default off.
    pub fn color(mut self, on: bool) -> Self {
        self.color = on;
        self
    }

    /// Renders every trace in `spans` as text.
    pub fn render(&self, spans: &[SpanRecord]) -> String {
        let traces = group(spans);
        if traces.is_empty() {
            return "no spans\n".to_owned();
        }
        let mut out = String::new();
        for (i, trace) in traces.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            self.render_trace(trace, &mut out);
        }
        out
    }

    /// Renders every trace in `spans` as a complete HTML page.
    pub fn render_html(&self, spans: &[SpanRecord]) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>tracebridge traces</title>\n<style>\n{HTML_STYLE}</style>\n</head>\n<body>\n\
             {}</body>\n</html>\n",
            self.render_html_fragment(spans)
        )
    }

    /// Renders every trace in `spans` as HTML `<section>`s (needs [`HTML_STYLE`]).
    pub fn render_html_fragment(&self, spans: &[SpanRecord]) -> String {
        let traces = group(spans);
        if traces.is_empty() {
            return "<p class=\"empty\">no spans</p>\n".to_owned();
        }
        let mut out = String::new();
        for trace in &traces {
            render_trace_html(trace, &mut out);
        }
        out
    }

    fn render_trace(&self, trace: &Trace, out: &mut String) {
        let rows = layout(trace);
        let (t0, total) = axis(trace);
        let _ = writeln!(
            out,
            "trace {}  {} span{}  {}",
            trace.trace_id(),
            trace.len(),
            if trace.len() == 1 { "" } else { "s" },
            ms(total)
        );
        let (w3c, jaeger, sentry) = id_forms(trace);
        let _ = writeln!(out, "  W3C     {w3c}");
        let _ = writeln!(out, "  Jaeger  {jaeger}");
        let _ = writeln!(out, "  Sentry  {sentry}");

        let names: Vec<String> = rows
            .iter()
            .map(|r| truncate(&format!("{}{}", r.prefix, r.span.name), self.max_name_width))
            .collect();
        let durations: Vec<String> = rows
            .iter()
            .map(|r| ms(r.span.duration().as_nanos() as u64))
            .collect();
        let w_service = width(rows.iter().map(|r| r.span.service_name.as_str()), "SERVICE");
        let w_name = width(names.iter().map(String::as_str), "SPAN");
        let w_kind = width(rows.iter().map(|r| r.span.kind.as_str()), "KIND");
        let w_dur = width(durations.iter().map(String::as_str), "DURATION");
        // A narrow bar still leaves room for the TIMELINE header, so columns stay aligned.
        let w_bar = self.bar_width.max("TIMELINE".len());
        let bar_pad = " ".repeat(w_bar - self.bar_width);
        let line = format!(
            "{:<w_service$}  {:<w_name$}  {:<w_kind$}  {:<bar$}  {:>w_dur$}  STATUS",
            "SERVICE",
            "SPAN",
            "KIND",
            "TIMELINE",
            "DURATION",
            bar = w_bar
        );
        out.push_str(line.trim_end());
        out.push('\n');

        for ((row, name), duration) in rows.iter().zip(&names).zip(&durations) {
            let span = row.span;
            let (start, end) = cells(span, t0, total, self.bar_width);
            let mut bar = String::with_capacity(self.bar_width * 3);
            let error = span.status.is_error();
            let fill = "█".repeat(end - start);
            if self.color {
                let colour = if error {
                    ANSI_ERROR
                } else {
                    ANSI_SERVICE[row.service_index % ANSI_SERVICE.len()]
                };
                let _ = write!(
                    bar,
                    "{ANSI_DIM}{}{ANSI_RESET}{colour}{fill}{ANSI_RESET}{ANSI_DIM}{}{ANSI_RESET}",
                    "░".repeat(start),
                    "░".repeat(self.bar_width - end)
                );
            } else {
                let _ = write!(
                    bar,
                    "{}{fill}{}",
                    "░".repeat(start),
                    "░".repeat(self.bar_width - end)
                );
            }
            let status = match &span.status {
                Status::Unset => String::new(),
                Status::Ok => "ok".to_owned(),
                Status::Error { message } => {
                    let text = if message.is_empty() {
                        "ERROR".to_owned()
                    } else {
                        format!("ERROR {}", one_line(message))
                    };
                    if self.color {
                        format!("{ANSI_ERROR}{text}{ANSI_RESET}")
                    } else {
                        text
                    }
                }
            };
            let line = format!(
                "{:<w_service$}  {:<w_name$}  {:<w_kind$}  {bar}{bar_pad}  {:>w_dur$}  {status}",
                span.service_name,
                name,
                span.kind.as_str(),
                duration,
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

/// The span tree in start order (children under their parent, siblings by start), with
/// spans unreachable from any root (a parent cycle) appended so nothing is hidden.
fn layout(trace: &Trace) -> Vec<Row<'_>> {
    let mut services: Vec<&str> = Vec::new();
    for span in trace.spans() {
        if !services.contains(&span.service_name.as_str()) {
            services.push(&span.service_name);
        }
    }
    let index_of = |s: &SpanRecord| {
        services
            .iter()
            .position(|name| *name == s.service_name)
            .unwrap_or(0)
    };

    let mut rows = Vec::with_capacity(trace.len());
    let mut seen: HashSet<&str> = HashSet::new();
    // Roots first; then any span still unseen (caught in a parent cycle) starts its own tree.
    let starts = trace.roots().into_iter().chain(trace.spans());
    for start in starts {
        if seen.contains(start.span_id.as_str()) {
            continue;
        }
        // Explicit stack (not recursion) so a very deep trace cannot overflow the stack.
        // Entries: (span, depth, indent for its children, its own prefix).
        let mut stack = vec![(start, 0usize, String::new(), String::new())];
        while let Some((span, depth, child_indent, prefix)) = stack.pop() {
            if !seen.insert(span.span_id.as_str()) {
                continue;
            }
            rows.push(Row {
                span,
                depth,
                prefix,
                service_index: index_of(span),
            });
            let children = trace.children(span);
            let last = children.len().saturating_sub(1);
            for (i, child) in children.into_iter().enumerate().rev() {
                let (branch, indent) = if i == last {
                    ("└─ ", "   ")
                } else {
                    ("├─ ", "│  ")
                };
                stack.push((
                    child,
                    depth + 1,
                    format!("{child_indent}{indent}"),
                    format!("{child_indent}{branch}"),
                ));
            }
        }
    }
    rows
}

/// Trace start and total duration in nanoseconds (at least 1, so bars never divide by zero).
fn axis(trace: &Trace) -> (u64, u64) {
    let t0 = trace.start_unix_nanos();
    let total = trace.end_unix_nanos().saturating_sub(t0).max(1);
    (t0, total)
}

/// The span's cells `[start, end)` on a `width`-cell axis: at least one cell, so an instant
/// span is still visible.
fn cells(span: &SpanRecord, t0: u64, total: u64, width: usize) -> (usize, usize) {
    let scale = |t: u64, round_up: bool| -> usize {
        let offset = u128::from(t.saturating_sub(t0).min(total));
        let num = offset * width as u128;
        let cell = if round_up {
            num.div_ceil(u128::from(total))
        } else {
            num / u128::from(total)
        };
        cell as usize
    };
    let start = scale(span.start_unix_nanos, false).min(width - 1);
    let end = scale(span.end_unix_nanos, true).clamp(start + 1, width);
    (start, end)
}

/// Percent offsets for the HTML bars.
fn percents(span: &SpanRecord, t0: u64, total: u64) -> (f64, f64) {
    let left = span.start_unix_nanos.saturating_sub(t0).min(total) as f64 / total as f64 * 100.0;
    let width = span.duration().as_nanos() as f64 / total as f64 * 100.0;
    (left, width.min(100.0 - left).max(0.0))
}

/// W3C traceparent, Jaeger uber-trace-id and sentry-trace forms of the trace's root span.
fn id_forms(trace: &Trace) -> (String, String, String) {
    let trace_id = trace.trace_id();
    let root = trace
        .roots()
        .first()
        .map(|s| s.span_id.clone())
        .or_else(|| trace.spans().first().map(|s| s.span_id.clone()))
        .unwrap_or_default();
    (
        format!("00-{trace_id}-{root}-01"),
        format!("{trace_id}:{root}:0:1"),
        format!("{trace_id}-{root}-1"),
    )
}

fn ms(nanos: u64) -> String {
    format!("{:.2} ms", nanos as f64 / 1_000_000.0)
}

fn width<'a>(values: impl Iterator<Item = &'a str>, header: &str) -> usize {
    values
        .map(|v| v.chars().count())
        .chain(std::iter::once(header.len()))
        .max()
        .unwrap_or(0)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// Status messages can carry newlines (error chains); keep one row per span.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render_trace_html(trace: &Trace, out: &mut String) {
    let rows = layout(trace);
    let (t0, total) = axis(trace);
    let (w3c, jaeger, sentry) = id_forms(trace);
    let trace_id = escape(trace.trace_id());
    let _ = write!(
        out,
        "<section class=\"trace\" id=\"trace-{trace_id}\">\n\
         <h2>trace <code>{trace_id}</code> · {} span{} · {}</h2>\n\
         <dl class=\"ids\"><dt>W3C</dt><dd>{}</dd><dt>Jaeger</dt><dd>{}</dd>\
         <dt>Sentry</dt><dd>{}</dd></dl>\n\
         <table class=\"waterfall\">\n\
         <tr><th>service</th><th>span</th><th>kind</th><th>timeline</th><th>duration</th><th>status</th></tr>\n",
        trace.len(),
        if trace.len() == 1 { "" } else { "s" },
        ms(total),
        escape(&w3c),
        escape(&jaeger),
        escape(&sentry),
    );
    for row in &rows {
        let span = row.span;
        let (left, width) = percents(span, t0, total);
        let error = span.status.is_error();
        let (status_class, status) = match &span.status {
            Status::Unset => ("status", String::new()),
            Status::Ok => ("status", "ok".to_owned()),
            Status::Error { message } if message.is_empty() => ("status error", "ERROR".to_owned()),
            Status::Error { message } => (
                "status error",
                format!("ERROR {}", escape(&one_line(message))),
            ),
        };
        let _ = writeln!(
            out,
            "<tr class=\"svc-{}{}\"><td>{}</td>\
             <td class=\"name\" style=\"padding-left:{:.1}em\" title=\"span {}\">{}</td>\
             <td>{}</td>\
             <td class=\"timeline\"><div class=\"track\"><div class=\"bar\" style=\"left:{left:.2}%;width:{width:.2}%\"></div></div></td>\
             <td class=\"dur\">{}</td><td class=\"{status_class}\">{status}</td></tr>",
            row.service_index % 6,
            if error { " error" } else { "" },
            escape(&span.service_name),
            0.5 + row.depth as f64 * 1.2,
            escape(&span.span_id),
            escape(&span.name),
            span.kind.as_str(),
            ms(span.duration().as_nanos() as u64),
        );
    }
    out.push_str("</table>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::SpanKind;
    use crate::trace::tests::span;

    /// a: GET /trace > trace1 > trace2, trace1 > ping.PingB/Ping (b, error) > GET (b client)
    /// and a: GET /trace > ping.PingC/Ping (c).
    fn demo() -> Vec<SpanRecord> {
        let mut b = span(
            "service-b",
            "ping.PingB/Ping",
            "00000000000000b1",
            Some("00000000000000a2"),
            SpanKind::Server,
            4,
            12,
        );
        b.status = Status::error("upstream\nfailed");
        let mut root = span(
            "service-a",
            "GET /trace",
            "00000000000000a1",
            None,
            SpanKind::Server,
            0,
            20,
        );
        root.status = Status::Ok;
        vec![
            b,
            root,
            span(
                "service-a",
                "trace1",
                "00000000000000a2",
                Some("00000000000000a1"),
                SpanKind::Internal,
                1,
                13,
            ),
            span(
                "service-a",
                "trace2",
                "00000000000000a3",
                Some("00000000000000a2"),
                SpanKind::Internal,
                2,
                4,
            ),
            span(
                "service-b",
                "GET",
                "00000000000000b2",
                Some("00000000000000b1"),
                SpanKind::Client,
                5,
                11,
            ),
            span(
                "service-c",
                "ping.PingC/Ping",
                "00000000000000c1",
                Some("00000000000000a1"),
                SpanKind::Server,
                14,
                19,
            ),
        ]
    }

    #[test]
    fn text_waterfall_exact() {
        let text = Waterfall::new().bar_width(20).render(&demo());
        let expected = "\
trace 4bf92f3577b34da6a3ce929d0e0e4736  6 spans  20.00 ms
  W3C     00-4bf92f3577b34da6a3ce929d0e0e4736-00000000000000a1-01
  Jaeger  4bf92f3577b34da6a3ce929d0e0e4736:00000000000000a1:0:1
  Sentry  4bf92f3577b34da6a3ce929d0e0e4736-00000000000000a1-1
SERVICE    SPAN                   KIND      TIMELINE              DURATION  STATUS
service-a  GET /trace             server    ████████████████████  20.00 ms  ok
service-a  ├─ trace1              internal  ░████████████░░░░░░░  12.00 ms
service-a  │  ├─ trace2           internal  ░░██░░░░░░░░░░░░░░░░   2.00 ms
service-b  │  └─ ping.PingB/Ping  server    ░░░░████████░░░░░░░░   8.00 ms  ERROR upstream failed
service-b  │     └─ GET           client    ░░░░░██████░░░░░░░░░   6.00 ms
service-c  └─ ping.PingC/Ping     server    ░░░░░░░░░░░░░░█████░   5.00 ms
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn ansi_marks_errors_red_and_keeps_layout() {
        let text = render_ansi(&demo());
        let error_line = text.lines().find(|l| l.contains("PingB")).unwrap();
        assert!(
            error_line.ends_with("\x1b[1;31mERROR upstream failed\x1b[0m"),
            "{error_line:?}"
        );
        // The error span's bar is red too; other bars use their service colour.
        assert!(error_line.contains("\x1b[1;31m█"));
        let c_line = text.lines().find(|l| l.contains("PingC")).unwrap();
        assert!(c_line.contains("\x1b[33m█"), "{c_line:?}");
        // Stripping the codes gives the plain rendering.
        let stripped = strip_ansi(&text);
        assert_eq!(stripped, render(&demo()));
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn instant_and_orphan_spans_and_multiple_traces() {
        // An instant root span and an orphan whose parent never arrived (a second root).
        let mut spans = vec![
            span(
                "a",
                "instant",
                "0000000000000001",
                None,
                SpanKind::Internal,
                0,
                0,
            ),
            span(
                "b",
                "orphan",
                "0000000000000002",
                Some("00000000000000ff"),
                SpanKind::Server,
                0,
                0,
            ),
        ];
        let mut other = span(
            "c",
            "other",
            "0000000000000003",
            None,
            SpanKind::Producer,
            0,
            1,
        );
        other.trace_id = "0af7651916cd43dd8448eb211c80319c".into();
        other.start_unix_nanos += 1;
        spans.push(other);
        let text = Waterfall::new().bar_width(4).render(&spans);
        let expected = "\
trace 4bf92f3577b34da6a3ce929d0e0e4736  2 spans  0.00 ms
  W3C     00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000001-01
  Jaeger  4bf92f3577b34da6a3ce929d0e0e4736:0000000000000001:0:1
  Sentry  4bf92f3577b34da6a3ce929d0e0e4736-0000000000000001-1
SERVICE  SPAN     KIND      TIMELINE  DURATION  STATUS
a        instant  internal  █░░░       0.00 ms
b        orphan   server    █░░░       0.00 ms

trace 0af7651916cd43dd8448eb211c80319c  1 span  1.00 ms
  W3C     00-0af7651916cd43dd8448eb211c80319c-0000000000000003-01
  Jaeger  0af7651916cd43dd8448eb211c80319c:0000000000000003:0:1
  Sentry  0af7651916cd43dd8448eb211c80319c-0000000000000003-1
SERVICE  SPAN   KIND      TIMELINE  DURATION  STATUS
c        other  producer  ████       1.00 ms
";
        assert_eq!(text, expected, "\n{text}");
        assert_eq!(render(&[]), "no spans\n");
    }

    #[test]
    fn long_names_are_cut() {
        let spans = vec![span(
            "a",
            &"x".repeat(100),
            "0000000000000001",
            None,
            SpanKind::Internal,
            0,
            1,
        )];
        let text = Waterfall::new()
            .max_name_width(10)
            .bar_width(1)
            .render(&spans);
        assert_eq!(
            text.lines().nth(5).unwrap(),
            "a        xxxxxxxxx…  internal  █          1.00 ms"
        );
    }

    #[test]
    fn html_page_is_self_contained_and_escaped() {
        let mut spans = demo();
        spans[0].name = "<script>alert(1)</script>".into();
        let html = render_html(&spans);
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.ends_with("</body>\n</html>\n"));
        assert!(html.contains("<style>\nbody{"));
        // No external assets, no scripts.
        assert!(!html.contains("<script"), "span names must be escaped");
        assert!(!html.contains("src="));
        assert!(!html.contains("<link"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains(
            "<dl class=\"ids\"><dt>W3C</dt><dd>00-4bf92f3577b34da6a3ce929d0e0e4736-00000000000000a1-01</dd>\
             <dt>Jaeger</dt><dd>4bf92f3577b34da6a3ce929d0e0e4736:00000000000000a1:0:1</dd>\
             <dt>Sentry</dt><dd>4bf92f3577b34da6a3ce929d0e0e4736-00000000000000a1-1</dd></dl>"
        ));
        // Rows in tree order with depth-based indentation and exact bar geometry.
        let rows: Vec<&str> = html
            .lines()
            .filter(|l| l.starts_with("<tr class"))
            .collect();
        assert_eq!(rows.len(), 6);
        assert_eq!(
            rows[0],
            "<tr class=\"svc-0\"><td>service-a</td><td class=\"name\" style=\"padding-left:0.5em\" \
             title=\"span 00000000000000a1\">GET /trace</td><td>server</td><td class=\"timeline\">\
             <div class=\"track\"><div class=\"bar\" style=\"left:0.00%;width:100.00%\"></div></div></td>\
             <td class=\"dur\">20.00 ms</td><td class=\"status\">ok</td></tr>"
        );
        assert_eq!(
            rows[3],
            "<tr class=\"svc-1 error\"><td>service-b</td><td class=\"name\" style=\"padding-left:2.9em\" \
             title=\"span 00000000000000b1\">&lt;script&gt;alert(1)&lt;/script&gt;</td><td>server</td>\
             <td class=\"timeline\"><div class=\"track\"><div class=\"bar\" style=\"left:20.00%;width:40.00%\">\
             </div></div></td><td class=\"dur\">8.00 ms</td><td class=\"status error\">ERROR upstream failed</td></tr>"
        );
        assert!(rows[5].contains("service-c") && rows[5].contains("left:70.00%;width:25.00%"));
        assert_eq!(
            render_html_fragment(&[]),
            "<p class=\"empty\">no spans</p>\n"
        );
    }
}
