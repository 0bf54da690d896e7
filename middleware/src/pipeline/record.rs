//! Compact span records: what tracebridge's HTTP and gRPC layers write for their SERVER and
//! CLIENT spans instead of an OpenTelemetry SDK span, when tracebridge's own pipeline is what
//! receives them (see [`super::recorder`] for when that is).
//!
//! Why by hand (issue 11, docs/performance.md): an SDK span costs a `SpanBuilder`, a
//! `Vec<KeyValue>` with an owned `String` per dynamic value (route, path, host, user agent),
//! the provider's processor loops and, at the end, a `SpanData` with a cloned instrumentation
//! scope; its drop frees every string one by one on the export thread. A [`SpanRecord`] keeps
//! the layer's attributes in one [`Attrs`]: static keys, static or numeric values inline, and
//! every dynamic string value copied into one shared text buffer — one allocation for all of
//! them. What the layers rarely need (events, links, attributes set through the OpenTelemetry
//! API) keeps the API's own types.
//!
//! The encoder writes records with the same code as `SpanData` ([`super::encode::SpanView`]);
//! the tests prove a record encodes to exactly the bytes of the `SpanData` the SDK would have
//! built for the same span (`SpanRecord::to_span_data`, test-only), and that path is proven against
//! opentelemetry-proto.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{InstrumentationScope, Key, KeyValue, StringValue, Value};

use super::encode::{AttrValue, SpanView};

/// One finished span of tracebridge's layers.
#[derive(Clone, Debug)]
pub(crate) struct SpanRecord {
    /// The instrumentation scope when it is not tracebridge's own (spans of an application's
    /// `opentelemetry::global::tracer("…")`).
    pub(crate) scope: Option<Arc<InstrumentationScope>>,
    pub(crate) span_context: SpanContext,
    pub(crate) parent_span_id: SpanId,
    pub(crate) parent_is_remote: bool,
    pub(crate) kind: SpanKind,
    pub(crate) name: Cow<'static, str>,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) attrs: Attrs,
    pub(crate) dropped_attributes: u32,
    pub(crate) events: Vec<Event>,
    pub(crate) dropped_events: u32,
    pub(crate) links: Vec<Link>,
    pub(crate) dropped_links: u32,
    pub(crate) status: Status,
}

/// A span's attributes: keys and small values inline, dynamic strings in one text buffer.
#[derive(Clone, Debug, Default)]
pub(crate) struct Attrs {
    items: Vec<(Key, Val)>,
    text: String,
}

#[derive(Clone, Debug)]
enum Val {
    /// A string value copied into [`Attrs::text`] (byte range).
    Text(u32, u32),
    /// A string that lives forever (no copy; nothing to free, and the encoder's string path
    /// rather than its `Value` match: ≈ 1 k instructions less per service-c request).
    Static(&'static str),
    I64(i64),
    /// Anything else: bools, floats, arrays, values set through the OpenTelemetry API.
    Value(Value),
}

impl Attrs {
    /// Room for `items` attributes and `text` bytes of dynamic string values.
    pub(crate) fn with_capacity(items: usize, text: usize) -> Self {
        Attrs {
            items: Vec::with_capacity(items),
            text: String::with_capacity(text),
        }
    }

    /// A string value known only at run time: copied into the shared text buffer.
    pub(crate) fn push_str(&mut self, key: impl Into<Key>, value: &str) {
        let start = self.text.len();
        self.text.push_str(value);
        self.items
            .push((key.into(), Val::Text(start as u32, self.text.len() as u32)));
    }

    /// A string value that lives forever: not copied.
    pub(crate) fn push_static(&mut self, key: impl Into<Key>, value: &'static str) {
        self.items.push((key.into(), Val::Static(value)));
    }

    /// A value's `Debug` form (a `tracing` field given with `?` or `%`), written straight into
    /// the shared text buffer.
    pub(crate) fn push_debug(&mut self, key: impl Into<Key>, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let start = self.text.len();
        // Writing into a `String` cannot fail.
        let _ = write!(self.text, "{value:?}");
        self.items
            .push((key.into(), Val::Text(start as u32, self.text.len() as u32)));
    }

    pub(crate) fn push_i64(&mut self, key: impl Into<Key>, value: i64) {
        self.items.push((key.into(), Val::I64(value)));
    }

    /// An attribute in the OpenTelemetry API's form (sampler results, `Span::set_attribute`).
    pub(crate) fn push(&mut self, kv: KeyValue) {
        self.items.push((kv.key, Val::Value(kv.value)));
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Room for at least `items` more attributes and `text` more bytes.
    pub(crate) fn reserve(&mut self, items: usize, text: usize) {
        self.items.reserve(items);
        self.text.reserve(text);
    }

    /// The room of the attribute list and of the text buffer.
    pub(crate) fn capacity(&self) -> (usize, usize) {
        (self.items.capacity(), self.text.capacity())
    }

    /// Empties it, keeping the room (for reuse: [`super::pool::AttrsPool`]).
    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.text.clear();
    }

