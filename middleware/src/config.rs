//! Configuration from the standard `OTEL_*` / `SENTRY_*` environment variables.
//!
//! [`Config::from_lookup`] parses from any `name -> Option<String>` function, so every rule
//! below is unit-tested without touching the process environment; [`Config::from_env`] reads
//! the real environment. Empty values count as unset (OpenTelemetry SDK configuration spec).
//! Every bad value is a [`ConfigError`] that names the variable.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `OTEL_SDK_DISABLED` | `true`: no tracing at all, every layer is a pass-through | `false` |
//! | `OTEL_SERVICE_NAME` | `service.name` (wins over the one in `OTEL_RESOURCE_ATTRIBUTES`) | `unknown_service:{exe}` |
//! | `OTEL_RESOURCE_ATTRIBUTES` | `k=v,k2=v2`, values percent-decoded | none |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | full URL, used as-is | |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL; `/v1/traces` is appended for `http/protobuf` | unset: export off |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` | `grpc` or `http/protobuf` (`http/json` unsupported) | `grpc` |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` | `k=v,k2=v2`, values percent-decoded | none |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` | export request timeout, milliseconds (retries included) | `10000` |
//! | `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION` | `gzip` or `none` | `none` |
//! | `OTEL_PROPAGATORS` | `tracecontext,baggage,jaeger,b3,b3multi,sentry` or `none` | `tracecontext,baggage,jaeger,sentry` |
//! | `OTEL_TRACES_SAMPLER` | `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio` | `parentbased_always_on` |
//! | `OTEL_TRACES_SAMPLER_ARG` | ratio in `0..=1` for the `*traceidratio` samplers | `1.0` |
//! | `OTEL_BSP_SCHEDULE_DELAY` | milliseconds between batch exports | `5000` |
//! | `OTEL_BSP_EXPORT_TIMEOUT` | milliseconds one export may take | `30000` |
//! | `OTEL_BSP_MAX_QUEUE_SIZE` | spans buffered before new ones are dropped | `2048` |
//! | `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | spans per export, `<=` queue size | `512` |
//! | `SENTRY_DSN` | turns Sentry on | off |
//! | `SENTRY_ENVIRONMENT`, `SENTRY_RELEASE` | event / DSC attributes | none |
//! | `SENTRY_TRACES_SAMPLE_RATE` | `0..=1`; `> 0` sends transactions | `0` |
//! | `JAEGER_UI_URL` | base URL of Jaeger UI, links Sentry events to the trace | none |
//! | `TRACEBRIDGE_SENSITIVE_HEADERS` | comma list of extra header names never recorded | none |
//! | `RUST_LOG` | `tracing_subscriber::EnvFilter` directives for log output | `info` |

use std::time::Duration;

use http::HeaderName;

use crate::propagation::Propagator;

/// A configuration value that cannot be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The environment variable (or builder setting) at fault.
    pub var: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(var: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            var,
            message: message.into(),
        }
    }
}

/// The OTLP transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (tonic). The default, as in the spec.
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (reqwest).
    HttpProtobuf,
}

/// `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION`: how export request bodies are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed (the default, as in the spec).
    #[default]
    None,
    /// gzip (`Content-Encoding: gzip` over HTTP, `grpc-encoding: gzip` over gRPC).
    Gzip,
}

/// The OTLP collector address as configured, before the per-protocol path rule is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as given (validated: `http` or `https`, with a host).
    pub url: String,
    /// Whether it came from a traces-specific source (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or a
    /// builder override): then it is used as-is. The generic variable gets `/v1/traces`
    /// appended for `http/protobuf`.
    pub signal_specific: bool,
    /// Where it came from, for errors: the variable name or the builder setter.
    pub var: &'static str,
}

impl Endpoint {
    /// The URL the exporter sends to for `protocol`.
    pub fn traces_url(&self, protocol: Protocol) -> String {
        match (protocol, self.signal_specific) {
            (Protocol::HttpProtobuf, false) => {
                format!("{}/v1/traces", self.url.trim_end_matches('/'))
            }
            _ => self.url.clone(),
        }
    }
}

