package main

import (
	"log/slog"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tenancykit/tenancy/authz"
	"github.com/tenancykit/tenancy/examples/internal/awskit"
	"github.com/tenancykit/tenancy/examples/internal/kit"
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
	defaultOrdersTable   = "orders"
	maxReplicas          = 10_000
	maxStampMaxAge       = 7 * 24 * time.Hour
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
	// replicas is how many replicas share the limits in Redis
	// (THROTTLE_REPLICAS); 0 means they count themselves there.
	replicas int
	// dynamoEndpoint is the DynamoDB API's URL (DYNAMODB_ENDPOINT), for
	// dynalite or DynamoDB Local; empty means AWS's own endpoint.
	dynamoEndpoint string
	// ordersTable is the pooled DynamoDB table (ORDERS_TABLE). Empty
	// means the in-memory store; with dynamoEndpoint set it defaults to
	// "orders".
	ordersTable string
	// tenantRoleARN is the role assumed per tenant for DynamoDB
	// (AWS_TENANT_ROLE_ARN); empty means the service's own credentials.
	tenantRoleARN string
	// catalogURL is the catalog service that prices items (CATALOG_URL),
	// without a trailing slash; empty means orders are not priced.
	catalogURL string
	// meterFile is where usage records are appended as JSON lines
	// (METER_FILE); empty means CloudWatch EMF lines on stdout.
	meterFile string
	// meterStateDir is where the spool and the checkpoint of meterFile are
	// kept (METER_STATE_DIR); empty means beside meterFile.
	meterStateDir string
	// events is the transport of the order events (ORDER_EVENTS):
	// eventsRedis, eventsKinesis or eventsMemory, defaulted from
	// KINESIS_ENDPOINT and REDIS_URL.
	events string
	// kinesisEndpoint is the Kinesis API's URL (KINESIS_ENDPOINT), for
	// kinesalite; empty means AWS's own endpoint.
	kinesisEndpoint string
	// eventsStream is the Redis or Kinesis stream the order events go to
	// (ORDER_EVENTS_STREAM), or the name of their queue in memory.
	eventsStream string
	// stampIssuer names the service in the stamps of its events
	// (STAMP_ISSUER), an absolute URL consumers trust by name.
	stampIssuer string
	// stampKeyFile is the PEM file of the key that signs the stamps
	// (STAMP_KEY_FILE); empty means a key generated at start.
	stampKeyFile string
	// stampKeyID is the key ID of that key (STAMP_KEY_ID); empty means
	// one derived from its public key.
	stampKeyID string
	// stampMaxAge is how long a stamp is valid (STAMP_MAX_AGE); 0
	// means stamp.DefaultMaxAge.
	stampMaxAge time.Duration
	// logLevel is the lowest level logged (LOG_LEVEL).
	logLevel slog.Level
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
	env := kit.NewEnv(getenv)
	c := readConfig(env)
	c.loadLimits(env)
	c.checkStore(env)
	c.checkCatalog(env)
	c.checkEvents(env)
	if err := kit.CheckHostPort(c.addr); err != nil {
		env.Fail("ADDR %q: %v", c.addr, err)
	}
	if c.devMode() {
		c.readDevConfig(env)
	} else {
		c.checkIssuer(env)
	}
	return c, env.Err()
}

// readConfig reads every variable but those of development mode, as it
// is: the checks follow.
func readConfig(env *kit.Env) config {
	auth := env.Auth()
	c := config{
		addr:            env.Get("ADDR", defaultAddr),
		issuer:          auth.Issuer,
		jwksURL:         auth.JWKSURL,
		audience:        auth.Audience,
		mapping:         auth.Mapping,
		tiersFile:       env.Get("TIERS_FILE", ""),
		overridesFile:   env.Get("TENANT_OVERRIDES_FILE", ""),
		redisURL:        env.Get("REDIS_URL", ""),
		dynamoEndpoint:  env.Get("DYNAMODB_ENDPOINT", ""),
		ordersTable:     env.Get("ORDERS_TABLE", ""),
		tenantRoleARN:   env.Get("AWS_TENANT_ROLE_ARN", ""),
		catalogURL:      env.Get("CATALOG_URL", ""),
		meterFile:       env.Get("METER_FILE", ""),
		meterStateDir:   env.Get("METER_STATE_DIR", ""),
		events:          env.Get("ORDER_EVENTS", ""),
		kinesisEndpoint: env.Get("KINESIS_ENDPOINT", ""),
		eventsStream:    env.Get("ORDER_EVENTS_STREAM", defaultEventsStream),
		stampIssuer:     env.Get("STAMP_ISSUER", defaultStampIssuer),
		stampKeyFile:    env.Get("STAMP_KEY_FILE", ""),
		stampKeyID:      env.Get("STAMP_KEY_ID", ""),
	}
	c.checkStamps(env)
	if c.meterStateDir != "" && c.meterFile == "" {
		env.Fail("METER_STATE_DIR is set but METER_FILE is not: the spool and checkpoint it holds are METER_FILE's (EMF on stdout keeps none)")
	}
	if s := env.Get("LOG_LEVEL", ""); s != "" {
		l, ok := logLevels[strings.ToLower(s)]
		if !ok {
			env.Fail("LOG_LEVEL %q: want debug, info, warn or error", s)
		}
		c.logLevel = l
	}
	return c
}

