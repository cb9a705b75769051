// Command noisyneighbor shows what tenancy's throttle is for. It runs an
// orders-like service in this process — authz.Middleware, then the
// throttle's middleware, then a handler with a fixed number of workers —
// and sends it two tenants' load over loopback for a bounded time: globex,
// on the basic tier, floods it, while acme, on the premium tier, sends a
// steady trickle. It prints, per tenant, what was sent, admitted, refused
// with 429 or lost, and the latency, and draws the admitted requests per
// second of each tenant over time as an SVG chart.
//
// With the throttle (the default) the flood is cut at the door and acme
// does not notice it. With -throttle=false the flood takes every worker
// and acme's requests queue behind it until they time out. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := run(ctx, os.Args, os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "noisyneighbor:", err)
		os.Exit(1)
	}
}
