package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tenancykit/tenancy/examples/internal/kit"
	"github.com/tenancykit/tenancy/message/memqueue"
	"github.com/tenancykit/tenancy/message/redisstream"
	"github.com/tenancykit/tenancy/message/stamp"
	"github.com/tenancykit/tenancy/tenant"
)

// The order events.
const (
	// eventOrderCreated is the type of the event published for each
	// order placed.
	eventOrderCreated = "order.created"
	// eventDestination is the destination the stamps name
	// (stamp.WithDestination): the consumer's stamp.ForDestination.
	eventDestination = "fulfillment"
	// defaultEventsStream is the Redis or Kinesis stream of the events
	// (ORDER_EVENTS_STREAM), and the name of the queue in memory.
	defaultEventsStream = "order-events"
	// defaultStampIssuer names the service in its stamps (STAMP_ISSUER).
	defaultStampIssuer = "https://orders.example"
	// stampJWKSPath is where the service serves its stamp JWK Set, with
	// no token: consumers fetch it (stamp.WithJWKSURL).
	stampJWKSPath = "/.well-known/jwks.json"
	// publishTimeout bounds one attempt to publish an event.
	publishTimeout = 2 * time.Second
	// eventRetryInterval is how often the events kept in the outbox are
	// published again.
	eventRetryInterval = time.Second
	// eventsShutdownTimeout bounds the last attempt to publish the
	// outbox at shutdown; a second signal cuts it short.
	eventsShutdownTimeout = 5 * time.Second
)

// orderEvent is the body of an order.created message.
type orderEvent struct {
	Type  string `json:"type"`
	Order Order  `json:"order"`
}

// eventPublisher sends one message of body with attrs and returns the ID
// its transport gave it. redisstream.Publisher and
// kinesisstream.Publisher are two (the latter takes the partition key from
// ctx's tenant); memoryPublisher adapts memqueue.
type eventPublisher interface {
	Publish(ctx context.Context, body []byte, attrs map[string]string) (string, error)
}

// memoryPublisher publishes to a queue in memory (memqueue): the events
// of ORDER_EVENTS=memory, lost at exit with the orders of the
// memory store.
type memoryPublisher struct{ q *memqueue.Queue }

func (p memoryPublisher) Publish(_ context.Context, body []byte, attrs map[string]string) (string, error) {
	return p.q.Publish(body, attrs), nil
}

// pendingEvent is an event stamped and not yet published.
type pendingEvent struct {
	orderID, tenantID string
	body              []byte
	attrs             map[string]string
}

// orderEvents stamps the event of each order placed and publishes it.
// An event that cannot be published (the transport is down) is kept in
// an outbox, in order, and published again every eventRetryInterval and at
// shutdown: the order was stored, so the client got 201 and must not
// place it again. The outbox is in process memory: what it holds when
// the process dies is lost (see README.md, "Order events").
type orderEvents struct {
	signer    *stamp.Signer
	pub       eventPublisher
	transport string // eventsRedis, eventsKinesis or eventsMemory
	stream    string
	log       *slog.Logger
	closePub  func() // releases the transport's connections; nil for none

	mu      sync.Mutex
	outbox  []pendingEvent
	flushMu sync.Mutex // one flush at a time, so events go out in order

	stop chan struct{}
	done chan struct{}
}

