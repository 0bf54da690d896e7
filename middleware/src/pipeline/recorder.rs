//! Starting and ending [`SpanRecord`]s: what the OpenTelemetry SDK's tracer and span do, without
//! the SDK (issue 11; see [`super::record`] for why). The layers start their spans with
//! [`Recorder::start`], tracebridge's `tracing` layer through [`Recorder::start_span`], the
//! OpenTelemetry API through [`RecordTracer`] / [`RecordTracerProvider`] ([`Recorder::build`]).
//!
//! Starting a span follows `SdkTracer::build_with_context` (opentelemetry_sdk 0.32) step by
//! step: no span under suppressed telemetry; the parent's trace id or a new one; the configured
//! sampler (the same `DebugSampler`-wrapped sampler the provider has) decides; the parent's trace
//! flags with the sampled bit set or cleared; the sampler's trace state and attributes; the span
//! limits applied with the same counts of what was dropped. The span lives in the returned
//! [`Context`] as an OpenTelemetry [`Span`](opentelemetry::trace::Span) of tracebridge's own
//! ([`RecordSpan`]), so everything that reads the current span keeps working: `#[instrument]` spans
//! nest under it, `Context::current().span()` can add attributes and
//! events to it, and the propagators inject its ids. Ending it pushes the record into the
//! pipeline's queue: a move into a lock-free slot.
//!
//! init installs a recorder unless Sentry's span processor is installed
//! (`SENTRY_TRACES_SAMPLE_RATE` above 0): that processor turns SDK spans into transactions, so
//! then every span stays an SDK span.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{
    Event, Link, SpanBuilder, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, SamplingDecision, ShouldSample, SpanLimits,
};

use super::pool::AttrsPool;
use super::queue::Queue;
use super::record::{Attrs, SpanRecord};
use super::Finished;

/// Starts spans as [`SpanRecord`]s and sends the ended, sampled ones to the pipeline.
pub(crate) struct Recorder {
    sampler: Box<dyn ShouldSample>,
    /// Whether the sampler may read the span's attributes (one given through
    /// `Builder::sampler`): they are then converted for it. The samplers `OTEL_TRACES_SAMPLER`
    /// names never read them.
    sampler_reads_attributes: bool,
    ids: RandomIdGenerator,
    limits: SpanLimits,
    /// Where ended, sampled records go; `None` (no OTLP endpoint) discards them.
    sink: Option<Arc<Queue<Finished>>>,
    /// Attribute buffers the export thread handed back.
    pool: Option<Arc<AttrsPool>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("sampler_reads_attributes", &self.sampler_reads_attributes)
            .field("limits", &self.limits)
            .field("export", &self.sink.is_some())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    pub(crate) fn new(
        sampler: Box<dyn ShouldSample>,
        sampler_reads_attributes: bool,
        limits: SpanLimits,
        sink: Option<Arc<Queue<Finished>>>,
    ) -> Self {
        Recorder {
            sampler,
            sampler_reads_attributes,
            ids: RandomIdGenerator::default(),
            limits,
            sink,
            pool: None,
        }
    }

