//! Hand-written OTLP protobuf encoder: `SpanData` → `ExportTraceServiceRequest` bytes.
//!
//! Why by hand: opentelemetry-otlp 0.32 exports by cloning every `SpanData`, building the
//! opentelemetry-proto prost structs (a `String` per key and value, a `Vec` per id, a `KeyValue`
//! per attribute) and then prost-encoding them — ≈ 4 µs of CPU per exported span measured on
//! main (docs/performance.md, issue 11). This encoder writes the same message straight from the
//! `SpanData`: the resource and each instrumentation scope are encoded once and kept as bytes,
//! the batch is written in one pass straight into the caller's buffer (a message whose length
//! is not known before its body — a span, an event, a link, a scope's or the resource's list —
//! gets room for a typical length, and its body moves by a byte or two in the rare case the
//! length needs another size; see [`open`] / [`close`]), and all scratch buffers are reused, so
//! a steady-state batch allocates nothing but (at most) the growth of the caller's `out`.
//!
//! The first version (fourth session) computed every length in a sizing pass before writing.
//! Walking every span twice cost ≈ 30% of the encoding: one pass takes 3.25 k instructions per
//! span against 4.7 k (whole-process callgrind, docs/performance.md "Seventh session").
//!
//! Semantics follow opentelemetry-proto 0.32's `transform::trace` + `transform::common` (the
//! code opentelemetry-otlp runs), field by field, and fields are written in the order prost
//! writes them (ascending field number), so for a batch with one instrumentation scope the bytes are identical to
//! opentelemetry-otlp's. The one difference: opentelemetry-proto groups scopes through a
//! `HashMap` (random order); here `ScopeSpans` come in order of first appearance in the batch.
//! Spans keep their batch order inside their scope in both.
//!
//! The encoder reads spans through [`SpanView`]: the SDK's `SpanData` and tracebridge's own
//! compact records (`super::record::SpanRecord`) go through the same writing code.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status, TraceState};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;