// newOrderEvents returns the events of cfg, to the transport of
// ORDER_EVENTS: the Redis stream on rdb (the client of REDIS_URL, not nil
// then), the Kinesis stream (openKinesis), or a queue in memory. It starts
// the retry of the outbox, at each eventRetryInterval and at each value
// of retry (tests), until close.
func newOrderEvents(ctx context.Context, cfg config, getenv func(string) string, rdb *redis.Client, signer *stamp.Signer, log *slog.Logger, retry <-chan struct{}) (*orderEvents, error) {
	e := &orderEvents{signer: signer, transport: cfg.events, stream: cfg.eventsStream, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	switch cfg.events {
	case eventsRedis:
		if rdb == nil {
			return nil, errors.New("ORDER_EVENTS is redis but there is no Redis client: set REDIS_URL") // unreachable: config checked it
		}
		p, err := redisstream.NewPublisher(rdb, cfg.eventsStream)
		if err != nil {
			return nil, fmt.Errorf("ORDER_EVENTS_STREAM %q: %w", cfg.eventsStream, err)
		}
		e.pub = p
	case eventsKinesis:
		k, err := openKinesis(ctx, cfg, getenv)
		if err != nil {
			return nil, err
		}
		e.pub, e.closePub = k.pub, k.close
	default:
		e.pub, e.transport = memoryPublisher{memqueue.New(cfg.eventsStream)}, eventsMemory
	}
	go e.retryLoop(retry)
	return e, nil
}

// publish stamps the event of o, placed by the request of ctx (its
// verified tenant, its trace), and publishes it, or keeps it in the
// outbox when the transport fails. An error means the event could not
// even be stamped: nothing was kept.
func (e *orderEvents) publish(ctx context.Context, o Order) error {
	body, err := json.Marshal(orderEvent{Type: eventOrderCreated, Order: o})
	if err != nil {
		return fmt.Errorf("order event: %w", err)
	}
	attrs, err := e.signer.Stamp(ctx, body, stamp.WithDestination(eventDestination))
	if err != nil {
		return fmt.Errorf("order event: %w", err)
	}
	ev := pendingEvent{orderID: o.ID, tenantID: o.TenantID, body: body, attrs: attrs}
	e.mu.Lock()
	behind := len(e.outbox) > 0
	if behind { // after those waiting, in order
		e.outbox = append(e.outbox, ev)
	}
	e.mu.Unlock()
	if behind {
		e.log.WarnContext(ctx, "order event kept for retry: earlier events wait", "order_id", o.ID, "stream", e.stream)
		return nil
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	id, err := e.pub.Publish(pctx, body, attrs)
	if err != nil {
		e.mu.Lock()
		e.outbox = append(e.outbox, ev)
		e.mu.Unlock()
		e.log.WarnContext(ctx, "order event kept for retry: publishing failed", "order_id", o.ID, "stream", e.stream, "error", err.Error())
		return nil
	}
	e.log.InfoContext(ctx, "order event published", "order_id", o.ID, "message_id", id, "stream", e.stream)
	return nil
}

// retryLoop flushes the outbox at each tick and each value of retry,
// until close.
func (e *orderEvents) retryLoop(retry <-chan struct{}) {
	defer close(e.done)
	t := time.NewTicker(eventRetryInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		case <-retry:
		}
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		e.flush(ctx)
		cancel()
	}
}

// flush publishes the outbox in order, until it is empty or an attempt
// fails, and returns how many events are left in it.
func (e *orderEvents) flush(ctx context.Context) int {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	for {
		e.mu.Lock()
		if len(e.outbox) == 0 {
			e.mu.Unlock()
			return 0
		}
		ev := e.outbox[0]
		e.mu.Unlock()
		// The request is gone: its tenant, which Kinesis takes as the
		// partition key, goes with the event.
		id, err := e.pub.Publish(tenant.NewContext(ctx, tenant.Tenant{ID: ev.tenantID}), ev.body, ev.attrs)
		if err != nil {
			e.mu.Lock()
			n := len(e.outbox)
			e.mu.Unlock()
			return n
		}
		e.mu.Lock()
		e.outbox = e.outbox[1:]
		e.mu.Unlock()
		e.log.Info("order event published after a retry", "order_id", ev.orderID, "tenant_id", ev.tenantID, "message_id", id, "stream", e.stream)
	}
}

// close stops the retries and publishes what the outbox holds, within
// eventsShutdownTimeout or until a second signal (ctx's kit.Urgent). Each
// event left is logged as lost, and counted in the error.
func (e *orderEvents) close(ctx context.Context) error {
	select {
	case <-e.stop:
		return nil // closed before
	default:
	}
	close(e.stop)
	<-e.done
	if e.closePub != nil {
		defer e.closePub()
	}
	fctx, cancel := kit.UrgentTimeout(ctx, eventsShutdownTimeout)
	defer cancel()
	if e.flush(fctx) == 0 {
		return nil
	}
	e.mu.Lock()
	lost := e.outbox
	e.outbox = nil
	e.mu.Unlock()
	for _, ev := range lost {
		e.log.Error("order event lost: not published by shutdown", "order_id", ev.orderID, "tenant_id", ev.tenantID, "stream", e.stream)
	}
	return fmt.Errorf("%d order events not published to %s %s: their orders were stored, fulfillment never hears of them", len(lost), e.transport, e.stream)
}

// serveJWKS serves the stamp JWK Set, for consumers' stamp.WithJWKSURL.
func (e *orderEvents) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "max-age=300")
	w.Write(e.signer.JWKS())
}

// newStampSigner returns the signer of the order events: the key of
// STAMP_KEY_FILE, or one generated now, which consumers learn from the JWK
// Set at stampJWKSPath. generated reports the latter.
func newStampSigner(cfg config) (_ *stamp.Signer, generated bool, _ error) {
	var key crypto.Signer
	if cfg.stampKeyFile != "" {
		k, err := readStampKey(cfg.stampKeyFile)
		if err != nil {
			return nil, false, err
		}
		key = k
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, false, fmt.Errorf("stamp key: %w", err)
		}
		key, generated = k, true
	}
	kid := cfg.stampKeyID
	if kid == "" {
		k, err := keyID(key)
		if err != nil {
			return nil, false, err
		}
		kid = k
	}
	var opts []stamp.Option
	if cfg.stampMaxAge > 0 {
		opts = append(opts, stamp.WithMaxAge(cfg.stampMaxAge))
	}
	s, err := stamp.NewSigner(cfg.stampIssuer, key, kid, opts...)
	if err != nil {
		if cfg.stampKeyFile != "" {
			return nil, false, fmt.Errorf("STAMP_KEY_FILE %s: %w", cfg.stampKeyFile, err)
		}
		return nil, false, fmt.Errorf("STAMP_ISSUER %q: %w", cfg.stampIssuer, err)
	}
	return s, generated, nil
}

// readStampKey reads the private key of a PEM file: PKCS #8, or SEC 1
// (EC PRIVATE KEY), or PKCS #1 (RSA PRIVATE KEY).
func readStampKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("STAMP_KEY_FILE: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("STAMP_KEY_FILE %s: no PEM block; want a private key such as openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 writes", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("STAMP_KEY_FILE %s: a PEM block of type %q; want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("STAMP_KEY_FILE %s: %w", path, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("STAMP_KEY_FILE %s: a key of type %T cannot sign", path, key)
	}
	return s, nil
}

// keyID names key by its public key: the first 16 hex digits of the
// SHA-256 of its DER encoding, the same at every start with the same key.
func keyID(key crypto.Signer) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", errors.New("stamp key: its public key cannot be encoded: " + err.Error())
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8]), nil
}
