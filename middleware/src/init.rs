//! One init from the environment (`OTEL_*`, `SENTRY_*`, `RUST_LOG`; see [`crate::config`]),
//! with builder overrides, returning a [`Guard`] that flushes on drop.
//!
//! What [`Builder::install`] sets up, in order:
//!
//! 1. **Sentry** (when `SENTRY_DSN` is set): `sentry::init` with environment, release,
//!    `traces_sample_rate`, `send_default_pii` off, and [`crate::sentry::before_send`] (trace
//!    context from the current OpenTelemetry span, Jaeger UI link, credential scrubbing).
//! 2. **Tracer provider**: the sampler, the resource (`service.name`,
//!    `OTEL_RESOURCE_ATTRIBUTES`, `telemetry.sdk.*`), and — when an endpoint is set —
//!    tracebridge's span pipeline (tonic for `grpc`, reqwest for `http/protobuf`).
//!    Sentry's `SentrySpanProcessor` is added when `SENTRY_TRACES_SAMPLE_RATE > 0`, so Sentry
//!    transactions are the same spans, with the same trace id, as the ones sent to Jaeger;
//!    otherwise spans are tracebridge's records ([`crate::global::SpanRecorder`]), and the
//!    OpenTelemetry API's global tracer provider makes records too.
//! 3. **Propagator**: `OTEL_PROPAGATORS`, writing this service's Sentry DSC when it starts a
//!    trace; installed as OpenTelemetry's global text map propagator too.
//! 4. **Subscriber**: registry + fmt layer (filtered by `RUST_LOG`, default `info`; each line
//!    carries `trace_id=` and `span_id=` of the current span) + tracebridge's `tracing` layer
//!    (records; tracing-opentelemetry on the SDK provider when Sentry transactions are on) +
//!    sentry-tracing layer (ERROR events become Sentry events, INFO/WARN breadcrumbs; it does
//!    not turn spans into Sentry spans — `SentrySpanProcessor` does that from the OTel spans).
//! 5. [`crate::global::install`], read by the layers on every request.
//!
//! [`Builder::build`] does the same except step 4: it returns the OpenTelemetry and Sentry
//! layers (and the log layer with [`Builder::with_logs`]) as one `tracing_subscriber::Layer`
//! for the application's own subscriber, and installs no subscriber.
//!
//! # Filters
//!
//! `RUST_LOG` filters log output only. The layers' SERVER and CLIENT spans are started
//! directly (records, or OpenTelemetry spans of the installed tracer; not `tracing` spans,
//! which cost twice as much), so no filter removes them. The application's `tracing` spans go through the OpenTelemetry layer's
//! own filter, `info` by default ([`Builder::span_filter`]) and independent of `RUST_LOG`:
//! INFO spans are exported even under `RUST_LOG=warn`, while the TRACE/DEBUG spans of hyper, h2
//! and tonic (including the exporter's own HTTP/2 traffic) are never turned into OpenTelemetry
//! spans.
//!
//! # Export off the request path
//!
//! Export runs off the request path, through tracebridge's own span pipeline
//! (`middleware/src/pipeline`, replacing the SDK's `BatchSpanProcessor` and opentelemetry-otlp).
//! Ending a span pushes it into a bounded lock-free queue (`OTEL_BSP_MAX_QUEUE_SIZE`) that wakes
//! nobody; the export thread (`tracebridge-export`, owned by the guard) wakes once per full
//! batch (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`) or per `OTEL_BSP_SCHEDULE_DELAY`, encodes the batch
//! into a reused buffer and sends it over http/protobuf or gRPC with the OTLP retry rules, each
//! export cut off after `min(OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_BSP_EXPORT_TIMEOUT)`. When the
//! queue is full the span is dropped and counted: the first drop is logged at once, then at
//! most one line per [`crate::export::REPORT_INTERVAL`], and the total at shutdown — never a
//! line per request. Because the export thread has its own runtime, `init()` works with or
//! without an application runtime, and dropping the guard never deadlocks a current-thread
//! runtime.
//!
//! Dropping the [`Guard`] exports everything still queued (an export in flight included) and
//! stops the export thread, blocking the dropping thread for at most the shutdown timeout per
//! backend (spans, then Sentry); spans still unexported after that are dropped. Failed exports
//! are counted by [`crate::export`] and reported at most once per
//! [`crate::export::REPORT_INTERVAL`] with the number of spans lost; a collector's partial
//! success is reported the same way with the number of spans it rejected.
//!
//! An `https` endpoint is verified against the system's root certificates, over gRPC (tonic +
//! rustls) and over HTTP (reqwest + rustls) alike.
//!
//! With no endpoint, spans are still created (valid ids, propagated downstream) but nothing is
//! exported, and one INFO log line says so. With `OTEL_SDK_DISABLED=true` there is no provider
//! at all and every layer is a pass-through; log output still works.

