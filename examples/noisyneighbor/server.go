package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// tierLimits are the default limits of the orders example.
var tierLimits = map[string]throttle.Limits{
	"basic":    {Rate: 5, Burst: 10},
	"standard": {Rate: 50, Burst: 100},
	"premium":  {Rate: 500, Burst: 1000},
	"platinum": {Rate: 2000, Burst: 4000},
}

// workers is the service's shared capacity: n requests served at once,
// each holding its worker for the service time, as if it waited for a
// database. Requests beyond n wait for a worker in arrival order, whoever
// their tenant — that queue is where a noisy neighbour hurts.
type workers struct {
	slots   chan struct{}
	service time.Duration
}

func newWorkers(n int, service time.Duration) *workers {
	return &workers{slots: make(chan struct{}, n), service: service}
}

// ServeHTTP waits for a worker, does the request's work and answers 200.
// A request whose client gave up, while queued or served, frees its place
// at once, as a real service would.
func (ws *workers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	select {
	case ws.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-ws.slots }()

	t, _ := tenant.FromContext(ctx)
	sum := sha256.Sum256([]byte(t.ID + r.URL.Path)) // a tiny bit of CPU
	if ws.service > 0 {
		timer := time.NewTimer(ws.service)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"tenant_id\":%q,\"etag\":\"%x\"}\n", t.ID, sum[:4])
}

// stack is the service under load and the tokens of its two tenants.
type stack struct {
	url      string
	tokens   map[string]string // by tenant ID
	limiter  *throttle.Limiter
	shutdown func() error
}

// startStack starts an issuer, and the service on a loopback port:
// authz.Middleware, then the throttle's middleware unless withThrottle is
// false, then ws.
func startStack(ctx context.Context, load []tenantLoad, ws *workers, withThrottle bool) (_ *stack, err error) {
	iss, err := authztest.NewIssuer(authztest.WithAlgorithm("ES256"), authztest.WithAudience("noisyneighbor"))
	if err != nil {
		return nil, err
	}
	var v *authz.Verifier
	defer func() {
		if err != nil {
			if v != nil {
				v.Close()
			}
			iss.Close()
		}
	}()
	v, err = iss.NewVerifier(ctx)
	if err != nil {
		return nil, err
	}
	limiter, err := throttle.New(tenant.DefaultTiers, tierLimits)
	if err != nil {
		return nil, err
	}
	s := &stack{tokens: make(map[string]string), limiter: limiter}
	for _, l := range load {
		tok, err := iss.Mint(l.tenant, l.tier)
		if err != nil {
			return nil, err
		}
		s.tokens[l.tenant] = tok
	}

	var h http.Handler = ws
	if withThrottle {
		h = limiter.Middleware()(h)
	}
	h = authz.Middleware(v)(h)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	s.url = "http://" + ln.Addr().String()
	s.shutdown = func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if err != nil {
			srv.Close()
		}
		<-served
		v.Close()
		iss.Close()
		return err
	}
	return s, nil
}
