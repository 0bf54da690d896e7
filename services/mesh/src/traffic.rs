//! The demo's requests: one per incoming header format, each carrying a fresh random parent,
//! plus the failing path. Shared by `mesh` and the end-to-end tests.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// The header format a request arrives with at service a.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// No trace headers: a starts the trace.
    None,
    /// W3C `traceparent`.
    W3c,
    /// Jaeger `uber-trace-id`.
    Jaeger,
    /// B3 single header `b3` (needs `b3` in `OTEL_PROPAGATORS`).
    B3,
    /// Only what a Sentry browser SDK sends: `sentry-trace` + `baggage` with the DSC.
    SentryOnly,
}

impl Incoming {
    /// Every format, in the order the demo sends them.
    pub const ALL: [Incoming; 5] =
        [Incoming::None, Incoming::W3c, Incoming::Jaeger, Incoming::B3, Incoming::SentryOnly];
}

impl fmt::Display for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Incoming::None => "no trace headers (a starts the trace)",
            Incoming::W3c => "W3C traceparent",
            Incoming::Jaeger => "Jaeger uber-trace-id",
            Incoming::B3 => "B3 (single header)",
            Incoming::SentryOnly => "Sentry only (sentry-trace + baggage DSC)",
        })
    }
}

/// The remote parent a request claims: 32 and 16 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    /// Trace id, 32 hex.
    pub trace_id: String,
    /// Span id, 16 hex.
    pub span_id: String,
}

impl Parent {
    /// A fresh random parent (never all-zero).
    pub fn random() -> Self {
        Parent { trace_id: format!("{:016x}{:016x}", random_u64(), random_u64()), span_id: format!("{:016x}", random_u64()) }
    }
}

/// The request headers for `format` claiming `parent` (empty for [`Incoming::None`]).
pub fn headers(format: Incoming, parent: &Parent) -> Vec<(&'static str, String)> {
    let Parent { trace_id, span_id } = parent;
    match format {
        Incoming::None => vec![],
        Incoming::W3c => vec![("traceparent", format!("00-{trace_id}-{span_id}-01"))],
        Incoming::Jaeger => vec![("uber-trace-id", format!("{trace_id}:{span_id}:0:1"))],
        Incoming::B3 => vec![("b3", format!("{trace_id}-{span_id}-1"))],
        Incoming::SentryOnly => vec![
            ("sentry-trace", format!("{trace_id}-{span_id}-1")),
            (
                "baggage",
                format!(
                    "sentry-trace_id={trace_id},sentry-public_key=0123456789abcdef0123456789abcdef,\
                     sentry-sample_rate=1,sentry-sample_rand=0.5,sentry-sampled=true,\
                     sentry-environment=demo,sentry-transaction=%2Ftrace"
                ),
            ),
        ],
    }
}

/// What a answered.
#[derive(Clone, Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `traceresponse` header, if any.
    pub traceresponse: Option<String>,
    /// The JSON body (null when it was not JSON).
    pub body: serde_json::Value,
}

impl Answer {
    /// The trace id from `traceresponse` (`00-{trace}-{span}-{flags}`).
    pub fn traceresponse_trace_id(&self) -> Option<&str> {
        let mut parts = self.traceresponse.as_deref()?.split('-');
        parts.next()?;
        parts.next()
    }

    /// The span id from `traceresponse`: a's SERVER span.
    pub fn traceresponse_span_id(&self) -> Option<&str> {
        self.traceresponse.as_deref()?.split('-').nth(2)
    }

    /// The body's `trace_id`.
    pub fn body_trace_id(&self) -> Option<&str> {
        self.body.get("trace_id")?.as_str()
    }
}

/// `GET {a_url}{path}` with `headers` through a plain (uninstrumented) client.
pub async fn get(
    client: &reqwest::Client,
    a_url: &str,
    path: &str,
    headers: &[(&'static str, String)],
) -> Result<Answer, reqwest::Error> {
    let mut request = client.get(format!("{a_url}{path}"));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let traceresponse = response
        .headers()
        .get("traceresponse")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await?;
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok(Answer { status, traceresponse, body })
}

/// A random u64 without a rand dependency: std's per-process random hasher keys, mixed with a
/// counter so consecutive calls differ.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let value = hasher.finish();
        if value != 0 {
            return value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_parents_are_well_formed_and_distinct() {
        let a = Parent::random();
        let b = Parent::random();
        assert_eq!(a.trace_id.len(), 32);
        assert_eq!(a.span_id.len(), 16);
        assert!(a.trace_id.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn each_format_carries_the_parent() {
        let p = Parent { trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(), span_id: "00f067aa0ba902b7".into() };
        assert!(headers(Incoming::None, &p).is_empty());
        assert_eq!(
            headers(Incoming::W3c, &p),
            vec![("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned())]
        );
        assert_eq!(
            headers(Incoming::Jaeger, &p),
            vec![("uber-trace-id", "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1".to_owned())]
        );
        assert_eq!(
            headers(Incoming::B3, &p),
            vec![("b3", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1".to_owned())]
        );
        let sentry = headers(Incoming::SentryOnly, &p);
        assert_eq!(sentry[0], ("sentry-trace", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1".to_owned()));
        assert!(sentry[1].1.starts_with("sentry-trace_id=4bf92f3577b34da6a3ce929d0e0e4736,"));
    }

    #[test]
    fn traceresponse_is_split_into_ids() {
        let answer = Answer {
            status: 200,
            traceresponse: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            body: serde_json::json!({"trace_id": "x"}),
        };
        assert_eq!(answer.traceresponse_trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(answer.traceresponse_span_id(), Some("00f067aa0ba902b7"));
        assert_eq!(answer.body_trace_id(), Some("x"));
    }
}