use std::sync::Arc;
use std::time::Duration;

use ::sentry::ClientInitGuard;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::{Config, Endpoint, Protocol};
use crate::global::Settings;
use crate::pipeline::recorder::Recorder;
use crate::pipeline::Pipeline;
use crate::propagation::{DscConfig, Propagator};
use crate::ConfigError;

/// How long [`Guard`] waits, at most, for the span flush and for the Sentry flush each.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Configuration from the environment plus overrides; [`Builder::install`] sets it up.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), tracebridge::ConfigError> {
/// let _guard = tracebridge::Builder::from_env()
///     .default_service_name("service-a")
///     .install()?;
/// # Ok(()) }
/// ```
#[must_use = "a Builder does nothing until .install() or .build() is called"]
pub struct Builder {
    config: Result<Config, ConfigError>,
    default_service_name: Option<String>,
    service_name: Option<String>,
    endpoint: Option<String>,
    protocol: Option<Protocol>,
    propagator: Option<Propagator>,
    sentry_dsn: Option<String>,
    sampler: Option<opentelemetry_sdk::trace::Sampler>,
    span_filter: Option<String>,
    log_writer: Option<BoxMakeWriter>,
    with_logs: bool,
    sentry_transport: Option<Arc<dyn ::sentry::TransportFactory>>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("default_service_name", &self.default_service_name)
            .field("service_name", &self.service_name)
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("sampler", &self.sampler)
            .field("span_filter", &self.span_filter)
            .field("with_logs", &self.with_logs)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    /// Defaults only, the environment is not read (see [`Builder::from_env`]).
    fn default() -> Self {
        Builder::from_config(Config::default())
    }
}

/// Initialises telemetry from the environment: `Builder::from_env().install()`.
pub fn init() -> Result<Guard, ConfigError> {
    Builder::from_env().install()
}

impl Builder {
    /// Reads the process environment. A bad variable is reported by [`Builder::install`].
    pub fn from_env() -> Self {
        Builder::from_result(Config::from_env())
    }

    /// Starts from an already parsed configuration.
    pub fn from_config(config: Config) -> Self {
        Builder::from_result(Ok(config))
    }

