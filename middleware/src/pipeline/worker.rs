//! The export thread (`tracebridge-export`) and its handle, [`Pipeline`], owned by the
//! [`crate::Guard`].
//!
//! The thread sleeps until a batch is ready (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE` records queued),
//! the schedule delay (`OTEL_BSP_SCHEDULE_DELAY`) passes, or a flush/shutdown is requested.
//! Woken by a full batch it exports full batches; on the timer, a flush or shutdown it exports
//! everything queued. Each batch is encoded into one reused buffer and sent with the OTLP retry
//! rules on the thread's own current-thread Tokio runtime, cut off after
//! `min(OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_BSP_EXPORT_TIMEOUT)`.
//!
//! Failed exports are counted, reported and backed off by [`crate::export::FailureReport`]
//! (the same reporting `ReportingExporter` does). Spans dropped at the full queue and spans a
//! collector rejected (partial success) are reported at most once per
//! [`crate::export::REPORT_INTERVAL`], with their totals at shutdown.

use std::borrow::Cow;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::encode::{Encoder, SpanView};
use super::pool::AttrsPool;
use super::processor::QueueProcessor;
use super::queue::Queue;
use super::transport::Transport;
use super::Finished;
use crate::config::{Config, Endpoint};
use crate::export::{FailureReport, REPORT_INTERVAL};
use crate::ConfigError;

/// Turns a batch of records into one encoded `ExportTraceServiceRequest`. The export thread is
/// generic over it (unit tests export plain numbers).
pub(crate) trait BatchEncoder<T>: Send + 'static {
    /// Appends the encoded request for `batch` to `out`.
    fn encode(&mut self, batch: &[T], out: &mut Vec<u8>);
}

/// What the export thread does with a batch once it is encoded (or given up): empty it,
/// handing the records' attribute buffers, event attribute lists and name strings back for
/// reuse ([`AttrsPool`]).
pub(crate) trait Recycle: Sized {
    fn recycle(batch: &mut Vec<Self>, pool: &AttrsPool);
}

impl Recycle for Finished {
    fn recycle(batch: &mut Vec<Self>, pool: &AttrsPool) {
        // In place: draining moved each record (a few hundred bytes) out by value, three
        // `memcpy`s per span (≈ 300 instructions per service-c request).
        for span in batch.iter_mut() {
            if let Finished::Record(record) = span {
                pool.give(std::mem::take(&mut record.attrs));
                if let Cow::Owned(name) = std::mem::take(&mut record.name) {
                    pool.give_name(name);
                }
                for event in &mut record.events {
                    pool.give_event_attrs(std::mem::take(&mut event.attributes));
                    if let Cow::Owned(name) = std::mem::take(&mut event.name) {
                        pool.give_name(name);
                    }
                }
            }
        }
        batch.clear();
    }
}

impl<S: SpanView> BatchEncoder<S> for Encoder {
    fn encode(&mut self, batch: &[S], out: &mut Vec<u8>) {
        Encoder::encode(self, batch, out);
    }
}

