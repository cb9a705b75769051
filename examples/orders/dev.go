package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tenancykit/tenancy/authz/authztest"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

// devBannerTitle opens the development-mode banner.
const devBannerTitle = "DEVELOPMENT MODE — tokens are minted by an in-process issuer; never use in production"

// devUser is a user the development banner prints a token for.
type devUser struct {
	envVar, tenant, tier, user string
}

// devUsers are two tenants on different tiers; eve of globex is the one who
// tries to read alice's orders.
var devUsers = []devUser{
	{envVar: "ACME_TOKEN", tenant: "acme", tier: "premium", user: "alice"},
	{envVar: "GLOBEX_TOKEN", tenant: "globex", tier: "basic", user: "eve"},
}

// printDevBanner mints a token for each of devUsers with iss and prints
// them, loudly, with the limits each tenant gets from limiter and curl
// commands for the service at addr.
func printDevBanner(w io.Writer, addr string, iss *authztest.Issuer, dev devConfig, limiter *throttle.Limiter, st stackInfo) error {
	tokens := make([]string, len(devUsers))
	limits := make([]throttle.Limits, len(devUsers))
	for i, u := range devUsers {
		tok, err := iss.Mint(u.tenant, u.tier, authztest.WithSubject(u.user))
		if err != nil {
			return fmt.Errorf("development issuer: mint a token for %s: %w", u.user, err)
		}
		tokens[i] = tok
		t, err := tenant.New(u.tenant, tiers.MustLookup(u.tier))
		if err != nil {
			return fmt.Errorf("development tenant %s: %w", u.tenant, err)
		}
		limits[i] = limiter.LimitsFor(t) // its override, if any, else its tier's
	}
	base := "http://" + clientAddr(addr)
	rule := strings.Repeat("!", 88)

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("")
	p("%s", rule)
	p("!! %s", devBannerTitle)
	p("!! Set AUTH_ISSUER and AUTH_AUDIENCE to verify tokens from your identity provider.")
	p("%s", rule)
	p("")
	p("listening on %s", base)
	p("issuer       %s (audience %s; the tokens below are valid for %s)", iss.URL(), iss.Audience(), shortDuration(dev.tokenLifetime))
	for _, line := range st.describe() {
		p("%s", line)
	}
	p("")
	p("# Paste into a shell, a line at a time or all at once.")
	p("")
	for i, u := range devUsers {
		p("# tenant %s, tier %s, user %s", u.tenant, u.tier, u.user)
		p("#   limits: %s", describeLimits(limits[i]))
		p("export %s=%s", u.envVar, tokens[i])
	}
	p("")
	p("# alice places an order for acme; tenant_id and user_id come from her token")
	p(`ORDER=$(curl -s -X POST %s/orders -H "Authorization: Bearer $ACME_TOKEN" -H 'Content-Type: application/json' -d '{"item":"anvil","quantity":2}'); echo "$ORDER"`, base)
	p(`ORDER_ID=$(echo "$ORDER" | sed -E 's/.*"id":"([^"]+)".*/\1/')`)
	p("")
	p("# alice lists acme's orders and reads hers by ID")
	p(`curl -s %s/orders -H "Authorization: Bearer $ACME_TOKEN"`, base)
	p(`curl -s %s/orders/$ORDER_ID -H "Authorization: Bearer $ACME_TOKEN"`, base)
	p("")
	p("# eve of globex asks for alice's orders. The handler does not check who asks,")
	p("# but the store only reads globex's partition: the list is empty.")
	p(`curl -s %s/users/alice/orders -H "Authorization: Bearer $GLOBEX_TOKEN"`, base)
	p("")
	p("# eve tries alice's order ID: 404, as if it did not exist")
	p(`curl -s %s/orders/$ORDER_ID -H "Authorization: Bearer $GLOBEX_TOKEN"`, base)
	p("")
	globex := limits[1] // eve's tenant, on the lowest tier
	p("# globex may send %d requests at once, then gets 429 Too Many Requests with", globex.Burst)
	p("# Retry-After until its budget refills (%s requests/s); acme is not slowed down", strconv.FormatFloat(globex.Rate, 'f', -1, 64))
	p(`for i in $(seq %d); do curl -s -o /dev/null -w '%%{http_code} ' %s/orders -H "Authorization: Bearer $GLOBEX_TOKEN"; done; echo`, globex.Burst+5, base)
	p("")
	p("# no token: 401 with a problem document; /healthz needs none")
	p(`curl -si %s/orders`, base)
	p(`curl -s %s/healthz`, base)
	p("")
	p("%s", rule)
	p("")
	_, err := io.WriteString(w, b.String())
	return err
}

