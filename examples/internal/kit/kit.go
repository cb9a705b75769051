// Package kit is the plumbing the example services share, so that
// each example shows only what is particular to it: reading settings from
// the environment with every mistake named, the token verifier they
// configure alike, /healthz and JSON answers, and serving until the
// context ends, then draining in-flight requests.
package kit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tenancykit/tenancy/authz"
)

// Env reads settings through getenv and collects every problem, each
// naming its variable.
type Env struct {
	getenv func(string) string
	errs   []error
}

// NewEnv returns an Env over getenv (os.Getenv in main).
func NewEnv(getenv func(string) string) *Env { return &Env{getenv: getenv} }

// Get returns the variable name, or def when it is unset or empty. White
// space around a value is a mistake, reported and trimmed.
func (e *Env) Get(name, def string) string {
	v := e.getenv(name)
	if v != strings.TrimSpace(v) {
		e.Fail("%s has leading or trailing white space", name)
		v = strings.TrimSpace(v)
	}
	if v == "" {
		return def
	}
	return v
}

// Raw returns the variable as it is, for telling set from unset.
func (e *Env) Raw(name string) string { return e.getenv(name) }

// Fail records a problem.
func (e *Env) Fail(format string, args ...any) { e.errs = append(e.errs, fmt.Errorf(format, args...)) }

// Add records a problem as it is, for errors callers test with errors.Is.
func (e *Env) Add(err error) { e.errs = append(e.errs, err) }

// Err returns every problem recorded, joined, or nil.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Auth is the token verification every example service configures the
// same way.
type Auth struct {
	Issuer   string             // AUTH_ISSUER
	JWKSURL  string             // AUTH_JWKS_URL; empty: OIDC discovery
	Audience string             // AUTH_AUDIENCE
	Mapping  authz.ClaimMapping // AUTH_TENANT_CLAIM, AUTH_TIER_CLAIM, AUTH_ROLES_CLAIM
}

// Auth reads the AUTH_* variables; the Cognito claim names are the
// defaults. Which are required is the service's to check.
func (e *Env) Auth() Auth {
	a := Auth{
		Issuer:   e.Get("AUTH_ISSUER", ""),
		JWKSURL:  e.Get("AUTH_JWKS_URL", ""),
		Audience: e.Get("AUTH_AUDIENCE", ""),
		Mapping:  authz.Cognito(),
	}
	a.Mapping.Tenant = e.Get("AUTH_TENANT_CLAIM", authz.Cognito().Tenant)
	a.Mapping.Tier = e.Get("AUTH_TIER_CLAIM", authz.Cognito().Tier)
	a.Mapping.Roles = e.Get("AUTH_ROLES_CLAIM", authz.Cognito().Roles)
	return a
}

// NewVerifier returns the verifier of the tokens a.Issuer signs for
// a.Audience, with a.Mapping, its keys from a.JWKSURL or found by OIDC
// discovery. A failed refresh of the keys is logged on log as a warning;
// the keys fetched before stay in use.
func (a Auth) NewVerifier(ctx context.Context, log *slog.Logger) (*authz.Verifier, error) {
	opts := []authz.Option{
		authz.WithAudience(a.Audience),
		authz.WithClaimMapping(a.Mapping),
		authz.WithRefreshErrorHandler(func(err error) {
			log.Warn("JWK Set refresh failed; keeping the keys fetched before", "error", err)
		}),
	}
	if a.JWKSURL != "" {
		opts = append(opts, authz.WithJWKSURL(a.JWKSURL))
	}
	return authz.NewVerifier(ctx, a.Issuer, opts...)
}

// CheckHostPort reports whether addr is a host:port to listen on.
func CheckHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port, such as 127.0.0.1:8080 (port 0 picks a free port)")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return errors.New("the port must be a number from 0 to 65535")
	}
	return nil
}

// CheckURL reports whether s is an absolute http or https URL.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("want an absolute http or https URL")
	}
	return nil
}