/// One attribute value as the encoder reads it: a string, an integer, or any OpenTelemetry
/// value.
#[derive(Clone, Copy, Debug)]
pub(crate) enum AttrValue<'a> {
    Str(&'a str),
    I64(i64),
    Value(&'a Value),
}

/// What the encoder reads of a finished span.
pub(crate) trait SpanView {
    /// The span's instrumentation scope; `None` for the encoder's own scope (the scope of
    /// tracebridge's tracer, given to [`Encoder::with_own_scope`]).
    fn scope(&self) -> Option<&InstrumentationScope>;
    fn span_context(&self) -> &SpanContext;
    fn parent_span_id(&self) -> SpanId;
    fn parent_is_remote(&self) -> bool;
    fn name(&self) -> &str;
    fn kind(&self) -> &SpanKind;
    fn start_time(&self) -> SystemTime;
    fn end_time(&self) -> SystemTime;
    /// Calls `f` with each attribute, in order.
    fn for_each_attribute<F: FnMut(&str, AttrValue<'_>)>(&self, f: F);
    fn dropped_attributes_count(&self) -> u32;
    fn events(&self) -> &[Event];
    fn dropped_events_count(&self) -> u32;
    fn links(&self) -> &[Link];
    fn dropped_links_count(&self) -> u32;
    fn status(&self) -> &Status;
}

impl SpanView for SpanData {
    fn scope(&self) -> Option<&InstrumentationScope> {
        Some(&self.instrumentation_scope)
    }
    fn span_context(&self) -> &SpanContext {
        &self.span_context
    }
    fn parent_span_id(&self) -> SpanId {
        self.parent_span_id
    }
    fn parent_is_remote(&self) -> bool {
        self.parent_span_is_remote
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &SpanKind {
        &self.span_kind
    }
    fn start_time(&self) -> SystemTime {
        self.start_time
    }
    fn end_time(&self) -> SystemTime {
        self.end_time
    }
    fn for_each_attribute<F: FnMut(&str, AttrValue<'_>)>(&self, mut f: F) {
        for kv in &self.attributes {
            f(kv.key.as_str(), AttrValue::Value(&kv.value));
        }
    }
    fn dropped_attributes_count(&self) -> u32 {
        self.dropped_attributes_count
    }
    fn events(&self) -> &[Event] {
        &self.events.events
    }
    fn dropped_events_count(&self) -> u32 {
        self.events.dropped_count
    }
    fn links(&self) -> &[Link] {
        &self.links.links
    }
    fn dropped_links_count(&self) -> u32 {
        self.links.dropped_count
    }
    fn status(&self) -> &Status {
        &self.status
    }
}

/// Protobuf wire types.
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

/// The one-byte key of field `field` (< 16) with wire type `wire`.
const fn key(field: u8, wire: u8) -> u8 {
    (field << 3) | wire
}

/// `Span.flags` is field 16 (fixed32): its key needs two varint bytes.
const SPAN_FLAGS_KEY: [u8; 2] = [0x85, 0x01]; // (16 << 3 | 5) = 133 as a varint
/// OTLP `SpanFlags`: the context's `is_remote` is known (bit 8) / true (bit 9).
const CONTEXT_HAS_IS_REMOTE: u32 = 0x100;
const CONTEXT_IS_REMOTE: u32 = 0x200;
/// At most this many distinct scopes stay pre-encoded between batches (scopes whose attributes
/// hold a NaN never compare equal, so the cache must not grow without bound).
const MAX_CACHED_SCOPES: usize = 64;

/// Encodes batches of finished spans into OTLP `ExportTraceServiceRequest` messages.
pub(crate) struct Encoder {
    /// `ResourceSpans.resource` (field 1: key, length, `Resource`).
    resource_head: Vec<u8>,
    /// `ResourceSpans.schema_url` (field 3), empty when the resource has none.
    resource_tail: Vec<u8>,
    /// Pre-encoded instrumentation scopes, kept across batches.
    scopes: Vec<CachedScope>,
    /// Per batch: the scopes present, in order of first appearance (indexes into `scopes`).
    groups: Vec<Group>,
    /// Per batch: the group of each span (by batch index).
    span_group: Vec<u32>,
    /// Per batch: span indexes ordered by group (a counting sort of `span_group`).
    order: Vec<u32>,
    /// The scope of spans whose [`SpanView::scope`] is `None`.
    own_scope: InstrumentationScope,
}

struct CachedScope {
    scope: InstrumentationScope,
    /// `ScopeSpans.scope` (field 1: key, length, `InstrumentationScope`).
    head: Vec<u8>,
    /// `ScopeSpans.schema_url` (field 3), empty when the scope has none.
    tail: Vec<u8>,
}

#[derive(Clone, Copy)]
struct Group {
    scope: usize,
    spans: usize,
}

impl Encoder {
    /// `resource`: what the provider was built with (service.name, OTEL_RESOURCE_ATTRIBUTES, telemetry.sdk.*).
    pub(crate) fn new(resource: &Resource) -> Self {
        let mut body = Vec::new();
        for (k, v) in resource.iter() {
            put_key_value(&mut body, key(1, LEN), k.as_str(), v);
        }
        let mut resource_head = Vec::with_capacity(body.len() + 6);
        put_len_field(&mut resource_head, key(1, LEN), &body);
        let mut resource_tail = Vec::new();
        put_str_field(
            &mut resource_tail,
            key(3, LEN),
            resource.schema_url().unwrap_or_default(),
        );
        Encoder {
            resource_head,
            resource_tail,
            scopes: Vec::new(),
            groups: Vec::new(),
            span_group: Vec::new(),
            order: Vec::new(),
            own_scope: InstrumentationScope::builder("").build(),
        }
    }

    /// Spans without a scope of their own get `scope`.
    pub(crate) fn with_own_scope(mut self, scope: InstrumentationScope) -> Self {
        self.own_scope = scope;
        self
    }

    /// Appends one serialized `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest` holding
    /// `spans` to `out` (the caller clears/reuses `out`; no gRPC framing, no compression).
    pub(crate) fn encode<S: SpanView>(&mut self, spans: &[S], out: &mut Vec<u8>) {
        self.group(spans);
        let resource_spans = open(out, key(1, LEN), 3); // ExportTraceServiceRequest.resource_spans
        out.extend_from_slice(&self.resource_head);
        let mut next = 0;
        for group in &self.groups {
            let scope = &self.scopes[group.scope];
            let scope_spans = open(out, key(2, LEN), 3); // ResourceSpans.scope_spans
            out.extend_from_slice(&scope.head);
            for &i in &self.order[next..next + group.spans] {
                write_span(out, &spans[i as usize]);
            }
            next += group.spans;
            out.extend_from_slice(&scope.tail);
            close(out, scope_spans);
        }
        out.extend_from_slice(&self.resource_tail);
        close(out, resource_spans);
    }

    /// Fills `groups`, `span_group` and `order` for `spans`.
    fn group<S: SpanView>(&mut self, spans: &[S]) {
        if self.scopes.len() > MAX_CACHED_SCOPES {
            self.scopes.clear();
        }
        self.groups.clear();
        self.span_group.clear();
        for span in spans {
            let scope = span.scope().unwrap_or(&self.own_scope);
            let found = self
                .groups
                .iter()
                .position(|g| same_scope(&self.scopes[g.scope].scope, scope));
            let g = match found {
                Some(g) => g,
                None => {
                    let cached = match self.scopes.iter().position(|c| same_scope(&c.scope, scope))
                    {
                        Some(c) => c,
                        None => {
                            self.scopes.push(CachedScope::new(scope));
                            self.scopes.len() - 1
                        }
                    };
                    self.groups.push(Group {
                        scope: cached,
                        spans: 0,
                    });
                    self.groups.len() - 1
                }
            };
            self.groups[g].spans += 1;
            self.span_group.push(g as u32);
        }
        // Counting sort of the span indexes by group, keeping batch order inside a group.
        self.order.clear();
        self.order.resize(spans.len(), 0);
        let mut start = 0;
        for group in &mut self.groups {
            let n = group.spans;
            group.spans = start; // temporarily: the next free position of this group
            start += n;
        }
        for (i, &g) in self.span_group.iter().enumerate() {
            let pos = &mut self.groups[g as usize].spans;
            self.order[*pos] = i as u32;
            *pos += 1;
        }
        let mut start = 0;
        for group in &mut self.groups {
            let end = group.spans;
            group.spans = end - start;
            start = end;
        }
    }
}

impl CachedScope {
    fn new(scope: &InstrumentationScope) -> Self {
        // opentelemetry-proto: name, version (or ""), attributes; dropped_attributes_count 0.
        let mut body = Vec::new();
        put_str_field(&mut body, key(1, LEN), scope.name());
        put_str_field(&mut body, key(2, LEN), scope.version().unwrap_or_default());
        for kv in scope.attributes() {
            put_key_value(&mut body, key(3, LEN), kv.key.as_str(), &kv.value);
        }
        let mut head = Vec::with_capacity(body.len() + 6);
        put_len_field(&mut head, key(1, LEN), &body);
        let mut tail = Vec::new();
        put_str_field(
            &mut tail,
            key(3, LEN),
            scope.schema_url().unwrap_or_default(),
        );
        CachedScope {
            scope: scope.clone(),
            head,
            tail,
        }
    }
}

/// The SDK's scope equality (what opentelemetry-proto's `HashMap` groups by), without its
/// allocation in the common case of attributes in the same order.
fn same_scope(a: &InstrumentationScope, b: &InstrumentationScope) -> bool {
    if a.name() != b.name() || a.version() != b.version() || a.schema_url() != b.schema_url() {
        return false;
    }
    if a.attributes().eq(b.attributes()) {
        return true;
    }
    a == b
}

// ---- sizes -------------------------------------------------------------------------------

/// Bytes of `v` as a varint (prost's formula).
#[inline]
fn varint_len(v: u64) -> usize {
    ((((v | 1).leading_zeros() ^ 63) * 9 + 73) / 64) as usize
}

/// Bytes of a length-delimited field with a one-byte key and a body of `len` bytes.
#[inline]
fn len_field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// Bytes of a proto3 string/bytes field (omitted when empty).
#[inline]
fn str_field_len(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len_field_len(len)
    }
}

/// Length of the W3C `tracestate` header form (`k=v,k=v`) of `state`.
fn trace_state_len(state: &TraceState) -> usize {
    let mut n = 0;
    for (i, (k, v)) in state.into_iter().enumerate() {
        n += k.len() + 1 + v.len() + usize::from(i > 0);
    }
    n
}

/// Length of the `AnyValue` message for `value`.
#[inline]
fn any_value_len(value: &Value) -> usize {
    match value {
        Value::String(s) => len_field_len(s.as_str().len()),
        Value::Bool(_) => 2,
        Value::I64(v) => 1 + varint_len(*v as u64),
        Value::F64(_) => 9,
        Value::Array(a) => len_field_len(array_len(a)),
        // A value kind newer than this encoder: an empty AnyValue (opentelemetry-proto 0.32
        // panics with `unreachable!` here).
        _ => 0,
    }
}

/// Length of the `AnyValue` message for an attribute value.
#[inline]
fn attr_value_len(value: AttrValue<'_>) -> usize {
    match value {
        AttrValue::Str(s) => len_field_len(s.len()),
        AttrValue::I64(v) => 1 + varint_len(v as u64),
        AttrValue::Value(v) => any_value_len(v),
    }
}

/// Length of the `ArrayValue` message for `array`.
fn array_len(array: &Array) -> usize {
    match array {
        Array::Bool(v) => v.len() * len_field_len(2),
        Array::I64(v) => v
            .iter()
            .map(|&i| len_field_len(1 + varint_len(i as u64)))
            .sum(),
        Array::F64(v) => v.len() * len_field_len(9),
        Array::String(v) => v
            .iter()
            .map(|s| len_field_len(len_field_len(s.as_str().len())))
            .sum(),
        _ => 0,
    }
}

/// Length of the `KeyValue` message.
#[inline]
fn key_value_len(key: &str, value_len: usize) -> usize {
    str_field_len(key.len()) + len_field_len(value_len)
}

fn status_len(status: &Status) -> usize {
    match status {
        Status::Unset => 0,
        Status::Ok => 2,
        Status::Error { description } => str_field_len(description.len()) + 2,
    }
}

// ---- writing -----------------------------------------------------------------------------

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    if v < 0x80 {
        out.push(v as u8); // most lengths and counts
        return;
    }
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Starts a length-delimited field `k` whose length is known only after its body is written:
/// writes the key and `room` placeholder bytes for the length (the size of the length a
/// typical body of this message needs), and returns where the length goes, for [`close`].
#[inline]
fn open(out: &mut Vec<u8>, k: u8, room: usize) -> Opened {
    out.push(k);
    let at = out.len();
    out.resize(at + room, 0);
    Opened { at, room }
}

/// Where [`open`] left room for a length.
#[must_use]
struct Opened {
    at: usize,
    room: usize,
}

/// Ends the field [`open`] started: writes its body's length as a minimal varint (prost's
/// encoding, so the bytes equal opentelemetry-otlp's), moving the body when the length needs
/// more or fewer bytes than the room left for it.
fn close(out: &mut Vec<u8>, opened: Opened) {
    let Opened { at, room } = opened;
    let body = at + room;
    let len = out.len() - body;
    let need = varint_len(len as u64);
    if need != room {
        let end = out.len();
        if need > room {
            out.resize(end + need - room, 0);
        }
        out.copy_within(body..end, at + need);
        out.truncate(at + need + len);
    }
    let mut v = len as u64;
    for b in &mut out[at..at + need] {
        *b = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
    }
    out[at + need - 1] &= 0x7f;
}

/// A length-delimited field: key, length, `body`.
#[inline]
fn put_len_field(out: &mut Vec<u8>, k: u8, body: &[u8]) {
    out.push(k);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// A proto3 string/bytes field, omitted when empty.
#[inline]
fn put_str_field(out: &mut Vec<u8>, k: u8, s: &str) {
    if !s.is_empty() {
        put_len_field(out, k, s.as_bytes());
    }
}

/// A proto3 uint32 field, omitted when zero.
#[inline]
fn put_u32_field(out: &mut Vec<u8>, k: u8, v: u32) {
    if v != 0 {
        out.push(k);
        put_varint(out, v as u64);
    }
}

/// A proto3 fixed64 field, omitted when zero.
#[inline]
fn put_fixed64_field(out: &mut Vec<u8>, k: u8, v: u64) {
    if v != 0 {
        out.push(k);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// A proto3 string field holding the W3C header form of `state`, omitted when empty.
fn put_trace_state(out: &mut Vec<u8>, k: u8, state: &TraceState) {
    let len = trace_state_len(state);
    if len == 0 {
        return;
    }
    out.push(k);
    put_varint(out, len as u64);
    for (i, (k, v)) in state.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
    }
}

/// An `AnyValue` message body (the oneof is always written, even for a default value).
fn put_any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => put_len_field(out, key(1, LEN), s.as_str().as_bytes()),
        Value::Bool(b) => out.extend_from_slice(&[key(2, VARINT), u8::from(*b)]),
        Value::I64(v) => {
            out.push(key(3, VARINT));
            put_varint(out, *v as u64);
        }
        Value::F64(v) => {
            out.push(key(4, I64));
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        Value::Array(a) => {
            out.push(key(5, LEN));
            put_varint(out, array_len(a) as u64);
            put_array(out, a);
        }
        _ => {}
    }
}

/// An `ArrayValue` message body: `values` (field 1), one `AnyValue` per element.
fn put_array(out: &mut Vec<u8>, array: &Array) {
    const VALUES: u8 = key(1, LEN);
    match array {
        Array::Bool(v) => {
            for &b in v {
                out.extend_from_slice(&[VALUES, 2, key(2, VARINT), u8::from(b)]);
            }
        }
        Array::I64(v) => {
            for &i in v {
                out.extend_from_slice(&[VALUES, 1 + varint_len(i as u64) as u8, key(3, VARINT)]);
                put_varint(out, i as u64);
            }
        }
        Array::F64(v) => {
            for &f in v {
                out.extend_from_slice(&[VALUES, 9, key(4, I64)]);
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
        }
        Array::String(v) => {
            for s in v {
                let s = s.as_str().as_bytes();
                out.push(VALUES);
                put_varint(out, len_field_len(s.len()) as u64);
                put_len_field(out, key(1, LEN), s);
            }
        }
        _ => {}
    }
}

/// A `KeyValue` as field `k` of its parent.
#[inline]
fn put_key_value(out: &mut Vec<u8>, k: u8, key_str: &str, value: &Value) {
    put_attr(out, k, key_str, AttrValue::Value(value));
}

/// An attribute as a `KeyValue`, field `k` of its parent.
///
/// Nearly every attribute is a short key with a short string or an integer: then every length
/// in the message is one byte, and it is written as two fixed-size heads and two copies (one
/// capacity check for all of it) instead of a push per key, length and tag — ≈ 40% fewer
/// instructions per attribute (docs/performance.md, "Eighth session"). Anything else takes
/// the general path below; both write the bytes prost writes.
#[inline]
fn put_attr(out: &mut Vec<u8>, k: u8, key_str: &str, value: AttrValue<'_>) {
    let value = match value {
        AttrValue::Value(Value::String(s)) => AttrValue::Str(s.as_str()),
        AttrValue::Value(Value::I64(i)) => AttrValue::I64(*i),
        other => other,
    };
    let key_bytes = key_str.as_bytes();
    match value {
        // KeyValue { key: 2 + key, value: 2 + AnyValue { string_value: 2 + s } } < 128 bytes.
        AttrValue::Str(s) if !key_bytes.is_empty() && key_bytes.len() + s.len() < 122 => {
            let any = 2 + s.len();
            let kv = 2 + key_bytes.len() + 2 + any;
            out.reserve(kv + 2);
            out.extend_from_slice(&[k, kv as u8, key(1, LEN), key_bytes.len() as u8]);
            out.extend_from_slice(key_bytes);
            out.extend_from_slice(&[key(2, LEN), any as u8, key(1, LEN), s.len() as u8]);
            out.extend_from_slice(s.as_bytes());
            return;
        }
        // KeyValue { key: 2 + key, value: 2 + AnyValue { int_value: 1 + varint } } < 128 bytes.
        AttrValue::I64(v) if !key_bytes.is_empty() && key_bytes.len() < 112 => {
            let any = 1 + varint_len(v as u64);
            let kv = 2 + key_bytes.len() + 2 + any;
            out.reserve(kv + 2);
            out.extend_from_slice(&[k, kv as u8, key(1, LEN), key_bytes.len() as u8]);
            out.extend_from_slice(key_bytes);
            out.extend_from_slice(&[key(2, LEN), any as u8, key(3, VARINT)]);
            put_varint(out, v as u64);
            return;
        }
        _ => {}
    }
    let value_len = attr_value_len(value);
    out.push(k);
    put_varint(out, key_value_len(key_str, value_len) as u64);
    put_str_field(out, key(1, LEN), key_str);
    out.push(key(2, LEN));
    put_varint(out, value_len as u64);
    match value {
        // An empty string is still written: the oneof is set (as opentelemetry-proto does).
        AttrValue::Str(s) => put_len_field(out, key(1, LEN), s.as_bytes()),
        AttrValue::I64(v) => {
            out.push(key(3, VARINT));
            put_varint(out, v as u64);
        }
        AttrValue::Value(v) => put_any_value(out, v),
    }
}

fn put_attributes(out: &mut Vec<u8>, k: u8, attributes: &[KeyValue]) {
    for kv in attributes {
        put_key_value(out, k, kv.key.as_str(), &kv.value);
    }
}

/// One `Span` as `ScopeSpans.spans` (field 2).
fn write_span<S: SpanView>(out: &mut Vec<u8>, span: &S) {
    let ctx = span.span_context();
    // Room for two bytes of length: a span of 128 B to 16 KiB.
    let opened = open(out, key(2, LEN), 2);
    out.extend_from_slice(&[key(1, LEN), 16]);
    out.extend_from_slice(&ctx.trace_id().to_bytes());
    out.extend_from_slice(&[key(2, LEN), 8]);
    out.extend_from_slice(&ctx.span_id().to_bytes());
    put_trace_state(out, key(3, LEN), ctx.trace_state());
    let parent = span.parent_span_id();
    if parent != SpanId::INVALID {
        out.extend_from_slice(&[key(4, LEN), 8]);
        out.extend_from_slice(&parent.to_bytes());
    }
    put_str_field(out, key(5, LEN), span.name());
    out.extend_from_slice(&[key(6, VARINT), span_kind(span.kind())]);
    put_fixed64_field(out, key(7, I64), to_nanos(span.start_time()));
    put_fixed64_field(out, key(8, I64), to_nanos(span.end_time()));
    span.for_each_attribute(|k, v| put_attr(out, key(9, LEN), k, v));
    put_u32_field(out, key(10, VARINT), span.dropped_attributes_count());
    for event in span.events() {
        let event_opened = open(out, key(11, LEN), 2);
        put_fixed64_field(out, key(1, I64), to_nanos(event.timestamp));
        put_str_field(out, key(2, LEN), &event.name);
        put_attributes(out, key(3, LEN), &event.attributes);
        put_u32_field(out, key(4, VARINT), event.dropped_attributes_count);
        close(out, event_opened);
    }
    put_u32_field(out, key(12, VARINT), span.dropped_events_count());
    for link in span.links() {
        let lctx = &link.span_context;
        // A link without attributes is 39 B or less; one byte of length.
        let link_opened = open(out, key(13, LEN), 1);
        out.extend_from_slice(&[key(1, LEN), 16]);
        out.extend_from_slice(&lctx.trace_id().to_bytes());
        out.extend_from_slice(&[key(2, LEN), 8]);
        out.extend_from_slice(&lctx.span_id().to_bytes());
        put_trace_state(out, key(3, LEN), lctx.trace_state());
        put_attributes(out, key(4, LEN), &link.attributes);
        put_u32_field(out, key(5, VARINT), link.dropped_attributes_count);
        out.push(key(6, I32));
        out.extend_from_slice(
            &span_flags(lctx.trace_flags().to_u8(), lctx.is_remote()).to_le_bytes(),
        );
        close(out, link_opened);
    }
    put_u32_field(out, key(14, VARINT), span.dropped_links_count());
    out.push(key(15, LEN));
    put_varint(out, status_len(span.status()) as u64);
    match span.status() {
        Status::Unset => {}
        Status::Ok => out.extend_from_slice(&[key(3, VARINT), 1]),
        Status::Error { description } => {
            put_str_field(out, key(2, LEN), description);
            out.extend_from_slice(&[key(3, VARINT), 2]);
        }
    }
    out.extend_from_slice(&SPAN_FLAGS_KEY);
    out.extend_from_slice(
        &span_flags(ctx.trace_flags().to_u8(), span.parent_is_remote()).to_le_bytes(),
    );
    close(out, opened);
}

/// opentelemetry-proto's `build_span_flags`: the W3C trace flags, plus "is_remote known" always
/// and "is_remote" when the parent (for a span) or the linked context (for a link) is remote.
#[inline]
fn span_flags(trace_flags: u8, remote: bool) -> u32 {
    let mut flags = u32::from(trace_flags) | CONTEXT_HAS_IS_REMOTE;
    if remote {
        flags |= CONTEXT_IS_REMOTE;
    }
    flags
}

/// OTLP `Span.SpanKind` numbers.
#[inline]
fn span_kind(kind: &SpanKind) -> u8 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// opentelemetry-proto's `to_nanos`: before the epoch is 0, beyond u64 truncates.
#[inline]
fn to_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos() as u64
}

#[cfg(test)]
mod tests {
    // Paths, no `use`: the encode bench compiles this file too, without the test harness,
    // where the `#[test]` function goes and an import would be unused.

    /// `open` / `close` against prost's own varint encoding, for every size of length around
    /// each room: a body shorter, as long as, and longer than the room expects; with bytes
    /// before the field and, in the batch, fields before and after it.
    #[test]
    fn a_field_opened_with_any_room_ends_as_prost_writes_it() {
        let lens = [0, 1, 127, 128, 300, 16_383, 16_384, 2_097_151, 2_097_152];
        for room in 1..=3 {
            for &len in &lens {
                let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                let mut out = vec![0xAA, 0xBB];
                let opened = super::open(&mut out, super::key(2, super::LEN), room);
                out.extend_from_slice(&body);
                super::close(&mut out, opened);
                out.push(0xCC);

                let mut want = vec![0xAA, 0xBB, super::key(2, super::LEN)];
                prost::encoding::encode_varint(len as u64, &mut want);
                want.extend_from_slice(&body);
                want.push(0xCC);
                assert!(out == want, "room {room}, body of {len} bytes");
            }
        }
    }
}
