package main

import (
	"errors"
	"log/slog"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/examples/internal/kit"
)

// defaultAddr is where the catalog listens unless ADDR says otherwise: next
// to orders' default 127.0.0.1:8080.
const defaultAddr = "127.0.0.1:8081"

// errNoIssuer is the refusal to start without AUTH_ISSUER. The catalog has
// no development mode: it is called by other services with their callers'
// tokens, so it must verify the issuer they come from.
var errNoIssuer = errors.New("AUTH_ISSUER is required: the catalog is a downstream service and only ever verifies the tokens of a real issuer, the one its callers' tokens come from; it has no development mode. " +
	"For a local run, start orders and set AUTH_ISSUER to the issuer URL its development banner prints, with AUTH_AUDIENCE=orders-dev")

// config is the service's configuration, read from the environment by
// [loadConfig].
type config struct {
	// addr is where the service listens (ADDR).
	addr string
	// issuer is the exact "iss" of accepted tokens (AUTH_ISSUER). Required.
	issuer string
	// jwksURL is where the signing keys are (AUTH_JWKS_URL); empty means
	// OIDC discovery from the issuer.
	jwksURL string
	// audience is the "aud" tokens must name (AUTH_AUDIENCE). Required.
	audience string
	// mapping names the tenant, tier and roles claims (AUTH_*_CLAIM).
	mapping authz.ClaimMapping
	// logLevel is the lowest level logged (LOG_LEVEL).
	logLevel slog.Level
}

// loadConfig reads the configuration through getenv (os.Getenv in main).
// Every problem is reported, each naming its variable.
func loadConfig(getenv func(string) string) (config, error) {
	env := kit.NewEnv(getenv)
	auth := env.Auth()
	c := config{
		addr:     env.Get("ADDR", defaultAddr),
		issuer:   auth.Issuer,
		jwksURL:  auth.JWKSURL,
		audience: auth.Audience,
		mapping:  auth.Mapping,
		logLevel: slog.LevelInfo,
	}
	if s := env.Get("LOG_LEVEL", ""); s != "" {
		// slog's own names: debug, info, warn, error, and offsets such
		// as info+2.
		if err := c.logLevel.UnmarshalText([]byte(s)); err != nil {
			env.Fail("LOG_LEVEL %q: want debug, info, warn or error", s)
		}
	}
	if err := kit.CheckHostPort(c.addr); err != nil {
		env.Fail("ADDR %q: %v", c.addr, err)
	}
	switch {
	case c.issuer == "":
		env.Add(errNoIssuer)
	default:
		if err := kit.CheckURL(c.issuer); err != nil {
			env.Fail("AUTH_ISSUER %q: %v", c.issuer, err)
		}
	}
	if c.audience == "" {
		env.Fail("AUTH_AUDIENCE is required: the audience of the tokens callers forward (orders-dev for the orders development issuer)")
	}
	if c.jwksURL != "" {
		if err := kit.CheckURL(c.jwksURL); err != nil {
			env.Fail("AUTH_JWKS_URL %q: %v", c.jwksURL, err)
		}
	}
	return c, env.Err()
}
