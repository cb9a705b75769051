package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/tenancykit/tenancy/authz"
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
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	get := func(name, def string) string {
		v := getenv(name)
		if v != strings.TrimSpace(v) {
			fail("%s has leading or trailing white space", name)
			v = strings.TrimSpace(v)
		}
		if v == "" {
			return def
		}
		return v
	}

	c := config{
		addr:     get("ADDR", defaultAddr),
		issuer:   get("AUTH_ISSUER", ""),
		jwksURL:  get("AUTH_JWKS_URL", ""),
		audience: get("AUTH_AUDIENCE", ""),
		mapping:  authz.Cognito,
		logLevel: slog.LevelInfo,
	}
	c.mapping.Tenant = get("AUTH_TENANT_CLAIM", authz.Cognito.Tenant)
	c.mapping.Tier = get("AUTH_TIER_CLAIM", authz.Cognito.Tier)
	c.mapping.Roles = get("AUTH_ROLES_CLAIM", authz.Cognito.Roles)

	if s := get("LOG_LEVEL", ""); s != "" {
		// slog's own names: debug, info, warn, error, and offsets such
		// as info+2.
		if err := c.logLevel.UnmarshalText([]byte(s)); err != nil {
			fail("LOG_LEVEL %q: want debug, info, warn or error", s)
		}
	}
	if err := checkHostPort(c.addr); err != nil {
		fail("ADDR %q: %v", c.addr, err)
	}
	switch {
	case c.issuer == "":
		errs = append(errs, errNoIssuer)
	default:
		if err := checkURL(c.issuer); err != nil {
			fail("AUTH_ISSUER %q: %v", c.issuer, err)
		}
	}
	if c.audience == "" {
		fail("AUTH_AUDIENCE is required: the audience of the tokens callers forward (orders-dev for the orders development issuer)")
	}
	if c.jwksURL != "" {
		if err := checkURL(c.jwksURL); err != nil {
			fail("AUTH_JWKS_URL %q: %v", c.jwksURL, err)
		}
	}
	return c, errors.Join(errs...)
}

func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port, such as 127.0.0.1:8081 (port 0 picks a free port)")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return errors.New("the port must be a number from 0 to 65535")
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("want an absolute http or https URL")
	}
	return nil
}
