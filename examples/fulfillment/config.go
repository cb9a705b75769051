package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/examples/internal/awskit"
	"github.com/tenancykit/tenancy/examples/internal/kit"
	"github.com/tenancykit/tenancy/throttle"
)

// Defaults of the configuration, in one place: those of examples/orders
// where the two must agree.
const (
	defaultAddr     = "127.0.0.1:8090"
	defaultRedisURL = "redis://127.0.0.1:6379/0"
	defaultStream   = "order-events"
	defaultGroup    = "fulfillment"
	// defaultCheckpointTable is the DynamoDB table of the Kinesis
	// checkpoints, with DYNAMODB_ENDPOINT.
	defaultCheckpointTable = "fulfillment-checkpoints"
	defaultStampIssuer     = "https://orders.example"
	defaultJWKSURL         = "http://127.0.0.1:8080/.well-known/jwks.json"
	// destination is the name the stamps must be made for: orders stamps
	// its events with stamp.WithDestination("fulfillment").
	destination = "fulfillment"
	// defaultWorkers is how many orders are fulfilled at once; the
	// consumer hands over 10 × as many messages by default, so that the
	// fair share defers a tenant's backlog and reads past it.
	defaultWorkers     = 8
	concurrencyPerWork = 10
	maxWorkers         = 1024
	maxConcurrency     = 16384
)

// defaultTiersJSON are the limits per tier of the messages a tenant may
// have handled, when TIERS_FILE is unset.
//
//go:embed tiers.json
var defaultTiersJSON []byte

// config is the worker's configuration, read from the environment by
// [loadConfig].
type config struct {
	addr       string // ADDR: where /healthz is served
	events     string // ORDER_EVENTS: eventsRedis or eventsKinesis
	redisURL   string // REDIS_URL
	stream     string // ORDER_EVENTS_STREAM
	group      string // CONSUMER_GROUP; with Kinesis, the prefix of the checkpoints
	consumer   string // CONSUMER_NAME; Redis only
	deadLetter string // DEAD_LETTER_STREAM; defaulted by checkEvents
	// kinesisEndpoint is the Kinesis API's URL (KINESIS_ENDPOINT), for
	// kinesalite; empty means AWS's own endpoint.
	kinesisEndpoint string
	// dynamoEndpoint is the DynamoDB API's URL of the checkpoints
	// (DYNAMODB_ENDPOINT), for dynalite; empty means AWS's own endpoint.
	dynamoEndpoint string
	// checkpointTable is the DynamoDB table of the Kinesis checkpoints
	// (CHECKPOINT_TABLE); empty means checkpoints in memory. With
	// dynamoEndpoint it defaults to defaultCheckpointTable.
	checkpointTable string
	stampIssuer     string // ORDERS_STAMP_ISSUER: orders' STAMP_ISSUER
	jwksURL         string // ORDERS_JWKS_URL: where orders serves its stamp keys
	tiersFile       string // TIERS_FILE; empty: the embedded tiers.json
	tierLimits      map[string]throttle.Limits
	meterFile       string // METER_FILE; empty: EMF lines on stdout
	logLevel        slog.Level
	workers         int // WORKERS: orders fulfilled at once, shared among tenants
	concurrency     int // CONSUMER_CONCURRENCY: messages handed to the stack at once
}