// checkStamps checks the settings of the order events' stamps.
func (c *config) checkStamps(env *kit.Env) {
	if err := kit.CheckURL(c.stampIssuer); err != nil {
		env.Fail("STAMP_ISSUER %q: %v (the service's own URL, which consumers name)", c.stampIssuer, err)
	}
	if c.stampKeyID != "" && c.stampKeyFile == "" {
		env.Fail("STAMP_KEY_ID is set but STAMP_KEY_FILE is not: a key generated at start is named by its public key")
	}
	if s := env.Get("STAMP_MAX_AGE", ""); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Minute || d > maxStampMaxAge {
			env.Fail("STAMP_MAX_AGE %q: want a duration from 1m to %v, such as 24h", s, maxStampMaxAge)
		}
		c.stampMaxAge = d
	}
}

// loadLimits reads the limits per tier (TIERS_FILE, else the embedded
// ones) and per tenant (TENANT_OVERRIDES_FILE), and checks REDIS_URL.
func (c *config) loadLimits(env *kit.Env) {
	c.tierLimits = defaultTierLimits()
	if c.tiersFile != "" {
		lim, err := readLimitsFile("TIERS_FILE", c.tiersFile)
		if err != nil {
			env.Add(err)
		}
		c.tierLimits = lim
	}
	if c.overridesFile != "" {
		lim, err := readLimitsFile("TENANT_OVERRIDES_FILE", c.overridesFile)
		if err != nil {
			env.Add(err)
		}
		for _, id := range sortedNames(lim) {
			if err := tenant.ValidateID(id); err != nil {
				env.Fail("TENANT_OVERRIDES_FILE %s: %q: %v", c.overridesFile, id, err)
			}
		}
		c.overrides = lim
	}
	if c.redisURL != "" {
		if err := checkRedisURL(c.redisURL); err != nil {
			env.Add(err)
		}
	}
	if s := env.Get("THROTTLE_REPLICAS", ""); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil || n < 1 || n > maxReplicas:
			env.Fail("THROTTLE_REPLICAS %q: want a whole number from 1 to %d", s, maxReplicas)
		case c.redisURL == "":
			env.Fail("THROTTLE_REPLICAS is set but REDIS_URL is not: without Redis each process keeps limits of its own")
		default:
			c.replicas = n
		}
	}
}

// checkStore checks where the orders are kept: DYNAMODB_ENDPOINT,
// ORDERS_TABLE (defaulted with an endpoint) and AWS_TENANT_ROLE_ARN.
func (c *config) checkStore(env *kit.Env) {
	if c.dynamoEndpoint != "" {
		if err := kit.CheckURL(c.dynamoEndpoint); err != nil {
			env.Fail("DYNAMODB_ENDPOINT %q: %v", c.dynamoEndpoint, err)
		}
		if c.ordersTable == "" {
			c.ordersTable = defaultOrdersTable
		}
	}
	if c.ordersTable != "" && !tableName.MatchString(c.ordersTable) {
		env.Fail("ORDERS_TABLE %q: a DynamoDB table name is 3 to 255 letters, digits, '_', '-' or '.'", c.ordersTable)
	}
	if c.tenantRoleARN != "" {
		if c.ordersTable == "" {
			env.Fail("AWS_TENANT_ROLE_ARN is set but the orders are kept in memory: set ORDERS_TABLE (or DYNAMODB_ENDPOINT) too")
		}
		if !roleARN.MatchString(c.tenantRoleARN) {
			env.Fail("AWS_TENANT_ROLE_ARN %q: want a role ARN, such as arn:aws:iam::123456789012:role/orders-tenant", c.tenantRoleARN)
		}
	}
}

// checkCatalog checks CATALOG_URL, a base URL, and drops its trailing
// slash.
func (c *config) checkCatalog(env *kit.Env) {
	if c.catalogURL == "" {
		return
	}
	if err := kit.CheckURL(c.catalogURL); err != nil {
		env.Fail("CATALOG_URL %q: %v", c.catalogURL, err)
	} else if u, _ := url.Parse(c.catalogURL); u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		env.Fail("CATALOG_URL %q: want the service's base URL, without user, query or fragment", u.Redacted())
	}
	c.catalogURL = strings.TrimRight(c.catalogURL, "/")
}