// stackInfo is what the service runs on, for the banner and the start
// line.
type stackInfo struct {
	cfg    config
	limits string // "memory" or "redis"
	meters string // "emf" or "file"
	store  string // "memory" or "dynamodb"
	// tenantCreds says whether DynamoDB is called with tenant
	// credentials (AWS_TENANT_ROLE_ARN).
	tenantCreds bool
	// events is where order events go: eventsRedis, eventsKinesis or
	// eventsMemory.
	events string
	// stampKeyGenerated says the stamp key was made at start.
	stampKeyGenerated bool
}

// newStackInfo describes what run builds from cfg; meters is the sink of
// the usage records, tenantCreds whether DynamoDB is called with tenant
// credentials.
func newStackInfo(cfg config, meters string, tenantCreds bool) stackInfo {
	info := stackInfo{cfg: cfg, limits: "memory", meters: meters, store: "memory", tenantCreds: tenantCreds}
	if cfg.redisURL != "" { // newLimiter's Redis store
		info.limits = "redis"
	}
	if cfg.dynamo() {
		info.store = "dynamodb"
	}
	return info
}

// describe says where logs, usage records, orders and limits go, one
// line each, and how to change it.
func (s stackInfo) describe() []string {
	lines := []string{fmt.Sprintf("logs         JSON lines on stdout, level %s (LOG_LEVEL)", strings.ToLower(s.cfg.logLevel.String()))}
	if s.meters == "file" {
		lines = append(lines, fmt.Sprintf("meters       usage records as JSON lines in %s, spooled to %s at shutdown if need be", s.cfg.meterFile, s.cfg.meterFile+spoolSuffix))
	} else {
		lines = append(lines, fmt.Sprintf("meters       usage records as CloudWatch EMF lines on stdout, namespace %s (METER_FILE for a file)", emfNamespace))
	}
	if s.store == "dynamodb" {
		where := "AWS"
		if s.cfg.dynamoEndpoint != "" {
			where = s.cfg.dynamoEndpoint
		}
		creds := "the service's own credentials"
		if s.cfg.tenantRoleARN != "" {
			creds = "credentials of " + s.cfg.tenantRoleARN + " per tenant"
		}
		lines = append(lines, fmt.Sprintf("store        DynamoDB table %s at %s, %s", s.cfg.ordersTable, where, creds))
	} else {
		lines = append(lines, "store        in memory, lost at exit (DYNAMODB_ENDPOINT for DynamoDB, such as dynalite)")
	}
	if s.limits == "redis" {
		lines = append(lines, "limits       in Redis, shared by every replica")
	} else {
		lines = append(lines, "limits       in memory, per process (REDIS_URL to share them)")
	}
	if s.cfg.catalogURL != "" {
		lines = append(lines, "catalog      "+s.cfg.catalogURL+" prices each new order")
	} else {
		lines = append(lines, "catalog      none: orders are not priced (CATALOG_URL)")
	}
	switch s.events {
	case eventsRedis:
		lines = append(lines, "events       order.created to the Redis stream "+s.cfg.eventsStream+", stamped for fulfillment")
	case eventsKinesis:
		where := "AWS"
		if s.cfg.kinesisEndpoint != "" {
			where = s.cfg.kinesisEndpoint
		}
		lines = append(lines, "events       order.created to the Kinesis stream "+s.cfg.eventsStream+" at "+where+", stamped for fulfillment")
	default:
		lines = append(lines, "events       order.created kept in a queue in memory, lost at exit (REDIS_URL or KINESIS_ENDPOINT for a stream)")
	}
	key := "the key of " + s.cfg.stampKeyFile
	if s.stampKeyGenerated {
		key = "a key generated at start (STAMP_KEY_FILE to keep one)"
	}
	lines = append(lines, "stamps       issuer "+s.cfg.stampIssuer+", "+key+", public keys at "+stampJWKSPath)
	return lines
}

// shortDuration writes 24h rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// clientAddr turns a listen address into one a client can connect to: an
// unspecified IP (0.0.0.0, ::) becomes the loopback address.
func clientAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsUnspecified() {
		return addr
	}
	if ip.Is4() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return net.JoinHostPort("::1", port)
}