    fn from_result(config: Result<Config, ConfigError>) -> Self {
        Builder {
            config,
            default_service_name: None,
            service_name: None,
            endpoint: None,
            protocol: None,
            propagator: None,
            sentry_dsn: None,
            sampler: None,
            span_filter: None,
            log_writer: None,
            with_logs: false,
            sentry_transport: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// `service.name` when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` sets one
    /// (the demo services use this, so the environment can still rename them).
    pub fn default_service_name(mut self, name: impl Into<String>) -> Self {
        self.default_service_name = Some(name.into());
        self
    }

    /// `service.name`, overriding the environment.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// The OTLP endpoint, used as-is (no `/v1/traces` appended), overriding the environment.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The OTLP protocol, overriding `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// The propagator, overriding `OTEL_PROPAGATORS` (the Sentry DSC is still added).
    pub fn propagator(mut self, propagator: Propagator) -> Self {
        self.propagator = Some(propagator);
        self
    }

    /// The Sentry DSN, overriding `SENTRY_DSN`.
    pub fn sentry_dsn(mut self, dsn: impl Into<String>) -> Self {
        self.sentry_dsn = Some(dsn.into());
        self
    }

    /// The sampler, overriding `OTEL_TRACES_SAMPLER` / `_ARG`.
    pub fn sampler(mut self, sampler: opentelemetry_sdk::trace::Sampler) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// `EnvFilter` directives choosing which `tracing` spans become OpenTelemetry spans.
    /// Default `info`; independent of `RUST_LOG` (see the module docs). The layers' own
    /// SERVER/CLIENT spans are not `tracing` spans and are not filtered.
    pub fn span_filter(mut self, directives: impl Into<String>) -> Self {
        self.span_filter = Some(directives.into());
        self
    }

    /// Where log lines go (default: stdout).
    pub fn log_writer<W>(mut self, writer: W) -> Self
    where
        W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
    {
        self.log_writer = Some(BoxMakeWriter::new(writer));
        self
    }

    /// For [`Builder::build`]: whether the returned layer also holds tracebridge's log layer
    /// (lines with `trace_id=` / `span_id=`, filtered by `RUST_LOG`, written to
    /// [`Builder::log_writer`]). Default `false`: the application's own layers write the logs.
    /// [`Builder::install`] always installs it.
    pub fn with_logs(mut self, on: bool) -> Self {
        self.with_logs = on;
        self
    }

    /// A Sentry transport instead of the HTTP one (tests, custom delivery).
    pub fn sentry_transport(mut self, transport: Arc<dyn ::sentry::TransportFactory>) -> Self {
        self.sentry_transport = Some(transport);
        self
    }

    /// The bound on each of the guard's flushes (spans, Sentry). Default 5 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Installs everything globally. Call once, early in `main`; keep the guard alive until
    /// the end of `main`. A second call returns an error for the parts that are global.
    pub fn install(self) -> Result<Guard, ConfigError> {
        self.set_up::<Registry>(true, |layers, telemetry| {
            let installed = tracing_subscriber::registry()
                .with(layers)
                .try_init()
                .is_ok();
            if !installed && telemetry {
                tracing::warn!(
                    "a global tracing subscriber was already installed: tracebridge's log format, \
                     OpenTelemetry and Sentry layers are not active"
                );
            }
        })
    }

    /// Sets up everything [`Builder::install`] does — Sentry, the tracer provider and span
    /// pipeline, the propagator, the settings the layers read — *except* the global `tracing`
    /// subscriber, and returns tracebridge's `tracing` layer for the application's own
    /// subscriber instead (see "Keeping your own subscriber" in `docs/adding-the-middleware.md`).
    ///
    /// The layer holds the OpenTelemetry layer (with [`Builder::span_filter`]), so
    /// `#[instrument]` spans nest under the request's span and are exported through
    /// tracebridge's pipeline, their events becoming span events; and, with Sentry on, the
    /// Sentry error and breadcrumb layers. It holds tracebridge's log layer only with
    /// [`Builder::with_logs`]: by default the application's own layers write the logs (their
    /// lines can carry the ids from [`crate::current_trace`]).
    ///
    /// Add the layer to the subscriber before the subscriber is installed; install it once.
    /// Lines tracebridge logs while it sets up (the "OTLP span export off" notice) are emitted
    /// before your subscriber exists, so they are not seen. With `OTEL_SDK_DISABLED=true` the
    /// layer does nothing (apart from the logs with [`Builder::with_logs`]).
    ///
    /// ```no_run
    /// use tracing_subscriber::layer::SubscriberExt;
    /// use tracing_subscriber::util::SubscriberInitExt;
    ///
    /// # fn main() -> Result<(), tracebridge::ConfigError> {
    /// let (_guard, telemetry) = tracebridge::Builder::from_env().build()?;
    /// tracing_subscriber::registry()
    ///     .with(tracing_subscriber::fmt::layer()) // the application's own log layer
    ///     .with(telemetry)
    ///     .init();
    /// # Ok(()) }
    /// ```
    #[must_use = "the guard flushes on drop, and the layer does nothing until it is added to a subscriber"]
    pub fn build<S>(self) -> Result<(Guard, Box<dyn Layer<S> + Send + Sync>), ConfigError>
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static,
    {
        let with_logs = self.with_logs;
        let mut built = None;
        let guard = self.set_up::<S>(with_logs, |layers, _| built = Some(layers))?;
        let layer = match built {
            // An empty `Vec` layer is not a no-op: it reports `Interest::never` and an `OFF`
            // level hint, which would silence the application's own layers.
            Some(layers) if !layers.is_empty() => layers.boxed(),
            _ => tracing_subscriber::layer::Identity::new().boxed(),
        };
        Ok((guard, layer))
    }

    /// What [`Builder::install`] and [`Builder::build`] share: everything but installing the
    /// subscriber, which `subscriber` does with tracebridge's layers (the log layer first, when
    /// `with_logs`) and whether telemetry is on (`false` under `OTEL_SDK_DISABLED`).
    fn set_up<S>(
        mut self,
        with_logs: bool,
        subscriber: impl FnOnce(Vec<BoxedLayer<S>>, bool),
    ) -> Result<Guard, ConfigError>
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static,
    {
        let shutdown_timeout = self.shutdown_timeout;
        let sampler = self.sampler.take();
        let sentry_transport = self.sentry_transport.take();
        let Resolved {
            cfg,
            span_filter,
            log_filter,
            writer,
        } = self.resolve()?;

        let sensitive: Arc<[http::HeaderName]> = Arc::from(cfg.sensitive_headers.clone());
        let jaeger_ui_url: Option<Arc<str>> = cfg.jaeger_ui_url.as_deref().map(Arc::from);
        let mut layers: Vec<BoxedLayer<S>> = Vec::new();
        if with_logs {
            layers.push(log_layer(log_filter, writer));
        }

        if cfg.disabled {
            // No provider, no propagator, no Sentry: logs only. The layers see `disabled` and
            // pass requests through untouched.
            subscriber(layers, false);
            crate::global::install(Settings {
                disabled: true,
                propagator: cfg.propagator,
                sentry_enabled: false,
                jaeger_ui_url,
                sensitive_headers: sensitive,
                tracer: None,
                recorder: None,
            });
            return Ok(Guard {
                provider: None,
                pipeline: None,
                sentry: None,
                timeout: shutdown_timeout,
            });
        }

        // 1. Sentry, first: SentrySpanProcessor registers its event processor on the hub.
        let sentry = install_sentry(
            &cfg,
            sentry_transport,
            shutdown_timeout,
            jaeger_ui_url.clone(),
            sensitive.clone(),
        );

        // 2. The tracer provider and the span pipeline.
        let sentry_processor = sentry.is_some() && cfg.sentry.traces_sample_rate > 0.0;
        let Provider {
            provider,
            pipeline,
            recorder,
        } = build_provider(&cfg, sampler, sentry_processor)?;

        // 3. The propagator. Sentry's propagation context on extracted contexts is read only by
        // its span processor: without one, extraction leaves it out (one context value less).
        let mut propagator = cfg.propagator.clone().with_sentry_context(sentry_processor);
        if let Some(dsn) = &cfg.sentry.dsn {
            propagator = propagator.with_dsc(DscConfig {
                public_key: Some(dsn.public_key().to_owned()),
                environment: cfg.sentry.environment.clone(),
                release: cfg.sentry.release.clone(),
                sample_rate: Some(dsc_sample_rate(cfg.sentry.traces_sample_rate)),
            });
        }
        opentelemetry::global::set_text_map_propagator(propagator.clone());
        // The OpenTelemetry API's spans: records when the recorder is on, else SDK spans.
        let recorder = recorder.map(Arc::new);
        match &recorder {
            Some(recorder) => opentelemetry::global::set_tracer_provider(
                crate::pipeline::recorder::RecordTracerProvider(recorder.clone()),
            ),
            None => opentelemetry::global::set_tracer_provider(provider.clone()),
        }

        // 4. The subscriber (or, for `build`, the layers handed to the application).
        telemetry_layers(
            &mut layers,
            &provider,
            recorder.clone(),
            span_filter,
            sentry.is_some(),
        );
        subscriber(layers, true);

        match &cfg.endpoint {
            Some(ep) => tracing::debug!(
                endpoint = %ep.traces_url(cfg.protocol),
                protocol = ?cfg.protocol,
                "OTLP span export on"
            ),
            None => tracing::info!(
                "OTLP span export off: OTEL_EXPORTER_OTLP_ENDPOINT is not set; spans are \
                 created and trace headers propagated, but nothing is exported"
            ),
        }

        // 5. The settings the layers read per request.
        crate::global::install(Settings {
            disabled: false,
            propagator,
            sentry_enabled: sentry.is_some(),
            jaeger_ui_url,
            sensitive_headers: sensitive,
            tracer: Some(provider.tracer(crate::pipeline::TRACER_NAME)),
            recorder: recorder.map(crate::global::SpanRecorder),
        });

        Ok(Guard {
            provider: Some(provider),
            pipeline,
            sentry,
            timeout: shutdown_timeout,
        })
    }

    /// The configuration with the builder's overrides applied, and the parsed filters.
    fn resolve(self) -> Result<Resolved, ConfigError> {
        let mut cfg = self.config?;
        if let Some(name) = self.service_name {
            cfg.service_name = Some(name);
        } else if cfg.service_name.is_none() {
            cfg.service_name = self.default_service_name;
        }
        if let Some(url) = self.endpoint {
            cfg.endpoint = Some(Endpoint {
                url: crate::config::parse_url("Builder::endpoint", &url)?,
                signal_specific: true,
                var: "Builder::endpoint",
            });
        }
        if let Some(p) = self.protocol {
            cfg.protocol = p;
        }
        if let Some(p) = self.propagator {
            cfg.propagator = p;
        }
        if let Some(dsn) = self.sentry_dsn {
            cfg.sentry.dsn = Some(crate::config::parse_dsn("Builder::sentry_dsn", &dsn)?);
        }
        let span_filter = match self.span_filter {
            Some(d) => EnvFilter::builder()
                .parse(&d)
                .map_err(|e| ConfigError::new("Builder::span_filter", format!("{d:?}: {e}")))?,
            None => EnvFilter::new("info"),
        };
        let log_filter = EnvFilter::builder()
            .parse(&cfg.log_filter)
            .map_err(|e| ConfigError::new("RUST_LOG", e.to_string()))?;
        let writer = self
            .log_writer
            .unwrap_or_else(|| BoxMakeWriter::new(std::io::stdout));
        Ok(Resolved {
            cfg,
            span_filter,
            log_filter,
            writer,
        })
    }
}

/// One of tracebridge's `tracing` layers, for a subscriber `S`.
type BoxedLayer<S> = Box<dyn Layer<S> + Send + Sync>;

/// What [`Builder::resolve`] gives [`Builder::set_up`].
struct Resolved {
    cfg: Config,
    span_filter: EnvFilter,
    log_filter: EnvFilter,
    writer: BoxMakeWriter,
}

/// The log output: fmt with [`TraceIdFormat`], filtered by `RUST_LOG`.
fn log_layer<S>(filter: EnvFilter, writer: BoxMakeWriter) -> BoxedLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .fmt_fields(NoSpanFields)
        .event_format(TraceIdFormat::default())
        .with_writer(writer)
        // One per-layer filter, not two nested ones: with nested filters the outer one
        // enables every span and callsite the inner one rejects, so the registry creates,
        // enters and closes every TRACE span of h2 and hyper (measured: a third of a tonic
        // server's CPU under load).
        .with_filter(filter)
        .boxed()
}

/// `sentry::init` when a DSN is set.
fn install_sentry(
    cfg: &Config,
    transport: Option<Arc<dyn ::sentry::TransportFactory>>,
    shutdown_timeout: Duration,
    jaeger_ui_url: Option<Arc<str>>,
    sensitive: Arc<[http::HeaderName]>,
) -> Option<ClientInitGuard> {
    let dsn = cfg.sentry.dsn.as_ref()?;
    let mut opts = ::sentry::ClientOptions::new()
        .send_default_pii(false)
        .traces_sample_rate(cfg.sentry.traces_sample_rate)
        .shutdown_timeout(shutdown_timeout)
        .before_send(crate::sentry::before_send(jaeger_ui_url, sensitive));
    opts.dsn = Some(dsn.clone());
    opts.environment = cfg.sentry.environment.clone().map(Into::into);
    opts.release = cfg.sentry.release.clone().map(Into::into);
    opts.transport = transport;
    Some(::sentry::init(opts))
}

/// What [`build_provider`] makes.
struct Provider {
    provider: SdkTracerProvider,
    /// tracebridge's export pipeline, when an endpoint is set.
    pipeline: Option<Pipeline>,
    /// The span recorder, unless Sentry's span processor must see the spans.
    recorder: Option<Recorder>,
}

/// The tracer provider: sampler, resource, and — when an endpoint is set — tracebridge's span
/// pipeline ([`crate::pipeline`]); Sentry's span processor when `sentry_processor`, else the
/// recorder that writes every span straight into the pipeline (same sampler, span limits from
/// the same `OTEL_SPAN_*_COUNT_LIMIT` variables the SDK reads).
fn build_provider(
    cfg: &Config,
    sampler: Option<opentelemetry_sdk::trace::Sampler>,
    sentry_processor: bool,
) -> Result<Provider, ConfigError> {
    let mut resource_attrs: Vec<KeyValue> = cfg
        .resource_attributes
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    resource_attrs.push(KeyValue::new(
        "service.name",
        cfg.service_name.clone().unwrap_or_else(unknown_service),
    ));
    let resource = Resource::builder_empty()
        .with_detector(Box::new(
            opentelemetry_sdk::resource::TelemetryResourceDetector,
        ))
        .with_attributes(resource_attrs)
        .build();
    // A sampler given to `Builder::sampler` may read span attributes; those from
    // `OTEL_TRACES_SAMPLER` never do.
    let custom_sampler = sampler.is_some();
    let sampler = sampler.unwrap_or_else(|| cfg.sampler.to_sampler());
    let mut provider = SdkTracerProvider::builder()
        // A `jaeger-debug-id` request is sampled whatever the sampler says.
        .with_sampler(crate::propagation::DebugSampler(sampler.clone()))
        .with_resource(resource.clone());
    let mut pipeline = None;
    if let Some(endpoint) = &cfg.endpoint {
        let (handle, processor) = Pipeline::start(cfg, endpoint, &resource)?;
        provider = provider.with_span_processor(processor);
        pipeline = Some(handle);
    }
    let recorder = if sentry_processor {
        provider = provider
            .with_span_processor(::sentry::integrations::opentelemetry::SentrySpanProcessor::new());
        None
    } else {
        let recorder = Recorder::new(
            Box::new(crate::propagation::DebugSampler(sampler)),
            custom_sampler,
            opentelemetry_sdk::trace::Config::default().span_limits,
            pipeline.as_ref().map(Pipeline::queue),
        );
        Some(match &pipeline {
            Some(pipeline) => recorder.with_pool(pipeline.pool()),
            None => recorder,
        })
    };
    Ok(Provider {
        provider: provider.build(),
        pipeline,
        recorder,
    })
}

/// tracebridge's layers after the log layer: tracebridge's `tracing` layer on its recorder
/// (or, when Sentry's span processor must see the spans, on tracebridge's SDK provider), and
/// Sentry's event and breadcrumb layers when Sentry is on.
fn telemetry_layers<S>(
    layers: &mut Vec<BoxedLayer<S>>,
    provider: &SdkTracerProvider,
    recorder: Option<Arc<Recorder>>,
    span_filter: EnvFilter,
    sentry: bool,
) where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static,
{
    layers.push(match recorder {
        Some(recorder) => crate::tracing_layer::RecordLayer::new(recorder)
            .with_filter(span_filter)
            .boxed(),
        None => tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(crate::pipeline::TRACER_NAME))
            .with_filter(span_filter)
            .boxed(),
    });
    if sentry {
        // No SpanLayer: Sentry transactions come from SentrySpanProcessor, so a `tracing`
        // span is not sent twice. ERROR events become Sentry events; INFO/WARN breadcrumbs.
        // The SDK's own diagnostics are logged but never sent to Sentry.
        layers.push(
            ::sentry::integrations::tracing::ErrorLayer::new()
                .with_filter(
                    tracing_subscriber::filter::filter_fn(|m| {
                        m.is_event() && *m.level() == tracing::Level::ERROR && !is_otel_internal(m)
                    })
                    .with_max_level_hint(LevelFilter::ERROR),
                )
                .boxed(),
        );
        layers.push(
            ::sentry::integrations::tracing::BreadcrumbLayer::new()
                .with_filter(
                    tracing_subscriber::filter::filter_fn(|m| {
                        m.is_event()
                            && matches!(*m.level(), tracing::Level::WARN | tracing::Level::INFO)
                            && !is_otel_internal(m)
                    })
                    .with_max_level_hint(LevelFilter::INFO),
                )
                .boxed(),
        );
    }
}

