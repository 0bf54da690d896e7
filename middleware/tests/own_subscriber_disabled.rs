//! `Builder::build()` under `OTEL_SDK_DISABLED=true`: the layer it returns does nothing, and
//! does not silence the application's own layers either; the server layer passes requests
//! through and `current_trace()` is `None`. Its own process: the subscriber is global.

use std::collections::HashMap;

use axum::routing::get;
use axum::Router;
use tracebridge::config::Config;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

mod init_support;
use init_support::Captured;

#[tracing::instrument]
async fn handler() -> String {
    tracing::info!(step = 1, "handled");
    format!("{:?}", tracebridge::current_trace())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_layer_leaves_the_applications_logs_alone() {
    let vars: HashMap<&str, &str> = [("OTEL_SDK_DISABLED", "true")].into_iter().collect();
    let cfg = Config::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap();
    let (guard, telemetry) = tracebridge::Builder::from_config(cfg)
        .build()
        .expect("build");
    assert!(guard.tracer_provider().is_none());

    let logs = Captured::default();
    // tracebridge's layer first: a layer that reported `Interest::never` there would silence
    // the app's layer after it.
    tracing_subscriber::registry()
        .with(telemetry)
        .with(init_support::app_json_layer(&logs))
        .init();

    let app = Router::new()
        .route("/", get(handler))
        .layer(tracebridge::http::ServerLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let response = reqwest::Client::new()
        .get(format!("http://{addr}/"))
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("traceresponse").is_none());
    assert_eq!(response.text().await.unwrap(), "None");

    let text = logs.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"))
        })
        .filter(|l| l["target"] == "own_subscriber_disabled")
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["fields"]["message"], "handled");
    assert_eq!(lines[0]["fields"]["step"], 1);
    assert_eq!(lines[0]["span"]["name"], "handler");

    server.abort();
    drop(guard);
}
