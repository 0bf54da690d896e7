//! The SDK span processor: an ended, sampled span goes into the [`Queue`]; nothing else
//! happens on the request path (no lock, no wake-up unless a batch is complete).

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use super::queue::Queue;
use super::Finished;

/// Feeds ended spans to tracebridge's export thread (see [`super::worker`]).
#[derive(Debug)]
pub(crate) struct QueueProcessor {
    queue: Arc<Queue<Finished>>,
}

impl QueueProcessor {
    pub(crate) fn new(queue: Arc<Queue<Finished>>) -> Self {
        QueueProcessor { queue }
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        // As the SDK's batch processor: recorded but unsampled spans are not exported.
        if span.span_context.is_sampled() {
            self.queue.push(Finished::Sdk(Box::new(span)));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        match self.queue.request_flush().recv() {
            Ok(true) => Ok(()),
            Ok(false) => Err(OTelSdkError::InternalFailure(
                "some spans could not be exported".into(),
            )),
            Err(_) => Err(OTelSdkError::AlreadyShutdown),
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        match self.queue.request_shutdown().recv_timeout(timeout) {
            Ok(true) => Ok(()),
            Ok(false) => Err(OTelSdkError::InternalFailure(
                "some spans could not be exported".into(),
            )),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(OTelSdkError::Timeout(timeout)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(OTelSdkError::AlreadyShutdown)
            }
        }
    }
}