/// Events about telemetry itself: the OpenTelemetry SDK's own (`internal-logs`) and the span
/// queue's drop lines (which replace the SDK's batch processor's), never sent to Sentry.
fn is_otel_internal(meta: &tracing::Metadata<'_>) -> bool {
    meta.target().starts_with("opentelemetry") || meta.target() == "tracebridge::pipeline"
}

fn unknown_service() -> String {
    // The spec's default: `unknown_service:` + the executable name.
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    match exe {
        Some(exe) => format!("unknown_service:{exe}"),
        None => "unknown_service".to_owned(),
    }
}

/// The DSC's `sentry-sample_rate` from Sentry's `f32` rate, through the `f32`'s shortest
/// decimal form: `f64::from(0.1f32)` would write `sentry-sample_rate=0.10000000149011612`.
fn dsc_sample_rate(rate: f32) -> f64 {
    rate.to_string().parse().unwrap_or(f64::from(rate))
}

/// Keeps telemetry installed; on drop, flushes and shuts down the tracer provider, then
/// flushes Sentry, each bounded by the shutdown timeout (default 5 s), so a dead or
/// black-holed backend delays exit by at most that much.
#[must_use = "dropping the guard flushes and shuts telemetry down"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
    /// The span pipeline's export thread (when an endpoint is set), stopped on drop.
    pipeline: Option<Pipeline>,
    sentry: Option<ClientInitGuard>,
    timeout: Duration,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("provider", &self.provider.is_some())
            .field("export", &self.pipeline.is_some())
            .field("sentry", &self.sentry.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Guard {
    /// The installed OpenTelemetry SDK tracer provider (`None` when `OTEL_SDK_DISABLED=true`).
    /// Spans started from it are SDK spans, exported through the same queue; the layers',
    /// `tracing`'s and `opentelemetry::global::tracer`'s spans are tracebridge's records unless
    /// Sentry transactions are on (docs/adding-the-middleware.md).
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.provider.as_ref()
    }

    /// Exports every finished span now (bounded by the shutdown timeout). Returns whether the
    /// flush completed in time and without an export error.
    pub fn force_flush(&self) -> bool {
        let Some(provider) = self.provider.clone() else {
            return true;
        };
        run_bounded(self.timeout, move || provider.force_flush().is_ok()).unwrap_or(false)
    }
}

