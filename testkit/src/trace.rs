//! Trace trees over received spans, and assertions that print the whole tree when they fail.
//!
//! A [`Trace`] is the spans of one trace id, ordered by start time. A span whose parent is not
//! among them (no parent at all, or a remote parent such as the caller's `traceparent`) is a
//! *root* of the trace; a fully connected trace has exactly one.
//!
//! ```no_run
//! # fn demo(spans: Vec<tracebridge_testkit::SpanRecord>) {
//! use tracebridge_testkit::trace::Trace;
//!
//! let trace = Trace::new(spans);
//! trace.assert_connected();
//! let server = trace.expect("service-a", "GET /trace");
//! let trace1 = trace.expect("service-a", "trace1");
//! trace.assert_child_of(trace1, server);
//! # }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use crate::record::SpanRecord;

/// Groups spans by trace id. Traces are ordered by their earliest span start, spans within a
/// trace by start time.
pub fn group(spans: &[SpanRecord]) -> Vec<Trace> {
    let mut by_id: BTreeMap<&str, Vec<SpanRecord>> = BTreeMap::new();
    for span in spans {
        by_id
            .entry(span.trace_id.as_str())
            .or_default()
            .push(span.clone());
    }
    let mut traces: Vec<Trace> = by_id.into_values().map(Trace::new).collect();
    traces.sort_by_key(|t| t.start_unix_nanos());
    traces
}

/// The spans of one trace.
#[derive(Clone, Debug)]
pub struct Trace {
    spans: Vec<SpanRecord>,
}

impl Trace {
    /// Builds a trace from spans that share one trace id (sorted by start time here).
    ///
    /// # Panics
    /// If the spans carry more than one trace id — which is itself a failed expectation
    /// ("one trace id everywhere"), so the dump lists them all.
    pub fn new(mut spans: Vec<SpanRecord>) -> Trace {
        spans.sort_by(|a, b| {
            a.start_unix_nanos
                .cmp(&b.start_unix_nanos)
                .then(a.end_unix_nanos.cmp(&b.end_unix_nanos).reverse())
        });
        let trace = Trace { spans };
        let ids: HashSet<&str> = trace.spans.iter().map(|s| s.trace_id.as_str()).collect();
        if ids.len() > 1 {
            trace.fail(&format!(
                "expected one trace id, found {}: {:?}",
                ids.len(),
                ids
            ));
        }
        trace
    }

    /// The spans of `trace_id` among `spans`.
    pub fn of(spans: &[SpanRecord], trace_id: &str) -> Trace {
        Trace::new(
            spans
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .cloned()
                .collect(),
        )
    }

    /// The trace id (empty for an empty trace).
    pub fn trace_id(&self) -> &str {
        self.spans
            .first()
            .map(|s| s.trace_id.as_str())
            .unwrap_or("")
    }

    /// All spans, by start time.
    pub fn spans(&self) -> &[SpanRecord] {
        &self.spans
    }

    /// Number of spans.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when the trace has no spans.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Earliest start (0 for an empty trace).
    pub fn start_unix_nanos(&self) -> u64 {
        self.spans
            .iter()
            .map(|s| s.start_unix_nanos)
            .min()
            .unwrap_or(0)
    }

    /// Latest end (0 for an empty trace).
    pub fn end_unix_nanos(&self) -> u64 {
        self.spans
            .iter()
            .map(|s| s.end_unix_nanos)
            .max()
            .unwrap_or(0)
    }

    /// Spans whose parent is not in this trace (local roots and spans with a remote parent),
    /// by start time.
    pub fn roots(&self) -> Vec<&SpanRecord> {
        self.spans
            .iter()
            .filter(|s| self.parent_of(s).is_none())
            .collect()
    }

    /// The single root span.
    ///
    /// # Panics
    /// With a dump of the trace, if there is not exactly one root.
    pub fn root(&self) -> &SpanRecord {
        let roots = self.roots();
        if roots.len() != 1 {
            self.fail(&format!(
                "expected exactly one root span, found {}",
                roots.len()
            ));
        }
        roots[0]
    }

    /// The span's parent, if it is in this trace.
    pub fn parent_of(&self, span: &SpanRecord) -> Option<&SpanRecord> {
        let parent = span.parent_span_id.as_deref()?;
        self.spans.iter().find(|s| s.span_id == parent)
    }

    /// Direct children of `span`, by start time.
    pub fn children(&self, span: &SpanRecord) -> Vec<&SpanRecord> {
        self.spans
            .iter()
            .filter(|s| s.parent_span_id.as_deref() == Some(span.span_id.as_str()))
            .collect()
    }

    /// The span with this id.
    pub fn by_id(&self, span_id: &str) -> Option<&SpanRecord> {
        self.spans.iter().find(|s| s.span_id == span_id)
    }

    /// The first span (by start) of `service` whose name contains `name_contains`.
    /// An empty `service` matches any service.
    pub fn find(&self, service: &str, name_contains: &str) -> Option<&SpanRecord> {
        self.spans
            .iter()
            .find(|s| matches(s, service, name_contains))
    }

