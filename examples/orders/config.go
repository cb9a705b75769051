package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// Defaults of the configuration, in one place.
const (
	defaultAddr          = "127.0.0.1:8080"
	defaultDevIssuerAddr = "127.0.0.1:0"
	defaultDevTokenLife  = 24 * time.Hour
	maxDevTokenLife      = 7 * 24 * time.Hour
	devAudience          = "orders-dev"
)

// config is the service's configuration, read from the environment by
// [loadConfig].
type config struct {
	// addr is where the service listens (ADDR).
	addr string
	// issuer is the exact "iss" of accepted tokens (AUTH_ISSUER). Empty
	// means development mode: an issuer runs in the process.
	issuer string
	// jwksURL is where the signing keys are (AUTH_JWKS_URL); empty means
	// OIDC discovery from the issuer.
	jwksURL string
	// audience is the "aud" tokens must name (AUTH_AUDIENCE).
	audience string
	// mapping names the tenant, tier and roles claims (AUTH_*_CLAIM).
	mapping authz.ClaimMapping
	// tiersFile names the JSON file of limits per tier (TIERS_FILE);
	// empty means the embedded tiers.json.
	tiersFile string
	// tierLimits are the limits per tier name, from tiersFile or the
	// embedded defaults.
	tierLimits map[string]throttle.Limits
	// overridesFile names the JSON file of limits per tenant ID
	// (TENANT_OVERRIDES_FILE); empty means none.
	overridesFile string
	// overrides are the limits of tenants that do not follow their tier.
	overrides map[string]throttle.Limits
	// redisURL is where limits are shared between replicas (REDIS_URL);
	// empty means each process keeps its own.
	redisURL string
	// dev configures the development issuer; zero unless devMode.
	dev devConfig
}

// devConfig configures the in-process issuer of development mode.
type devConfig struct {
	// issuerAddr is where it serves discovery and keys (DEV_ISSUER_ADDR).
	issuerAddr string
	// tokenLifetime is how long the printed tokens are valid
	// (DEV_TOKEN_LIFETIME).
	tokenLifetime time.Duration
}

// devMode reports whether the service runs its own issuer: exactly when no
// AUTH_ISSUER is configured. There is no other switch.
func (c config) devMode() bool { return c.issuer == "" }

// devOnly are the variables that only make sense in development mode.
var devOnly = []string{"DEV_ISSUER_ADDR", "DEV_TOKEN_LIFETIME"}

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
	}
	c.mapping.Tenant = get("AUTH_TENANT_CLAIM", authz.Cognito.Tenant)
	c.mapping.Tier = get("AUTH_TIER_CLAIM", authz.Cognito.Tier)
	c.mapping.Roles = get("AUTH_ROLES_CLAIM", authz.Cognito.Roles)
	c.tiersFile = get("TIERS_FILE", "")
	c.overridesFile = get("TENANT_OVERRIDES_FILE", "")
	c.redisURL = get("REDIS_URL", "")

	c.tierLimits = defaultTierLimits()
	if c.tiersFile != "" {
		lim, err := readLimitsFile("TIERS_FILE", c.tiersFile)
		if err != nil {
			errs = append(errs, err)
		}
		c.tierLimits = lim
	}
	if c.overridesFile != "" {
		lim, err := readLimitsFile("TENANT_OVERRIDES_FILE", c.overridesFile)
		if err != nil {
			errs = append(errs, err)
		}
		for _, id := range sortedNames(lim) {
			if err := tenant.ValidateID(id); err != nil {
				fail("TENANT_OVERRIDES_FILE %s: %q: %v", c.overridesFile, id, err)
			}
		}
		c.overrides = lim
	}
	if c.redisURL != "" {
		if err := checkRedisURL(c.redisURL); err != nil {
			errs = append(errs, err)
		}
	}

	if err := checkHostPort(c.addr); err != nil {
		fail("ADDR %q: %v", c.addr, err)
	}
	if c.issuer != "" {
		if err := checkURL(c.issuer); err != nil {
			fail("AUTH_ISSUER %q: %v", c.issuer, err)
		}
		if c.audience == "" {
			fail("AUTH_AUDIENCE is required when AUTH_ISSUER is set: set it to your API identifier or app client ID")
		}
		if c.jwksURL != "" {
			if err := checkURL(c.jwksURL); err != nil {
				fail("AUTH_JWKS_URL %q: %v", c.jwksURL, err)
			}
		}
		for _, name := range devOnly {
			if getenv(name) != "" {
				fail("%s is a development-mode setting and cannot be combined with AUTH_ISSUER", name)
			}
		}
		return c, errors.Join(errs...)
	}

	// Development mode. Variables that configure a real issuer are refused
	// rather than ignored: a deployment that forgot AUTH_ISSUER must not
	// start with an issuer anyone reading its output can use.
	for _, name := range []string{"AUTH_AUDIENCE", "AUTH_JWKS_URL"} {
		if getenv(name) != "" {
			fail("%s is set but AUTH_ISSUER is not: set AUTH_ISSUER too (without it the service runs in development mode with its own issuer)", name)
		}
	}
	c.dev = devConfig{
		issuerAddr:    get("DEV_ISSUER_ADDR", defaultDevIssuerAddr),
		tokenLifetime: defaultDevTokenLife,
	}
	if err := checkHostPort(c.dev.issuerAddr); err != nil {
		fail("DEV_ISSUER_ADDR %q: %v", c.dev.issuerAddr, err)
	}
	if s := get("DEV_TOKEN_LIFETIME", ""); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Minute || d > maxDevTokenLife {
			fail("DEV_TOKEN_LIFETIME %q: want a duration from 1m to %v, such as 8h", s, maxDevTokenLife)
		}
		c.dev.tokenLifetime = d
	}
	return c, errors.Join(errs...)
}

// sortedNames returns the keys of a limits map in order, so that errors
// come out the same on every run.
func sortedNames(m map[string]throttle.Limits) []string {
	return slices.Sorted(maps.Keys(m))
}

func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port, such as 127.0.0.1:8080 (port 0 picks a free port)")
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