/// Runs `f` on its own thread and waits at most `timeout`: the flush blocks on the export
/// runtime, and the caller may be an async task that must not be blocked without bound.
fn run_bounded<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("tracebridge-flush".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    rx.recv_timeout(timeout).ok()
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let pipeline = self.pipeline.take();
            let backlog = pipeline.as_ref().map(|p| p.backlog());
            let timeout = self.timeout;
            let done = run_bounded(timeout, move || {
                // The export thread exports everything queued (spans ended right up to now),
                // an export in flight included, then ends.
                let exported = pipeline.is_none_or(|mut p| p.shutdown());
                // The other processors (Sentry's); the pipeline's answers at once now.
                let _ = provider.shutdown();
                exported
            });
            match done {
                Some(true) => {}
                Some(false) => tracing::warn!("spans could not be exported at shutdown"),
                // The export thread is stuck in an export (a hung collector): it reports
                // nothing more, so the totals are reported here — what the full queue dropped
                // and what is still queued (a batch in flight is not counted in either).
                None => tracing::warn!(
                    timeout_ms = timeout.as_millis() as u64,
                    dropped_spans_total = backlog.as_ref().map_or(0, |b| b.dropped()),
                    queued_spans = backlog.as_ref().map_or(0, |b| b.queued()),
                    "span flush did not finish in time; unexported spans are dropped"
                ),
            }
        }
        if let Some(sentry) = self.sentry.take() {
            // `ClientInitGuard`'s drop closes the client, bounded by `shutdown_timeout`.
            if !sentry.flush(Some(self.timeout)) {
                tracing::warn!("Sentry events could not be flushed in time");
            }
            drop(sentry);
        }
    }
}

