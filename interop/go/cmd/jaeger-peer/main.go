// Command jaeger-peer is a Go service instrumented the way the original design's services
// were: opentracing + jaeger-client-go, reporting its spans to Jaeger's Thrift-over-HTTP
// receiver (jaeger-client-go cannot speak OTLP). For tracebridge's interop tests it serves
// GET /call: a SERVER span (continuing an incoming uber-trace-id, if any) and, under it, a
// CLIENT span for GET UPSTREAM_URL with uber-trace-id and uberctx-tenant injected — the Rust
// service continues it. GET /call-grpc does the same over gRPC: ping.PingB/Ping on UPSTREAM_GRPC
// (host:port) with uber-trace-id and uberctx-tenant in the gRPC metadata. Both answer with the
// ids and the headers (metadata) sent.
//
// Environment: JAEGER_ENDPOINT (required, e.g. http://127.0.0.1:14268/api/traces),
// UPSTREAM_URL (required), UPSTREAM_GRPC (for /call-grpc), GO_PEER_LISTEN (default 127.0.0.1:0; the bound address is printed as
// "listening on ADDR"), JAEGER_SERVICE_NAME (default go-jaeger-peer).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/opentracing/opentracing-go"
	"github.com/opentracing/opentracing-go/ext"
	"github.com/uber/jaeger-client-go"
	"github.com/uber/jaeger-client-go/transport"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"tracebridge.local/interop/internal/peer"
	"tracebridge.local/interop/pingpb"
)

// metadataCarrier lets opentracing inject into gRPC metadata (what grpc-opentracing's
// otgrpc does, written out: that package is archived and pins an old grpc).
type metadataCarrier metadata.MD

func (c metadataCarrier) Set(key, val string) { metadata.MD(c).Set(key, val) }

func (c metadataCarrier) ForeachKey(handler func(key, val string) error) error {
	for k, vs := range c {
		for _, v := range vs {
			if err := handler(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// reply finishes both spans and answers, as JSON, `answer` (what was sent) with the spans' ids
// and the upstream call's status.
func reply(w http.ResponseWriter, server, client opentracing.Span, answer map[string]any, status any) {
	client.Finish()
	server.Finish()
	sc := server.Context().(jaeger.SpanContext)
	cc := client.Context().(jaeger.SpanContext)
	answer["trace_id"] = fmt.Sprintf("%016x%016x", sc.TraceID().High, sc.TraceID().Low)
	answer["server_span_id"] = fmt.Sprintf("%016x", uint64(sc.SpanID()))
	answer["server_parent_id"] = fmt.Sprintf("%016x", uint64(sc.ParentID()))
	answer["client_span_id"] = fmt.Sprintf("%016x", uint64(cc.SpanID()))
	answer["upstream_status"] = status
	w.Header().Set("content-type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

func main() {
	endpoint := peer.Required("jaeger-peer", "JAEGER_ENDPOINT")
	upstream := peer.Required("jaeger-peer", "UPSTREAM_URL")
	service := os.Getenv("JAEGER_SERVICE_NAME")
	if service == "" {
		service = "go-jaeger-peer"
	}
	reporter := jaeger.NewRemoteReporter(
		transport.NewHTTPTransport(endpoint),
		jaeger.ReporterOptions.BufferFlushInterval(100*time.Millisecond),
	)
	tracer, closer := jaeger.NewTracer(service, jaeger.NewConstSampler(true), reporter,
		jaeger.TracerOptions.Gen128Bit(true))
	opentracing.SetGlobalTracer(tracer)

	listener := peer.Listen("jaeger-peer", "GO_PEER_LISTEN")
	client := &http.Client{Timeout: 60 * time.Second}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /call", func(w http.ResponseWriter, r *http.Request) {
		incoming, _ := tracer.Extract(opentracing.HTTPHeaders, opentracing.HTTPHeadersCarrier(r.Header))
		server := tracer.StartSpan("GET /call", ext.RPCServerOption(incoming))
		ext.HTTPMethod.Set(server, r.Method)
		server.SetBaggageItem("tenant", "acme")

		clientSpan := tracer.StartSpan("GET", opentracing.ChildOf(server.Context()))
		ext.SpanKindRPCClient.Set(clientSpan)
		ext.HTTPUrl.Set(clientSpan, upstream)
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, upstream, nil)
		_ = tracer.Inject(clientSpan.Context(), opentracing.HTTPHeaders, opentracing.HTTPHeadersCarrier(req.Header))
		answer := map[string]any{"sent": req.Header}
		status := 0
		if resp, err := client.Do(req); err != nil {
			ext.Error.Set(clientSpan, true)
			answer["error"] = err.Error()
		} else {
			status = resp.StatusCode
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		ext.HTTPStatusCode.Set(clientSpan, uint16(status))
		reply(w, server, clientSpan, answer, status)
	})

	mux.HandleFunc("GET /call-grpc", func(w http.ResponseWriter, r *http.Request) {
		target := os.Getenv("UPSTREAM_GRPC")
		if target == "" {
			http.Error(w, "UPSTREAM_GRPC is not set", http.StatusInternalServerError)
			return
		}
		server := tracer.StartSpan("GET /call-grpc", ext.SpanKindRPCServer)
		server.SetBaggageItem("tenant", "acme")
		clientSpan := tracer.StartSpan("ping.PingB/Ping", opentracing.ChildOf(server.Context()))
		ext.SpanKindRPCClient.Set(clientSpan)
		md := metadata.MD{}
		_ = tracer.Inject(clientSpan.Context(), opentracing.TextMap, metadataCarrier(md))
		answer := map[string]any{"sent": md}
		code := "OK"
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err == nil {
			ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(r.Context(), md), 30*time.Second)
			_, err = pingpb.NewPingBClient(conn).Ping(ctx, &pingpb.PingRequest{From: "go-jaeger-peer"})
			cancel()
			_ = conn.Close()
		}
		if err != nil {
			ext.Error.Set(clientSpan, true)
			code = err.Error()
		}
		reply(w, server, clientSpan, answer, code)
	})

	peer.ServeHTTP("jaeger-peer", listener, mux)
	_ = closer.Close() // flushes the reporter
}
