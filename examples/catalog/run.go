package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/examples/internal/kit"
	"github.com/tenancykit/tenancy/logging"
)

const usage = `catalog: unit prices per tenant tier, called by orders (see examples/catalog/README.md)

It takes no arguments; it is configured by environment variables:

  ADDR               listen address (default 127.0.0.1:8081; port 0 picks one)
  AUTH_ISSUER        the exact "iss" of accepted tokens (required: the catalog
                     has no development mode; locally, the issuer URL printed
                     by the orders development banner)
  AUTH_AUDIENCE      the audience tokens must name (required; orders-dev for
                     the orders development issuer)
  AUTH_JWKS_URL      the JWK Set URL (default: OIDC discovery from AUTH_ISSUER)
  AUTH_TENANT_CLAIM  default custom:tenantId
  AUTH_TIER_CLAIM    default custom:tenantTier
  AUTH_ROLES_CLAIM   default cognito:groups
  LOG_LEVEL          debug, info, warn or error (default info)
`

// runOption is a hook for tests; the service itself runs without any.
type runOption func(*runHooks)

type runHooks struct {
	ready func(addr string)               // the listener is bound to addr
	wrap  func(http.Handler) http.Handler // wraps the whole service
}

// withReady calls f with the bound address once the service accepts
// connections.
func withReady(f func(addr string)) runOption { return func(h *runHooks) { h.ready = f } }

// withHandlerWrap wraps the service's handler, outside of everything else.
func withHandlerWrap(f func(http.Handler) http.Handler) runOption {
	return func(h *runHooks) { h.wrap = f }
}

// newRunHooks applies opts; nil ones are ignored.
func newRunHooks(opts []runOption) runHooks {
	var h runHooks
	for _, o := range opts {
		if o != nil {
			o(&h)
		}
	}
	return h
}

// run builds the service from the environment, serves until ctx is done,
// then drains in-flight requests and returns nil. The listen address goes
// to stderr; stdout carries only JSON log lines.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, opts ...runOption) error {
	hooks := newRunHooks(opts)
	if done, err := kit.Args("catalog", args, stdout, usage); done {
		return err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	prices, err := parsePrices(defaultPricesJSON)
	if err != nil {
		return fmt.Errorf("the embedded prices.json: %w", err)
	}

	// Log lines and audit events never make a request wait for stdout.
	out, err := kit.NewStdout(stdout)
	if err != nil {
		return err
	}
	defer out.Close() // on the early ways out; the normal one reports
	log, audit := newLogging(out, cfg.logLevel)
	auth := kit.Auth{Issuer: cfg.issuer, JWKSURL: cfg.jwksURL, Audience: cfg.audience, Mapping: cfg.mapping}
	v, err := auth.NewVerifier(ctx, log)
	if err != nil {
		return fmt.Errorf("token verifier for AUTH_ISSUER %s: %w", cfg.issuer, err)
	}
	defer v.Close()

	srv, err := newServer(prices, v, log, audit, hooks)
	if err != nil {
		return err
	}
	ln, err := kit.Listen(cfg.addr)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	if _, err := fmt.Fprintf(stderr, "listening on http://%s\n", addr); err != nil {
		ln.Close()
		return err
	}
	log.Info("catalog service started", "addr", addr, "issuer", cfg.issuer, "items", len(prices.base))
	if err := kit.Serve(ctx, srv, ln, log, "catalog", hooks.ready); err != nil {
		return err
	}
	log.Info("catalog service stopped")
	if err := out.Close(); err != nil {
		return fmt.Errorf("log lines: %w", err)
	}
	return nil
}

// newLogging returns the service's logger, JSON lines on out's log stream
// at level and above, each naming the service, and its auditor, on out's
// audit stream: refused tokens, marked log_type=audit, whatever LOG_LEVEL
// says.
func newLogging(out *kit.Stdout, level slog.Level) (*slog.Logger, *logging.Auditor) {
	handler := func(w io.Writer) *logging.Handler {
		// The JSON handler writes whatever logging.Handler lets through:
		// the level is decided there, per tenant if need be.
		jsonLines := logging.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
		return logging.NewHandler(jsonLines,
			logging.WithLevels(logging.NewLevels(level)),
			logging.WithAttrs(slog.String("service", "catalog")),
		)
	}
	return slog.New(handler(out.Log)), logging.NewAuditor(handler(out.Audit))
}

// newServer returns the server of the catalog, with the test hooks.
func newServer(prices *priceList, v *authz.Verifier, log *slog.Logger, audit *logging.Auditor, hooks runHooks) (*http.Server, error) {
	handler, err := newHandler(prices, v, log, audit)
	if err != nil {
		return nil, err
	}
	if hooks.wrap != nil {
		handler = hooks.wrap(handler)
	}
	return kit.NewServer(handler, log.Handler()), nil
}