    /// Keeps the first `len` attributes (span limits).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.items.truncate(len);
    }

    /// The attributes in order, as the encoder reads them.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, AttrValue<'_>)> {
        self.items.iter().map(|(k, v)| {
            let v = match v {
                Val::Text(start, end) => AttrValue::Str(&self.text[*start as usize..*end as usize]),
                Val::Static(s) => AttrValue::Str(s),
                Val::I64(i) => AttrValue::I64(*i),
                Val::Value(v) => AttrValue::Value(v),
            };
            (k.as_str(), v)
        })
    }

    /// The attributes as OpenTelemetry `KeyValue`s (the SDK path, samplers that read them).
    pub(crate) fn to_key_values(&self) -> Vec<KeyValue> {
        self.items
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Val::Text(start, end) => {
                        Value::from(self.text[*start as usize..*end as usize].to_owned())
                    }
                    Val::Static(s) => Value::String(StringValue::from(*s)),
                    Val::I64(i) => Value::I64(*i),
                    Val::Value(v) => v.clone(),
                };
                KeyValue::new(k.clone(), value)
            })
            .collect()
    }
}

impl SpanView for SpanRecord {
    /// `None`: the encoder's own scope (tracebridge's tracer).
    fn scope(&self) -> Option<&InstrumentationScope> {
        self.scope.as_deref()
    }
    fn span_context(&self) -> &SpanContext {
        &self.span_context
    }
    fn parent_span_id(&self) -> SpanId {
        self.parent_span_id
    }
    fn parent_is_remote(&self) -> bool {
        self.parent_is_remote
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &SpanKind {
        &self.kind
    }
    fn start_time(&self) -> SystemTime {
        self.start
    }
    fn end_time(&self) -> SystemTime {
        self.end
    }
    fn for_each_attribute<F: FnMut(&str, AttrValue<'_>)>(&self, mut f: F) {
        for (k, v) in self.attrs.iter() {
            f(k, v);
        }
    }
    fn dropped_attributes_count(&self) -> u32 {
        self.dropped_attributes
    }
    fn events(&self) -> &[Event] {
        &self.events
    }
    fn dropped_events_count(&self) -> u32 {
        self.dropped_events
    }
    fn links(&self) -> &[Link] {
        &self.links
    }
    fn dropped_links_count(&self) -> u32 {
        self.dropped_links
    }
    fn status(&self) -> &Status {
        &self.status
    }
}

impl SpanRecord {
    /// The `SpanData` the OpenTelemetry SDK builds for the same span (tests: the encoder's
    /// differential proof, and assertions that read spans in the SDK's form); `own_scope` is
    /// the scope of a record without one.
    #[cfg(test)]
    pub(crate) fn to_span_data(
        &self,
        own_scope: InstrumentationScope,
    ) -> opentelemetry_sdk::trace::SpanData {
        let scope = self.scope.as_deref().cloned().unwrap_or(own_scope);
        let mut events = opentelemetry_sdk::trace::SpanEvents::default();
        events.events = self.events.clone();
        events.dropped_count = self.dropped_events;
        let mut links = opentelemetry_sdk::trace::SpanLinks::default();
        links.links = self.links.clone();
        links.dropped_count = self.dropped_links;
        opentelemetry_sdk::trace::SpanData {
            span_context: self.span_context.clone(),
            parent_span_id: self.parent_span_id,
            parent_span_is_remote: self.parent_is_remote,
            span_kind: self.kind.clone(),
            name: self.name.clone(),
            start_time: self.start,
            end_time: self.end,
            attributes: self.attrs.to_key_values(),
            dropped_attributes_count: self.dropped_attributes,
            events,
            links,
            status: self.status.clone(),
            instrumentation_scope: scope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_keep_their_order_and_values_in_both_forms() {
        let mut a = Attrs::with_capacity(4, 8);
        a.push_static("http.request.method", "GET");
        a.push_str("url.path", "/users/ünï");
        a.push_i64("server.port", 8080);
        a.push_str("server.address", "");
        a.push(KeyValue::new("custom", true));
        let read: Vec<String> = a.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        assert_eq!(
            read,
            [
                "http.request.method=Str(\"GET\")",
                "url.path=Str(\"/users/ünï\")",
                "server.port=I64(8080)",
                "server.address=Str(\"\")",
                "custom=Value(Bool(true))",
            ]
        );
        assert_eq!(
            a.to_key_values(),
            vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("url.path", "/users/ünï"),
                KeyValue::new("server.port", 8080),
                KeyValue::new("server.address", ""),
                KeyValue::new("custom", true),
            ]
        );
        a.truncate(2);
        assert_eq!(a.len(), 2);
        assert_eq!(a.to_key_values().len(), 2);
    }
}
