//! Rust services among Go services: the Go peers of interop/go (scripts/ensure-go-peers.sh
//! builds them into target/interop/), real processes on free ports.
//!
//! The issue's mixed mesh as ONE trace is the last test (jaeger-peer → Rust a → otel-peer →
//! Rust c, Rust a → Rust c, jaeger-peer → Rust b → sentry-peer); the others prove each format
//! in both directions. `jaeger-peer` (opentracing + jaeger-client-go) calls Rust a and b;
//! `sentry-peer`, a sentry-go service (sentryhttp, tracing on) standing in for c's
//! HTTP endpoint — Rust b calls it as `C_HTTP_URL`. What Rust emits, Go continues: its
//! transaction has the trace id and b's CLIENT span as parent, and the head SDK's Sentry DSC
//! arrives unchanged at it.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use mesh::traffic::{headers, Incoming, Parent};
use support::{start_with, TestMesh, SPAN_WAIT};
use tracebridge_testkit::sentry::{trace_id_of, Envelope};
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
        Self::try_start(name, env).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`GoPeer::start`], or why the peer did not start (it exited without its "listening on"
    /// line: its stderr, which the test shows, says why — a port taken, say).
    fn try_start(name: &str, env: &[(&str, &str)]) -> Result<GoPeer, String> {
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
        let mut peer = GoPeer {
            addr: String::new(),
            child,
        };
        match line.trim().strip_prefix("listening on ") {
            Some(addr) => {
                peer.addr = addr.to_owned();
                Ok(peer)
            }
            // Dropping `peer` kills and reaps it.
            None => Err(format!("{name} did not start: {line:?}")),
        }
    }
}

/// Rust a, b and c exporting to a new tee of `jaeger` (`env` besides), with the OpenTelemetry
/// Go peer in b's place: it listens at a's `B_URL` and calls Rust c's HTTP endpoint, exporting
/// to the same tee (`peer_env` besides).
///
/// a needs the peer's address before it starts, and the peer needs c's, so the peer's port is
/// chosen free before the mesh starts and bound only after: in between another process may
/// take it (seen in a CI run: "bind: address already in use"). Then the whole start is retried
/// on other ports, as `start_with` retries the mesh's own.
async fn mesh_with_go_b(
    jaeger: &tracebridge_testkit::jaeger::Jaeger,
    env: &[(&str, &str)],
    peer_env: &[(&str, &str)],
) -> (TestMesh, GoPeer) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let tee = jaeger.tee().await.unwrap();
        let otlp = tee.grpc_endpoint();
        let addr = tracebridge_testkit::jaeger::free_ports(1).unwrap()[0].to_string();
        let b_url = format!("http://{addr}");
        let mut mesh_env = vec![("B_URL", b_url.as_str())];
        mesh_env.extend_from_slice(env);
        let t = start_with(tee, &mesh_env).await;
        let c_http = format!("http://{}", t.mesh.ports.c_http);
        let mut go_env = vec![
            ("B_LISTEN", addr.as_str()),
            ("C_HTTP_URL", c_http.as_str()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
        ];
        go_env.extend_from_slice(peer_env);
        match GoPeer::try_start("otel-peer", &go_env) {
            Ok(go_b) => return (t, go_b),
            Err(e) if attempt < 4 => eprintln!("{e}: starting again on other ports"),
            Err(e) => panic!("{e} ({attempt} attempts)"),
        }
    }
}

