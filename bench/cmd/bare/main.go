// Command bare serves GET /orders the way examples/orders does — the same
// JSON document, marshalled per request from an in-memory list, with the
// same response headers and server timeouts — but with no middleware at
// all: no token, no tenant, no limits, no logs, no metering. bench/http.sh
// loads it beside examples/orders to measure what the stack costs over
// HTTP.
//
//	ADDR=127.0.0.1:0 go run ./cmd/bare   # prints "listening on http://..." on stderr
//
// It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// order has the fields and JSON names of examples/orders' Order.
type order struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant_id"`
	UserID    string    `json:"user_id"`
	Item      string    `json:"item"`
	Quantity  int       `json:"quantity"`
	CreatedAt time.Time `json:"created_at"`
}

type orderList struct {
	Orders []order `json:"orders"`
}

// store holds the one order bench/http.sh also places in examples/orders,
// read under a lock as that service's memory store reads a partition.
type store struct {
	mu     sync.RWMutex
	orders []order
}

func (s *store) list() []order {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]order(nil), s.orders...)
}

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s := &store{orders: []order{{
		ID: "a40388c6c3f3967f", TenantID: "acme", UserID: "alice",
		Item: "anvil", Quantity: 2, CreatedAt: time.Now().UTC(),
	}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, orderList{Orders: s.list()})
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "listening on http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}

// writeJSON answers as examples/orders' writeJSON does.
func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(append(body, '\n'))
}