    /// New spans take their attribute buffers from `pool` (the pipeline's, which the export
    /// thread refills).
    pub(crate) fn with_pool(mut self, pool: Arc<AttrsPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// An attribute list with room for `items` attributes and `text` bytes of string values:
    /// a buffer the export thread handed back when there is one.
    pub(crate) fn attrs(&self, items: usize, text: usize) -> Attrs {
        match &self.pool {
            Some(pool) => pool.take(items, text),
            None => Attrs::with_capacity(items, text),
        }
    }

    /// An attribute list for a span event with room for `items`: one the export thread
    /// handed back when there is one.
    pub(crate) fn event_attrs(&self, items: usize) -> Vec<KeyValue> {
        match &self.pool {
            Some(pool) => pool.take_event_attrs(items),
            None => Vec::with_capacity(items),
        }
    }

    /// A string with room for `len` bytes for a span's or event's name: one the export thread
    /// handed back when there is one.
    pub(crate) fn name(&self, len: usize) -> String {
        match &self.pool {
            Some(pool) => pool.take_name(len),
            None => String::with_capacity(len),
        }
    }

    /// Starts a span under `parent`; returns `parent` with it as the active span.
    pub(crate) fn start(
        &self,
        name: Cow<'static, str>,
        kind: SpanKind,
        attrs: Attrs,
        links: Vec<Link>,
        parent: &Context,
    ) -> Context {
        let span = self.start_span(None, name, kind, attrs, links, None, Vec::new(), parent);
        parent.with_span(span)
    }

    /// Starts a span from an OpenTelemetry `SpanBuilder` (tracing-opentelemetry's spans and the
    /// OpenTelemetry API's, through [`RecordTracer`]), as `SdkTracer::build_with_context` reads
    /// it: name, kind (default INTERNAL), attributes, links, events, start time.
    pub(crate) fn build(
        &self,
        scope: Option<Arc<InstrumentationScope>>,
        builder: SpanBuilder,
        parent: &Context,
    ) -> RecordSpan {
        let SpanBuilder {
            span_kind,
            name,
            start_time,
            attributes,
            events,
            links,
            ..
        } = builder;
        let attributes = attributes.unwrap_or_default();
        let mut attrs = Attrs::with_capacity(attributes.len(), 0);
        for kv in attributes {
            attrs.push(kv);
        }
        self.start_span(
            scope,
            name,
            span_kind.unwrap_or(SpanKind::Internal),
            attrs,
            links.unwrap_or_default(),
            start_time,
            events.unwrap_or_default(),
            parent,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_span(
        &self,
        scope: Option<Arc<InstrumentationScope>>,
        name: Cow<'static, str>,
        kind: SpanKind,
        mut attrs: Attrs,
        mut links: Vec<Link>,
        start_time: Option<SystemTime>,
        mut events: Vec<Event>,
        parent: &Context,
    ) -> RecordSpan {
        if parent.is_telemetry_suppressed() {
            return RecordSpan::empty(SpanContext::empty_context());
        }
        let span_id = self.ids.new_span_id();
        let parent_span = parent.span();
        let psc = parent_span.span_context();
        let has_parent = parent.has_active_span();
        let trace_id = if has_parent {
            psc.trace_id()
        } else {
            self.ids.new_trace_id()
        };
        let result = if self.sampler_reads_attributes {
            let kvs = attrs.to_key_values();
            self.sampler
                .should_sample(Some(parent), trace_id, &name, &kind, &kvs, &links)
        } else {
            self.sampler
                .should_sample(Some(parent), trace_id, &name, &kind, &[], &links)
        };
        let flags = psc.trace_flags();
        let sampled = match result.decision {
            SamplingDecision::Drop => {
                let sc = SpanContext::new(
                    trace_id,
                    span_id,
                    TraceFlags::default(),
                    false,
                    result.trace_state,
                );
                return RecordSpan::empty(sc);
            }
            SamplingDecision::RecordAndSample => true,
            SamplingDecision::RecordOnly => false,
        };
        let sc = SpanContext::new(
            trace_id,
            span_id,
            flags.with_sampled(sampled),
            false,
            result.trace_state,
        );
        // The SDK's order: the builder's attributes, then the sampler's; then the limits.
        for kv in result.attributes {
            attrs.push(kv);
        }
        let max_attributes = self.limits.max_attributes_per_span as usize;
        let dropped_attributes = attrs.len().saturating_sub(max_attributes) as u32;
        attrs.truncate(max_attributes);
        let dropped_links = truncate(&mut links, self.limits.max_links_per_span);
        for link in &mut links {
            link.dropped_attributes_count =
                truncate(&mut link.attributes, self.limits.max_attributes_per_link);
        }
        let dropped_events = truncate(&mut events, self.limits.max_events_per_span);
        for event in &mut events {
            event.dropped_attributes_count =
                truncate(&mut event.attributes, self.limits.max_attributes_per_event);
        }
        let start = start_time.unwrap_or_else(opentelemetry::time::now);
        let record = SpanRecord {
            scope,
            span_context: sc.clone(),
            parent_span_id: psc.span_id(),
            parent_is_remote: psc.is_valid() && psc.is_remote(),
            kind,
            name,
            start,
            end: start,
            attrs,
            dropped_attributes,
            events,
            dropped_events,
            links,
            dropped_links,
            status: Status::Unset,
        };
        RecordSpan {
            span_context: sc,
            record: Some(record),
            limits: self.limits,
            sink: self.sink.clone(),
        }
    }
}

/// tracebridge's tracer: the application's OpenTelemetry API spans
/// (`opentelemetry::global::tracer`, through [`RecordTracerProvider`]) become [`SpanRecord`]s
/// too. (The tests also run tracing-opentelemetry on it: the reference tracebridge's own
/// `tracing` layer is compared with.)
#[derive(Clone, Debug)]
pub(crate) struct RecordTracer {
    recorder: Arc<Recorder>,
    /// `None` for tracebridge's own scope.
    scope: Option<Arc<InstrumentationScope>>,
}

impl RecordTracer {
    /// tracebridge's own tracer (scope `tracebridge`).
    #[cfg(test)]
    pub(crate) fn new(recorder: Arc<Recorder>) -> Self {
        RecordTracer {
            recorder,
            scope: None,
        }
    }
}

impl opentelemetry::trace::Tracer for RecordTracer {
    type Span = RecordSpan;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> RecordSpan {
        self.recorder.build(self.scope.clone(), builder, parent_cx)
    }
}

/// The tracer provider `init` installs as OpenTelemetry's global one when the recorder is on:
/// `opentelemetry::global::tracer("my-lib")` spans are records with scope `my-lib`.
#[derive(Clone, Debug)]
pub(crate) struct RecordTracerProvider(pub(crate) Arc<Recorder>);

impl opentelemetry::trace::TracerProvider for RecordTracerProvider {
    type Tracer = RecordTracer;

    fn tracer_with_scope(&self, scope: InstrumentationScope) -> RecordTracer {
        let own = scope == super::tracer_scope();
        RecordTracer {
            recorder: self.0.clone(),
            scope: (!own).then(|| Arc::new(scope)),
        }
    }
}

/// Keeps the first `max` items; returns how many were dropped (the SDK's limit rule).
fn truncate<T>(items: &mut Vec<T>, max: u32) -> u32 {
    let dropped = items.len().saturating_sub(max as usize) as u32;
    items.truncate(max as usize);
    dropped
}

/// Appends `make()` to `items` below `max`, or counts one more dropped (the SDK's rule for
/// events and links added to a started span).
fn push_bounded<T>(items: &mut Vec<T>, dropped: &mut u32, max: u32, make: impl FnOnce() -> T) {
    if items.len() < max as usize {
        items.push(make());
    } else {
        *dropped += 1;
    }
}

/// A layer's span while it runs: the OpenTelemetry API's view of a [`SpanRecord`]. Recording
/// follows the SDK's `Span` (limits, status order, "ended once"); ending it sends the record to
/// the pipeline (sampled spans only, as the SDK's batch processor).
pub(crate) struct RecordSpan {
    span_context: SpanContext,
    /// `None` when not recording, or once ended.
    record: Option<SpanRecord>,
    limits: SpanLimits,
    sink: Option<Arc<Queue<Finished>>>,
}

impl RecordSpan {
    fn empty(span_context: SpanContext) -> Self {
        RecordSpan {
            span_context,
            record: None,
            limits: SpanLimits::default(),
            sink: None,
        }
    }
}

impl opentelemetry::trace::Span for RecordSpan {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        mut attributes: Vec<KeyValue>,
    ) where
        T: Into<Cow<'static, str>>,
    {
        let Some(record) = &mut self.record else {
            return;
        };
        let limits = &self.limits;
        push_bounded(
            &mut record.events,
            &mut record.dropped_events,
            limits.max_events_per_span,
            || {
                let dropped = truncate(&mut attributes, limits.max_attributes_per_event);
                Event::new(name, timestamp, attributes, dropped)
            },
        );
    }

    fn span_context(&self) -> &SpanContext {
        &self.span_context
    }

    fn is_recording(&self) -> bool {
        self.record.is_some()
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        let Some(record) = &mut self.record else {
            return;
        };
        if record.attrs.len() < self.limits.max_attributes_per_span as usize {
            record.attrs.push(attribute);
        } else {
            record.dropped_attributes += 1;
        }
    }

    fn set_status(&mut self, status: Status) {
        if let Some(record) = &mut self.record {
            // Ok > Error > Unset, as the SDK.
            if status > record.status {
                record.status = status;
            }
        }
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        if let Some(record) = &mut self.record {
            record.name = new_name.into();
        }
    }

    fn add_link(&mut self, span_context: SpanContext, mut attributes: Vec<KeyValue>) {
        let Some(record) = &mut self.record else {
            return;
        };
        let limits = &self.limits;
        push_bounded(
            &mut record.links,
            &mut record.dropped_links,
            limits.max_links_per_span,
            || {
                let dropped = truncate(&mut attributes, limits.max_attributes_per_link);
                Link::new(span_context, attributes, dropped)
            },
        );
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        if !record.span_context.is_sampled() {
            return;
        }
        if let Some(sink) = self.sink.as_ref().filter(|q| !q.is_closed()) {
            record.end = timestamp;
            sink.push(Finished::Record(record));
        }
    }
}

impl Drop for RecordSpan {
    /// A span dropped without `end` ends now, as the SDK's.
    fn drop(&mut self) {
        if self.record.is_some() {
            opentelemetry::trace::Span::end(self);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The recorder against the OpenTelemetry SDK it replaces: the same inputs through
    //! `SdkTracer::build_with_context` + the SDK's `Span` and through [`Recorder`] give the same
    //! `SpanData` (ids the SDK draws at random and timestamps aside), for sampling decisions,
    //! trace state, parents, limits, status order, events, links and ending twice.

    use std::str::FromStr;
    use std::time::{Duration, UNIX_EPOCH};

    use opentelemetry::trace::{
        SpanBuilder, SpanId, TraceId, TraceState, Tracer as _, TracerProvider as _,
    };
    use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SpanData};

    use super::*;
    use crate::propagation::DebugSampler;

    fn limits() -> SpanLimits {
        SpanLimits {
            max_attributes_per_span: 4,
            max_events_per_span: 1,
            max_links_per_span: 1,
            max_attributes_per_event: 1,
            max_attributes_per_link: 1,
        }
    }

    pub(crate) struct Both {
        pub(crate) provider: SdkTracerProvider,
        pub(crate) exporter: InMemorySpanExporter,
        pub(crate) recorder: Recorder,
        pub(crate) queue: Arc<Queue<Finished>>,
    }

    fn both(sampler: Sampler) -> Both {
        both_with(sampler, limits())
    }

    pub(crate) fn both_with(sampler: Sampler, limits: SpanLimits) -> Both {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .with_sampler(DebugSampler(sampler.clone()))
            .with_span_limits(limits)
            .build();
        let queue = Arc::new(Queue::new(16, 16));
        let recorder = Recorder::new(
            Box::new(DebugSampler(sampler)),
            false,
            limits,
            Some(queue.clone()),
        );
        Both {
            provider,
            exporter,
            recorder,
            queue,
        }
    }

    fn attrs() -> Attrs {
        let mut a = Attrs::with_capacity(5, 16);
        a.push_static("http.request.method", "GET");
        a.push_str("url.path", "/users/7");
        a.push_i64("server.port", 8080);
        a.push_str("user_agent.original", "ua/1");
        a.push(KeyValue::new("over.the.limit", true));
        a
    }

    pub(crate) fn remote_parent(flags: TraceFlags, state: &str) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736),
            SpanId::from(0x00f067aa0ba902b7),
            flags,
            true,
            TraceState::from_str(state).unwrap(),
        ))
    }

    /// The same span through both; returns what each exported (`None`: nothing) and the span
    /// context each put in the returned context.
    fn run(
        b: &Both,
        parent: &Context,
        links: Vec<Link>,
        script: impl Fn(&Context),
    ) -> [(Option<SpanData>, SpanContext); 2] {
        let tracer = b.provider.tracer(crate::pipeline::TRACER_NAME);
        let mut builder = SpanBuilder::from_name("GET /users/{id}")
            .with_kind(SpanKind::Server)
            .with_attributes(attrs().to_key_values());
        if !links.is_empty() {
            builder = builder.with_links(links.clone());
        }
        let cx = parent.with_span(tracer.build_with_context(builder, parent));
        script(&cx);
        let sdk_sc = cx.span().span_context().clone();
        cx.span().end();
        cx.span().end();
        let mut sdk = b.exporter.get_finished_spans().unwrap();
        b.exporter.reset();
        assert!(sdk.len() <= 1);

        let cx = b.recorder.start(
            "GET /users/{id}".into(),
            SpanKind::Server,
            attrs(),
            links,
            parent,
        );
        script(&cx);
        let ours_sc = cx.span().span_context().clone();
        cx.span().end();
        cx.span().end();
        drop(cx);
        let mut got = Vec::new();
        b.queue.pop_into(&mut got, 16);
        assert!(got.len() <= 1, "one span ended twice is exported once");
        let ours = got.pop().map(|f| match f {
            Finished::Record(r) => r.to_span_data(crate::pipeline::tracer_scope()),
            Finished::Sdk(_) => panic!("the recorder queued an SDK span"),
        });
        [(sdk.pop(), sdk_sc), (ours, ours_sc)]
    }

    /// Random ids and clock readings out, everything else kept.
    fn normalized(mut span: SpanData, keep_trace_id: bool) -> SpanData {
        let sc = &span.span_context;
        let trace_id = if keep_trace_id {
            sc.trace_id()
        } else {
            TraceId::INVALID
        };
        span.span_context = SpanContext::new(
            trace_id,
            SpanId::INVALID,
            sc.trace_flags(),
            sc.is_remote(),
            sc.trace_state().clone(),
        );
        span.start_time = UNIX_EPOCH;
        span.end_time = UNIX_EPOCH;
        span
    }

    fn script(cx: &Context) {
        let span = cx.span();
        span.set_attribute(KeyValue::new("late", 1_i64)); // over the limit: counted
        span.set_status(Status::error("boom"));
        span.set_status(Status::Unset); // lower: ignored
        span.add_event_with_timestamp(
            "first",
            UNIX_EPOCH + Duration::from_secs(5),
            vec![KeyValue::new("a", 1_i64), KeyValue::new("b", 2_i64)],
        );
        span.add_event("second, over the limit", vec![]);
        span.add_link(
            SpanContext::new(
                TraceId::from(7),
                SpanId::from(8),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            ),
            vec![],
        );
        span.update_name("renamed");
    }

    #[test]
    fn a_sampled_remote_parent_gives_the_sdks_span() {
        let b = both(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        let parent = remote_parent(TraceFlags::SAMPLED, "vendor=abc");
        let link = Link::new(
            SpanContext::new(
                TraceId::from(1),
                SpanId::from(2),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            ),
            vec![KeyValue::new("x", 1_i64), KeyValue::new("y", 2_i64)],
            0,
        );
        let [(sdk, sdk_sc), (ours, ours_sc)] = run(&b, &parent, vec![link.clone(), link], script);
        let (sdk, ours) = (sdk.expect("sdk span"), ours.expect("record"));
        assert_eq!(ours.parent_span_id, SpanId::from(0x00f067aa0ba902b7));
        assert!(ours.parent_span_is_remote);
        assert_eq!(ours.dropped_attributes_count, 2);
        assert_eq!(ours.events.dropped_count, 1);
        assert_eq!(ours.links.dropped_count, 2);
        assert_eq!(ours.status, Status::error("boom"));
        assert_eq!(ours.name, "renamed");
        assert_eq!(normalized(ours, true), normalized(sdk, true));
        assert_eq!(ours_sc.trace_id(), sdk_sc.trace_id());
        assert_eq!(ours_sc.trace_flags(), sdk_sc.trace_flags());
        assert_eq!(ours_sc.trace_state(), sdk_sc.trace_state());
        assert!(!ours_sc.is_remote());
        assert_ne!(ours_sc.span_id(), SpanId::INVALID);
    }

    #[test]
    fn a_new_trace_gets_a_new_trace_id_and_no_parent() {
        let b = both(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        let [(sdk, _), (ours, ours_sc)] = run(&b, &Context::new(), vec![], |_| {});
        let (sdk, ours) = (sdk.expect("sdk span"), ours.expect("record"));
        assert_ne!(ours_sc.trace_id(), TraceId::INVALID);
        assert_eq!(ours.parent_span_id, SpanId::INVALID);
        assert!(!ours.parent_span_is_remote);
        assert_eq!(ours.status, Status::Unset);
        assert_eq!(normalized(ours, false), normalized(sdk, false));
    }

    #[test]
    fn an_unsampled_parent_records_nothing_and_keeps_the_trace() {
        let b = both(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        let parent = remote_parent(TraceFlags::default(), "k=v");
        let [(sdk, sdk_sc), (ours, ours_sc)] = run(&b, &parent, vec![], script);
        assert!(sdk.is_none() && ours.is_none());
        assert_eq!(ours_sc.trace_id(), sdk_sc.trace_id());
        assert!(!ours_sc.is_sampled() && !sdk_sc.is_sampled());
        assert_eq!(ours_sc.trace_state(), sdk_sc.trace_state());
        assert_ne!(ours_sc.span_id(), SpanId::INVALID);
    }

    #[test]
    fn a_sampler_that_samples_nothing_is_obeyed_and_a_debug_id_overrides_it() {
        let b = both(Sampler::AlwaysOff);
        let [(sdk, _), (ours, _)] = run(&b, &Context::new(), vec![], |_| {});
        assert!(sdk.is_none() && ours.is_none());
        // `jaeger-debug-id` on the incoming context: sampled whatever the sampler says.
        let mut headers = http::HeaderMap::new();
        headers.insert("jaeger-debug-id", "dbg-1".parse().unwrap());
        let debug = crate::propagation::Propagator::default().extract(&headers);
        let [(sdk, _), (ours, _)] = run(&b, &debug, vec![], |_| {});
        let (sdk, ours) = (sdk.expect("sdk span"), ours.expect("record"));
        assert_eq!(normalized(ours, false), normalized(sdk, false));
    }

    #[test]
    fn spans_ending_after_shutdown_are_discarded() {
        let b = both(Sampler::AlwaysOn);
        b.queue.stop();
        let cx = b.recorder.start(
            "late".into(),
            SpanKind::Client,
            Attrs::default(),
            vec![],
            &Context::new(),
        );
        cx.span().end();
        assert_eq!(b.queue.len(), 0);
        assert_eq!(b.queue.dropped(), 0);
    }

    /// What `program` makes under `subscriber`, as the SDK's `SpanData` (`read` returns it;
    /// records converted), ids replaced by their order of ending (trace ids other than
    /// [`remote_parent`]'s by their order of appearance) and clock readings cleared.
    pub(crate) fn spans_of<S>(
        subscriber: S,
        program: impl FnOnce(),
        read: impl FnOnce() -> Vec<SpanData>,
    ) -> Vec<SpanData>
    where
        S: tracing::Subscriber + Send + Sync + 'static,
    {
        tracing::subscriber::with_default(subscriber, program);
        let mut spans = read();
        let ids: Vec<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
        let index = |id: SpanId| match ids.iter().position(|i| *i == id) {
            Some(i) => SpanId::from(i as u64 + 1),
            None => id, // the remote parent
        };
        let remote = TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736);
        let mut traces: Vec<TraceId> = Vec::new();
        for span in &mut spans {
            span.parent_span_id = index(span.parent_span_id);
            let sc = &span.span_context;
            let mut trace_id = sc.trace_id();
            if trace_id != remote {
                let i = match traces.iter().position(|t| *t == trace_id) {
                    Some(i) => i,
                    None => {
                        traces.push(trace_id);
                        traces.len() - 1
                    }
                };
                trace_id = TraceId::from(i as u128 + 1);
            }
            span.span_context = SpanContext::new(
                trace_id,
                index(sc.span_id()),
                sc.trace_flags(),
                sc.is_remote(),
                sc.trace_state().clone(),
            );
            for link in &mut span.links.links {
                let sc = &link.span_context;
                link.span_context = SpanContext::new(
                    sc.trace_id(),
                    index(sc.span_id()),
                    sc.trace_flags(),
                    sc.is_remote(),
                    sc.trace_state().clone(),
                );
            }
            span.start_time = UNIX_EPOCH;
            span.end_time = UNIX_EPOCH;
            for event in &mut span.events.events {
                event.timestamp = UNIX_EPOCH;
            }
            for kv in &mut span.attributes {
                if kv.key.as_str() == "busy_ns" || kv.key.as_str() == "idle_ns" {
                    kv.value = opentelemetry::Value::I64(0);
                }
            }
        }
        spans
    }

    /// The records in `queue`, as `SpanData`.
    pub(crate) fn queued(queue: &Queue<Finished>) -> Vec<SpanData> {
        let mut got = Vec::new();
        queue.pop_into(&mut got, 64);
        got.into_iter()
            .map(|f| match f {
                Finished::Record(r) => r.to_span_data(crate::pipeline::tracer_scope()),
                Finished::Sdk(_) => panic!("an SDK span in the recorder's queue"),
            })
            .collect()
    }

    /// What `work` makes, through tracing-opentelemetry with `tracer`.
    fn tracing_spans<T>(tracer: T, read: impl FnOnce() -> Vec<SpanData>) -> Vec<SpanData>
    where
        T: opentelemetry::trace::Tracer + Send + Sync + 'static,
        T::Span: Send + Sync,
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        spans_of(subscriber, work, read)
    }

    /// A request's worth of `tracing`: a span continued from a remote parent through
    /// `OpenTelemetrySpanExt`, a nested `#[instrument]`-like span with an event and an error
    /// event, an attribute set late, an event added through the OpenTelemetry API.
    pub(crate) fn work() {
        // tracebridge's `SpanExt`: tracing-opentelemetry's `OpenTelemetrySpanExt` when its layer
        // records the spans, tracebridge's own when `RecordLayer` does.
        use crate::SpanExt as _;
        let root = tracing::info_span!(
            "request",
            user.id = 7,
            otel.kind = "server",
            fail = tracing::field::Empty
        );
        let _ = root.set_parent(remote_parent(TraceFlags::SAMPLED, "vendor=abc"));
        root.in_scope(|| {
            let child = tracing::info_span!("trace3", step = "work");
            child.in_scope(|| {
                tracing::info!(step = "done", "trace3 finished");
                tracing::error!(code = 13, "it failed");
            });
            drop(child);
            root.record("fail", "c");
            root.set_attribute("late", 5_i64);
            Context::current()
                .span()
                .add_event("api event", vec![KeyValue::new("k", "v")]);
        });
        // Never entered: its event waits in tracing-opentelemetry's builder until it closes.
        let pending = tracing::info_span!(parent: &root, "pending");
        tracing::info!(parent: &pending, n = 1, "before start");
        drop(pending);
        let unrelated = tracing::info_span!(parent: None, "a new trace");
        unrelated.in_scope(|| tracing::warn!("alone"));
    }

    #[test]
    fn tracing_spans_through_the_record_tracer_equal_the_sdks() {
        let b = both_with(
            Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            SpanLimits::default(),
        );
        let sdk = tracing_spans(b.provider.tracer(crate::pipeline::TRACER_NAME), || {
            b.exporter.get_finished_spans().unwrap()
        });
        let queue = b.queue.clone();
        let ours = tracing_spans(RecordTracer::new(Arc::new(b.recorder)), move || {
            queued(&queue)
        });
        assert_eq!(ours.len(), 4);
        let names: Vec<&str> = ours.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["trace3", "pending", "a new trace", "request"]); // in the order they end
                                                                            // The new trace's id is random in both: compare it apart.
        let (mut ours, mut sdk) = (ours, sdk);
        let (our_new, sdk_new) = (ours.remove(2), sdk.remove(2));
        assert_ne!(
            our_new.span_context.trace_id(),
            TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736)
        );
        assert_eq!(normalized(our_new, false), normalized(sdk_new, false));
        assert_eq!(ours, sdk);
        // And what they are (so a shared mistake cannot pass): parents, kinds, status, events.
        assert_eq!(ours[0].parent_span_id, SpanId::from(4)); // `request`, the last to end
        assert_eq!(ours[1].parent_span_id, SpanId::from(4));
        assert_eq!(ours[1].events[0].name, "before start");
        assert_eq!(ours[2].parent_span_id, SpanId::from(0x00f067aa0ba902b7));
        assert!(ours[2].parent_span_is_remote);
        assert_eq!(ours[2].span_kind, SpanKind::Server);
        assert_eq!(ours[0].status, Status::error(""));
        let events: Vec<&str> = ours[0].events.iter().map(|e| e.name.as_ref()).collect();
        assert_eq!(events, ["trace3 finished", "it failed"]);
        assert!(ours[2].attributes.contains(&KeyValue::new("late", 5_i64)));
        assert!(ours[2].attributes.contains(&KeyValue::new("fail", "c")));
        assert_eq!(ours[2].events[0].name, "api event");
    }

    #[test]
    fn the_opentelemetry_api_records_spans_with_their_scope() {
        use opentelemetry::trace::{Span as _, TracerProvider as _};
        let b = both(Sampler::AlwaysOn);
        let provider = RecordTracerProvider(Arc::new(b.recorder));
        let parent = remote_parent(TraceFlags::SAMPLED, "");
        let lib = provider.tracer_with_scope(
            InstrumentationScope::builder("my-lib")
                .with_version("1.2")
                .build(),
        );
        lib.start_with_context("lib work", &parent).end();
        provider
            .tracer(crate::pipeline::TRACER_NAME)
            .start_with_context("own", &parent)
            .end();
        let mut got = Vec::new();
        b.queue.pop_into(&mut got, 16);
        let spans: Vec<SpanData> = got
            .into_iter()
            .map(|f| match f {
                Finished::Record(r) => r.to_span_data(crate::pipeline::tracer_scope()),
                Finished::Sdk(_) => panic!("an SDK span in the recorder's queue"),
            })
            .collect();
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].name, "lib work");
        assert_eq!(spans[0].instrumentation_scope.name(), "my-lib");
        assert_eq!(spans[0].instrumentation_scope.version(), Some("1.2"));
        assert_eq!(spans[0].parent_span_id, SpanId::from(0x00f067aa0ba902b7));
        assert_eq!(spans[0].span_kind, SpanKind::Internal);
        assert_eq!(
            spans[1].instrumentation_scope,
            crate::pipeline::tracer_scope()
        );
    }

    /// A sampler that drops spans whose `url.path` is `/healthz` (what a `Builder::sampler`
    /// may do): it sees the record's attributes when the recorder is told it reads them.
    #[derive(Clone, Debug)]
    struct NoHealthChecks;

    impl ShouldSample for NoHealthChecks {
        fn should_sample(
            &self,
            _parent: Option<&Context>,
            _trace_id: TraceId,
            _name: &str,
            _kind: &SpanKind,
            attributes: &[KeyValue],
            _links: &[Link],
        ) -> opentelemetry_sdk::trace::SamplingResult {
            let health = attributes
                .iter()
                .any(|kv| kv.key.as_str() == "url.path" && kv.value.as_str() == "/healthz");
            opentelemetry_sdk::trace::SamplingResult {
                decision: if health {
                    SamplingDecision::Drop
                } else {
                    SamplingDecision::RecordAndSample
                },
                attributes: vec![KeyValue::new("sampler.saw", attributes.len() as i64)],
                trace_state: TraceState::default(),
            }
        }
    }

    #[test]
    fn a_custom_sampler_sees_the_attributes_and_adds_its_own() {
        let queue = Arc::new(Queue::new(16, 16));
        let start = |reads: bool, path: &str| {
            let recorder = Recorder::new(
                Box::new(NoHealthChecks),
                reads,
                SpanLimits::default(),
                Some(queue.clone()),
            );
            let mut attrs = Attrs::with_capacity(2, 16);
            attrs.push_static("http.request.method", "GET");
            attrs.push_str("url.path", path);
            let cx = recorder.start(
                "GET".into(),
                SpanKind::Server,
                attrs,
                vec![],
                &Context::new(),
            );
            cx.span().end();
            let mut got = Vec::new();
            queue.pop_into(&mut got, 16);
            got.into_iter()
                .map(|f| match f {
                    Finished::Record(r) => r.to_span_data(crate::pipeline::tracer_scope()),
                    Finished::Sdk(_) => panic!("an SDK span in the recorder's queue"),
                })
                .collect::<Vec<_>>()
        };
        assert!(start(true, "/healthz").is_empty(), "dropped by the sampler");
        let kept = start(true, "/users");
        assert_eq!(kept.len(), 1);
        assert_eq!(
            kept[0].attributes,
            vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("url.path", "/users"),
                KeyValue::new("sampler.saw", 2_i64),
            ]
        );
        // A sampler from OTEL_TRACES_SAMPLER never reads them: not converted for it.
        let blind = start(false, "/healthz");
        assert_eq!(blind.len(), 1);
        assert_eq!(blind[0].attributes[2], KeyValue::new("sampler.saw", 0_i64));
    }
}
