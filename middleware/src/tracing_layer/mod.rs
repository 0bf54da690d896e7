//! tracebridge's `tracing` layer: the application's `tracing` spans (`#[instrument]`,
//! `info_span!`) and the events inside them written straight into [`SpanRecord`]s.
//!
//! It replaces tracing-opentelemetry's `OpenTelemetryLayer` on the recorder path (issue 11).
//! That layer cost ≈ 11 k instructions for one `#[instrument]` span with one event (callgrind,
//! `server/work_axum_tracebridge` in `benches/server_layer.rs`): an `Arc<Mutex<…>>` per span, a
//! `SpanBuilder` with a `KeyValue` and a `String` per field, converted again into a record when
//! the span starts. This layer keeps the fields in the record's [`Attrs`] from the start.
//!
//! What it keeps from tracing-opentelemetry 0.33 (its default configuration, which tracebridge
//! ran before), so the exported spans are the same — `tests.rs` runs the same programs through
//! both and compares the exported spans field by field:
//! - the same attributes: `code.file.path`, `code.module.name`, `code.line.number`,
//!   `thread.id`, `thread.name`, `target`, the fields ([`fields`]), and `busy_ns` / `idle_ns`
//!   when the span closes;
//! - the same parent: an explicit parent's span, else the current OpenTelemetry context (the
//!   entered span's, the request's, or one the application attached);
//! - the same laziness: a span starts (ids, sampling) when it is first entered, gives a child,
//!   or is asked for its context; until then [`SpanExt::set_parent`] can still change its
//!   parent;
//! - context activation: while a span is entered its context is OpenTelemetry's current one, so
//!   client layers, log lines, Sentry events, `opentelemetry::global::tracer` spans and an
//!   application's own tracing-opentelemetry layer all see it as the parent.
//!
//! A span ends when it closes, at its last exit (as tracing-opentelemetry's).

mod ext;
mod fields;
#[cfg(test)]
mod tests;

pub use ext::SpanExt;

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use opentelemetry::trace::{Event, Link, Span as _, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, ContextGuard, KeyValue};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::pipeline::record::Attrs;
use crate::pipeline::recorder::{RecordSpan, Recorder};
use fields::{EventFields, SpanFields, SpanUpdates};

/// The layer; `init` puts it in the subscriber (or hands it out, `Builder::build`).
pub(crate) struct RecordLayer<S> {
    recorder: Arc<Recorder>,
    _subscriber: PhantomData<fn(S)>,
}

impl<S> RecordLayer<S> {
    pub(crate) fn new(recorder: Arc<Recorder>) -> Self {
        RecordLayer {
            recorder,
            _subscriber: PhantomData,
        }
    }
}

/// A `tracing` span's state, in the registry's extensions.
pub(crate) struct SpanState {
    state: State,
    /// The last exit: the span's end time (tracing-opentelemetry's rule).
    end_time: Option<SystemTime>,
    timings: Timings,
}

// Inline, not boxed: the registry boxes the whole `SpanState` once anyway.
#[allow(clippy::large_enum_variant)]
enum State {
    /// Not started yet: what the span will start with.
    Pending(Pending),
    /// Started: the span lives in this context (its parent's, with the span active).
    Started(Context),
}

struct Pending {
    recorder: Arc<Recorder>,
    name: Cow<'static, str>,
    kind: SpanKind,
    attrs: Attrs,
    links: Vec<Link>,
    events: Vec<Event>,
    status: Status,
    start: SystemTime,
    parent: Context,
}

impl SpanState {
    /// The span's context, starting the span first if it has not started.
    pub(crate) fn started(&mut self) -> &Context {
        if let State::Pending(_) = self.state {
            let State::Pending(p) =
                std::mem::replace(&mut self.state, State::Started(Context::new()))
            else {
                unreachable!()
            };
            self.state = State::Started(start(p));
        }
        match &self.state {
            State::Started(cx) => cx,
            State::Pending(_) => unreachable!("started above"),
        }
    }

    /// Sets the parent of a span that has not started; `false` once it has.
    pub(crate) fn set_parent(&mut self, parent: Context) -> bool {
        match &mut self.state {
            State::Pending(p) => {
                p.parent = parent;
                true
            }
            State::Started(_) => false,
        }
    }

    /// Adds a link (before the start, or to the started span).
    pub(crate) fn add_link(&mut self, link: Link) {
        match &mut self.state {
            State::Pending(p) => p.links.push(link),
            State::Started(cx) => cx.span().add_link(link.span_context, link.attributes),
        }
    }

    /// Sets an attribute (before the start, or on the started span).
    pub(crate) fn set_attribute(&mut self, kv: KeyValue) {
        match &mut self.state {
            State::Pending(p) => p.attrs.push(kv),
            State::Started(cx) => cx.span().set_attribute(kv),
        }
    }

    /// Sets the status: before the start it replaces the status, after it the SDK's order
    /// applies (tracing-opentelemetry's rules).
    pub(crate) fn set_status(&mut self, status: Status) {
        match &mut self.state {
            State::Pending(p) => p.status = status,
            State::Started(cx) => cx.span().set_status(status),
        }
    }
}

