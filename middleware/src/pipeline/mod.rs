//! tracebridge's own span path (issue 11): spans handed over by the SDK's `SpanProcessor` are
//! encoded to OTLP protobuf by hand and exported without opentelemetry-otlp's per-span structs.

// The export thread (issue 11, pipeline part) calls the encoder; until it lands only tests do.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod encode;
#[cfg(test)]
mod encode_tests;
