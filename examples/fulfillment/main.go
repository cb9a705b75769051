// Command fulfillment is the worker that fulfils the orders of
// examples/orders: it consumes the order.created events orders publishes
// to a Redis stream, as one consumer of a group, through the whole
// consumer stack of tenancy (tenancy.New(...).WrapMessages): the message
// log, the meter, the stamp's trust mode (stamp.Trusted, with the public
// keys orders serves), and the throttle by tier. Each order runs as the
// tenant its stamp proves; a message whose stamp is missing, forged,
// expired, tampered with or replayed never runs as anyone and goes to the
// dead-letter stream with the reason.
//
// It is configured by environment variables with defaults that match
// orders' own: run both with REDIS_URL and it works. See README.md.
package main

import (
	"context"
	"io"

	"github.com/tenancykit/tenancy/examples/internal/kit"
)

// main runs the worker until SIGTERM or SIGINT (kit.Main): the first stops
// it reading, lets the message in hand finish and delivers the usage; the
// second cuts the delivery short and exits at once.
func main() {
	kit.Main("fulfillment", func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		return run(ctx, args, getenv, stdout, stderr)
	})
}
