// Command jaeger-peer is a Go service instrumented the way the original design's services
// were: opentracing + jaeger-client-go, reporting its spans to Jaeger's Thrift-over-HTTP
// receiver (jaeger-client-go cannot speak OTLP). For tracebridge's interop tests it serves
// GET /call: a SERVER span (continuing an incoming uber-trace-id, if any) and, under it, a
// CLIENT span for GET UPSTREAM_URL with uber-trace-id and uberctx-tenant injected — the Rust
// service continues it. GET /call-grpc does the same over gRPC: ping.PingB/Ping on UPSTREAM_GRPC
// (host:port) with uber-trace-id and uberctx-tenant in the gRPC metadata. Both answer with the
// ids and the headers (metadata) sent. GET /call-mesh makes both calls, HTTP then gRPC, under one
// SERVER span, and answers {"http": {...}, "grpc": {...}} with each call's CLIENT span id,
// what it sent and its status.
//
// Environment: JAEGER_ENDPOINT (required, e.g. http://127.0.0.1:14268/api/traces),
// UPSTREAM_URL (required), UPSTREAM_GRPC (for /call-grpc and /call-mesh), GO_PEER_LISTEN (default 127.0.0.1:0; the bound address is printed as
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

// reply finishes the CLIENT spans, then the SERVER span, and answers, as JSON, `answer` (what
// was sent and what came back) with the SERVER span's trace id, span id and parent id.
func reply(w http.ResponseWriter, server opentracing.Span, answer map[string]any, clients ...opentracing.Span) {
	for _, c := range clients {
		c.Finish()
	}
	server.Finish()
	sc := server.Context().(jaeger.SpanContext)
	answer["trace_id"] = fmt.Sprintf("%016x%016x", sc.TraceID().High, sc.TraceID().Low)
	answer["server_span_id"] = spanID(server)
	answer["server_parent_id"] = fmt.Sprintf("%016x", uint64(sc.ParentID()))
	w.Header().Set("content-type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

// spanID is the span's id as 16 hex digits.
func spanID(span opentracing.Span) string {
	return fmt.Sprintf("%016x", uint64(span.Context().(jaeger.SpanContext).SpanID()))
}

// callHTTP calls GET upstream under a new CLIENT span "GET", a child of parent, with
// uber-trace-id and uberctx-* injected; it returns the span (not finished), the headers sent and
// the response status (0 when the call failed, the span then marked error).
func callHTTP(ctx context.Context, client *http.Client, parent opentracing.Span, upstream string) (opentracing.Span, http.Header, int) {
	tracer := parent.Tracer()
	span := tracer.StartSpan("GET", opentracing.ChildOf(parent.Context()))
	ext.SpanKindRPCClient.Set(span)
	ext.HTTPUrl.Set(span, upstream)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, upstream, nil)
	_ = tracer.Inject(span.Context(), opentracing.HTTPHeaders, opentracing.HTTPHeadersCarrier(req.Header))
	status := 0
	if resp, err := client.Do(req); err != nil {
		ext.Error.Set(span, true)
	} else {
		status = resp.StatusCode
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	ext.HTTPStatusCode.Set(span, uint16(status))
	return span, req.Header, status
}

// callGRPC calls ping.PingB/Ping on target (host:port) under a new CLIENT span of that name, a
// child of parent, with uber-trace-id and uberctx-* in the metadata; it returns the span (not
// finished), the metadata sent and "OK" or the error (the span then marked error).
func callGRPC(ctx context.Context, parent opentracing.Span, target string) (opentracing.Span, metadata.MD, string) {
	tracer := parent.Tracer()
	span := tracer.StartSpan("ping.PingB/Ping", opentracing.ChildOf(parent.Context()))
	ext.SpanKindRPCClient.Set(span)
	md := metadata.MD{}
	_ = tracer.Inject(span.Context(), opentracing.TextMap, metadataCarrier(md))
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err == nil {
		ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, md), 30*time.Second)
		_, err = pingpb.NewPingBClient(conn).Ping(ctx, &pingpb.PingRequest{From: "go-jaeger-peer"})
		cancel()
		_ = conn.Close()
	}
	if err != nil {
		ext.Error.Set(span, true)
		return span, md, err.Error()
	}
	return span, md, "OK"
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
		span, sent, status := callHTTP(r.Context(), client, server, upstream)
		answer := map[string]any{"sent": sent, "client_span_id": spanID(span), "upstream_status": status}
		reply(w, server, answer, span)
	})

	mux.HandleFunc("GET /call-grpc", func(w http.ResponseWriter, r *http.Request) {
		target := os.Getenv("UPSTREAM_GRPC")
		if target == "" {
			http.Error(w, "UPSTREAM_GRPC is not set", http.StatusInternalServerError)
			return
		}
		server := tracer.StartSpan("GET /call-grpc", ext.SpanKindRPCServer)
		server.SetBaggageItem("tenant", "acme")
		span, sent, code := callGRPC(r.Context(), server, target)
		answer := map[string]any{"sent": sent, "client_span_id": spanID(span), "upstream_status": code}
		reply(w, server, answer, span)
	})

	// Both calls under one SERVER span: the head of the mixed mesh's single trace.
	mux.HandleFunc("GET /call-mesh", func(w http.ResponseWriter, r *http.Request) {
		target := os.Getenv("UPSTREAM_GRPC")
		if target == "" {
			http.Error(w, "UPSTREAM_GRPC is not set", http.StatusInternalServerError)
			return
		}
		incoming, _ := tracer.Extract(opentracing.HTTPHeaders, opentracing.HTTPHeadersCarrier(r.Header))
		server := tracer.StartSpan("GET /call-mesh", ext.RPCServerOption(incoming))
		ext.HTTPMethod.Set(server, r.Method)
		server.SetBaggageItem("tenant", "acme")
		httpSpan, httpSent, status := callHTTP(r.Context(), client, server, upstream)
		grpcSpan, grpcSent, code := callGRPC(r.Context(), server, target)
		answer := map[string]any{
			"http": map[string]any{"sent": httpSent, "client_span_id": spanID(httpSpan), "upstream_status": status},
			"grpc": map[string]any{"sent": grpcSent, "client_span_id": spanID(grpcSpan), "upstream_status": code},
		}
		reply(w, server, answer, httpSpan, grpcSpan)
	})

	peer.ServeHTTP("jaeger-peer", listener, mux)
	_ = closer.Close() // flushes the reporter
}
