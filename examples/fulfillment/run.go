package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/examples/internal/kit"
	"github.com/tenancykit/tenancy/logging"
	"github.com/tenancykit/tenancy/message"
	"github.com/tenancykit/tenancy/message/redisstream"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/meter"
	"github.com/tenancykit/tenancy/tenant"
	"github.com/tenancykit/tenancy/throttle"
)

const usage = `fulfillment: fulfils the orders of examples/orders (see examples/fulfillment/README.md)

It takes no arguments; it is configured by environment variables:

  ADDR                 where GET /healthz is served (default 127.0.0.1:8090; port 0 picks one)
  REDIS_URL            redis://[user:password@]host:port/db of the stream
                       (default redis://127.0.0.1:6379/0)
  ORDER_EVENTS_STREAM  the stream orders publishes to (default order-events)
  CONSUMER_GROUP       the consumer group (default fulfillment)
  CONSUMER_NAME        this consumer's name in the group (default hostname-pid)
  DEAD_LETTER_STREAM   where refused messages go, with the reason
                       (default ORDER_EVENTS_STREAM + ":dead")
  ORDERS_STAMP_ISSUER  orders' STAMP_ISSUER (default https://orders.example)
  ORDERS_JWKS_URL      orders' stamp keys
                       (default http://127.0.0.1:8080/.well-known/jwks.json)
  TIERS_FILE           JSON file of the messages a tenant may have handled, per
                       tier (default: basic 5/s burst 10, standard 50/100,
                       premium 500/1000, platinum 2000/4000)
  METER_FILE           usage records appended as JSON lines (default: CloudWatch
                       EMF lines on stdout)
  LOG_LEVEL            debug, info, warn or error (default info)
  WORKERS              orders fulfilled at once, shared among the tenants with
                       messages waiting (default 8)
  CONSUMER_CONCURRENCY messages read and handed to the stack at once; those
                       beyond the workers and their waiting line are deferred
                       (default 10 × WORKERS)
`

// Shutdown bounds.
const (
	// meterShutdownTimeout bounds the delivery of usage records at
	// shutdown; a second signal cuts it short.
	meterShutdownTimeout = 5 * time.Second
	// startTimeout bounds the first fetch of orders' keys and the
	// creation of the consumer group.
	startTimeout = 10 * time.Second
)

// meters are those of the message stack and the orders fulfilled.
var meters = append(meter.MessageMeters(), meter.Meter{Name: meterOrdersFulfilled, Unit: meter.UnitCount})

// runOption is a hook for tests; the worker itself runs without any.
type runOption func(*runHooks)

type runHooks struct {
	ready func(addr string) // /healthz is served on addr, and the consumer reads
	clock func() time.Time  // the time of the verifier, the throttle and the consumer
	block time.Duration     // how long one read waits for new entries
	wrap  func(message.Handler) message.Handler
}

// withReady calls f with the bound address once the worker serves
// /healthz and consumes.
func withReady(f func(addr string)) runOption { return func(h *runHooks) { h.ready = f } }

// withClock sets the time of the stamp verifier, the throttle and the
// consumer's due times, so that a test moves it instead of waiting.
func withClock(now func() time.Time) runOption { return func(h *runHooks) { h.clock = now } }

// withBlock sets how long one read of the stream waits for new entries,
// which bounds how late a deferred message comes back once due.
func withBlock(d time.Duration) runOption { return func(h *runHooks) { h.block = d } }

// withHandler wraps the fulfiller in wrap, inside the stack: a test holds
// each order there to see which tenant's runs next.
func withHandler(wrap func(message.Handler) message.Handler) runOption {
	return func(h *runHooks) { h.wrap = wrap }
}

