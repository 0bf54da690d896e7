// Package peer is what every Go peer of tracebridge's interop tests does the same way: read a
// required variable, listen on the address a variable names, tell the test where, and stop
// cleanly on SIGTERM (the tests stop each peer by its pid).
package peer

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

// Required returns $name; when it is unset or empty, cmd exits naming the variable.
func Required(cmd, name string) string {
	v := os.Getenv(name)
	if v == "" {
		log.Fatalf("%s: %s is required", cmd, name)
	}
	return v
}

// Listen listens on $env (default 127.0.0.1:0, a free port) and prints "listening on ADDR",
// the line the tests read to find the peer; cmd exits naming the variable when it cannot.
func Listen(cmd, env string) net.Listener {
	addr := os.Getenv(env)
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("%s: cannot listen on %s (%s): %v", cmd, addr, env, err)
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	return listener
}

// OnStop calls stop (once, in another goroutine) when SIGTERM or an interrupt arrives.
func OnStop(stop func()) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-signals
		stop()
	}()
}

// ServeHTTP serves handler on listener until SIGTERM or an interrupt closes the server;
// cmd exits on any other error. The caller flushes its telemetry after it returns.
func ServeHTTP(cmd string, listener net.Listener, handler http.Handler) {
	srv := &http.Server{Handler: handler}
	OnStop(func() { _ = srv.Close() })
	if err := srv.Serve(listener); err != nil && err != http.ErrServerClosed {
		log.Fatalf("%s: %v", cmd, err)
	}
}