// Server limits shared by the examples: WriteTimeout bounds a handler too,
// so it is well above anything their requests need.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 32 << 10 // a token may take 8 KiB of it
	ShutdownTimeout   = 10 * time.Second
)

// NewServer returns an http.Server for h with the limits above, whose own
// errors go to errLog at warning level.
func NewServer(h http.Handler, errLog slog.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(errLog, slog.LevelWarn),
	}
}

// Listen listens on addr, the service's ADDR.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on ADDR %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves srv on ln until ctx ends, then stops accepting connections
// and waits up to ShutdownTimeout for the requests in flight, or until
// [Urgent] of ctx is closed (a second signal), which cuts them off. ready,
// when not nil, hears the bound address once serving has started. It
// returns nil after a clean drain.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger, name string, ready func(addr string)) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info(name+" service stopping: draining in-flight requests", "timeout", ShutdownTimeout.String())
	sctx, cancel := UrgentTimeout(ctx, ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		<-served
		if isUrgent(ctx) {
			return fmt.Errorf("shutdown: told to stop at once (a second signal): requests still running were cut off: %w", err)
		}
		return fmt.Errorf("shutdown: requests still running after %v were cut off: %w", ShutdownTimeout, err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// urgentKey is the context key of the channel [Main] closes at a second
// signal.
type urgentKey struct{}

// WithUrgent returns a copy of ctx in which [Urgent] is urgent: closing it
// tells the service to stop at once, as a second signal does under [Main].
func WithUrgent(ctx context.Context, urgent <-chan struct{}) context.Context {
	return context.WithValue(ctx, urgentKey{}, urgent)
}

// Urgent returns the channel closed when the service is told to stop at
// once: under [Main], at the second SIGINT or SIGTERM. It is nil (never
// closed) when ctx carries none. It stays readable after ctx is done, which
// is when a service needs it: while it drains.
func Urgent(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(urgentKey{}).(<-chan struct{})
	return ch
}

// isUrgent reports whether [Urgent] of ctx is closed.
func isUrgent(ctx context.Context) bool {
	select {
	case <-Urgent(ctx):
		return true
	default:
		return false
	}
}

// UrgentTimeout returns a context, not canceled with ctx, that ends after
// d or once [Urgent] of ctx is closed, whichever comes first: the bound of
// a step of the shutdown that a second signal cuts short.
func UrgentTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	if urgent := Urgent(ctx); urgent != nil {
		go func() {
			select {
			case <-urgent:
				cancel()
			case <-sctx.Done():
			}
		}()
	}
	return sctx, cancel
}

// Main runs a service's run function with a context that ends at the
// first SIGINT or SIGTERM, and exits 1, naming the service, if run fails.
// The second signal closes [Urgent] of that context: [Serve] cuts the
// drain off, and the service saves what it must (orders spools its usage)
// and returns at once. A third signal ends the process at once, as the
// signal's default action does.
func Main(name string, run func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error) {
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	urgent := make(chan struct{})
	ctx, cancel := context.WithCancel(WithUrgent(context.Background(), urgent))
	defer cancel()
	go func() {
		<-sigs
		cancel()
		<-sigs
		close(urgent)
		sig := <-sigs
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		if s, ok := sig.(syscall.Signal); ok {
			syscall.Kill(os.Getpid(), s)
		}
	}()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Args handles the command line of a service configured only by its
// environment: -h prints usage, any other argument is an error. done
// reports that run should return err now.
func Args(name string, args []string, stdout io.Writer, usage string) (done bool, err error) {
	if len(args) < 2 {
		return false, nil
	}
	switch args[1] {
	case "-h", "-help", "--help":
		_, err := io.WriteString(stdout, usage)
		return true, err
	}
	return true, fmt.Errorf("unexpected argument %q: configure the service with environment variables (see %s -h)", args[1], name)
}