// run builds the worker from the environment, consumes until ctx is done,
// then delivers the usage it recorded and returns nil. Human-facing text
// goes to stderr; stdout carries only JSON lines: logs, and the usage
// records in CloudWatch EMF unless METER_FILE is set.
//
// Delivery is at least once: a message in hand when the worker stops is
// settled before it returns; one it read and never settled (a kill -9) is
// claimed by another consumer of the group after redisstream's
// WithClaimAfter (a minute), and a redelivered order is not fulfilled
// twice.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, opts ...runOption) error {
	var hooks runHooks
	for _, o := range opts {
		if o != nil {
			o(&hooks)
		}
	}
	if done, err := kit.Args("fulfillment", args, stdout, usage); done {
		return err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}

	out, err := kit.NewStdout(stdout)
	if err != nil {
		return err
	}
	defer out.Close() // on the early ways out; the normal one reports
	json := logging.NewJSONHandler(out.Log, &slog.HandlerOptions{Level: slog.LevelDebug})
	log := slog.New(logging.NewHandler(json, logging.WithLevels(logging.NewLevels(cfg.logLevel))))
	prevLog := slog.Default()
	slog.SetDefault(log)
	defer slog.SetDefault(prevLog)

	limiter, err := throttle.New(tenant.DefaultTiers, cfg.tierLimits, throttle.WithClock(hooks.clock), throttle.WithName("fulfillment"))
	if err != nil {
		if cfg.tiersFile == "" {
			return fmt.Errorf("the built-in tier limits: %w", err)
		}
		return fmt.Errorf("TIERS_FILE %s: %w", cfg.tiersFile, err)
	}

	rec, closeSink, err := newRecorder(cfg, out)
	if err != nil {
		return err
	}
	delivered := false
	defer func() {
		if !delivered {
			shutdownRecorder(ctx, rec, closeSink)
		}
	}()

	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	verifier, err := stamp.NewVerifier(sctx, cfg.stampIssuer,
		stamp.WithJWKSURL(cfg.jwksURL),
		stamp.ForDestination(destination),
		stamp.WithClock(hooks.clock),
	)
	if err != nil {
		return fmt.Errorf("ORDERS_JWKS_URL %s (is orders running?): %w", cfg.jwksURL, err)
	}
	defer verifier.Close()

	src, err := openSource(sctx, cfg, getenv, hooks, log)
	if err != nil {
		return err
	}
	defer src.close()

	// The workers, shared among the tenants with messages waiting: a
	// tenant's backlog does not hold up the others' orders. Half of what
	// the consumer hands over may wait in line; the other half reads past
	// a backlog.
	fair, err := throttle.NewFairShare(cfg.workers, throttle.WithWaiting(max(cfg.concurrency/2, 1)), throttle.WithFairClock(hooks.clock))
	if err != nil {
		return fmt.Errorf("WORKERS: %w", err)
	}
	// The consumer's stack: message log → meter → stamp → fair share →
	// throttle → the fulfiller.
	stack, err := tenancy.New(
		tenancy.WithAccessLog(log),
		tenancy.WithMeter(rec),
		tenancy.WithMessageTrust(stamp.Trusted(verifier)),
		tenancy.WithMessageFairShare(fair),
		tenancy.WithThrottle(limiter),
	)
	if err != nil {
		return err
	}
	var fulfil message.Handler = newFulfiller(log)
	if hooks.wrap != nil {
		fulfil = hooks.wrap(fulfil)
	}
	worker := stack.WrapMessages(fulfil)

	ln, err := kit.Listen(cfg.addr)
	if err != nil {
		return err
	}
	srv := kit.NewServer(kit.WithHealthz(http.NotFoundHandler()), log.Handler())
	if _, err := fmt.Fprintf(stderr, "consuming %s; refused messages to %s\nlistening on http://%s\n",
		src.describe, cfg.deadLetter, ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	log.Info("fulfillment worker started", append([]any{"addr", ln.Addr().String(), "events", cfg.events, "stream", cfg.stream},
		append(src.logAttrs, "dead_letter_stream", cfg.deadLetter, "stamp_issuer", cfg.stampIssuer, "jwks_url", cfg.jwksURL)...)...)

	consumed := make(chan error, 1)
	go func() { consumed <- src.run(ctx, worker) }()
	serveErr := kit.Serve(ctx, srv, ln, log, "fulfillment", hooks.ready)
	// Run returns once ctx is done, after settling the messages it read.
	consumeErr := <-consumed
	if err := errors.Join(serveErr, consumeErr); err != nil {
		return err
	}

	log.Info("fulfillment worker drained: delivering usage records", "timeout", meterShutdownTimeout.String())
	delivered = true
	if err := shutdownRecorder(ctx, rec, closeSink); err != nil {
		return fmt.Errorf("usage records: %w", err)
	}
	log.Info("fulfillment worker stopped")
	if err := out.Close(); err != nil {
		return fmt.Errorf("log lines: %w", err)
	}
	return nil
}

