//! The servers compared by the harness: the same trivial handler behind each stack.

/// Wire protocol of a variant (decides the load generator and the bare baseline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// HTTP/1.1 keep-alive, `GET /hello` → `ok`.
    Http,
    /// gRPC over HTTP/2, unary `ping.PingC/Ping`.
    Grpc,
}

/// What the receiver must have seen once a variant's server has shut down (flushed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Nothing is exported (bare servers).
    Nothing,
    /// One OTLP SERVER span per request, child of the incoming span.
    OtlpSpanPerRequest,
    /// Sentry transactions continuing the incoming trace (sentry's transport drops envelopes
    /// when its queue is full, so every delivered one is checked, and the share reported).
    SentryTransactions,
}

/// One server stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    AxumBare,
    AxumTracebridge,
    AxumTowerHttp,
    AxumTracingOtel,
    AxumSentry,
    TonicBare,
    TonicTracebridge,
    TonicTracingOtel,
}

impl Variant {
    /// Every variant, baselines first, in table order.
    pub const ALL: [Variant; 8] = [
        Variant::AxumBare,
        Variant::AxumTracebridge,
        Variant::AxumTowerHttp,
        Variant::AxumTracingOtel,
        Variant::AxumSentry,
        Variant::TonicBare,
        Variant::TonicTracebridge,
        Variant::TonicTracingOtel,
    ];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Variant::AxumBare => "axum-bare",
            Variant::AxumTracebridge => "axum-tracebridge",
            Variant::AxumTowerHttp => "axum-tower-http-otel",
            Variant::AxumTracingOtel => "axum-tracing-opentelemetry",
            Variant::AxumSentry => "axum-sentry-tower",
            Variant::TonicBare => "tonic-bare",
            Variant::TonicTracebridge => "tonic-tracebridge",
            Variant::TonicTracingOtel => "tonic-tracing-opentelemetry",
        }
    }

    /// What the stack does per request, for the table.
    pub fn description(self) -> &'static str {
        match self {
            Variant::AxumBare | Variant::TonicBare => "no instrumentation",
            Variant::AxumTracebridge | Variant::TonicTracebridge => {
                "tracebridge ServerLayer: W3C+Jaeger+Sentry+baggage extraction, semconv SERVER span, traceresponse, OTLP batch export"
            }
            Variant::AxumTowerHttp => {
                "tower-http TraceLayer + tracing-opentelemetry, W3C extraction, OTLP batch export"
            }
            Variant::AxumTracingOtel => {
                "axum-tracing-opentelemetry 0.39 (OtelAxumLayer + OtelInResponseLayer), W3C, OTLP batch export"
            }
            Variant::AxumSentry => {
                "sentry-tower 0.49 (NewSentryLayer + SentryHttpLayer with transactions), sentry-trace, envelopes to a loopback receiver"
            }
            Variant::TonicTracingOtel => {
                "tonic-tracing-opentelemetry 0.38 (OtelGrpcLayer), W3C, OTLP batch export"
            }
        }
    }

    /// Parses a name from [`Variant::name`].
    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    pub fn proto(self) -> Proto {
        match self {
            Variant::TonicBare | Variant::TonicTracebridge | Variant::TonicTracingOtel => {
                Proto::Grpc
            }
            _ => Proto::Http,
        }
    }

    pub fn is_bare(self) -> bool {
        matches!(self, Variant::AxumBare | Variant::TonicBare)
    }

    /// The uninstrumented server this variant is compared with.
    pub fn baseline(self) -> Variant {
        match self.proto() {
            Proto::Http => Variant::AxumBare,
            Proto::Grpc => Variant::TonicBare,
        }
    }

    pub fn expect(self) -> Expect {
        match self {
            Variant::AxumBare | Variant::TonicBare => Expect::Nothing,
            Variant::AxumSentry => Expect::SentryTransactions,
            _ => Expect::OtlpSpanPerRequest,
        }
    }
}
