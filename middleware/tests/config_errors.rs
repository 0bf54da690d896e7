//! Bad environment values make `init()` fail with an error naming the variable; a bad
//! override names the builder setter. (Own binary: it sets process environment variables.)

fn with_env(vars: &[(&str, &str)], f: impl FnOnce()) {
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
    f();
    for (k, _) in vars {
        std::env::remove_var(k);
    }
}

fn init_error(vars: &[(&str, &str)]) -> tracebridge::ConfigError {
    let mut out = None;
    with_env(vars, || {
        out = Some(match tracebridge::init() {
            Ok(_) => panic!("{vars:?} should fail"),
            Err(e) => e,
        });
    });
    out.unwrap()
}

// One test function: the process environment is shared by every test thread.
#[test]
fn bad_values_name_the_variable() {
    let e = init_error(&[("OTEL_PROPAGATORS", "tracecontext,carrier-pigeon")]);
    assert_eq!(e.var, "OTEL_PROPAGATORS", "{e}");

    let e = init_error(&[("SENTRY_DSN", "https://sentry.example.com/42")]);
    assert_eq!(e.var, "SENTRY_DSN", "{e}");
    assert!(e.to_string().starts_with("SENTRY_DSN: "), "{e}");

    let e = init_error(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")]);
    assert_eq!(e.var, "OTEL_EXPORTER_OTLP_ENDPOINT", "{e}");

    let e = init_error(&[
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.01"),
    ]);
    assert_eq!(e.var, "OTEL_TRACES_SAMPLER_ARG", "{e}");

    let e = init_error(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
    assert_eq!(e.var, "OTEL_EXPORTER_OTLP_PROTOCOL", "{e}");

    // OTLP/gRPC over TLS needs a tonic TLS feature the workspace does not enable: a clear
    // init error naming the variable, not a silent export failure later.
    let e = init_error(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "https://collector.example:4317",
    )]);
    assert_eq!(e.var, "OTEL_EXPORTER_OTLP_ENDPOINT", "{e}");
    assert!(e.message.contains("TLS"), "{e}");

    // Overrides are validated too, and named after the setter.
    let e = tracebridge::Builder::default()
        .endpoint("ftp://collector")
        .install()
        .unwrap_err();
    assert_eq!(e.var, "Builder::endpoint");
    let e = tracebridge::Builder::default()
        .sentry_dsn("nope")
        .install()
        .unwrap_err();
    assert_eq!(e.var, "Builder::sentry_dsn");
}