impl Drop for GoPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET http://{peer}{path}`: the Go peer makes its call and answers what happened as JSON.
async fn call(t: &TestMesh, peer: &GoPeer, path: &str) -> serde_json::Value {
    t.client
        .get(format!("http://{}{path}", peer.addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The string `key` of a peer's answer; panics showing the answer when it is missing.
fn field(answer: &serde_json::Value, key: &str) -> String {
    answer[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {answer}"))
        .to_owned()
}

/// The envelope holding the sentry-go peer's transaction in trace `trace_id`, once it has
/// arrived at `sentry`, and that transaction.
async fn sentry_go_transaction(
    sentry: &SentryReceiver,
    trace_id: &str,
    what: &str,
) -> (Envelope, serde_json::Value) {
    let in_trace = |p: &&serde_json::Value| trace_id_of(p) == Some(trace_id);
    let envelopes = sentry
        .wait_for(
            |envs| {
                envs.iter()
                    .flat_map(|e| e.payloads("transaction"))
                    .any(|p| in_trace(&p))
            },
            SPAN_WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: the Go sentry peer's transaction: {e}"));
    let envelope = envelopes
        .into_iter()
        .find(|e| e.payloads("transaction").any(|p| in_trace(&p)))
        .unwrap();
    let tx = envelope
        .payloads("transaction")
        .find(in_trace)
        .cloned()
        .unwrap();
    (envelope, tx)
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
        let (_, trace_id) = t.get_trace(&sent).await;
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

        let (envelope, tx) = sentry_go_transaction(&sentry, &trace_id, &format.to_string()).await;
        let tx = &tx;
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

/// jaeger-peer (opentracing + jaeger-client-go, spans reported to Jaeger's Thrift HTTP
/// receiver) calls Rust a with `uber-trace-id` + `uberctx-tenant`: what Go emits, Rust continues.
/// Jaeger holds ONE trace with the Go spans and the Rust spans (exported by OTLP through the
/// tee), every parent exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jaeger_client_go_peer_calls_rust_a_and_jaeger_holds_one_trace_of_go_and_rust_spans() {
    use tracebridge_testkit::jaeger::Jaeger;

    let jaeger = Jaeger::start().await.unwrap_or_else(|e| panic!("{e}"));
    let tee = jaeger.tee().await.unwrap();
    let t = start_with(tee, &[]).await;
    let upstream = format!("{}/trace", t.a_url);
    let thrift = jaeger.jaeger_thrift_http_url();
    let b_grpc = t.mesh.ports.b.to_string();
    let peer = GoPeer::start(
        "jaeger-peer",
        &[
            ("JAEGER_ENDPOINT", thrift.as_str()),
            ("UPSTREAM_URL", upstream.as_str()),
            ("UPSTREAM_GRPC", b_grpc.as_str()),
        ],
    );
    let answer = call(&t, &peer, "/call").await;
    assert_eq!(answer["upstream_status"], 200, "{answer}");
    let (trace_id, go_server, go_client) = (
        field(&answer, "trace_id"),
        field(&answer, "server_span_id"),
        field(&answer, "client_span_id"),
    );
    assert_eq!(
        field(&answer, "server_parent_id"),
        "0000000000000000",
        "the Go peer starts the trace"
    );
    // What Go sent: jaeger-client-go's header, 128-bit trace id, its CLIENT span, sampled.
    let sent = &answer["sent"];
    let uber = sent["Uber-Trace-Id"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    let fields: Vec<&str> = uber.split(':').collect();
    assert_eq!(fields.len(), 4, "{uber}");
    assert_eq!(format!("{:0>32}", fields[0]), trace_id, "{uber}");
    assert_eq!(format!("{:0>16}", fields[1]), go_client, "{uber}");
    assert_eq!(format!("{:0>16}", fields[2]), go_server, "{uber}");
    assert_eq!(fields[3], "1", "{uber}");
    assert_eq!(sent["Uberctx-Tenant"][0], "acme", "{answer}");

    // Rust continues: the whole a → b → c tree, a's SERVER span a child of Go's CLIENT span.
    let trace = t.trace(&trace_id, 11).await;
    trace.assert_len(11);
    trace.assert_connected();
    let a_server = trace.expect_exact("service-a", "GET /trace");
    assert_eq!(a_server.parent_span_id.as_deref(), Some(go_client.as_str()));

    // One trace in Jaeger: 2 Go spans (Thrift) + 11 Rust spans (OTLP), parents exact.
    let got = jaeger
        .wait_for_trace(&trace_id, 13, SPAN_WAIT)
        .await
        .unwrap();
    assert_eq!(got.spans.len(), 13, "{}", got.dump());
    assert_eq!(
        got.services(),
        ["go-jaeger-peer", "service-a", "service-b", "service-c"]
    );
    let go_s = got.expect_exact("go-jaeger-peer", "GET /call");
    let go_c = got.expect_exact("go-jaeger-peer", "GET");
    assert_eq!(go_s.span_id, go_server);
    assert_eq!(go_s.parent_span_id, None, "{}", got.dump());
    assert_eq!(go_s.tag_str("span.kind"), Some("server"));
    assert_eq!(go_c.span_id, go_client);
    assert_eq!(go_c.parent_span_id.as_deref(), Some(go_server.as_str()));
    assert_eq!(go_c.tag_str("span.kind"), Some("client"));
    let rust_root = got
        .by_id(&a_server.span_id)
        .expect("a's SERVER span in Jaeger");
    assert_eq!(
        rust_root.parent_span_id.as_deref(),
        Some(go_client.as_str())
    );
    // The Rust part of Jaeger's trace is exactly what the receiver holds.
    got.without_service("go-jaeger-peer").assert_same_as(&trace);

    // Over gRPC: jaeger-client-go's uber-trace-id + uberctx-tenant in the metadata of
    // ping.PingB/Ping to Rust b, which continues it (b → c over HTTP under it).
    let answer = call(&t, &peer, "/call-grpc").await;
    assert_eq!(answer["upstream_status"], "OK", "{answer}");
    let (trace_id, go_server, go_client) = (
        field(&answer, "trace_id"),
        field(&answer, "server_span_id"),
        field(&answer, "client_span_id"),
    );
    let uber = answer["sent"]["uber-trace-id"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(
        uber,
        format!("{trace_id}:{go_client}:{go_server}:1"),
        "jaeger-client-go's header (v2.30 SpanContext.String(): ids zero-padded, %016x)"
    );
    assert_eq!(answer["sent"]["uberctx-tenant"][0], "acme", "{answer}");
    let trace = t.trace(&trace_id, 4).await;
    trace.assert_len(4);
    trace.assert_connected();
    let b_server = trace.expect_exact("service-b", "ping.PingB/Ping");
    assert_eq!(b_server.kind, SpanKind::Server);
    assert_eq!(b_server.parent_span_id.as_deref(), Some(go_client.as_str()));
    trace.assert_child_of(trace.expect_exact("service-b", "GET"), b_server);
    let got = jaeger
        .wait_for_trace(&trace_id, 6, SPAN_WAIT)
        .await
        .unwrap();
    assert_eq!(got.spans.len(), 6, "{}", got.dump());
    let go_c = got.expect_exact("go-jaeger-peer", "ping.PingB/Ping");
    assert_eq!(go_c.tag_str("span.kind"), Some("client"));
    assert_eq!(go_c.parent_span_id.as_deref(), Some(go_server.as_str()));
    assert_eq!(
        got.by_id(&b_server.span_id)
            .unwrap()
            .parent_span_id
            .as_deref(),
        Some(go_client.as_str())
    );
    drop(peer);
}

/// The mixed mesh: Go (jaeger-client-go) → Rust a → gRPC → Go (OpenTelemetry Go, in b's place
/// as `B_URL`) → HTTP → Rust c (`C_HTTP_URL`), and Rust a → gRPC → Rust c. The OpenTelemetry Go
/// peer runs with ONE propagator at a time (`OTEL_PROPAGATORS` = tracecontext, jaeger, b3), so
/// each hop proves both directions for that format: what Rust a emits, Go extracts (Go's SERVER
/// span is a child of a's CLIENT span), and what Go emits, Rust c continues (c's SERVER span is
/// a child of Go's CLIENT span). Jaeger holds one trace: 2 spans from jaeger-client-go (Thrift)
/// and 11 OTLP spans (Rust and Go), the OTLP part exactly as the receiver decoded it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_mesh_go_a_rust_a_go_b_rust_c_is_one_trace_in_jaeger_for_each_go_propagator() {
    use tracebridge_testkit::jaeger::Jaeger;

    let jaeger = Jaeger::start().await.unwrap_or_else(|e| panic!("{e}"));
    let thrift = jaeger.jaeger_thrift_http_url();

    for propagator in ["tracecontext", "jaeger", "b3"] {
        // A mesh per propagator: the Go peer in b's place starts with it.
        let (t, go_b) = mesh_with_go_b(&jaeger, &[], &[("OTEL_PROPAGATORS", propagator)]).await;
        let upstream = format!("{}/trace", t.a_url);
        let go_a = GoPeer::start(
            "jaeger-peer",
            &[
                ("JAEGER_ENDPOINT", thrift.as_str()),
                ("UPSTREAM_URL", upstream.as_str()),
            ],
        );
        let answer = call(&t, &go_a, "/call").await;
        assert_eq!(answer["upstream_status"], 200, "{propagator}: {answer}");
        let trace_id = field(&answer, "trace_id");
        let go_a_client = field(&answer, "client_span_id");

        let trace = t.trace(&trace_id, 11).await;
        trace.assert_len(11);
        let a_server = trace.expect_exact("service-a", "GET /trace");
        assert_eq!(
            a_server.parent_span_id.as_deref(),
            Some(go_a_client.as_str()),
            "{propagator}: Rust a continues jaeger-client-go's CLIENT span\n{}",
            trace.dump()
        );
        let a_to_b = trace.expect_exact("service-a", "ping.PingB/Ping");
        let go_b_server = trace.expect_exact("go-otel-peer", "ping.PingB/Ping");
        assert_eq!(go_b_server.kind, SpanKind::Server);
        trace.assert_child_of(go_b_server, a_to_b);
        // What Rust a sent, as the Go peer received it (it records the headers on its span):
        // every configured format, each naming a's CLIENT span.
        let got_header = |name: &str| {
            go_b_server
                .attr_str(&format!("peer.received.{name}"))
                .unwrap_or_else(|| panic!("{propagator}: {name} not received\n{}", trace.dump()))
        };
        let (tid, sid) = (trace_id.as_str(), a_to_b.span_id.as_str());
        assert_eq!(got_header("traceparent"), format!("00-{tid}-{sid}-01"));
        assert_eq!(got_header("b3"), format!("{tid}-{sid}-1"));
        assert_eq!(got_header("sentry-trace"), format!("{tid}-{sid}-1"));
        let uber: Vec<String> = got_header("uber-trace-id")
            .split(':')
            .map(str::to_owned)
            .collect();
        assert_eq!(uber.len(), 4, "{uber:?}");
        assert_eq!(format!("{:0>32}", uber[0]), tid, "{uber:?}");
        assert_eq!(format!("{:0>16}", uber[1]), sid, "{uber:?}");
        assert_eq!(uber[3], "1", "{uber:?}");
        let go_b_clients: Vec<_> = trace
            .spans()
            .iter()
            .filter(|s| s.service_name == "go-otel-peer" && s.kind == SpanKind::Client)
            .collect();
        assert_eq!(go_b_clients.len(), 1, "{propagator}\n{}", trace.dump());
        let go_b_client = go_b_clients[0];
        trace.assert_child_of(go_b_client, go_b_server);
        let c_work = trace.expect_exact("service-c", "GET /work");
        trace.assert_child_of(c_work, go_b_client);
        let trace3: Vec<_> = trace.find_all("service-c", "trace3");
        assert_eq!(trace3.len(), 2, "{}", trace.dump());
        let c_grpc = trace.expect_exact("service-c", "ping.PingC/Ping");
        trace.assert_child_of(c_grpc, trace.expect_exact("service-a", "ping.PingC/Ping"));
        assert!(
            trace.spans().iter().all(|s| !s.status.is_error()),
            "{propagator}\n{}",
            trace.dump()
        );

        // Jaeger: one trace of every service, parents exact, the OTLP part as received.
        let got = jaeger
            .wait_for_trace(&trace_id, 13, SPAN_WAIT)
            .await
            .unwrap_or_else(|e| panic!("{propagator}: {e}"));
        assert_eq!(got.spans.len(), 13, "{}", got.dump());
        assert_eq!(
            got.services(),
            ["go-jaeger-peer", "go-otel-peer", "service-a", "service-c"]
        );
        let go_a_server = got.expect_exact("go-jaeger-peer", "GET /call");
        assert_eq!(go_a_server.parent_span_id, None);
        assert_eq!(
            got.expect_exact("go-jaeger-peer", "GET")
                .parent_span_id
                .as_deref(),
            Some(go_a_server.span_id.as_str())
        );
        got.without_service("go-jaeger-peer").assert_same_as(&trace);
        drop((go_a, go_b));
    }
}

/// The issue's mixed mesh as ONE trace. Go (a) = jaeger-peer's `/call-mesh`: under its SERVER
/// span, `GET` Rust a over HTTP and `ping.PingB/Ping` Rust b over gRPC (`uber-trace-id` +
/// `uberctx-tenant` on both). Rust a → gRPC → Go (b) = otel-peer (a's `B_URL`) → HTTP → Rust c,
/// and Rust a → gRPC → Rust c; Rust b → HTTP → Go (c) = sentry-peer (b's `C_HTTP_URL`).
///
/// ```text
/// go-jaeger-peer GET /call-mesh
/// ├─ GET ─────────────► service-a GET /trace (trace1 > trace2)
/// │                     ├─ ping.PingB/Ping ─► go-otel-peer ping.PingB/Ping
/// │                     │                     └─ GET ─► service-c GET /work > trace3
/// │                     └─ ping.PingC/Ping ─► service-c ping.PingC/Ping > trace3
/// └─ ping.PingB/Ping ─► service-b ping.PingB/Ping
///                       └─ GET ─► go sentry-peer GET /work (a Sentry transaction)
/// ```
///
/// Jaeger holds exactly one trace with every service's spans (an exact count per service):
/// jaeger-client-go's by Thrift, the Rust and OpenTelemetry Go spans by OTLP (through the tee,
/// whose copy Jaeger's must equal). Every cross-process edge is exact: the caller's CLIENT span
/// is the callee's parent. sentry-go reports to Sentry, not Jaeger: its transaction continues
/// b's CLIENT span. The DSC: jaeger-client-go has no Sentry DSC and does not forward W3C
/// `baggage` (only its own `uberctx-*`), so no DSC comes from the head; Rust a and Rust b each
/// write their own for the trace ("a service that starts a Sentry trace writes its own DSC"),
/// the same one (same config; `sample_rand` derives from the trace id), and the DSC b wrote
/// arrives unchanged at the sentry-go service, beside `tenant=acme` from Go's `uberctx-tenant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mixed_mesh_go_rust_go_rust_is_one_trace_in_jaeger_and_b_dsc_reaches_sentry_go() {
    use tracebridge_testkit::jaeger::Jaeger;

    let jaeger = Jaeger::start().await.unwrap_or_else(|e| panic!("{e}"));
    let sentry = SentryReceiver::start().await.unwrap();
    let go_sentry_dsn = sentry.dsn("gopeer");
    // Rust's own DSC comes from its Sentry config: the DSN's key, environment, release.
    let rust_sentry_dsn = sentry.dsn("rustmesh");
    let go_c = GoPeer::start("sentry-peer", &[("SENTRY_DSN", go_sentry_dsn.as_str())]);
    let go_c_url = format!("http://{}", go_c.addr);
    let (t, go_b) = mesh_with_go_b(
        &jaeger,
        &[
            ("C_HTTP_URL", go_c_url.as_str()),
            ("SENTRY_DSN", rust_sentry_dsn.as_str()),
            ("SENTRY_ENVIRONMENT", "mixed-mesh"),
            ("SENTRY_RELEASE", "tracebridge@mixed"),
        ],
        &[],
    )
    .await;
    let thrift = jaeger.jaeger_thrift_http_url();
    let upstream = format!("{}/trace", t.a_url);
    let b_grpc = t.mesh.ports.b.to_string();
    let go_a = GoPeer::start(
        "jaeger-peer",
        &[
            ("JAEGER_ENDPOINT", thrift.as_str()),
            ("UPSTREAM_URL", upstream.as_str()),
            ("UPSTREAM_GRPC", b_grpc.as_str()),
        ],
    );

    let answer = call(&t, &go_a, "/call-mesh").await;
    assert_eq!(answer["http"]["upstream_status"], 200, "{answer}");
    assert_eq!(answer["grpc"]["upstream_status"], "OK", "{answer}");
    let trace_id = field(&answer, "trace_id");
    let go_a_server = field(&answer, "server_span_id");
    let go_a_http = field(&answer["http"], "client_span_id");
    let go_a_grpc = field(&answer["grpc"], "client_span_id");
    assert_eq!(
        answer["grpc"]["sent"]["uber-trace-id"][0],
        format!("{trace_id}:{go_a_grpc}:{go_a_server}:1"),
        "{answer}"
    );

    // The OTLP part (Rust a, b, c and OpenTelemetry Go), as the tee decoded it.
    let trace = t.trace(&trace_id, 13).await;
    trace.assert_len(13);
    let span = |service: &str, name: &str| trace.expect_exact(service, name);
    let only = |service: &str, kind: SpanKind| {
        let found: Vec<_> = trace
            .spans()
            .iter()
            .filter(|s| s.service_name == service && s.kind == kind)
            .collect();
        assert_eq!(found.len(), 1, "{service} {kind:?}\n{}", trace.dump());
        found[0]
    };
    // Go (a) → Rust a (HTTP) and Go (a) → Rust b (gRPC): Rust continues jaeger-client-go.
    let a_server = span("service-a", "GET /trace");
    assert_eq!(a_server.parent_span_id.as_deref(), Some(go_a_http.as_str()));
    let b_server = span("service-b", "ping.PingB/Ping");
    assert_eq!(b_server.kind, SpanKind::Server);
    assert_eq!(b_server.parent_span_id.as_deref(), Some(go_a_grpc.as_str()));
    // Rust a → Go (b) (gRPC) → Rust c (HTTP); Rust a → Rust c (gRPC).
    let a_to_go_b = span("service-a", "ping.PingB/Ping");
    let go_b_server = only("go-otel-peer", SpanKind::Server);
    trace.assert_child_of(go_b_server, a_to_go_b);
    let go_b_client = only("go-otel-peer", SpanKind::Client);
    trace.assert_child_of(go_b_client, go_b_server);
    trace.assert_child_of(span("service-c", "GET /work"), go_b_client);
    trace.assert_child_of(
        span("service-c", "ping.PingC/Ping"),
        span("service-a", "ping.PingC/Ping"),
    );
    // Rust b → Go (c): b's CLIENT span, answered 200 by sentry-go.
    let b_client = span("service-b", "GET");
    assert_eq!(b_client.kind, SpanKind::Client);
    trace.assert_child_of(b_client, b_server);
    assert_eq!(b_client.attr_i64("http.response.status_code"), Some(200));
    assert!(
        trace.spans().iter().all(|s| !s.status.is_error()),
        "{}",
        trace.dump()
    );

    // Jaeger: exactly one trace of every exporting service, each with its exact span count; the
    // only root is Go (a)'s SERVER span and every other parent is a span of this trace.
    let got = jaeger
        .wait_for_trace(&trace_id, 16, SPAN_WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut per_service = BTreeMap::new();
    for s in &got.spans {
        *per_service.entry(s.service_name.as_str()).or_insert(0) += 1;
    }
    assert_eq!(
        per_service,
        BTreeMap::from([
            ("go-jaeger-peer", 3),
            ("go-otel-peer", 2),
            ("service-a", 5),
            ("service-b", 2),
            ("service-c", 4),
        ]),
        "{}",
        got.dump()
    );
    for s in &got.spans {
        match s.parent_span_id.as_deref() {
            None => assert_eq!(s.span_id, go_a_server, "the one root\n{}", got.dump()),
            Some(p) => assert!(got.by_id(p).is_some(), "{}\n{}", s.summary(), got.dump()),
        }
    }
    let go_a_root = got.expect_exact("go-jaeger-peer", "GET /call-mesh");
    assert_eq!(go_a_root.span_id, go_a_server);
    assert_eq!(go_a_root.tag_str("span.kind"), Some("server"));
    for (name, id) in [("GET", &go_a_http), ("ping.PingB/Ping", &go_a_grpc)] {
        let client = got.expect_exact("go-jaeger-peer", name);
        assert_eq!(&client.span_id, id);
        assert_eq!(client.tag_str("span.kind"), Some("client"));
        assert_eq!(client.parent_span_id.as_deref(), Some(go_a_server.as_str()));
    }
    // The OTLP part: exactly the tee's copy, c's two trace3 events as logs. (jaeger-client-go
    // logs its own `baggage` event on the span that sets `tenant`, so its spans are left out.)
    let otlp_part = got.without_service("go-jaeger-peer");
    otlp_part.assert_same_as(&trace);
    support::assert_trace3_events(&trace, &otlp_part, 2);

    // Go (c), sentry-go: its transaction continues b's CLIENT span, and what arrived there
    // (recorded on the transaction) is b's sentry-trace and b's DSC, unchanged.
    let (_, tx) = sentry_go_transaction(&sentry, &trace_id, "mixed mesh").await;
    let tx = &tx;
    assert_eq!(
        tx.pointer("/contexts/trace/parent_span_id")
            .and_then(|v| v.as_str()),
        Some(b_client.span_id.as_str()),
        "sentry-go continues Rust b's CLIENT span\n{tx}"
    );
    let received = |key: &str| {
        tx.pointer(&format!("/contexts/trace/data/peer.received.{key}"))
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("no {key} recorded in {tx}"))
            .to_owned()
    };
    assert_eq!(
        received("sentry-trace"),
        format!("{trace_id}-{}-1", b_client.span_id)
    );
    let at_go_c = received("baggage");
    // The DSC Rust a wrote, as Go (b) received it (otel-peer records it on its SERVER span).
    let from_a = go_b_server
        .attr_str("peer.received.baggage")
        .unwrap_or_else(|| panic!("no baggage at Go (b)\n{}", trace.dump()));
    let dsc = dsc_of(&at_go_c);
    assert!(
        !dsc.is_empty(),
        "no Sentry DSC arrived at sentry-go: {at_go_c:?}"
    );
    assert_eq!(dsc["trace_id"], trace_id, "{at_go_c}");
    assert_eq!(dsc["public_key"], "rustmesh", "{at_go_c}");
    assert_eq!(dsc["environment"], "mixed-mesh", "{at_go_c}");
    assert_eq!(dsc["release"], "tracebridge%40mixed", "{at_go_c}"); // `@` encoded
    assert_eq!(dsc["sample_rate"], "0", "{at_go_c}"); // SENTRY_TRACES_SAMPLE_RATE unset
    assert_eq!(dsc["sampled"], "true", "{at_go_c}");
    assert_eq!(
        dsc,
        dsc_of(from_a),
        "Rust a and Rust b write the same DSC for the trace; b's arrives unchanged at sentry-go"
    );
    let members: Vec<&str> = at_go_c.split(',').map(str::trim).collect();
    assert!(
        members.contains(&"tenant=acme"),
        "jaeger-client-go's uberctx-tenant, through Rust b as W3C baggage: {at_go_c}"
    );
    drop((go_a, go_b, go_c));
}
