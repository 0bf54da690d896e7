//! [`TracedBody`]: a response body that keeps the request's span open until the body ends.
//!
//! A handler returns its response as soon as the headers are ready, but a streamed body may
//! take much longer; the span must cover it. The wrapper owns the span handle and drops it when
//! the body reports its end, fails, or is itself dropped (client went away), which is what ends
//! the OpenTelemetry span. For gRPC it also reads `grpc-status` from the trailers, where a
//! streaming call reports its outcome.

use std::pin::Pin;
use std::task::{Context, Poll};

use crate::span::{record_error, record_grpc_status, LayerSpan, SentryReport, Side};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The response body of the traced services: the inner body plus the span it keeps open.
    ///
    /// `inner` is `None` for responses the layer made itself (a caught panic), which have no
    /// body.
    pub struct TracedBody<B> {
        #[pin]
        inner: Option<B>,
        tracking: Option<Box<Tracking>>,
    }
}

/// What the body does for the span while it streams.
pub(crate) struct Tracking {
    span: LayerSpan,
    /// `Some` when the outcome of a gRPC call is still to be read from the trailers.
    grpc: Option<GrpcOutcome>,
}

pub(crate) struct GrpcOutcome {
    pub(crate) side: Side,
    pub(crate) sentry: Option<SentryReport>,
}

impl Tracking {
    pub(crate) fn new(span: LayerSpan, grpc: Option<GrpcOutcome>) -> Box<Self> {
        Box::new(Tracking { span, grpc })
    }
}

/// Reads the outcome of a gRPC call from its trailers (once).
fn on_trailers(span: &LayerSpan, grpc: &mut Option<GrpcOutcome>, trailers: &http::HeaderMap) {
    let Some(grpc) = grpc.take() else {
        return;
    };
    if let Some(code) = crate::span::grpc_status(trailers) {
        let error = record_grpc_status(span, code, grpc.side);
        if error {
            if let Some(sentry) = &grpc.sentry {
                sentry.capture(
                    span,
                    format!("gRPC {} {}", crate::span::grpc_code_name(code), sentry.what),
                );
            }
        }
    }
}

impl<B> TracedBody<B> {
    /// A body that only forwards (pass-through and untraced requests).
    pub(crate) fn untraced(inner: B) -> Self {
        TracedBody {
            inner: Some(inner),
            tracking: None,
        }
    }

    /// A body that keeps `tracking`'s span open until it ends.
    pub(crate) fn traced(inner: B, tracking: Box<Tracking>) -> Self {
        TracedBody {
            inner: Some(inner),
            tracking: Some(tracking),
        }
    }

    /// An empty body (the layer's own responses); the span ends when it is polled or dropped.
    pub(crate) fn empty(tracking: Option<Box<Tracking>>) -> Self {
        TracedBody {
            inner: None,
            tracking,
        }
    }
}

impl<B> Body for TracedBody<B>
where
    B: Body,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            *this.tracking = None;
            return Poll::Ready(None);
        };
        let result = match this.tracking.as_deref_mut() {
            // Poll inside the span: log lines of a streaming producer belong to the request,
            // and the span's end time becomes the last poll, not the handler's return.
            Some(tracking) => {
                let result = tracking.span.in_scope(|| inner.poll_frame(cx));
                match &result {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(trailers) = frame.trailers_ref() {
                            on_trailers(&tracking.span, &mut tracking.grpc, trailers);
                        }
                    }
                    Poll::Ready(Some(Err(_))) => record_error(&tracking.span, "body"),
                    _ => {}
                }
                result
            }
            None => return inner.poll_frame(cx),
        };
        let over = match &result {
            // Trailers are the last frame; a gRPC client may keep the body long after it has
            // read the status from them.
            Poll::Ready(Some(Ok(frame))) => frame.is_trailers(),
            Poll::Ready(None | Some(Err(_))) => true,
            Poll::Pending => false,
        };
        if over {
            // The body is over: end the span now rather than when its owner drops the body.
            *this.tracking = None;
        }
        result
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) => inner.size_hint(),
            None => SizeHint::with_exact(0),
        }
    }
}

impl<B> std::fmt::Debug for TracedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedBody")
            .field("traced", &self.tracking.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    #[tokio::test]
    async fn empty_body_ends_immediately() {
        let body: TracedBody<Full<Bytes>> = TracedBody::empty(None);
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert!(bytes.is_empty());
    }

    #[tokio::test]
    async fn traced_body_forwards_data() {
        let span = LayerSpan::start(
            "test",
            opentelemetry::trace::SpanKind::Internal,
            Default::default(),
            Vec::new(),
            &opentelemetry::Context::new(),
        );
        let tracking = Tracking::new(span, None);
        let body = TracedBody::traced(Full::new(Bytes::from_static(b"hello")), tracking);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
    }
}
