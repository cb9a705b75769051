package stamp

import (
	"context"
	"errors"
	"time"
)

// ReplayStore remembers the stamps that Verifiers accepted, for every
// replica that shares it, so that a stamp replayed to another replica is
// caught too. Package message/stamp/redisreplay keeps one in Redis.
//
// A Verifier asks its store only about stamps its own replay cache does
// not hold: a redelivery this process saw costs no call.
type ReplayStore interface {
	// Seen records that the stamp jti of source was accepted on the
	// message messageID, to be remembered until expires, unless the
	// stamp was recorded before. It reports whether the message is no
	// replay: true the first time the stamp is seen, and again for the
	// same message ID (a redelivery); false when the stamp was recorded
	// on another message. An error means the store could not tell (it
	// is unreachable, or slower than its timeout): the message is
	// deferred, never accepted unchecked.
	Seen(ctx context.Context, source, jti, messageID string, expires time.Time) (bool, error)
}

// WithReplayStore has a Verifier check, after its own replay cache, with
// a store the replicas share, so that a replay is caught whichever
// replica it reaches. A message whose check the store cannot make is
// deferred (recorded By "stamp" for "replay_unavailable"). Default, also
// for nil: none, the replay cache of the process alone.
func WithReplayStore(s ReplayStore) Option {
	return func(c *config) { c.replayStore = s; c.give("WithReplayStore") }
}

// replayRetry is how long a message waits when its replay check cannot be
// made: the store is away, which is not the message's fault.
const replayRetry = 5 * time.Second

// replayMargin is how much longer than its stamp a store remembers a
// stamp: authz's greatest leeway, so that a stamp a replica still accepts
// (its leeway, a clock behind the store's) is still remembered.
const replayMargin = 5 * time.Minute

// replayUnavailableError is a replay check the store could not make.
type replayUnavailableError struct{ err error }

func (e *replayUnavailableError) Error() string {
	return "stamp: the replay store could not check the stamp: " + e.err.Error()
}

func (e *replayUnavailableError) Unwrap() error { return e.err }

// seen reports whether the stamp jti of source, valid until exp, is no
// replay on message id: from the replay cache, and, for a stamp the cache
// does not hold, from the store.
func (v *Verifier) seen(ctx context.Context, source, jti, id string, exp time.Time) (bool, error) {
	now := v.now()
	if v.store == nil {
		return v.replay.see(source, jti, id, exp, now), nil
	}
	// The cache holds only what the store accepted: it answers alone.
	if first, ok := v.replay.lookup(source, jti, now); ok {
		return first == id, nil
	}
	ok, err := v.store.Seen(ctx, source, jti, id, exp.Add(replayMargin))
	if err != nil {
		return false, &replayUnavailableError{err}
	}
	return ok && v.replay.see(source, jti, id, exp, now), nil
}

// deferral is why and for how long a message whose stamp could not be
// checked waits: its producer's keys, or its replay check.
func deferral(err error) (reason string, after time.Duration) {
	var ru *replayUnavailableError
	if errors.As(err, &ru) {
		return "replay_unavailable", replayRetry
	}
	return "keys_unavailable", keysRetry
}

// lookup returns the message the stamp jti of source was accepted on, if
// the cache holds it and it has not expired.
func (c *replayCache) lookup(source, jti string, now time.Time) (string, bool) {
	key := replayKey{source, jti}
	s := c.shard(key)
	s.mu.Lock()
	e, ok := s.m[key]
	s.mu.Unlock()
	if !ok || e.exp <= now.UnixNano() {
		return "", false
	}
	return e.id, true
}
