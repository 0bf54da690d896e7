// Command otel-peer is a Go service instrumented with OpenTelemetry Go, for tracebridge's
// interop tests: it implements ping.PingB over gRPC (otelgrpc server handler; the trace headers
// it received are recorded as peer.received.* attributes of that span) and, like Rust
// service-b, calls GET {C_HTTP_URL}/work over HTTP (otelhttp transport). Propagation follows
// OTEL_PROPAGATORS (autoprop: tracecontext, baggage, jaeger, b3, b3multi); spans are exported by
// OTLP/gRPC to OTEL_EXPORTER_OTLP_ENDPOINT as service OTEL_SERVICE_NAME (default go-otel-peer).
//
// Environment: C_HTTP_URL (required), B_LISTEN (default 127.0.0.1:0; the bound address is
// printed as "listening on ADDR"), and the OTEL_* variables above.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/contrib/propagators/autoprop"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"tracebridge.local/interop/internal/peer"
	"tracebridge.local/interop/pingpb"
)

type pingB struct {
	pingpb.UnimplementedPingBServer
	work   string
	client *http.Client
}

func (p *pingB) Ping(ctx context.Context, req *pingpb.PingRequest) (*pingpb.PingReply, error) {
	// Echo what arrived, as attributes of the SERVER span, so a test can assert the exact ids
	// the Rust caller sent in each format.
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		span := trace.SpanFromContext(ctx)
		for _, name := range []string{"traceparent", "uber-trace-id", "b3", "sentry-trace", "baggage"} {
			if values := md.Get(name); len(values) > 0 {
				span.SetAttributes(attribute.String("peer.received."+name, strings.Join(values, ",")))
			}
		}
	}
	if req.GetFail() {
		return nil, status.Error(codes.Internal, "go-otel-peer failed on request (fail=b)")
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, p.work, nil)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp, err := p.client.Do(httpReq)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "c/work: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, status.Errorf(codes.Internal, "c/work: %d", resp.StatusCode)
	}
	return &pingpb.PingReply{Service: "go-otel-peer", Message: fmt.Sprintf("c/work: %d", resp.StatusCode)}, nil
}

func main() {
	cHTTP := peer.Required("otel-peer", "C_HTTP_URL")
	name := os.Getenv("OTEL_SERVICE_NAME")
	if name == "" {
		name = "go-otel-peer"
	}
	ctx := context.Background()
	// The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (http:// means no TLS).
	exporter, err := otlptracegrpc.New(ctx)
	if err != nil {
		log.Fatalf("otel-peer: OTEL_EXPORTER_OTLP_ENDPOINT: %v", err)
	}
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter, sdktrace.WithBatchTimeout(100*time.Millisecond)),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(name))),
	)
	otel.SetTracerProvider(provider)
	// OTEL_PROPAGATORS names the formats (default tracecontext,baggage); autoprop builds them,
	// and an unknown name fails here, naming the variable.
	names := os.Getenv("OTEL_PROPAGATORS")
	if names == "" {
		names = "tracecontext,baggage"
	}
	propagator, err := autoprop.TextMapPropagator(strings.Split(names, ",")...)
	if err != nil {
		log.Fatalf("otel-peer: OTEL_PROPAGATORS: %v", err)
	}
	otel.SetTextMapPropagator(propagator)

	listener := peer.Listen("otel-peer", "B_LISTEN")
	server := grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler()))
	pingpb.RegisterPingBServer(server, &pingB{
		work:   cHTTP + "/work",
		client: &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport), Timeout: 30 * time.Second},
	})
	peer.OnStop(server.GracefulStop)
	if err := server.Serve(listener); err != nil {
		log.Fatalf("otel-peer: %v", err)
	}
	shutdown, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = provider.Shutdown(shutdown) // flushes
}
