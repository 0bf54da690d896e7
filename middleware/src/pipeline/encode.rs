//! TEMPORARY encoder, to be replaced by the `encode` engineer's hand-written one at merge.
//!
//! Same interface as the real encoder; implemented the way opentelemetry-otlp does it
//! (opentelemetry-proto's transform into prost structs, then prost encoding), so that the
//! pipeline around it can be tested end to end before the real encoder lands.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::SpanData;
use prost::Message as _;

/// Encodes batches of spans as OTLP `ExportTraceServiceRequest`s for one resource.
pub(crate) struct Encoder {
    resource: ResourceAttributesWithSchema,
}

impl Encoder {
    /// An encoder for spans of `resource`.
    pub(crate) fn new(resource: &opentelemetry_sdk::Resource) -> Self {
        Encoder {
            resource: resource.into(),
        }
    }

    /// Appends one serialized ExportTraceServiceRequest for `spans` to `out` (no gRPC framing,
    /// no compression).
    pub(crate) fn encode(&mut self, spans: &[SpanData], out: &mut Vec<u8>) {
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(spans.to_vec(), &self.resource),
        };
        // Encoding into a Vec cannot run out of space.
        let _ = request.encode(out);
    }
}