// source is where the worker reads the order events: a Redis stream as
// one consumer of a group, or a Kinesis stream (ORDER_EVENTS).
type source struct {
	run   func(ctx context.Context, h message.Handler) error
	close func()
	// describe says what is consumed, for the line on stderr; logAttrs,
	// for the log line of the start.
	describe string
	logAttrs []any
}

// openSource returns the consumer of ORDER_EVENTS: the Redis consumer
// group, created when missing, or the Kinesis consumer of [openKinesis].
func openSource(ctx context.Context, cfg config, getenv func(string) string, hooks runHooks, log *slog.Logger) (*source, error) {
	if cfg.events == eventsKinesis {
		k, err := openKinesis(ctx, cfg, getenv, hooks, log)
		if err != nil {
			return nil, err
		}
		attrs := []any{"checkpoints", k.checkpoints}
		where := "checkpoints in memory"
		if cfg.checkpointTable != "" {
			attrs = append(attrs, "checkpoint_table", cfg.checkpointTable, "checkpoint_prefix", cfg.checkpointPrefix())
			where = "checkpoints in DynamoDB table " + cfg.checkpointTable
		}
		if cfg.kinesisEndpoint != "" {
			attrs = append(attrs, "kinesis_endpoint", cfg.kinesisEndpoint)
		}
		return &source{
			run: k.consumer.Run, close: k.close, logAttrs: attrs,
			describe: fmt.Sprintf("Kinesis stream %s, every shard, %s", cfg.stream, where),
		}, nil
	}
	ropts, _ := redis.ParseURL(cfg.redisURL) // checked by loadConfig
	ropts.ContextTimeoutEnabled = true
	rdb := redis.NewClient(ropts)
	consumer, err := redisstream.NewConsumer(ctx, rdb, cfg.stream, cfg.group, cfg.consumer,
		redisstream.WithClock(hooks.clock),
		redisstream.WithBlock(hooks.block),
		redisstream.WithDeadLetterStream(cfg.deadLetter),
		redisstream.WithLogger(log),
		redisstream.WithConcurrency(cfg.concurrency),
	)
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	return &source{
		run: consumer.Run, close: func() { rdb.Close() },
		logAttrs: []any{"group", cfg.group, "consumer", cfg.consumer},
		describe: fmt.Sprintf("Redis stream %s as %s of group %s", cfg.stream, cfg.consumer, cfg.group),
	}, nil
}

// newRecorder returns the usage recorder: JSON lines in METER_FILE, or
// CloudWatch EMF lines on out.
func newRecorder(cfg config, out io.Writer) (*meter.Recorder, func() error, error) {
	var sink meter.Sink
	closeSink := func() error { return nil }
	if cfg.meterFile != "" {
		jl, err := meter.OpenJSONLines(cfg.meterFile)
		if err != nil {
			return nil, nil, fmt.Errorf("METER_FILE %s: %w", cfg.meterFile, err)
		}
		sink, closeSink = jl, jl.Close
	} else {
		emf, err := meter.NewEMF(out, "Tenancy/Fulfillment")
		if err != nil {
			return nil, nil, err
		}
		sink = emf
	}
	rec, err := meter.New("fulfillment", sink, meter.WithMeters(meters...), meter.WithLogger(slog.Default()))
	if err != nil {
		closeSink()
		return nil, nil, err
	}
	return rec, closeSink, nil
}

// shutdownRecorder delivers what was recorded within meterShutdownTimeout,
// or until a second signal, and closes the sink.
func shutdownRecorder(ctx context.Context, rec *meter.Recorder, closeSink func() error) error {
	sctx, cancel := kit.UrgentTimeout(ctx, meterShutdownTimeout)
	defer cancel()
	return errors.Join(rec.Shutdown(sctx), closeSink())
}
