//! Failed span exports, counted and reported at most once per interval.
//!
//! A closed collector makes every export fail at connect, so under load a line per failed
//! export would be a line for every few requests. [`FailureReport`] counts the spans of every
//! failed export and logs one WARN when failures start, then at most one summary per
//! [`REPORT_INTERVAL`] while they go on, one line when export recovers, and a final summary at
//! shutdown. tracebridge's export thread (`crate::pipeline`) reports through it;
//! [`ReportingExporter`] wraps any SDK `SpanExporter` with the same reporting, for
//! applications that build their own provider with the SDK's `BatchSpanProcessor`.
//!
//! While the collector is down it backs off: after a failed export, batches fail at once —
//! counted as lost, nothing sent — for [`BACKOFF_INITIAL`], doubling after each further
//! failure up to [`BACKOFF_MAX`]; the first export that succeeds ends it. Without this a
//! refused collector costs more than a healthy one: every batch would be encoded and then
//! thrown away (measured with opentelemetry-otlp: axum at 0.85× its healthy throughput with
//! the collector closed).
//!
//! [`ReportingExporter`] also moves the export onto a Tokio runtime ([`ReportingExporter::on_runtime`]):
//! the SDK's thread-based `BatchSpanProcessor` drives exports with `futures_executor::block_on`,
//! outside any Tokio runtime, while the OTLP exporters (tonic, reqwest) need one; each export is
//! cut off after the given timeout (the thread-based processor has none of its own).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

/// Shortest time between two "export still failing" lines.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// First back-off window after a failed export.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// Longest back-off window: a collector that comes back is used again within this long.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Counts since the last report.
#[derive(Debug, Default)]
struct Pending {
    /// Back-off: exports fail at once until then.
    skip_until: Option<Instant>,
    /// The current back-off window (zero while exports succeed).
    backoff: Duration,
    failed_exports: u64,
    lost_spans: u64,
    last_error: String,
    /// Whether the last export failed.
    failing: bool,
    /// When the last line was written.
    last_report: Option<Instant>,
}

/// The counting, reporting and back-off of [`ReportingExporter`], shared with tracebridge's
/// own export thread (`crate::pipeline`), which reports its failed exports the same way.
#[derive(Debug)]
pub(crate) struct FailureReport {
    interval: Duration,
    pending: Mutex<Pending>,
    /// (first, longest) back-off window; zero disables backing off.
    backoff: (Duration, Duration),
}

impl FailureReport {
    /// "Still failing" lines at least `interval` apart; the default back-off windows.
    pub(crate) fn new(interval: Duration) -> Self {
        FailureReport {
            interval,
            pending: Mutex::new(Pending::default()),
            backoff: (BACKOFF_INITIAL, BACKOFF_MAX),
        }
    }

    /// Sets the back-off windows; `Duration::ZERO` attempts every batch.
    pub(crate) fn set_backoff(&mut self, initial: Duration, max: Duration) {
        self.backoff = (initial, max.max(initial));
    }

    /// Whether exports are backing off (a recent export failed): the batch is to be failed at
    /// once, without an attempt, and recorded with `attempted = false`.
    pub(crate) fn backing_off(&self) -> bool {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.skip_until.is_some_and(|until| Instant::now() < until)
    }

    /// Counts an export's outcome (`Err` holds the error's text); `attempted` is false for a
    /// batch failed by the back-off.
    pub(crate) fn record(&self, spans: usize, result: Result<(), &str>, attempted: bool) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if attempted {
            if result.is_err() {
                let (initial, max) = self.backoff;
                p.backoff = if p.backoff.is_zero() {
                    initial
                } else {
                    (p.backoff * 2).min(max)
                };
                p.skip_until = (!p.backoff.is_zero()).then(|| Instant::now() + p.backoff);
            } else {
                p.backoff = Duration::ZERO;
                p.skip_until = None;
            }
        }
        if let Err(e) = result {
            p.lost_spans += spans as u64;
            // A batch failed by the back-off is lost, but it was not an export attempt, and the
            // collector's own error is the one worth reporting.
            if attempted {
                p.failed_exports += 1;
                p.last_error = e.to_owned();
            }
        } else if !p.failing {
            return;
        }
        // One line per interval at most, whatever happens (a flapping collector included);
        // what is not reported yet is in the next line or the shutdown summary.
        let now = Instant::now();
        if p.last_report
            .is_some_and(|at| now.duration_since(at) < self.interval)
        {
            p.failing = result.is_err();
            return;
        }
        match result {
            Err(_) if !p.failing => report(&p, "OTLP span export failed; spans are lost while it fails (reported at most once per interval)"),
            Err(_) => report(&p, "OTLP span export still failing"),
            Ok(()) => tracing::info!(
                target: "tracebridge::export",
                failed_exports = p.failed_exports,
                lost_spans = p.lost_spans,
                "OTLP span export recovered"
            ),
        }
        p.failing = result.is_err();
        p.failed_exports = 0;
        p.lost_spans = 0;
        p.last_report = Some(now);
    }

    /// The shutdown summary: what was not reported yet, if anything.
    pub(crate) fn final_report(&self) {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.failed_exports > 0 || p.lost_spans > 0 {
            report(&p, "OTLP span export failures since the last report");
        }
    }
}