    /// Every span (by start) of `service` whose name contains `name_contains`.
    /// An empty `service` matches any service.
    pub fn find_all(&self, service: &str, name_contains: &str) -> Vec<&SpanRecord> {
        self.spans
            .iter()
            .filter(|s| matches(s, service, name_contains))
            .collect()
    }

    /// Like [`Trace::find`], but panics with a dump of the trace when there is no such span.
    pub fn expect(&self, service: &str, name_contains: &str) -> &SpanRecord {
        self.find(service, name_contains).unwrap_or_else(|| {
            self.fail(&format!(
                "no span of service {service:?} with a name containing {name_contains:?}"
            ))
        })
    }

    /// The first span (by start) of `service` named exactly `name` (an HTTP client span is
    /// just `GET`, which `find` would also match in `GET /trace`). Empty `service` = any.
    pub fn find_exact(&self, service: &str, name: &str) -> Option<&SpanRecord> {
        self.spans
            .iter()
            .find(|s| (service.is_empty() || s.service_name == service) && s.name == name)
    }

    /// Like [`Trace::find_exact`], but panics with a dump of the trace when there is no such span.
    pub fn expect_exact(&self, service: &str, name: &str) -> &SpanRecord {
        self.find_exact(service, name)
            .unwrap_or_else(|| self.fail(&format!("no span of service {service:?} named {name:?}")))
    }

    /// True when `descendant` is below `ancestor` (at any depth).
    pub fn is_descendant_of(&self, descendant: &SpanRecord, ancestor: &SpanRecord) -> bool {
        let mut current = self.parent_of(descendant);
        // Bounded walk: a malformed trace with a parent cycle must not loop forever.
        for _ in 0..self.spans.len() {
            match current {
                Some(p) if p.span_id == ancestor.span_id => return true,
                Some(p) => current = self.parent_of(p),
                None => return false,
            }
        }
        false
    }

    /// Asserts `child`'s parent is `parent` (same trace id, parent span id = parent's span id).
    pub fn assert_child_of(&self, child: &SpanRecord, parent: &SpanRecord) {
        if child.trace_id != parent.trace_id
            || child.parent_span_id.as_deref() != Some(parent.span_id.as_str())
        {
            self.fail(&format!(
                "expected {:?} ({}) to be a child of {:?} ({}), but its parent is {}",
                child.name,
                child.span_id,
                parent.name,
                parent.span_id,
                child.parent_span_id.as_deref().unwrap_or("none")
            ));
        }
    }

    /// Asserts `descendant` is below `ancestor` at any depth.
    pub fn assert_descendant_of(&self, descendant: &SpanRecord, ancestor: &SpanRecord) {
        if !self.is_descendant_of(descendant, ancestor) {
            self.fail(&format!(
                "expected {:?} ({}) to be below {:?} ({})",
                descendant.name, descendant.span_id, ancestor.name, ancestor.span_id
            ));
        }
    }

    /// Asserts the trace is one tree: exactly one root, every other span's parent present.
    pub fn assert_connected(&self) {
        let roots = self.roots();
        if roots.len() != 1 {
            let names: Vec<String> = roots
                .iter()
                .map(|r| format!("{}:{} ({})", r.service_name, r.name, r.span_id))
                .collect();
            self.fail(&format!(
                "expected one connected tree, found {} roots: {}",
                roots.len(),
                names.join(", ")
            ));
        }
    }

    /// Asserts the trace has exactly `n` spans.
    pub fn assert_len(&self, n: usize) {
        if self.spans.len() != n {
            self.fail(&format!("expected {n} spans, found {}", self.spans.len()));
        }
    }

    /// The tree as text: one span per line, indented under its parent.
    pub fn dump(&self) -> String {
        let mut out = format!("trace {} ({} spans)\n", self.trace_id(), self.spans.len());
        let mut seen = HashSet::new();
        for root in self.roots() {
            self.dump_into(root, 1, &mut out, &mut seen);
        }
        // Spans caught in a parent cycle are reachable from no root: list them anyway.
        for span in &self.spans {
            if !seen.contains(span.span_id.as_str()) {
                let _ = writeln!(out, "  (unreachable) {}", span.summary());
            }
        }
        out
    }

    fn dump_into<'a>(
        &'a self,
        span: &'a SpanRecord,
        depth: usize,
        out: &mut String,
        seen: &mut HashSet<&'a str>,
    ) {
        if !seen.insert(span.span_id.as_str()) {
            return;
        }
        let _ = writeln!(out, "{}{}", "  ".repeat(depth), span.summary());
        for child in self.children(span) {
            self.dump_into(child, depth + 1, out, seen);
        }
    }

    fn fail(&self, message: &str) -> ! {
        panic!("{message}\n{}", self.dump());
    }
}

