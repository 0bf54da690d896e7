//! `OTEL_SDK_DISABLED=true` (`global::settings().disabled`): every layer is a pass-through — no
//! spans, no trace headers sent, no `traceresponse`. Own test binary: the settings are global.

mod grpc_support;
mod http_support;

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;

use grpc_support::*;
use http_support::*;

#[tokio::test]
async fn disabled_layers_pass_everything_through() {
    assert!(tracebridge::global::install(
        tracebridge::global::Settings {
            disabled: true,
            ..Default::default()
        }
    ));
    let telemetry = telemetry();

    let seen: Arc<Mutex<Option<HeaderMap>>> = Arc::default();
    let router = Router::new()
        .route(
            "/users/{id}",
            get({
                let seen = seen.clone();
                move |headers: HeaderMap| async move {
                    *seen.lock().unwrap() = Some(headers);
                    "user"
                }
            }),
        )
        .layer(tracebridge::http::ServerLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let parent = tracing::info_span!("caller");
    let response = {
        use tracing::Instrument;
        tracebridge::http::client(reqwest::Client::new())
            .get(format!("http://{addr}/users/1"))
            .send()
            .instrument(parent.clone())
            .await
            .unwrap()
    };
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("traceresponse").is_none());
    assert_eq!(response.text().await.unwrap(), "user");
    let headers = seen.lock().unwrap().take().unwrap();
    for name in [
        "traceparent",
        "tracestate",
        "baggage",
        "uber-trace-id",
        "sentry-trace",
    ] {
        assert!(headers.get(name).is_none(), "{name} sent while disabled");
    }

    let (grpc_addr, behaviour) = serve(tracebridge::grpc::ServerLayer::new()).await;
    let mut client = client(grpc_addr);
    client.check(check("ok")).await.unwrap();
    let metadata = behaviour.metadata.lock().unwrap().pop().unwrap();
    assert!(metadata.get("traceparent").is_none());

    drop(parent);
    // only the test's own `caller` span and the handler's internal span exist
    let names: Vec<String> = telemetry
        .spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, vec!["look_up".to_owned(), "caller".to_owned()]);
}