// loadConfig reads the configuration through getenv (os.Getenv in main).
// Every problem is reported, each naming its variable.
func loadConfig(getenv func(string) string) (config, error) {
	env := kit.NewEnv(getenv)
	c := config{
		addr:            env.Get("ADDR", defaultAddr),
		events:          env.Get("ORDER_EVENTS", ""),
		redisURL:        env.Get("REDIS_URL", ""),
		stream:          env.Get("ORDER_EVENTS_STREAM", defaultStream),
		group:           env.Get("CONSUMER_GROUP", defaultGroup),
		consumer:        env.Get("CONSUMER_NAME", ""),
		deadLetter:      env.Get("DEAD_LETTER_STREAM", ""),
		kinesisEndpoint: env.Get("KINESIS_ENDPOINT", ""),
		dynamoEndpoint:  env.Get("DYNAMODB_ENDPOINT", ""),
		checkpointTable: env.Get("CHECKPOINT_TABLE", ""),
		stampIssuer:     env.Get("ORDERS_STAMP_ISSUER", defaultStampIssuer),
		jwksURL:         env.Get("ORDERS_JWKS_URL", defaultJWKSURL),
		tiersFile:       env.Get("TIERS_FILE", ""),
		meterFile:       env.Get("METER_FILE", ""),
	}
	if err := kit.CheckHostPort(c.addr); err != nil {
		env.Fail("ADDR %q: %v", c.addr, err)
	}
	c.checkEvents(env)
	if err := kit.CheckURL(c.stampIssuer); err != nil {
		env.Fail("ORDERS_STAMP_ISSUER %q: %v (orders' STAMP_ISSUER)", c.stampIssuer, err)
	}
	if err := kit.CheckURL(c.jwksURL); err != nil {
		env.Fail("ORDERS_JWKS_URL %q: %v (orders serves its keys at /.well-known/jwks.json)", c.jwksURL, err)
	}
	lim, err := readTiers(c.tiersFile)
	if err != nil {
		env.Add(err)
	}
	c.tierLimits = lim
	if s := env.Get("LOG_LEVEL", ""); s != "" {
		l, ok := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[strings.ToLower(s)]
		if !ok {
			env.Fail("LOG_LEVEL %q: want debug, info, warn or error", s)
		}
		c.logLevel = l
	}
	c.workers = envInt(env, "WORKERS", defaultWorkers, 1, maxWorkers)
	if c.events == eventsRedis {
		c.concurrency = envInt(env, "CONSUMER_CONCURRENCY", concurrencyPerWork*c.workers, c.workers, maxConcurrency)
	}
	return c, env.Err()
}

// The transports of the order events (ORDER_EVENTS), those of orders'
// ORDER_EVENTS that another process can read.
const (
	eventsRedis   = "redis"
	eventsKinesis = "kinesis"
	eventsMemory  = "memory" // orders' own queue, refused here
)

// checkEvents checks where the order events are read, with orders' rules:
// ORDER_EVENTS says it; unset, it is kinesis with KINESIS_ENDPOINT, else
// redis (REDIS_URL, or its default). A setting the chosen transport does
// not use is refused rather than ignored, as orders refuses one: a worker
// that silently read elsewhere would leave the orders unfulfilled.
func (c *config) checkEvents(env *kit.Env) {
	if c.kinesisEndpoint != "" {
		if err := kit.CheckURL(c.kinesisEndpoint); err != nil {
			env.Fail("KINESIS_ENDPOINT %q: %v", c.kinesisEndpoint, err)
		}
	}
	switch c.events {
	case "":
		c.events = eventsRedis
		if c.kinesisEndpoint != "" {
			c.events = eventsKinesis
		}
	case eventsRedis, eventsKinesis:
	case eventsMemory:
		env.Fail("ORDER_EVENTS is memory: orders' queue in memory lives in its process, where nothing else reads it; run orders and the worker with ORDER_EVENTS redis or kinesis")
		return
	default:
		env.Fail("ORDER_EVENTS %q: want redis or kinesis, as orders'", c.events)
		return
	}
	if c.kinesisEndpoint != "" && c.events != eventsKinesis {
		env.Fail("KINESIS_ENDPOINT is set but ORDER_EVENTS is %s: the endpoint serves only the order events; unset it, or set ORDER_EVENTS=kinesis", c.events)
	}
	if c.events == eventsKinesis {
		c.checkKinesis(env)
		return
	}
	for _, name := range []string{"DYNAMODB_ENDPOINT", "CHECKPOINT_TABLE"} {
		if env.Raw(name) != "" {
			env.Fail("%s is set but ORDER_EVENTS is redis: it serves only the checkpoints of a Kinesis stream; unset it, or set ORDER_EVENTS=kinesis", name)
		}
	}
	if c.redisURL == "" {
		c.redisURL = defaultRedisURL
	}
	if _, err := redis.ParseURL(c.redisURL); err != nil {
		shown := "(unparsable)"
		if u, perr := url.Parse(c.redisURL); perr == nil {
			shown = u.Redacted()
		}
		env.Fail("REDIS_URL %s: %v; want redis://[user:password@]host:port/db", shown, unwrapURLError(err))
	}
	if c.consumer == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "fulfillment"
		}
		c.consumer = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.deadLetter == "" {
		c.deadLetter = c.stream + ":dead"
	}
}

