package redisstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// The fields of a stream entry.
const (
	fieldBody   = "body"
	attrPrefix  = "attr:" // + the attribute's name
	fieldID     = "id"    // dead letters: the entry ID the message had
	fieldSource = "source"
	fieldReason = "reason"
	fieldCount  = "deliveries"
)

// Publisher adds messages to a stream. It is safe for concurrent use.
type Publisher struct {
	client redis.UniversalClient
	stream string
	maxLen int64
}

// NewPublisher returns a Publisher to stream. It takes [WithMaxLen].
func NewPublisher(client redis.UniversalClient, stream string, opts ...Option) (*Publisher, error) {
	if client == nil || stream == "" {
		return nil, errors.New("redisstream: NewPublisher needs a client and a stream")
	}
	c := newConfig(opts)
	if c.maxLen < 0 {
		return nil, errors.New("redisstream: WithMaxLen needs a positive length")
	}
	return &Publisher{client: client, stream: stream, maxLen: c.maxLen}, nil
}

// Publish adds a message of body with attrs (stamp.Signer.Stamp's, for
// one) and returns its entry ID, the message's ID for consumers.
func (p *Publisher) Publish(ctx context.Context, body []byte, attrs map[string]string) (string, error) {
	args := &redis.XAddArgs{Stream: p.stream, Values: entryValues(body, attrs, nil)}
	if p.maxLen > 0 {
		args.MaxLen, args.Approx = p.maxLen, true
	}
	id, err := p.client.XAdd(ctx, args).Result()
	if err != nil {
		return "", fmt.Errorf("redisstream: XADD %s: %w", p.stream, err)
	}
	return id, nil
}

// entryValues returns the fields of an entry: the body, each attribute,
// then more.
func entryValues(body []byte, attrs map[string]string, more []any) []any {
	v := make([]any, 0, 2+2*len(attrs)+len(more))
	v = append(v, fieldBody, body)
	for k, a := range attrs {
		v = append(v, attrPrefix+k, a)
	}
	return append(v, more...)
}
