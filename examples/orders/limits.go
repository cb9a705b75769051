package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
	"github.com/tenancykit/tenancy/throttle/redisstore"
)

// defaultTiersJSON are the limits per tier when TIERS_FILE is unset, in the
// format of a TIERS_FILE: copy it to start one.
//
//go:embed tiers.json
var defaultTiersJSON []byte

// tiers are the plans the service sells; authz accepts the same ones in the
// tier claim by default.
var tiers = tenant.DefaultTiers

// defaultTierLimits decodes the embedded tiers.json.
func defaultTierLimits() map[string]throttle.Limits {
	lim, err := throttle.DecodeLimits(bytes.NewReader(defaultTiersJSON))
	if err != nil {
		panic("orders: the embedded tiers.json: " + err.Error()) // a test decodes it
	}
	return lim
}

// readLimitsFile decodes the limits file at path, for the variable name.
// The error names both: "TIERS_FILE tiers.json: no such file or
// directory".
func readLimitsFile(name, path string) (map[string]throttle.Limits, error) {
	f, err := os.Open(path)
	if err != nil {
		if pe := new(fs.PathError); errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		return nil, fmt.Errorf("%s %s: %w", name, path, err)
	}
	defer f.Close()
	lim, err := throttle.DecodeLimits(f)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", name, path, err)
	}
	return lim, nil
}

// checkRedisURL parses REDIS_URL as the service will. Its error shows the
// URL redacted, or not at all, never with its password.
func checkRedisURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		if ue := new(url.Error); errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("REDIS_URL: %v; want redis://[user:password@]host:port/db", err)
	}
	if _, err := redis.ParseURL(s); err != nil {
		if ue := new(url.Error); errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("REDIS_URL %q: %v; want redis://[user:password@]host:port/db", u.Redacted(), err)
	}
	return nil
}

// newLimiter builds the throttle from cfg: limits by tier and by tenant,
// kept in process, or in Redis when REDIS_URL is set so that every replica
// spends from the same budget. rdb is then the Redis client, for the caller
// to close once the server no longer serves requests; nil otherwise.
func newLimiter(cfg config, log *slog.Logger) (_ *throttle.Limiter, rdb *redis.Client, _ error) {
	opts := []throttle.Option{throttle.WithOverrides(cfg.overrides)}
	if cfg.redisURL != "" {
		ropts, err := redis.ParseURL(cfg.redisURL)
		if err != nil {
			return nil, nil, checkRedisURL(cfg.redisURL) // the same error, without the URL's password
		}
		// Without it a slow Redis would hold requests for go-redis's own
		// read timeout instead of redisstore's.
		ropts.ContextTimeoutEnabled = true
		rdb = redis.NewClient(ropts)
		// Without THROTTLE_REPLICAS (0) the replicas count themselves.
		store, err := redisstore.New(rdb, redisstore.WithLogger(log), redisstore.WithReplicas(cfg.replicas))
		if err != nil {
			rdb.Close()
			return nil, nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		// Connect and load the scripts now, so the first requests do not
		// spend redisstore's timeout on it. Redis being away is no reason
		// not to start: the store falls back by each tier's policy.
		wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := store.Warm(wctx); err != nil {
			log.Warn("Redis is not reachable yet; limits follow each tier's failure policy until it is", "error", err.Error())
		}
		cancel()
		opts = append(opts, throttle.WithStore(store))
	}
	l, err := throttle.New(tiers, cfg.tierLimits, opts...)
	if err != nil {
		if rdb != nil {
			rdb.Close()
		}
		if cfg.tiersFile == "" {
			return nil, nil, fmt.Errorf("the built-in tier limits: %w", err)
		}
		// loadConfig has checked the overrides' tenant IDs, and
		// DecodeLimits their limits, so the tiers file is at fault.
		return nil, nil, fmt.Errorf("TIERS_FILE %s: %w", cfg.tiersFile, err)
	}
	return l, rdb, nil
}

// describeLimits writes limits on one line for people:
// "5 requests/s, burst 10, 10000/day, 4 in flight".
func describeLimits(l throttle.Limits) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s requests/s, burst %d", strconv.FormatFloat(l.Rate, 'f', -1, 64), l.Burst)
	for _, q := range l.Quotas {
		fmt.Fprintf(&b, ", %d/%s", q.Limit, q.Period)
	}
	if l.MaxConcurrent > 0 {
		fmt.Fprintf(&b, ", %d in flight", l.MaxConcurrent)
	}
	return b.String()
}