/// `OTEL_TRACES_SAMPLER` + `OTEL_TRACES_SAMPLER_ARG`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum SamplerConfig {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio` with its ratio.
    TraceIdRatio(f64),
    /// `parentbased_always_on` (the default).
    #[default]
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio` with its ratio.
    ParentBasedTraceIdRatio(f64),
}

impl SamplerConfig {
    /// The SDK sampler.
    pub fn to_sampler(self) -> opentelemetry_sdk::trace::Sampler {
        use opentelemetry_sdk::trace::Sampler;
        match self {
            SamplerConfig::AlwaysOn => Sampler::AlwaysOn,
            SamplerConfig::AlwaysOff => Sampler::AlwaysOff,
            SamplerConfig::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
            SamplerConfig::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            SamplerConfig::ParentBasedAlwaysOff => {
                Sampler::ParentBased(Box::new(Sampler::AlwaysOff))
            }
            SamplerConfig::ParentBasedTraceIdRatio(r) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
            }
        }
    }
}

/// `OTEL_BSP_*`: the batch span processor's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// `OTEL_BSP_SCHEDULE_DELAY`.
    pub schedule_delay: Duration,
    /// `OTEL_BSP_EXPORT_TIMEOUT`.
    pub export_timeout: Duration,
    /// `OTEL_BSP_MAX_QUEUE_SIZE`.
    pub max_queue_size: usize,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (clamped to the queue size).
    pub max_export_batch_size: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            schedule_delay: Duration::from_millis(5_000),
            export_timeout: Duration::from_millis(30_000),
            max_queue_size: 2_048,
            max_export_batch_size: 512,
        }
    }
}

impl BatchConfig {
    /// These bounds as the SDK's batch processor configuration.
    pub fn to_sdk(&self) -> opentelemetry_sdk::trace::BatchConfig {
        opentelemetry_sdk::trace::BatchConfigBuilder::default()
            .with_scheduled_delay(self.schedule_delay)
            .with_max_export_timeout(self.export_timeout)
            .with_max_queue_size(self.max_queue_size)
            .with_max_export_batch_size(self.max_export_batch_size)
            .build()
    }
}

/// `SENTRY_*`.
#[derive(Clone, Debug, Default)]
pub struct SentryConfig {
    /// `SENTRY_DSN`, parsed; `None` = Sentry off.
    pub dsn: Option<sentry::types::Dsn>,
    /// `SENTRY_ENVIRONMENT`.
    pub environment: Option<String>,
    /// `SENTRY_RELEASE`.
    pub release: Option<String>,
    /// `SENTRY_TRACES_SAMPLE_RATE` (0 = no transactions).
    pub traces_sample_rate: f32,
}

/// Everything [`crate::init`] reads from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// `OTEL_SDK_DISABLED`.
    pub disabled: bool,
    /// `OTEL_SERVICE_NAME`, else `service.name` from `OTEL_RESOURCE_ATTRIBUTES`.
    pub service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`, in order, without `service.name`.
    pub resource_attributes: Vec<(String, String)>,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`; `None` = export off.
    pub endpoint: Option<Endpoint>,
    /// `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`.
    pub protocol: Protocol,
    /// `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`, decoded.
    pub headers: Vec<(String, String)>,
    /// Which of the two headers variables `headers` came from (for error messages).
    pub headers_var: &'static str,
    /// `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION`.
    pub compression: Compression,
    /// `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`.
    pub timeout: Duration,
    /// `OTEL_PROPAGATORS`.
    pub propagator: Propagator,
    /// `OTEL_TRACES_SAMPLER` / `_ARG`.
    pub sampler: SamplerConfig,
    /// `OTEL_BSP_*`.
    pub batch: BatchConfig,
    /// `SENTRY_*`.
    pub sentry: SentryConfig,
    /// `JAEGER_UI_URL`, without a trailing slash.
    pub jaeger_ui_url: Option<String>,
    /// `TRACEBRIDGE_SENSITIVE_HEADERS`, lower-cased header names.
    pub sensitive_headers: Vec<HeaderName>,
    /// `RUST_LOG` directives (validated).
    pub log_filter: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            disabled: false,
            service_name: None,
            resource_attributes: Vec::new(),
            endpoint: None,
            protocol: Protocol::Grpc,
            headers: Vec::new(),
            headers_var: "OTEL_EXPORTER_OTLP_HEADERS",
            compression: Compression::None,
            timeout: Duration::from_millis(10_000),
            propagator: Propagator::default(),
            sampler: SamplerConfig::default(),
            batch: BatchConfig::default(),
            sentry: SentryConfig::default(),
            jaeger_ui_url: None,
            sensitive_headers: Vec::new(),
            log_filter: "info".to_owned(),
        }
    }
}

impl Config {
    /// How long one export may take: the smaller of `OTEL_EXPORTER_OTLP_TIMEOUT` and
    /// `OTEL_BSP_EXPORT_TIMEOUT`. The export is cut off there, and the transport's own timeout
    /// is the same, so a black-holed collector never holds a connection past an abandoned export.
    pub fn export_cutoff(&self) -> Duration {
        self.timeout.min(self.batch.export_timeout)
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (`None` or an empty value = unset).
    pub fn from_lookup<F>(lookup: F) -> Result<Config, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut cfg = Config::default();

        if let Some(v) = get("OTEL_SDK_DISABLED") {
            cfg.disabled = parse_bool("OTEL_SDK_DISABLED", &v)?;
        }

        if let Some(v) = get("OTEL_RESOURCE_ATTRIBUTES") {
            for (k, val) in parse_key_values("OTEL_RESOURCE_ATTRIBUTES", &v)? {
                if k == "service.name" {
                    cfg.service_name = Some(val);
                } else {
                    cfg.resource_attributes.push((k, val));
                }
            }
        }
        if let Some(v) = get("OTEL_SERVICE_NAME") {
            cfg.service_name = Some(v.trim().to_owned());
        }

        let (protocol_var, protocol) = first_of(
            &get,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        );
        if let Some(v) = protocol {
            cfg.protocol = parse_protocol(protocol_var, &v)?;
        }

        if let Some(v) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            cfg.endpoint = Some(Endpoint {
                url: parse_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &v)?,
                signal_specific: true,
                var: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            });
        } else if let Some(v) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            cfg.endpoint = Some(Endpoint {
                url: parse_url("OTEL_EXPORTER_OTLP_ENDPOINT", &v)?,
                signal_specific: false,
                var: "OTEL_EXPORTER_OTLP_ENDPOINT",
            });
        }

        let (headers_var, headers) = first_of(
            &get,
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        );
        if let Some(v) = headers {
            cfg.headers = parse_headers(headers_var, &v)?;
            cfg.headers_var = headers_var;
        }

        let (compression_var, compression) = first_of(
            &get,
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        );
        if let Some(v) = compression {
            cfg.compression = match v.trim().to_ascii_lowercase().as_str() {
                "gzip" => Compression::Gzip,
                "none" => Compression::None,
                other => {
                    return Err(ConfigError::new(
                        compression_var,
                        format!("{other:?}: expected `gzip` or `none`"),
                    ))
                }
            };
        }

        let (timeout_var, timeout) = first_of(
            &get,
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        );
        if let Some(v) = timeout {
            cfg.timeout = parse_millis(timeout_var, &v)?;
        }

        if let Some(v) = get("OTEL_PROPAGATORS") {
            cfg.propagator = Propagator::from_names(&v)?;
        }

        cfg.sampler = parse_sampler(get("OTEL_TRACES_SAMPLER"), get("OTEL_TRACES_SAMPLER_ARG"))?;

        if let Some(v) = get("OTEL_BSP_SCHEDULE_DELAY") {
            cfg.batch.schedule_delay = parse_millis("OTEL_BSP_SCHEDULE_DELAY", &v)?;
        }
        if let Some(v) = get("OTEL_BSP_EXPORT_TIMEOUT") {
            cfg.batch.export_timeout = parse_millis("OTEL_BSP_EXPORT_TIMEOUT", &v)?;
        }
        if let Some(v) = get("OTEL_BSP_MAX_QUEUE_SIZE") {
            cfg.batch.max_queue_size = parse_positive("OTEL_BSP_MAX_QUEUE_SIZE", &v)?;
        }
        if let Some(v) = get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            cfg.batch.max_export_batch_size = parse_positive("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &v)?;
        }
        // The spec: the batch size must be <= the queue size; the SDK clamps it the same way.
        cfg.batch.max_export_batch_size = cfg
            .batch
            .max_export_batch_size
            .min(cfg.batch.max_queue_size);

        if let Some(v) = get("SENTRY_DSN") {
            cfg.sentry.dsn = Some(parse_dsn("SENTRY_DSN", &v)?);
        }
        cfg.sentry.environment = get("SENTRY_ENVIRONMENT").map(|v| v.trim().to_owned());
        cfg.sentry.release = get("SENTRY_RELEASE").map(|v| v.trim().to_owned());
        if let Some(v) = get("SENTRY_TRACES_SAMPLE_RATE") {
            cfg.sentry.traces_sample_rate = parse_ratio("SENTRY_TRACES_SAMPLE_RATE", &v)? as f32;
        }

        if let Some(v) = get("JAEGER_UI_URL") {
            cfg.jaeger_ui_url = Some(
                parse_url("JAEGER_UI_URL", &v)?
                    .trim_end_matches('/')
                    .to_owned(),
            );
        }

        if let Some(v) = get("TRACEBRIDGE_SENSITIVE_HEADERS") {
            cfg.sensitive_headers = parse_header_names("TRACEBRIDGE_SENSITIVE_HEADERS", &v)?;
        }

        if let Some(v) = get("RUST_LOG") {
            cfg.log_filter = parse_log_filter("RUST_LOG", &v)?;
        }

        Ok(cfg)
    }
}

/// The signal-specific variable wins over the generic one; returns the one that was used so
/// that an error names it.
fn first_of<G>(
    get: &G,
    specific: &'static str,
    generic: &'static str,
) -> (&'static str, Option<String>)
where
    G: Fn(&str) -> Option<String>,
{
    match get(specific) {
        Some(v) => (specific, Some(v)),
        None => (generic, get(generic)),
    }
}

fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ConfigError::new(
            var,
            format!("expected `true` or `false`, got {v:?}"),
        ))
    }
}

fn percent_decode(var: &'static str, v: &str) -> Result<String, ConfigError> {
    percent_encoding::percent_decode_str(v)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ConfigError::new(var, format!("{v:?} is not UTF-8 after percent-decoding")))
}

/// `k=v,k2=v2` (W3C-baggage-like list used by `OTEL_RESOURCE_ATTRIBUTES` and `*_HEADERS`).
fn parse_key_values(var: &'static str, v: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for item in v.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some((k, val)) = item.split_once('=') else {
            return Err(ConfigError::new(
                var,
                format!("entry {item:?} is not `key=value`"),
            ));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(ConfigError::new(
                var,
                format!("entry {item:?} has an empty key"),
            ));
        }
        out.push((percent_decode(var, k)?, percent_decode(var, val.trim())?));
    }
    Ok(out)
}

fn parse_headers(var: &'static str, v: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let pairs = parse_key_values(var, v)?;
    for (k, val) in &pairs {
        HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| ConfigError::new(var, format!("{k:?} is not a valid header name")))?;
        // The value is a credential more often than not: never echo it in the error.
        http::HeaderValue::from_str(val).map_err(|_| {
            ConfigError::new(
                var,
                format!("the value of header {k:?} is not a valid header value"),
            )
        })?;
    }
    Ok(pairs)
}

fn parse_header_names(var: &'static str, v: &str) -> Result<Vec<HeaderName>, ConfigError> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            HeaderName::from_bytes(s.to_ascii_lowercase().as_bytes())
                .map_err(|_| ConfigError::new(var, format!("{s:?} is not a valid header name")))
        })
        .collect()
}

fn parse_protocol(var: &'static str, v: &str) -> Result<Protocol, ConfigError> {
    match v.trim() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Err(ConfigError::new(
            var,
            "`http/json` is not supported; use `grpc` or `http/protobuf`",
        )),
        other => Err(ConfigError::new(
            var,
            format!("unknown protocol {other:?}; expected `grpc` or `http/protobuf`"),
        )),
    }
}

/// A collector / UI URL: absolute, `http` or `https`, with a host. Returned as given (trimmed).
pub(crate) fn parse_url(var: &'static str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim();
    let url = url::Url::parse(v)
        .map_err(|e| ConfigError::new(var, format!("{v:?} is not a URL: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ConfigError::new(
            var,
            format!("{v:?}: scheme must be http or https"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(var, format!("{v:?} has no host")));
    }
    // The exporters parse the URL again as an `http::Uri`; reject what they would reject.
    v.parse::<http::Uri>()
        .map_err(|e| ConfigError::new(var, format!("{v:?} is not a valid URI: {e}")))?;
    Ok(v.to_owned())
}

fn parse_millis(var: &'static str, v: &str) -> Result<Duration, ConfigError> {
    v.trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            ConfigError::new(
                var,
                format!("expected a whole number of milliseconds, got {v:?}"),
            )
        })
}

fn parse_positive(var: &'static str, v: &str) -> Result<usize, ConfigError> {
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError::new(
            var,
            format!("expected a positive integer, got {v:?}"),
        )),
    }
}

fn parse_ratio(var: &'static str, v: &str) -> Result<f64, ConfigError> {
    match v.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(ConfigError::new(
            var,
            format!("expected a number in 0..=1, got {v:?}"),
        )),
    }
}

fn parse_sampler(name: Option<String>, arg: Option<String>) -> Result<SamplerConfig, ConfigError> {
    const ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
    let ratio =
        || -> Result<f64, ConfigError> { arg.as_deref().map_or(Ok(1.0), |a| parse_ratio(ARG, a)) };
    let Some(name) = name else {
        return Ok(SamplerConfig::default());
    };
    Ok(match name.trim() {
        "always_on" => SamplerConfig::AlwaysOn,
        "always_off" => SamplerConfig::AlwaysOff,
        "traceidratio" => SamplerConfig::TraceIdRatio(ratio()?),
        "parentbased_always_on" => SamplerConfig::ParentBasedAlwaysOn,
        "parentbased_always_off" => SamplerConfig::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => SamplerConfig::ParentBasedTraceIdRatio(ratio()?),
        other => {
            return Err(ConfigError::new(
                "OTEL_TRACES_SAMPLER",
                format!(
                    "unknown sampler {other:?}; expected always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
                ),
            ))
        }
    })
}

pub(crate) fn parse_dsn(var: &'static str, v: &str) -> Result<sentry::types::Dsn, ConfigError> {
    // The DSN holds the public key: do not echo it in the error.
    v.trim()
        .parse::<sentry::types::Dsn>()
        .map_err(|e| ConfigError::new(var, format!("not a valid Sentry DSN: {e}")))
}

fn parse_log_filter(var: &'static str, v: &str) -> Result<String, ConfigError> {
    tracing_subscriber::EnvFilter::builder()
        .parse(v.trim())
        .map_err(|e| ConfigError::new(var, format!("{v:?} is not a valid filter: {e}")))?;
    Ok(v.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn export_cutoff_is_the_smaller_timeout() {
        let short_transport = parse(&[
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "2000"),
        ])
        .unwrap();
        assert_eq!(short_transport.export_cutoff(), Duration::from_millis(500));
        let short_batch = parse(&[
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "700"),
        ])
        .unwrap();
        assert_eq!(short_batch.export_cutoff(), Duration::from_millis(700));
        assert_eq!(parse(&[]).unwrap().export_cutoff(), Duration::from_secs(10));
    }

    fn err_var(vars: &[(&str, &str)]) -> &'static str {
        match parse(vars) {
            Ok(cfg) => panic!("{vars:?} should fail, parsed {cfg:?}"),
            Err(e) => e.var,
        }
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let cfg = parse(&[]).unwrap();
        assert!(!cfg.disabled);
        assert_eq!(cfg.service_name, None);
        assert_eq!(cfg.endpoint, None);
        assert_eq!(cfg.protocol, Protocol::Grpc);
        assert_eq!(cfg.timeout, Duration::from_secs(10));
        assert_eq!(cfg.sampler, SamplerConfig::ParentBasedAlwaysOn);
        assert_eq!(cfg.batch, BatchConfig::default());
        assert!(cfg.sentry.dsn.is_none());
        assert_eq!(cfg.sentry.traces_sample_rate, 0.0);
        assert_eq!(cfg.jaeger_ui_url, None);
        assert!(cfg.sensitive_headers.is_empty());
        assert_eq!(cfg.log_filter, "info");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let cfg = parse(&[
            ("OTEL_SDK_DISABLED", ""),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", ""),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", " "),
            ("OTEL_TRACES_SAMPLER", ""),
            ("SENTRY_DSN", ""),
            ("RUST_LOG", ""),
        ])
        .unwrap();
        assert!(!cfg.disabled);
        assert_eq!(cfg.endpoint, None);
        assert_eq!(cfg.sampler, SamplerConfig::ParentBasedAlwaysOn);
        assert!(cfg.sentry.dsn.is_none());
        assert_eq!(cfg.log_filter, "info");
    }

    #[test]
    fn sdk_disabled() {
        assert!(parse(&[("OTEL_SDK_DISABLED", "true")]).unwrap().disabled);
        assert!(parse(&[("OTEL_SDK_DISABLED", "TRUE")]).unwrap().disabled);
        assert!(!parse(&[("OTEL_SDK_DISABLED", "false")]).unwrap().disabled);
        assert_eq!(
            err_var(&[("OTEL_SDK_DISABLED", "yes")]),
            "OTEL_SDK_DISABLED"
        );
    }

    #[test]
    fn service_name_and_resource_attributes() {
        let cfg = parse(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod, team=a%2Cb%20c,service.name=from-attrs",
        )])
        .unwrap();
        assert_eq!(cfg.service_name.as_deref(), Some("from-attrs"));
        assert_eq!(
            cfg.resource_attributes,
            vec![
                ("deployment.environment".to_owned(), "prod".to_owned()),
                ("team".to_owned(), "a,b c".to_owned()),
            ]
        );
        let cfg = parse(&[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
            ("OTEL_SERVICE_NAME", "svc"),
        ])
        .unwrap();
        assert_eq!(cfg.service_name.as_deref(), Some("svc"));
        assert_eq!(
            err_var(&[("OTEL_RESOURCE_ATTRIBUTES", "novalue")]),
            "OTEL_RESOURCE_ATTRIBUTES"
        );
        assert_eq!(
            err_var(&[("OTEL_RESOURCE_ATTRIBUTES", "=v")]),
            "OTEL_RESOURCE_ATTRIBUTES"
        );
        assert_eq!(
            err_var(&[("OTEL_RESOURCE_ATTRIBUTES", "k=%FF")]),
            "OTEL_RESOURCE_ATTRIBUTES"
        );
    }

    #[test]
    fn endpoint_generic_gets_path_for_http_only() {
        let cfg = parse(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).unwrap();
        let ep = cfg.endpoint.unwrap();
        assert_eq!(
            ep.traces_url(Protocol::HttpProtobuf),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(ep.traces_url(Protocol::Grpc), "http://collector:4318/");
    }

    #[test]
    fn endpoint_traces_wins_and_is_used_as_is() {
        let cfg = parse(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://traces:4318/custom",
            ),
        ])
        .unwrap();
        let ep = cfg.endpoint.unwrap();
        assert!(ep.signal_specific);
        assert_eq!(
            ep.traces_url(Protocol::HttpProtobuf),
            "https://traces:4318/custom"
        );
        assert_eq!(ep.traces_url(Protocol::Grpc), "https://traces:4318/custom");
    }

    #[test]
    fn endpoint_bad_values_name_the_variable() {
        for bad in ["collector:4317", "ftp://collector", "not a url", "http://"] {
            assert_eq!(
                err_var(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]),
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "{bad}"
            );
            assert_eq!(
                err_var(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", bad)]),
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "{bad}"
            );
        }
    }

    #[test]
    fn protocol() {
        let p = |v| parse(&[("OTEL_EXPORTER_OTLP_PROTOCOL", v)]).map(|c| c.protocol);
        assert_eq!(p("grpc").unwrap(), Protocol::Grpc);
        assert_eq!(p("http/protobuf").unwrap(), Protocol::HttpProtobuf);
        let e = p("http/json").unwrap_err();
        assert_eq!(e.var, "OTEL_EXPORTER_OTLP_PROTOCOL");
        assert!(e.message.contains("not supported"), "{e}");
        assert_eq!(p("thrift").unwrap_err().var, "OTEL_EXPORTER_OTLP_PROTOCOL");
        // The traces variant wins and is the one named.
        let cfg = parse(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ])
        .unwrap();
        assert_eq!(cfg.protocol, Protocol::HttpProtobuf);
        assert_eq!(
            err_var(&[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")]),
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
        );
    }

    #[test]
    fn headers() {
        let cfg = parse(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "api-key=secret%20value,x-tenant=t1",
        )])
        .unwrap();
        assert_eq!(
            cfg.headers,
            vec![
                ("api-key".to_owned(), "secret value".to_owned()),
                ("x-tenant".to_owned(), "t1".to_owned())
            ]
        );
        let cfg = parse(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2"),
        ])
        .unwrap();
        assert_eq!(cfg.headers, vec![("b".to_owned(), "2".to_owned())]);
        assert_eq!(
            err_var(&[("OTEL_EXPORTER_OTLP_HEADERS", "bad header=1")]),
            "OTEL_EXPORTER_OTLP_HEADERS"
        );
        let e =
            parse(&[("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "k=line%0Abreak-secret")]).unwrap_err();
        assert_eq!(e.var, "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
        assert!(
            !e.message.contains("secret"),
            "the value must not be echoed: {e}"
        );
    }

    #[test]
    fn compression() {
        assert_eq!(parse(&[]).unwrap().compression, Compression::None);
        let cfg = parse(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]).unwrap();
        assert_eq!(cfg.compression, Compression::Gzip);
        let cfg = parse(&[
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
        ])
        .unwrap();
        assert_eq!(cfg.compression, Compression::None);
        assert_eq!(
            err_var(&[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd")]),
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"
        );
    }

    #[test]
    fn timeout() {
        let cfg = parse(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")]).unwrap();
        assert_eq!(cfg.timeout, Duration::from_millis(2500));
        let cfg = parse(&[
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700"),
        ])
        .unwrap();
        assert_eq!(cfg.timeout, Duration::from_millis(700));
        assert_eq!(
            err_var(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]),
            "OTEL_EXPORTER_OTLP_TIMEOUT"
        );
        assert_eq!(
            err_var(&[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-1")]),
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
        );
    }

    #[test]
    fn propagators() {
        assert!(parse(&[("OTEL_PROPAGATORS", "tracecontext,baggage,b3")]).is_ok());
        assert_eq!(
            err_var(&[("OTEL_PROPAGATORS", "tracecontext,xray-bogus")]),
            "OTEL_PROPAGATORS"
        );
    }

    #[test]
    fn sampler() {
        let s = |name: &str, arg: Option<&str>| {
            let mut v = vec![("OTEL_TRACES_SAMPLER", name)];
            if let Some(a) = arg {
                v.push(("OTEL_TRACES_SAMPLER_ARG", a));
            }
            parse(&v).map(|c| c.sampler)
        };
        assert_eq!(s("always_on", None).unwrap(), SamplerConfig::AlwaysOn);
        assert_eq!(s("always_off", None).unwrap(), SamplerConfig::AlwaysOff);
        assert_eq!(
            s("traceidratio", Some("0.25")).unwrap(),
            SamplerConfig::TraceIdRatio(0.25)
        );
        assert_eq!(
            s("traceidratio", None).unwrap(),
            SamplerConfig::TraceIdRatio(1.0)
        );
        assert_eq!(
            s("parentbased_always_on", None).unwrap(),
            SamplerConfig::ParentBasedAlwaysOn
        );
        assert_eq!(
            s("parentbased_always_off", None).unwrap(),
            SamplerConfig::ParentBasedAlwaysOff
        );
        assert_eq!(
            s("parentbased_traceidratio", Some("0")).unwrap(),
            SamplerConfig::ParentBasedTraceIdRatio(0.0)
        );
        // The argument only matters for the ratio samplers.
        assert_eq!(
            s("always_on", Some("junk")).unwrap(),
            SamplerConfig::AlwaysOn
        );
        assert_eq!(
            s("jaeger_remote", None).unwrap_err().var,
            "OTEL_TRACES_SAMPLER"
        );
        assert_eq!(
            s("traceidratio", Some("1.5")).unwrap_err().var,
            "OTEL_TRACES_SAMPLER_ARG"
        );
        assert_eq!(
            s("traceidratio", Some("-0.1")).unwrap_err().var,
            "OTEL_TRACES_SAMPLER_ARG"
        );
        assert_eq!(
            s("parentbased_traceidratio", Some("half")).unwrap_err().var,
            "OTEL_TRACES_SAMPLER_ARG"
        );
        let sdk = format!(
            "{:?}",
            SamplerConfig::ParentBasedTraceIdRatio(0.5).to_sampler()
        );
        assert!(
            sdk.contains("ParentBased") && sdk.contains("TraceIdRatioBased(0.5)"),
            "{sdk}"
        );
    }

    #[test]
    fn batch_processor() {
        let cfg = parse(&[
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "2000"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "128"),
        ])
        .unwrap();
        assert_eq!(
            cfg.batch,
            BatchConfig {
                schedule_delay: Duration::from_millis(100),
                export_timeout: Duration::from_millis(2000),
                max_queue_size: 64,
                // clamped to the queue size
                max_export_batch_size: 64,
            }
        );
        assert_eq!(
            err_var(&[("OTEL_BSP_SCHEDULE_DELAY", "soon")]),
            "OTEL_BSP_SCHEDULE_DELAY"
        );
        assert_eq!(
            err_var(&[("OTEL_BSP_EXPORT_TIMEOUT", "1.5")]),
            "OTEL_BSP_EXPORT_TIMEOUT"
        );
        assert_eq!(
            err_var(&[("OTEL_BSP_MAX_QUEUE_SIZE", "0")]),
            "OTEL_BSP_MAX_QUEUE_SIZE"
        );
        assert_eq!(
            err_var(&[("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "many")]),
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
        );
    }

    #[test]
    fn sentry() {
        let cfg = parse(&[
            ("SENTRY_DSN", "https://abc123@o1.ingest.sentry.io/42"),
            ("SENTRY_ENVIRONMENT", "staging"),
            ("SENTRY_RELEASE", "svc@1.2.3"),
            ("SENTRY_TRACES_SAMPLE_RATE", "0.5"),
        ])
        .unwrap();
        let dsn = cfg.sentry.dsn.unwrap();
        assert_eq!(dsn.public_key(), "abc123");
        assert_eq!(dsn.project_id().to_string(), "42");
        assert_eq!(cfg.sentry.environment.as_deref(), Some("staging"));
        assert_eq!(cfg.sentry.release.as_deref(), Some("svc@1.2.3"));
        assert_eq!(cfg.sentry.traces_sample_rate, 0.5);
        let e = parse(&[("SENTRY_DSN", "https://sentry.io/42")]).unwrap_err();
        assert_eq!(e.var, "SENTRY_DSN");
        assert_eq!(err_var(&[("SENTRY_DSN", "not-a-dsn")]), "SENTRY_DSN");
        assert_eq!(
            err_var(&[("SENTRY_TRACES_SAMPLE_RATE", "2")]),
            "SENTRY_TRACES_SAMPLE_RATE"
        );
        assert_eq!(
            err_var(&[("SENTRY_TRACES_SAMPLE_RATE", "all")]),
            "SENTRY_TRACES_SAMPLE_RATE"
        );
    }

    #[test]
    fn jaeger_ui_url() {
        let cfg = parse(&[("JAEGER_UI_URL", "http://localhost:16686/")]).unwrap();
        assert_eq!(cfg.jaeger_ui_url.as_deref(), Some("http://localhost:16686"));
        assert_eq!(
            err_var(&[("JAEGER_UI_URL", "localhost:16686")]),
            "JAEGER_UI_URL"
        );
    }

    #[test]
    fn sensitive_headers() {
        let cfg = parse(&[("TRACEBRIDGE_SENSITIVE_HEADERS", "X-Api-Key, x-session ,")]).unwrap();
        assert_eq!(
            cfg.sensitive_headers,
            vec![
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-session")
            ]
        );
        assert_eq!(
            err_var(&[("TRACEBRIDGE_SENSITIVE_HEADERS", "x-ok,bad header")]),
            "TRACEBRIDGE_SENSITIVE_HEADERS"
        );
    }

    #[test]
    fn rust_log() {
        let cfg = parse(&[("RUST_LOG", "warn,tracebridge=debug")]).unwrap();
        assert_eq!(cfg.log_filter, "warn,tracebridge=debug");
        assert_eq!(err_var(&[("RUST_LOG", "tracebridge=loud")]), "RUST_LOG");
    }
}