/// The fmt layer's field formatter, which formats nothing.
///
/// The fmt layer formats every span's fields into a string when the span is created (and again
/// on each `Span::record`), to print them in the span prefix of log lines. [`TraceIdFormat`]
/// prints span names only (the ids say which span a line belongs to), so that string was never
/// read — and formatting it was the fmt layer's whole cost for a `tracing` span (~14 k
/// instructions for a span with a dozen fields). Event fields are formatted by
/// [`TraceIdFormat`] itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSpanFields;

impl<'writer> tracing_subscriber::fmt::FormatFields<'writer> for NoSpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        _writer: tracing_subscriber::fmt::format::Writer<'writer>,
        _fields: R,
    ) -> std::fmt::Result {
        Ok(())
    }
}

/// The fmt layer's line format: the default fields plus `trace_id=` / `span_id=` of the
/// current OpenTelemetry span (the entered `tracing` span, through context activation).
///
/// `2026-01-01T00:00:00.000000Z  INFO trace_id=4bf9… span_id=00f0… request:trace1: target: message k=v`
#[derive(Debug, Default)]
pub struct TraceIdFormat {
    timer: tracing_subscriber::fmt::time::SystemTime,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for TraceIdFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use opentelemetry::trace::TraceContextExt;
        use tracing_subscriber::fmt::time::FormatTime;

