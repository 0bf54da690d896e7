//! Rust services among Go services: the Go peers of interop/go (scripts/ensure-go-peers.sh
//! builds them into target/interop/), real processes on free ports.
//!
//! Built so far: `sentry-peer`, a sentry-go service (sentryhttp, tracing on) standing in for c's
//! HTTP endpoint — Rust b calls it as `C_HTTP_URL`. What Rust emits, Go continues: its
//! transaction has the trace id and b's CLIENT span as parent, and the head SDK's Sentry DSC
//! arrives unchanged at it.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use mesh::traffic::{headers, Incoming, Parent};
use support::{start_with, SPAN_WAIT};
use tracebridge_testkit::sentry::trace_id_of;
use tracebridge_testkit::{OtlpReceiver, SentryReceiver, SpanKind};

/// A Go peer binary: `$TRACEBRIDGE_GO_PEERS/<name>` or `<repo>/target/interop/<name>`.
fn go_peer(name: &str) -> PathBuf {
    let dir = std::env::var_os("TRACEBRIDGE_GO_PEERS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| tracebridge_testkit::jaeger::repo_root().join("target/interop"));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "the Go peer {name} is missing at {} — build it with `bash scripts/ensure-go-peers.sh` \
         (needs Go 1.26), or point TRACEBRIDGE_GO_PEERS at a directory holding it",
        path.display()
    );
    path
}

/// A running Go peer; killed by pid and reaped on drop.
struct GoPeer {
    child: Child,
    addr: String,
}

impl GoPeer {
    /// Starts `name` on a free port with `env`; waits for its "listening on ADDR" line.
    fn start(name: &str, env: &[(&str, &str)]) -> GoPeer {
        let mut child = Command::new(go_peer(name))
            .env("GO_PEER_LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{name} did not start: {line:?}"))
            .to_owned();
        GoPeer { child, addr }
    }
}

impl Drop for GoPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sentry-*` members of a baggage header, without the prefix (values percent-decoded the
/// way the DSC's JSON form shows them: only `%2F` occurs here).
fn dsc_of(baggage: &str) -> BTreeMap<String, String> {
    baggage
        .split(',')
        .filter_map(|m| m.trim().strip_prefix("sentry-"))
        .filter_map(|m| m.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%2F", "/")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_b_calls_the_sentry_go_peer_which_continues_the_trace_and_keeps_the_dsc() {
    let sentry = SentryReceiver::start().await.unwrap();
    let dsn = sentry.dsn("gopeer");
    let peer = GoPeer::start("sentry-peer", &[("SENTRY_DSN", dsn.as_str())]);
    let c_http = format!("http://{}", peer.addr);
    let receiver = OtlpReceiver::start().await.unwrap();
    let t = start_with(receiver, &[("C_HTTP_URL", c_http.as_str())]).await;

    for format in Incoming::ALL {
        let parent = Parent::random();
        let sent = headers(format, &parent);
        let answer = t.get("/trace", &sent).await;
        assert_eq!(answer.status, 200, "{format}: {}", answer.body);
        let trace_id = answer
            .traceresponse_trace_id()
            .expect("traceresponse")
            .to_owned();
        if format != Incoming::None {
            assert_eq!(trace_id, parent.trace_id, "{format}");
        }
        // a: server, trace1, trace2, 2 clients; b: server, client GET; c: PingC server, trace3
        // (c's HTTP endpoint is the Go peer now).
        let trace = t.trace(&trace_id, 9).await;
        trace.assert_len(9);
        trace.assert_connected();
        let b_client = trace.expect_exact("service-b", "GET");
        assert_eq!(b_client.kind, SpanKind::Client);
        assert_eq!(b_client.attr_i64("http.response.status_code"), Some(200));

        let envelopes = sentry
            .wait_for(
                |envs| {
                    envs.iter()
                        .flat_map(|e| e.payloads("transaction"))
                        .any(|p| trace_id_of(p) == Some(trace_id.as_str()))
                },
                SPAN_WAIT,
            )
            .await
            .unwrap_or_else(|e| panic!("{format}: the Go peer's transaction: {e}"));
        let envelope = envelopes
            .iter()
            .find(|e| {
                e.payloads("transaction")
                    .any(|p| trace_id_of(p) == Some(trace_id.as_str()))
            })
            .unwrap();
        let tx = envelope.payloads("transaction").next().unwrap();
        assert_eq!(
            tx.pointer("/contexts/trace/parent_span_id")
                .and_then(|v| v.as_str()),
            Some(b_client.span_id.as_str()),
            "{format}: sentry-go continues Rust b's CLIENT span\n{tx}"
        );
        assert_eq!(tx["transaction"], "GET /work", "{format}");

        // What arrived at the Go service, as it recorded it on its transaction: exactly the
        // b CLIENT span in sentry-trace, and for a Sentry-only request the browser's DSC.
        let received = |key: &str| {
            tx.pointer(&format!("/contexts/trace/data/peer.received.{key}"))
                .and_then(|v| v.as_str())
                .unwrap_or_else(|| panic!("{format}: no {key} recorded in {tx}"))
                .to_owned()
        };
        assert_eq!(
            received("sentry-trace"),
            format!("{trace_id}-{}-1", b_client.span_id),
            "{format}"
        );
        let baggage = received("baggage");
        let dsc = dsc_of(&baggage);
        assert_eq!(dsc["trace_id"], trace_id, "{format}: {baggage}");
        if format == Incoming::SentryOnly {
            let sent_baggage = &sent.iter().find(|(k, _)| *k == "baggage").unwrap().1;
            assert_eq!(
                dsc,
                dsc_of(sent_baggage),
                "the browser's DSC arrives unchanged at the Go sentry service"
            );
        }
        // sentry-go's envelope carries a DSC of the same trace (its own entries: see
        // interop/go/cmd/sentry-peer).
        let envelope_dsc = envelope.trace_header().expect("a DSC on the envelope");
        assert_eq!(envelope_dsc["trace_id"], trace_id.as_str(), "{format}");
    }
    drop(peer);
}
