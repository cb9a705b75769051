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
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/examples/internal/kit"
	"github.com/tenancykit/tenancy/throttle"
)

// Defaults of the configuration, in one place: those of examples/orders
// where the two must agree.
const (
	defaultAddr        = "127.0.0.1:8090"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
	defaultStream      = "order-events"
	defaultGroup       = "fulfillment"
	defaultStampIssuer = "https://orders.example"
	defaultJWKSURL     = "http://127.0.0.1:8080/.well-known/jwks.json"
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
	addr        string // ADDR: where /healthz is served
	redisURL    string // REDIS_URL
	stream      string // ORDER_EVENTS_STREAM
	group       string // CONSUMER_GROUP
	consumer    string // CONSUMER_NAME
	deadLetter  string // DEAD_LETTER_STREAM; empty: stream + ":dead"
	stampIssuer string // ORDERS_STAMP_ISSUER: orders' STAMP_ISSUER
	jwksURL     string // ORDERS_JWKS_URL: where orders serves its stamp keys
	tiersFile   string // TIERS_FILE; empty: the embedded tiers.json
	tierLimits  map[string]throttle.Limits
	meterFile   string // METER_FILE; empty: EMF lines on stdout
	logLevel    slog.Level
	workers     int // WORKERS: orders fulfilled at once, shared among tenants
	concurrency int // CONSUMER_CONCURRENCY: messages handed to the stack at once
}

// loadConfig reads the configuration through getenv (os.Getenv in main).
// Every problem is reported, each naming its variable.
func loadConfig(getenv func(string) string) (config, error) {
	env := kit.NewEnv(getenv)
	c := config{
		addr:        env.Get("ADDR", defaultAddr),
		redisURL:    env.Get("REDIS_URL", defaultRedisURL),
		stream:      env.Get("ORDER_EVENTS_STREAM", defaultStream),
		group:       env.Get("CONSUMER_GROUP", defaultGroup),
		consumer:    env.Get("CONSUMER_NAME", ""),
		deadLetter:  env.Get("DEAD_LETTER_STREAM", ""),
		stampIssuer: env.Get("ORDERS_STAMP_ISSUER", defaultStampIssuer),
		jwksURL:     env.Get("ORDERS_JWKS_URL", defaultJWKSURL),
		tiersFile:   env.Get("TIERS_FILE", ""),
		meterFile:   env.Get("METER_FILE", ""),
	}
	if err := kit.CheckHostPort(c.addr); err != nil {
		env.Fail("ADDR %q: %v", c.addr, err)
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
	c.concurrency = envInt(env, "CONSUMER_CONCURRENCY", concurrencyPerWork*c.workers, c.workers, maxConcurrency)
	return c, env.Err()
}

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