/// Starts a pending span: a record under its parent, with its status. Returns it with the
/// parent's context.
fn start_record(p: Pending) -> (RecordSpan, Context) {
    let mut span = prevent_reentrant_call(|| {
        p.recorder.start_span(
            None,
            p.name,
            p.kind,
            p.attrs,
            p.links,
            Some(p.start),
            p.events,
            &p.parent,
        )
    });
    span.set_status(p.status);
    (span, p.parent)
}

/// Starts a pending span in its parent's context.
fn start(p: Pending) -> Context {
    let (span, parent) = start_record(p);
    parent.with_span(span)
}

/// Busy and idle time (tracing-opentelemetry's `busy_ns` / `idle_ns`).
struct Timings {
    idle: i64,
    busy: i64,
    last: Instant,
    entered: u32,
}

thread_local! {
    /// Set while this layer calls code that may log (the sampler): the events that logging
    /// makes are not recorded into the span whose extensions are locked.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
    /// The guards of the contexts entered spans made current, innermost last.
    static GUARDS: RefCell<Vec<(Id, ContextGuard)>> = const { RefCell::new(Vec::new()) };
    /// `thread.id`: the thread's id as an integer (parsed once per thread).
    static THREAD_ID: i64 = thread_id_integer(std::thread::current().id());
}

fn prevent_reentrant_call<T>(f: impl FnOnce() -> T) -> T {
    let old = INSIDE.with(|inside| inside.replace(true));
    let out = f();
    INSIDE.with(|inside| inside.set(old));
    out
}

fn thread_id_integer(id: std::thread::ThreadId) -> i64 {
    // `ThreadId::as_u64` is unstable; its Debug form is `ThreadId(N)`.
    let text = format!("{id:?}");
    text.trim_start_matches("ThreadId(")
        .trim_end_matches(')')
        .parse()
        .unwrap_or(0)
}

impl<S> RecordLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    /// The new span's parent: an explicit parent's context, else the current context
    /// (context activation makes an entered span's context current), or none for a root.
    fn parent_context(&self, attrs: &Attributes<'_>, ctx: &LayerContext<'_, S>) -> Context {
        if let Some(parent) = attrs.parent() {
            if let Some(span) = ctx.span(parent) {
                let mut ext = span.extensions_mut();
                if let Some(state) = ext.get_mut::<SpanState>() {
                    return state.started().clone();
                }
            }
        }
        if attrs.is_contextual() {
            Context::current()
        } else {
            Context::new()
        }
    }
}