/// An exporter that counts and reports failed exports and, with [`Self::on_runtime`], runs
/// them on a Tokio runtime (see the module docs). It is public for applications that build
/// their own tracer provider with the SDK's thread-based `BatchSpanProcessor` and an exporter
/// that needs a runtime; `init` no longer uses it (tracebridge exports through its own
/// pipeline, which reports failures the same way).
#[must_use]
pub struct ReportingExporter<E> {
    inner: Arc<E>,
    report: FailureReport,
    /// Where exports run, and their time limit; `None`: in the caller's task, unbounded.
    runtime: Option<(tokio::runtime::Handle, Duration)>,
}

impl<E: fmt::Debug> fmt::Debug for ReportingExporter<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportingExporter")
            .field("inner", &self.inner)
            .field("interval", &self.report.interval)
            .finish_non_exhaustive()
    }
}

impl<E> ReportingExporter<E> {
    /// Wraps `inner`; "still failing" lines are at least `interval` apart.
    pub fn new(inner: E, interval: Duration) -> Self {
        ReportingExporter {
            inner: Arc::new(inner),
            report: FailureReport::new(interval),
            runtime: None,
        }
    }

    /// Sets the back-off windows (default [`BACKOFF_INITIAL`], [`BACKOFF_MAX`]);
    /// `Duration::ZERO` calls the inner exporter for every batch.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.report.set_backoff(initial, max);
        self
    }

    /// Runs every export on `runtime`, cut off after `timeout`.
    pub fn on_runtime(mut self, runtime: tokio::runtime::Handle, timeout: Duration) -> Self {
        self.runtime = Some((runtime, timeout));
        self
    }

    fn record(&self, spans: usize, result: &OTelSdkResult, attempted: bool) {
        let text = result.as_ref().err().map(ToString::to_string);
        self.report
            .record(spans, text.as_deref().map_or(Ok(()), Err), attempted);
    }
}

fn report(p: &Pending, message: &str) {
    tracing::warn!(
        target: "tracebridge::export",
        failed_exports = p.failed_exports,
        lost_spans = p.lost_spans,
        error = %p.last_error,
        "{message}"
    );
}