// The transports of the order events (ORDER_EVENTS).
const (
	eventsRedis   = "redis"
	eventsKinesis = "kinesis"
	eventsMemory  = "memory"
)

// checkEvents checks where the order events go. ORDER_EVENTS says it;
// unset, it is kinesis with KINESIS_ENDPOINT (which serves nothing else),
// else redis with REDIS_URL, else memory. A setting that contradicts it
// is refused rather than ignored: events that silently went elsewhere
// would never reach fulfillment.
func (c *config) checkEvents(env *kit.Env) {
	if c.kinesisEndpoint != "" {
		if err := kit.CheckURL(c.kinesisEndpoint); err != nil {
			env.Fail("KINESIS_ENDPOINT %q: %v", c.kinesisEndpoint, err)
		}
	}
	switch c.events {
	case "":
		switch {
		case c.kinesisEndpoint != "":
			c.events = eventsKinesis
		case c.redisURL != "":
			c.events = eventsRedis
		default:
			c.events = eventsMemory
		}
	case eventsRedis:
		if c.redisURL == "" {
			env.Fail("ORDER_EVENTS is redis but REDIS_URL is not set: set REDIS_URL, or ORDER_EVENTS to kinesis or memory")
		}
	case eventsKinesis, eventsMemory:
	default:
		env.Fail("ORDER_EVENTS %q: want redis, kinesis or memory", c.events)
	}
	if c.kinesisEndpoint != "" && c.events != eventsKinesis {
		env.Fail("KINESIS_ENDPOINT is set but ORDER_EVENTS is %s: the endpoint serves only the order events; unset it, or set ORDER_EVENTS=kinesis", c.events)
	}
	if c.events == eventsKinesis {
		if err := awskit.CheckStreamName(c.eventsStream); err != nil {
			env.Fail("ORDER_EVENTS_STREAM %q: %v", c.eventsStream, err)
		}
	}
}

// checkIssuer checks the settings of a real issuer, and refuses those of
// development mode beside them.
func (c *config) checkIssuer(env *kit.Env) {
	if err := kit.CheckURL(c.issuer); err != nil {
		env.Fail("AUTH_ISSUER %q: %v", c.issuer, err)
	}
	if c.audience == "" {
		env.Fail("AUTH_AUDIENCE is required when AUTH_ISSUER is set: set it to your API identifier or app client ID")
	}
	if c.jwksURL != "" {
		if err := kit.CheckURL(c.jwksURL); err != nil {
			env.Fail("AUTH_JWKS_URL %q: %v", c.jwksURL, err)
		}
	}
	for _, name := range devOnly {
		if env.Raw(name) != "" {
			env.Fail("%s is a development-mode setting and cannot be combined with AUTH_ISSUER", name)
		}
	}
}

// readDevConfig reads the settings of development mode. Variables that
// configure a real issuer are refused rather than ignored: a deployment
// that forgot AUTH_ISSUER must not start with an issuer anyone reading its
// output can use.
func (c *config) readDevConfig(env *kit.Env) {
	for _, name := range []string{"AUTH_AUDIENCE", "AUTH_JWKS_URL"} {
		if env.Raw(name) != "" {
			env.Fail("%s is set but AUTH_ISSUER is not: set AUTH_ISSUER too (without it the service runs in development mode with its own issuer)", name)
		}
	}
	c.dev = devConfig{
		issuerAddr:    env.Get("DEV_ISSUER_ADDR", defaultDevIssuerAddr),
		tokenLifetime: defaultDevTokenLife,
	}
	if err := kit.CheckHostPort(c.dev.issuerAddr); err != nil {
		env.Fail("DEV_ISSUER_ADDR %q: %v", c.dev.issuerAddr, err)
	}
	if s := env.Get("DEV_TOKEN_LIFETIME", ""); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Minute || d > maxDevTokenLife {
			env.Fail("DEV_TOKEN_LIFETIME %q: want a duration from 1m to %v, such as 8h", s, maxDevTokenLife)
		}
		c.dev.tokenLifetime = d
	}
}

// logLevels are the values of LOG_LEVEL.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// tableName is DynamoDB's rule for table names.
var tableName = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// roleARN is the shape of an IAM role ARN, in any partition; awscreds.New
// checks it further.
var roleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/\S+$`)

// dynamo reports whether the orders are kept in DynamoDB.
func (c config) dynamo() bool { return c.ordersTable != "" }

// sortedNames returns the keys of a limits map in order, so that errors
// come out the same on every run.
func sortedNames(m map[string]throttle.Limits) []string {
	return slices.Sorted(maps.Keys(m))
}