/// The running pipeline: the queue and its export thread. Dropping it does not stop the
/// thread; [`Pipeline::shutdown`] does.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub(super) queue: Arc<Queue<Finished>>,
    pool: Arc<AttrsPool>,
    thread: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Builds the transport (a bad header or URL fails here, naming the variable) and starts
    /// the export thread; returns the handle and the span processor feeding it.
    pub(crate) fn start(
        cfg: &Config,
        endpoint: &Endpoint,
        resource: &opentelemetry_sdk::Resource,
    ) -> Result<(Pipeline, QueueProcessor), ConfigError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                ConfigError::new(
                    endpoint.var,
                    format!("cannot start the export runtime: {e}"),
                )
            })?;
        let transport = {
            let _enter = runtime.enter();
            Transport::new(cfg, endpoint)?
        };
        let queue = Arc::new(Queue::new(
            cfg.batch.max_queue_size,
            cfg.batch.max_export_batch_size,
        ));
        // One batch of buffers: what one export hands back.
        let pool = Arc::new(AttrsPool::new(cfg.batch.max_export_batch_size));
        let worker = Worker {
            queue: queue.clone(),
            pool: pool.clone(),
            encoder: Encoder::new(resource).with_own_scope(super::tracer_scope()),
            transport,
            runtime,
            schedule_delay: cfg.batch.schedule_delay,
            cutoff: cfg.export_cutoff(),
            failures: FailureReport::new(REPORT_INTERVAL),
            drops: Tally::default(),
            rejections: Tally::default(),
        };
        // Unit tests capture the export thread's lines with the subscriber that was current
        // when they started the pipeline; otherwise it logs through the global one.
        #[cfg(test)]
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let thread = std::thread::Builder::new()
            .name("tracebridge-export".into())
            .spawn(move || {
                #[cfg(test)]
                let _scoped = tracing::dispatcher::set_default(&dispatch);
                worker.run()
            })
            .map_err(|e| {
                ConfigError::new(endpoint.var, format!("cannot start the export thread: {e}"))
            })?;
        let processor = QueueProcessor::new(queue.clone());
        Ok((
            Pipeline {
                queue,
                pool,
                thread: Some(thread),
            },
            processor,
        ))
    }

    /// The queue, for the layers' [`super::recorder::Recorder`].
    pub(crate) fn queue(&self) -> Arc<Queue<Finished>> {
        self.queue.clone()
    }

    /// The attribute buffers the export thread hands back, for the recorder.
    pub(crate) fn pool(&self) -> Arc<AttrsPool> {
        self.pool.clone()
    }

    /// A handle that still reads the queue's counts after the pipeline has moved into the
    /// shutdown flush (for the guard, when that flush runs out of time).
    pub(crate) fn backlog(&self) -> Backlog {
        Backlog(self.queue.clone())
    }

    /// Exports everything queued and stops the export thread; blocks until it has. Returns
    /// whether every span went out.
    pub(crate) fn shutdown(&mut self) -> bool {
        let done = self.queue.request_shutdown().recv().unwrap_or(false);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        done
    }
}

/// The queue's counts, readable while the export thread is stuck (see [`Pipeline::backlog`]).
#[derive(Debug)]
pub(crate) struct Backlog(Arc<Queue<Finished>>);

impl Backlog {
    /// Spans dropped at the full queue since the pipeline started.
    pub(crate) fn dropped(&self) -> u64 {
        self.0.dropped()
    }

    /// Spans queued and not yet taken by the export thread.
    pub(crate) fn queued(&self) -> usize {
        self.0.len()
    }
}

/// A count reported at most once per interval, with its total at shutdown.
#[derive(Debug, Default)]
struct Tally {
    total: u64,
    reported: u64,
    last_report: Option<Instant>,
    message: String,
}

impl Tally {
    /// Whether a line is due for what is not reported yet (one per interval at most).
    fn due(&self, now: Instant) -> bool {
        self.total > self.reported
            && self
                .last_report
                .is_none_or(|at| now.duration_since(at) >= REPORT_INTERVAL)
    }
}

struct Worker<T, E> {
    queue: Arc<Queue<T>>,
    pool: Arc<AttrsPool>,
    encoder: E,
    transport: Transport,
    runtime: tokio::runtime::Runtime,
    schedule_delay: Duration,
    cutoff: Duration,
    failures: FailureReport,
    drops: Tally,
    rejections: Tally,
}

