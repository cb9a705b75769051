package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/adapters/tenancylambda"
	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
)

// defaultTier is the tier of a tenant whose claims name none.
const defaultTier = "basic"

// verifierTimeout bounds building the verifier, its JWK Set fetch
// included, at cold start.
const verifierTimeout = 10 * time.Second

// config is what the environment says.
type config struct {
	trustAuthorizer bool
	issuer          string
	audience        string
	jwksURL         string
	meterFile       string
}

// loadConfig reads the environment, reporting the first variable to fix.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		issuer:    getenv("ISSUER"),
		audience:  getenv("AUDIENCE"),
		jwksURL:   getenv("JWKS_URL"),
		meterFile: getenv("METER_FILE"),
	}
	switch v := getenv("TRUST_AUTHORIZER"); v {
	case "1", "true":
		c.trustAuthorizer = true
	case "", "0", "false":
	default:
		return config{}, fmt.Errorf("TRUST_AUTHORIZER=%q: want 1 (trust API Gateway's authorizer) or 0 (verify tokens)", v)
	}
	if !c.trustAuthorizer && (c.issuer == "" || c.audience == "") {
		return config{}, errors.New("ISSUER and AUDIENCE are required to verify tokens (or TRUST_AUTHORIZER=1 to trust API Gateway's authorizer)")
	}
	return c, nil
}

// service is the function: its Lambda handler, the logger of its lines,
// and what Close releases.
type service struct {
	handler *tenancylambda.Handler
	logger  *slog.Logger
	usage   *meter.Recorder
	closers []func() error
}

// serviceOption is a hook for tests; the function itself runs without
// any.
type serviceOption func(*serviceHooks)

type serviceHooks struct {
	httpClient *http.Client // the verifier's, to watch what it fetches
}

// withHTTPClient makes the verifier fetch its keys through hc.
func withHTTPClient(hc *http.Client) serviceOption {
	return func(h *serviceHooks) { h.httpClient = hc }
}

// newService builds the notes service of the environment getenv reads:
//
//	access log → meter → tenant (API Gateway's authorizer, or authz) → notes
//
// Its log lines and, without METER_FILE, its usage records are JSON lines
// on stdout, for CloudWatch Logs. The usage of each invocation is
// delivered before the invocation returns (tenancylambda.WithRecorder).
func newService(ctx context.Context, getenv func(string) string, stdout io.Writer, opts ...serviceOption) (_ *service, err error) {
	var hooks serviceHooks
	for _, o := range opts {
		if o != nil {
			o(&hooks)
		}
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return nil, err
	}
	s := &service{}
	defer func() {
		if err != nil {
			s.Close(ctx)
		}
	}()

	// Logs and usage records share stdout, a whole line at a time.
	out := &lineWriter{w: stdout}
	s.logger = slog.New(logging.NewHandler(logging.NewJSONHandler(out, nil)))

	var sink meter.Sink = meter.NewJSONLines(out)
	if cfg.meterFile != "" {
		f, err := meter.OpenJSONLines(cfg.meterFile)
		if err != nil {
			return nil, fmt.Errorf("METER_FILE: %w", err)
		}
		s.closers = append(s.closers, f.Close)
		sink = f
	}
	// No delivery loop: between invocations the environment is frozen.
	// Without a spool, records a sink refuses stay in memory, are tried
	// again at the next invocation, and are lost with the environment.
	s.usage, err = meter.New("notes", sink,
		meter.WithMeters(meter.HTTPMeters()...),
		meter.WithMeters(meter.Meter{Name: meterNotesCreated, Unit: meter.UnitCount}),
		meter.WithoutLoop(),
		meter.WithLogger(s.logger))
	if err != nil {
		return nil, err
	}

	parts := []tenancy.Option{tenancy.WithAccessLog(s.logger), tenancy.WithMeter(s.usage)}
	if cfg.trustAuthorizer {
		parts = append(parts, tenancy.WithResolver(tenancylambda.Authorizer(authz.Cognito(), nil, tenant.DefaultTiers.MustLookup(defaultTier))))
	} else {
		v, err := newVerifier(ctx, cfg, hooks.httpClient)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, v.Close)
		parts = append(parts, tenancy.WithAuthz(v))
	}
	stack, err := tenancy.New(parts...)
	if err != nil {
		return nil, err
	}
	s.handler, err = tenancylambda.New(stack.Wrap(newNotes().routes()), tenancylambda.WithRecorder(s.usage))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// newVerifier builds the verifier of cfg's issuer. With JWKS_URL it
// fetches the JWK Set and nothing else at cold start; without, it reads
// the issuer's discovery document first.
func newVerifier(ctx context.Context, cfg config, hc *http.Client) (*authz.Verifier, error) {
	ctx, cancel := context.WithTimeout(ctx, verifierTimeout)
	defer cancel()
	opts := []authz.Option{authz.WithAudience(cfg.audience), authz.WithDefaultTier(defaultTier)}
	if cfg.jwksURL != "" {
		opts = append(opts, authz.WithJWKSURL(cfg.jwksURL))
	}
	if hc != nil {
		opts = append(opts, authz.WithHTTPClient(hc))
	}
	return authz.NewVerifier(ctx, cfg.issuer, opts...)
}

// Close delivers the usage still pending and releases what the service
// holds. The function calls it when the environment shuts down.
func (s *service) Close(ctx context.Context) error {
	var errs []error
	if s.usage != nil {
		errs = append(errs, s.usage.Shutdown(ctx))
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}

// lineWriter is a writer shared by loggers and sinks that each write whole
// lines: one Write at a time, so lines never interleave.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