        let meta = event.metadata();
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        write!(writer, " {:>5} ", meta.level())?;
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            // One write of the whole prefix, the ids hex-encoded by table (`write!` with the
            // ids' `Display` was ~1.2 k instructions per line, callgrind of service c).
            let ids = crate::propagation::hex::IdsHex::new(sc.trace_id(), sc.span_id());
            let mut line = [0u8; 66];
            line[..9].copy_from_slice(b"trace_id=");
            line[9..41].copy_from_slice(&ids.trace);
            line[41..50].copy_from_slice(b" span_id=");
            line[50..].copy_from_slice(&ids.span);
            // Hex digits and ASCII: always UTF-8.
            writer.write_str(std::str::from_utf8(&line).map_err(|_| std::fmt::Error)?)?;
            writer.write_char(' ')?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(writer, "{}:", span.name())?;
            }
            writer.write_char(' ')?;
        }
        write!(writer, "{}: ", meta.target())?;
        // The event's own fields; the layer's field formatter is `NoSpanFields`.
        tracing_subscriber::fmt::FormatFields::format_fields(
            &tracing_subscriber::fmt::format::DefaultFields::new(),
            writer.by_ref(),
            event,
        )?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod dsc_rate_tests {
    use super::dsc_sample_rate;

    #[test]
    fn dsc_sample_rate_keeps_the_decimal_the_user_wrote() {
        assert_eq!(dsc_sample_rate(0.1).to_string(), "0.1");
        assert_eq!(dsc_sample_rate(0.25).to_string(), "0.25");
        assert_eq!(dsc_sample_rate(1.0).to_string(), "1");
        assert_eq!(dsc_sample_rate(0.0).to_string(), "0");
    }
}

