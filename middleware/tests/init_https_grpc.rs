//! An `https` OTLP/gRPC endpoint is accepted (TLS with the system's roots), and the exporter
//! starts without a reachable collector: init must never depend on the backend being up.

use std::collections::HashMap;

use tracebridge::config::Config;

#[test]
fn https_grpc_endpoint_initialises_with_tls() {
    let env: HashMap<&str, &str> = HashMap::from([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:1"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_SERVICE_NAME", "tls-check"),
    ]);
    let cfg = Config::from_lookup(|k| env.get(k).map(|v| (*v).to_owned())).expect("config");
    let guard = tracebridge::Builder::from_config(cfg)
        .shutdown_timeout(std::time::Duration::from_millis(200))
        .install()
        .expect("an https gRPC endpoint must initialise");
    assert!(!tracebridge::global::settings().disabled);
    drop(guard);
}
