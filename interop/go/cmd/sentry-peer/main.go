// Command sentry-peer is a Go service instrumented the sentry-go way, for tracebridge's
// interop tests: it serves GET /work (what Rust service-b calls as C_HTTP_URL), continues the
// trace from the incoming sentry-trace + baggage headers (sentryhttp), sends its transaction
// to SENTRY_DSN, and answers with the trace headers it received so a test can assert the
// exact ids Rust sent; the received sentry-trace and baggage are also recorded on the
// transaction (data peer.received.*).
//
// Note: sentry-go v0.50's sentryhttp continues the trace (trace id, parent span id, sampling
// decision) from sentry-trace, but the envelope's `trace` header of its transaction is its own
// DSC (its public key, environment, release), not the incoming frozen one — with any caller.
//
// Environment: SENTRY_DSN (required), GO_PEER_LISTEN (default 127.0.0.1:0; the bound address
// is printed as "listening on ADDR").
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/getsentry/sentry-go"
	sentryhttp "github.com/getsentry/sentry-go/http"

	"tracebridge.local/interop/internal/peer"
)

func main() {
	dsn := peer.Required("sentry-peer", "SENTRY_DSN")
	if err := sentry.Init(sentry.ClientOptions{
		Dsn:              dsn,
		EnableTracing:    true,
		TracesSampleRate: 1.0,
		Environment:      "go-peer",
	}); err != nil {
		log.Fatalf("sentry-peer: SENTRY_DSN: %v", err)
	}
	listener := peer.Listen("sentry-peer", "GO_PEER_LISTEN")

	mux := http.NewServeMux()
	mux.HandleFunc("GET /work", func(w http.ResponseWriter, r *http.Request) {
		span := sentry.StartSpan(r.Context(), "work", sentry.WithDescription("trace3 in Go"))
		received := map[string][]string{}
		for _, name := range []string{"sentry-trace", "baggage", "traceparent", "uber-trace-id", "b3"} {
			if values := r.Header.Values(name); len(values) > 0 {
				received[name] = values
			}
		}
		server := sentry.TransactionFromContext(r.Context())
		if os.Getenv("GO_PEER_DEBUG") != "" {
			log.Printf("sentry-peer: received %v", received)
		}
		answer := map[string]any{"received": received}
		if server != nil {
			// What arrived, on the transaction itself, so a test reading the Sentry envelope
			// can compare it byte for byte with what the caller sent.
			server.SetData("peer.received.sentry-trace", r.Header.Get("sentry-trace"))
			server.SetData("peer.received.baggage", r.Header.Get("baggage"))
			answer["trace_id"] = server.TraceID.String()
			answer["span_id"] = server.SpanID.String()
			answer["parent_span_id"] = server.ParentSpanID.String()
		}
		span.Finish()
		w.Header().Set("content-type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	})
	handler := sentryhttp.New(sentryhttp.Options{}).Handle(mux)

	peer.ServeHTTP("sentry-peer", listener, handler)
	sentry.Flush(5 * time.Second)
}