// checkKinesis checks the settings of ORDER_EVENTS=kinesis: the stream
// names, the checkpoints, and no setting of the Redis consumer.
func (c *config) checkKinesis(env *kit.Env) {
	for _, v := range []struct{ name, why string }{
		{"REDIS_URL", "the worker reads Redis only for ORDER_EVENTS=redis"},
		{"CONSUMER_NAME", "a Kinesis consumer reads every shard alone, without a group: run one worker per stream"},
		{"CONSUMER_CONCURRENCY", "a Kinesis consumer handles one record per shard at a time"},
	} {
		if env.Raw(v.name) != "" {
			env.Fail("%s is set but ORDER_EVENTS is kinesis: %s; unset it", v.name, v.why)
		}
	}
	if err := awskit.CheckStreamName(c.stream); err != nil {
		env.Fail("ORDER_EVENTS_STREAM %q: %v", c.stream, err)
	}
	if c.deadLetter == "" {
		c.deadLetter = c.stream + "-dead"
	}
	if err := awskit.CheckStreamName(c.deadLetter); err != nil {
		env.Fail("DEAD_LETTER_STREAM %q: %v", c.deadLetter, err)
	} else if c.deadLetter == c.stream {
		env.Fail("DEAD_LETTER_STREAM %q is ORDER_EVENTS_STREAM: a dead letter written back to its stream would come back as a new message", c.deadLetter)
	}
	if c.dynamoEndpoint != "" {
		if err := kit.CheckURL(c.dynamoEndpoint); err != nil {
			env.Fail("DYNAMODB_ENDPOINT %q: %v", c.dynamoEndpoint, err)
		}
		if c.checkpointTable == "" {
			c.checkpointTable = defaultCheckpointTable
		}
	}
	if c.checkpointTable != "" && !tableName.MatchString(c.checkpointTable) {
		env.Fail("CHECKPOINT_TABLE %q: a DynamoDB table name is 3 to 255 letters, digits, '_', '-' or '.'", c.checkpointTable)
	}
	if strings.Contains(c.group, "/") || c.group == "" {
		env.Fail("CONSUMER_GROUP %q: with Kinesis it names the checkpoints (CONSUMER_GROUP/ORDER_EVENTS_STREAM): want a name without '/'", c.group)
	}
}

// tableName is DynamoDB's rule for table names.
var tableName = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// checkpointPrefix is the prefix of the worker's checkpoints in
// CHECKPOINT_TABLE: the consuming application and the stream, so that one
// table serves several.
func (c config) checkpointPrefix() string { return c.group + "/" + c.stream }

// envInt reads the integer variable name, from lo to hi, def when unset.
func envInt(env *kit.Env, name string, def, lo, hi int) int {
	s := env.Get(name, "")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		env.Fail("%s %q: want a whole number from %d to %d", name, s, lo, hi)
		return def
	}
	return n
}

// readTiers decodes the limits per tier of path, or the embedded ones.
func readTiers(path string) (map[string]throttle.Limits, error) {
	if path == "" {
		lim, err := throttle.DecodeLimits(bytes.NewReader(defaultTiersJSON))
		if err != nil {
			panic("fulfillment: the embedded tiers.json: " + err.Error()) // a test decodes it
		}
		return lim, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if pe := new(fs.PathError); errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("TIERS_FILE %s: %w", path, err)
	}
	lim, err := throttle.DecodeLimits(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("TIERS_FILE %s: %w", path, err)
	}
	return lim, nil
}

// unwrapURLError drops the URL from err, which may hold a password.
func unwrapURLError(err error) error {
	if ue := new(url.Error); errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