impl<T: Recycle + Send + 'static, E: BatchEncoder<T>> Worker<T, E> {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(self.queue.batch());
        let mut body = Vec::new();
        let mut next_tick = Instant::now() + self.schedule_delay;
        loop {
            let asked = self.queue.wait(next_tick);
            let timer = Instant::now() >= next_tick;
            let everything = timer || !asked.flushes.is_empty() || !asked.shutdowns.is_empty();
            let mut all_sent = true;
            loop {
                let n = self.queue.len();
                if n == 0 || (!everything && n < self.queue.batch()) {
                    break;
                }
                self.queue.pop_into(&mut batch, self.queue.batch());
                if batch.is_empty() {
                    // Only pushes still storing their records: they go with the next export.
                    break;
                }
                all_sent &= self.export(&mut batch, &mut body);
            }
            if timer {
                next_tick = Instant::now() + self.schedule_delay;
            }
            self.report_drops(false);
            for flush in asked.flushes {
                let _ = flush.send(all_sent);
            }
            if !asked.shutdowns.is_empty() {
                let late = self.queue.stop();
                // Spans ended while the last batches were exported.
                loop {
                    self.queue.pop_into(&mut batch, self.queue.batch());
                    if batch.is_empty() {
                        break;
                    }
                    all_sent &= self.export(&mut batch, &mut body);
                }
                self.report_drops(true);
                self.report_rejections(true);
                self.failures.final_report();
                for tx in asked.shutdowns.into_iter().chain(late.shutdowns) {
                    let _ = tx.send(all_sent);
                }
                for tx in late.flushes {
                    let _ = tx.send(all_sent);
                }
                return;
            }
        }
    }

    /// Encodes and sends `batch` (emptied); returns whether it was accepted.
    fn export(&mut self, batch: &mut Vec<T>, body: &mut Vec<u8>) -> bool {
        let spans = batch.len();
        if self.failures.backing_off() {
            T::recycle(batch, &self.pool);
            self.failures.record(
                spans,
                Err("not sent: backing off after a failed export"),
                false,
            );
            return false;
        }
        body.clear();
        self.encoder.encode(batch, body);
        T::recycle(batch, &self.pool);
        let deadline = Instant::now() + self.cutoff;
        let mut attempts = 0;
        let cutoff = self.cutoff;
        // The encoded batch goes to the transport without a copy, and its buffer comes back for
        // the next batch once the request let go of it (else it is copied out: rare).
        let shared = bytes::Bytes::from(std::mem::take(body));
        let result = self.runtime.block_on(async {
            match tokio::time::timeout(
                cutoff,
                super::retry::send(&mut self.transport, &shared, deadline, &mut attempts),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(format!("export timed out after {cutoff:?}")),
            }
        });
        *body = Vec::from(shared);
        match result {
            Ok(accepted) => {
                self.failures.record(spans, Ok(()), true);
                if accepted.rejected > 0 || !accepted.message.is_empty() {
                    self.rejections.total += accepted.rejected.max(0) as u64;
                    self.rejections.message = accepted.message;
                    self.report_rejections(false);
                }
                true
            }
            Err(error) => {
                self.failures.record(spans, Err(&error), true);
                false
            }
        }
    }

    fn report_drops(&mut self, at_shutdown: bool) {
        let now = Instant::now();
        let total = self.queue.dropped();
        if self.drops.total == 0 && total > 0 {
            // The first drop was logged by the queue itself, just now or a moment ago.
            self.drops.reported = 1;
            self.drops.last_report = Some(now);
        }
        self.drops.total = total;
        if at_shutdown {
            if total > 0 {
                tracing::warn!(
                    target: "tracebridge::pipeline",
                    dropped_spans_total = total,
                    "spans dropped at the full span queue, in total"
                );
            }
        } else if self.drops.due(now) {
            tracing::warn!(
                target: "tracebridge::pipeline",
                dropped_spans = total - self.drops.reported,
                "span queue still full: spans are dropped"
            );
            self.drops.reported = total;
            self.drops.last_report = Some(now);
        }
    }

    fn report_rejections(&mut self, at_shutdown: bool) {
        let now = Instant::now();
        let t = &mut self.rejections;
        let due = if at_shutdown {
            t.total > t.reported
        } else {
            t.due(now) || (t.total == 0 && t.last_report.is_none() && !t.message.is_empty())
        };
        if !due {
            return;
        }
        tracing::warn!(
            target: "tracebridge::export",
            rejected_spans = t.total - t.reported,
            error = %t.message,
            "the OTLP collector rejected spans (partial success; reported at most once per interval)"
        );
        t.reported = t.total;
        t.last_report = Some(now);
    }
}