fn matches(span: &SpanRecord, service: &str, name_contains: &str) -> bool {
    (service.is_empty() || span.service_name == service) && span.name.contains(name_contains)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::{SpanKind, Status};

    /// A hand-built span for unit tests (times in milliseconds from 0).
    pub(crate) fn span(
        service: &str,
        name: &str,
        id: &str,
        parent: Option<&str>,
        kind: SpanKind,
        start_ms: u64,
        end_ms: u64,
    ) -> SpanRecord {
        SpanRecord {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: id.into(),
            parent_span_id: parent.map(str::to_owned),
            trace_state: String::new(),
            name: name.into(),
            kind,
            service_name: service.into(),
            resource: Default::default(),
            scope_name: "test".into(),
            scope_version: String::new(),
            attributes: Default::default(),
            status: Status::Unset,
            start_unix_nanos: 1_700_000_000_000_000_000 + start_ms * 1_000_000,
            end_unix_nanos: 1_700_000_000_000_000_000 + end_ms * 1_000_000,
            links: vec![],
            events: vec![],
            flags: 0,
        }
    }

    fn sample() -> Vec<SpanRecord> {
        vec![
            span(
                "b",
                "ping.PingB/Ping",
                "00000000000000b1",
                Some("00000000000000a2"),
                SpanKind::Server,
                3,
                8,
            ),
            span(
                "a",
                "GET /trace",
                "00000000000000a1",
                None,
                SpanKind::Server,
                0,
                10,
            ),
            span(
                "a",
                "trace1",
                "00000000000000a2",
                Some("00000000000000a1"),
                SpanKind::Internal,
                1,
                9,
            ),
        ]
    }

    #[test]
    fn navigates_the_tree() {
        let trace = Trace::new(sample());
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let root = trace.root();
        assert_eq!(root.name, "GET /trace");
        let trace1 = trace.expect("a", "trace1");
        assert_eq!(trace.children(root), vec![trace1]);
        let b = trace.expect("", "PingB");
        assert_eq!(trace.parent_of(b), Some(trace1));
        assert!(trace.is_descendant_of(b, root));
        assert!(!trace.is_descendant_of(root, b));
        assert_eq!(trace.find("b", "trace1"), None);
        assert_eq!(trace.find_exact("a", "GET"), None);
        assert_eq!(trace.expect_exact("a", "GET /trace").span_id, root.span_id);
        assert_eq!(trace.find_all("a", "").len(), 2);
        trace.assert_child_of(b, trace1);
        trace.assert_descendant_of(b, root);
        trace.assert_connected();
        trace.assert_len(3);
        assert_eq!(
            trace.dump(),
            "trace 4bf92f3577b34da6a3ce929d0e0e4736 (3 spans)\n\
             \x20 a GET /trace [server] 10.000ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00000000000000a1 parent=- status=unset\n\
             \x20   a trace1 [internal] 8.000ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00000000000000a2 parent=00000000000000a1 status=unset\n\
             \x20     b ping.PingB/Ping [server] 5.000ms trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00000000000000b1 parent=00000000000000a2 status=unset\n"
        );
    }

    #[test]
    fn group_splits_by_trace_id() {
        let mut spans = sample();
        let mut other = span("c", "x", "00000000000000c1", None, SpanKind::Internal, 0, 1);
        other.trace_id = "0af7651916cd43dd8448eb211c80319c".into();
        other.start_unix_nanos -= 1;
        spans.push(other);
        let traces = group(&spans);
        assert_eq!(traces.len(), 2);
        assert_eq!(traces[0].trace_id(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(traces[1].len(), 3);
        assert_eq!(
            Trace::of(&spans, "4bf92f3577b34da6a3ce929d0e0e4736").len(),
            3
        );
    }

    #[test]
    #[should_panic(expected = "expected one connected tree, found 2 roots")]
    fn disconnected_trace_fails_with_dump() {
        let mut spans = sample();
        // b's parent never arrived: b becomes a second root.
        spans.retain(|s| s.name != "trace1");
        Trace::new(spans).assert_connected();
    }

    #[test]
    #[should_panic(expected = "to be a child of")]
    fn wrong_parent_fails() {
        let trace = Trace::new(sample());
        trace.assert_child_of(trace.expect("b", "Ping"), trace.root());
    }

    #[test]
    #[should_panic(expected = "expected one trace id, found 2")]
    fn mixed_trace_ids_fail() {
        let mut spans = sample();
        spans[0].trace_id = "0af7651916cd43dd8448eb211c80319c".into();
        Trace::new(spans);
    }

    #[test]
    fn parent_cycle_does_not_hang() {
        let spans = vec![
            span(
                "a",
                "x",
                "0000000000000001",
                Some("0000000000000002"),
                SpanKind::Internal,
                0,
                1,
            ),
            span(
                "a",
                "y",
                "0000000000000002",
                Some("0000000000000001"),
                SpanKind::Internal,
                0,
                1,
            ),
        ];
        let trace = Trace::new(spans);
        assert!(trace.roots().is_empty());
        // An ancestor outside the cycle is never found, and the bounded walk terminates.
        let outside = span("a", "z", "0000000000000003", None, SpanKind::Internal, 0, 1);
        assert!(!trace.is_descendant_of(&trace.spans()[0], &outside));
        assert_eq!(trace.dump().matches("(unreachable)").count(), 2);
    }
}