#[cfg(test)]
mod log_format_tests {
    use super::{NoSpanFields, TraceIdFormat};
    use crate::test_support::Captured;
    use tracing_subscriber::layer::SubscriberExt;

    /// A subscriber with `init`'s log line format, writing into `buf`.
    fn logs_into(buf: &Captured) -> impl tracing::Subscriber + Send + Sync {
        let writer = buf.clone();
        tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .fmt_fields(NoSpanFields)
                .event_format(TraceIdFormat::default())
                .with_writer(move || writer.clone()),
        )
    }

    #[test]
    fn lines_carry_span_names_and_event_fields_but_not_span_fields() {
        let buf = Captured::default();
        tracing::subscriber::with_default(logs_into(&buf), || {
            let span = tracing::info_span!("load_user", secret_arg = "hunter2", id = 42);
            let _entered = span.enter();
            tracing::info!(code = 502, reason = "upstream", "request failed");
        });
        let text = buf.text();
        let line = text.lines().next().expect("one line");
        assert!(
            line.ends_with(
                " INFO load_user: tracebridge::init::log_format_tests: request failed code=502 reason=\"upstream\""
            ),
            "{line}"
        );
        assert!(
            !text.contains("hunter2") && !text.contains("id=42"),
            "{text}"
        );
    }

    #[test]
    fn lines_inside_a_span_carry_its_ids_in_lowercase_hex() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
        let buf = Captured::default();
        let cx = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736),
            SpanId::from(0x00f067aa0ba902b7),
            TraceFlags::SAMPLED,
            false,
            Default::default(),
        ));
        tracing::subscriber::with_default(logs_into(&buf), || {
            {
                let _current = cx.attach();
                tracing::warn!("inside");
            }
            tracing::warn!("outside");
        });
        let text = buf.text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with(
                "  WARN trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7 \
                 tracebridge::init::log_format_tests: inside"
            ),
            "{text}"
        );
        assert!(
            lines[1].ends_with("  WARN tracebridge::init::log_format_tests: outside"),
            "{text}"
        );
    }
}