impl<E: SpanExporter + 'static> SpanExporter for ReportingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        if self.report.backing_off() {
            let result = Err(OTelSdkError::InternalFailure(
                "not sent: backing off after a failed export".into(),
            ));
            self.record(spans, &result, false);
            return result;
        }
        let result = match &self.runtime {
            None => self.inner.export(batch).await,
            Some((runtime, timeout)) => {
                let inner = self.inner.clone();
                let timeout = *timeout;
                let task = runtime.spawn(async move {
                    match tokio::time::timeout(timeout, inner.export(batch)).await {
                        Ok(result) => result,
                        Err(_) => Err(OTelSdkError::Timeout(timeout)),
                    }
                });
                match task.await {
                    Ok(result) => result,
                    Err(e) => Err(OTelSdkError::InternalFailure(format!(
                        "export task failed: {e}"
                    ))),
                }
            }
        };
        self.record(spans, &result, true);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.report.final_report();
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called when the provider is built, before any export holds a clone of `inner`.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::error::OTelSdkError;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[derive(Debug, Clone, Default)]
    struct Flaky(Arc<AtomicBool>);

    impl SpanExporter for Flaky {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            if self.0.load(Ordering::SeqCst) {
                Err(OTelSdkError::InternalFailure("connection refused".into()))
            } else {
                Ok(())
            }
        }
    }

    fn batch(n: usize) -> Vec<SpanData> {
        use opentelemetry::trace::{SpanContext, SpanKind, Status};
        (0..n)
            .map(|_| SpanData {
                span_context: SpanContext::empty_context(),
                parent_span_id: opentelemetry::SpanId::INVALID,
                parent_span_is_remote: false,
                span_kind: SpanKind::Internal,
                name: "x".into(),
                start_time: std::time::SystemTime::now(),
                end_time: std::time::SystemTime::now(),
                attributes: Vec::new(),
                dropped_attributes_count: 0,
                events: Default::default(),
                links: Default::default(),
                status: Status::Unset,
                instrumentation_scope: Default::default(),
            })
            .collect()
    }

    fn capture(f: impl FnOnce()) -> Vec<String> {
        let lines = crate::test_support::Captured::default();
        let w = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = lines.text();
        text.lines().map(str::to_owned).collect()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_thousand_failed_exports_make_one_line_per_interval_with_exact_counts() {
        let failing = Flaky::default();
        failing.0.store(true, Ordering::SeqCst);
        let exporter = ReportingExporter::new(failing.clone(), Duration::from_secs(3600))
            .with_backoff(Duration::ZERO, Duration::ZERO);
        let lines = capture(|| {
            block_on(async {
                for _ in 0..1000 {
                    assert!(
                        exporter.export(batch(7)).await.is_err(),
                        "errors still returned"
                    );
                }
                // Flapping: a success and more failures inside the interval add no line.
                failing.0.store(false, Ordering::SeqCst);
                exporter.export(batch(1)).await.unwrap();
                failing.0.store(true, Ordering::SeqCst);
                let _ = exporter.export(batch(3)).await;
            });
            exporter.shutdown().unwrap();
        });
        assert_eq!(lines.len(), 2, "{lines:#?}");
        // The first failure at once; the other 1000 exports (6996 spans) in the summary.
        assert!(lines[0].contains("export failed") && lines[0].contains("lost_spans=7"));
        assert!(lines[0].contains("connection refused"), "{}", lines[0]);
        assert!(lines[1].contains("failed_exports=1000"), "{}", lines[1]);
        assert!(lines[1].contains("lost_spans=6996"), "{}", lines[1]);
    }

    #[test]
    fn recovery_is_reported_when_a_line_is_due() {
        let flaky = Flaky::default();
        let exporter = ReportingExporter::new(flaky.clone(), Duration::ZERO)
            .with_backoff(Duration::ZERO, Duration::ZERO);
        let lines = capture(|| {
            block_on(async {
                exporter.export(batch(2)).await.unwrap(); // working: nothing to say
                flaky.0.store(true, Ordering::SeqCst);
                let _ = exporter.export(batch(5)).await;
                flaky.0.store(false, Ordering::SeqCst);
                exporter.export(batch(2)).await.unwrap();
                exporter.export(batch(2)).await.unwrap();
            });
            exporter.shutdown().unwrap();
        });
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].contains("export failed") && lines[0].contains("lost_spans=5"));
        assert!(lines[1].contains("recovered"), "{}", lines[1]);
    }

    /// Counts the inner exporter's calls.
    #[derive(Debug, Clone, Default)]
    struct Counting {
        down: Arc<AtomicBool>,
        calls: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl SpanExporter for Counting {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                Err(OTelSdkError::InternalFailure("connection refused".into()))
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn a_down_collector_is_not_called_again_until_the_back_off_ends() {
        let inner = Counting::default();
        inner.down.store(true, Ordering::SeqCst);
        let exporter = ReportingExporter::new(inner.clone(), Duration::from_secs(3600))
            .with_backoff(Duration::from_secs(3600), Duration::from_secs(3600));
        let lines = capture(|| {
            block_on(async {
                for _ in 0..100 {
                    assert!(exporter.export(batch(5)).await.is_err());
                }
            });
            exporter.shutdown().unwrap();
        });
        // One real attempt; the other 99 batches failed at once, counted as lost.
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].contains("lost_spans=5") && lines[0].contains("connection refused"));
        assert!(lines[1].contains("failed_exports=0"), "{}", lines[1]);
        assert!(lines[1].contains("lost_spans=495"), "{}", lines[1]);
        assert!(lines[1].contains("connection refused"), "{}", lines[1]);
    }

    #[test]
    fn the_back_off_ends_and_a_working_collector_is_used_again() {
        let inner = Counting::default();
        inner.down.store(true, Ordering::SeqCst);
        let exporter = ReportingExporter::new(inner.clone(), Duration::from_secs(3600))
            .with_backoff(Duration::from_millis(1), Duration::from_millis(1));
        block_on(async {
            assert!(exporter.export(batch(1)).await.is_err());
            inner.down.store(false, Ordering::SeqCst);
            // Past the 1 ms window (a sleep only makes time pass; nothing is timed).
            std::thread::sleep(Duration::from_millis(5));
            exporter.export(batch(1)).await.unwrap();
            exporter.export(batch(1)).await.unwrap();
        });
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
    }
}