impl<S> Layer<S> for RecordLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = self.parent_context(attrs, &ctx);
        let meta = attrs.metadata();
        let thread = std::thread::current();
        let thread_name = thread.name();
        // Room for code.*, thread.*, target, the fields and busy/idle; the thread's name and
        // some field text in one buffer.
        let mut record_attrs = self.recorder.attrs(
            attrs.fields().len() + 8,
            thread_name.map_or(0, str::len) + 32,
        );
        if let Some(file) = meta.file() {
            record_attrs.push_static("code.file.path", file);
        }
        if let Some(module) = meta.module_path() {
            record_attrs.push_static("code.module.name", module);
        }
        if let Some(line) = meta.line() {
            record_attrs.push_i64("code.line.number", i64::from(line));
        }
        record_attrs.push_i64("thread.id", THREAD_ID.with(|id| *id));
        if let Some(name) = thread_name {
            record_attrs.push_str("thread.name", name);
        }
        record_attrs.push_static("target", meta.target());
        let mut updates = SpanUpdates::default();
        attrs.record(&mut SpanFields {
            attrs: &mut record_attrs,
            updates: &mut updates,
        });
        let pending = Pending {
            recorder: self.recorder.clone(),
            name: match updates.name {
                Some(name) => Cow::Owned(name),
                None => Cow::Borrowed(meta.name()),
            },
            kind: updates.kind.unwrap_or(SpanKind::Internal),
            attrs: record_attrs,
            links: Vec::new(),
            events: Vec::new(),
            status: updates.status.unwrap_or(Status::Unset),
            start: opentelemetry::time::now(),
            parent,
        };
        span.extensions_mut().insert(SpanState {
            state: State::Pending(pending),
            end_time: None,
            timings: Timings {
                idle: 0,
                busy: 0,
                last: Instant::now(),
                entered: 0,
            },
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        let Some(state) = ext.get_mut::<SpanState>() else {
            return;
        };
        let mut updates = SpanUpdates::default();
        match &mut state.state {
            State::Pending(p) => {
                values.record(&mut SpanFields {
                    attrs: &mut p.attrs,
                    updates: &mut updates,
                });
                if let Some(name) = updates.name {
                    p.name = Cow::Owned(name);
                }
                if let Some(kind) = updates.kind {
                    p.kind = kind;
                }
                if let Some(status) = updates.status {
                    p.status = status;
                }
            }
            State::Started(cx) => {
                // A started span takes new attributes and status (not a new name or kind),
                // as tracing-opentelemetry's.
                let mut attrs = Attrs::default();
                values.record(&mut SpanFields {
                    attrs: &mut attrs,
                    updates: &mut updates,
                });
                let span = cx.span();
                if let Some(status) = updates.status {
                    span.set_status(status);
                }
                if attrs.len() > 0 {
                    span.set_attributes(attrs.to_key_values());
                }
            }
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: LayerContext<'_, S>) {
        let (Some(span), Some(follows)) = (ctx.span(id), ctx.span(follows)) else {
            return;
        };
        let follows_sc = {
            let mut ext = follows.extensions_mut();
            let Some(state) = ext.get_mut::<SpanState>() else {
                return;
            };
            state.started().span().span_context().clone()
        };
        let mut ext = span.extensions_mut();
        if let Some(state) = ext.get_mut::<SpanState>() {
            state.add_link(Link::with_context(follows_sc));
        }
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let cx = {
            let mut ext = span.extensions_mut();
            let Some(state) = ext.get_mut::<SpanState>() else {
                return;
            };
            let timings = &mut state.timings;
            if timings.entered == 0 {
                let now = Instant::now();
                timings.idle += (now - timings.last).as_nanos() as i64;
                timings.last = now;
            }
            timings.entered += 1;
            state.started().clone()
        };
        let guard = cx.attach();
        GUARDS.with(|g| g.borrow_mut().push((id.clone(), guard)));
    }

    fn on_exit(&self, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        let Some(state) = ext.get_mut::<SpanState>() else {
            return;
        };
        state.end_time = Some(opentelemetry::time::now());
        let timings = &mut state.timings;
        timings.entered = timings.entered.saturating_sub(1);
        if timings.entered == 0 {
            let now = Instant::now();
            timings.busy += (now - timings.last).as_nanos() as i64;
            timings.last = now;
        }
        drop(ext);
        // The innermost guard of this span (spans exit in any order across tasks).
        let guard = GUARDS.with(|g| {
            let mut g = g.borrow_mut();
            let at = g.iter().rposition(|(entered, _)| entered == id)?;
            Some(g.remove(at).1)
        });
        drop(guard);
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: LayerContext<'_, S>) {
        if INSIDE.with(|inside| inside.get()) {
            return;
        }
        // Only events inside a span become span events.
        let Some(span) = event.parent().and_then(|id| ctx.span(id)).or_else(|| {
            event
                .is_contextual()
                .then(|| ctx.lookup_current())
                .flatten()
        }) else {
            return;
        };
        let meta = event.metadata();
        // level, target, the fields, code.*: one list, reused from the pool when it can.
        let mut attributes = self.recorder.event_attrs(meta.fields().len() + 5);
        attributes.push(KeyValue::new("level", meta.level().as_str()));
        attributes.push(KeyValue::new("target", meta.target()));
        let mut otel_event = Event::new("", opentelemetry::time::now(), attributes, 0);
        let mut status = None;
        let mut span_attrs = Vec::new();
        event.record(&mut EventFields {
            event: &mut otel_event,
            recorder: &self.recorder,
            status: &mut status,
            span_attrs: &mut span_attrs,
        });
        if otel_event.name.is_empty() {
            otel_event.name = Cow::Borrowed(meta.name());
        }
        if let Some(file) = meta.file() {
            otel_event
                .attributes
                .push(KeyValue::new("code.file.path", file));
        }
        if let Some(module) = meta.module_path() {
            otel_event
                .attributes
                .push(KeyValue::new("code.module.name", module));
        }
        if let Some(line) = meta.line() {
            otel_event
                .attributes
                .push(KeyValue::new("code.line.number", i64::from(line)));
        }
        let error = *meta.level() == Level::ERROR;
        let mut ext = span.extensions_mut();
        let Some(state) = ext.get_mut::<SpanState>() else {
            return;
        };
        match &mut state.state {
            State::Pending(p) => {
                if error && p.status == Status::Unset {
                    p.status = Status::error("");
                }
                if let Some(status) = status {
                    p.status = status;
                }
                for kv in span_attrs {
                    p.attrs.push(kv);
                }
                p.events.push(otel_event);
            }
            State::Started(cx) => {
                let span = cx.span();
                if error {
                    span.set_status(Status::error(""));
                }
                if let Some(status) = status {
                    span.set_status(status);
                }
                if !span_attrs.is_empty() {
                    span.set_attributes(span_attrs);
                }
                span.add_event(otel_event.name, otel_event.attributes);
            }
        }
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(state) = span.extensions_mut().remove::<SpanState>() else {
            return;
        };
        let timings = [
            KeyValue::new("busy_ns", state.timings.busy),
            KeyValue::new("idle_ns", state.timings.idle),
        ];
        let end = state.end_time.unwrap_or_else(opentelemetry::time::now);
        match state.state {
            State::Pending(p) => {
                // Never entered: no context needed, the record ends at once.
                let (mut span, _) = start_record(p);
                span.set_attributes(timings);
                span.end_with_timestamp(end);
            }
            State::Started(cx) => {
                let span = cx.span();
                span.set_attributes(timings);
                span.end_with_timestamp(end);
            }
        }
    }
}
