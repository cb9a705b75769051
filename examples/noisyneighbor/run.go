package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// The two clients. The flood is a batch job: patient, and as parallel as
// it is allowed to be. acme's client is interactive: it gives up after
// -timeout (a quarter of a second by default), as a user or the gateway
// would.
const (
	floodInFlight  = 128
	floodTimeout   = 2 * time.Second
	steadyInFlight = 256 // never reached at the allowed rates and timeouts
)

// Bounds of the flags: the load stays small and stops by itself.
const (
	minDuration = 200 * time.Millisecond
	maxDuration = 2 * time.Minute
	maxRate     = 5000
	maxWorkers  = 256
	maxWork     = time.Second
	maxTimeout  = 2 * time.Second
)

// options are the command-line flags.
type options struct {
	duration   time.Duration
	throttle   bool
	svg        string
	floodRate  float64
	steadyRate float64
	workers    int
	work       time.Duration
	timeout    time.Duration
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("noisyneighbor", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send load (200ms to 2m)")
	fs.BoolVar(&o.throttle, "throttle", true, "enforce the tiers' limits with tenancy's throttle")
	fs.StringVar(&o.svg, "svg", "noisyneighbor.svg", `where to write the chart; "" for none`)
	fs.Float64Var(&o.floodRate, "flood", 1000, "requests per second the basic tenant sends")
	fs.Float64Var(&o.steadyRate, "steady", 100, "requests per second the premium tenant sends")
	fs.IntVar(&o.workers, "workers", 4, "requests the service serves at once")
	fs.DurationVar(&o.work, "work", 10*time.Millisecond, "how long each request holds a worker")
	fs.DurationVar(&o.timeout, "timeout", 250*time.Millisecond, "when the premium tenant's client gives up on a request (10ms to 2s)")
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: noisyneighbor [flags]\n\n"+
			"Runs a throttled service in this process, floods it as a basic tenant while a\n"+
			"premium tenant sends a steady rate, and prints what each tenant got.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return o, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if o.duration < minDuration || o.duration > maxDuration {
		errs = append(errs, fmt.Errorf("-duration %v: want %v to %v", o.duration, minDuration, maxDuration))
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"-flood", o.floodRate}, {"-steady", o.steadyRate}} {
		if !(r.v >= 1 && r.v <= maxRate) {
			errs = append(errs, fmt.Errorf("%s %v: want 1 to %d requests per second", r.name, r.v, maxRate))
		}
	}
	if o.workers < 1 || o.workers > maxWorkers {
		errs = append(errs, fmt.Errorf("-workers %d: want 1 to %d", o.workers, maxWorkers))
	}
	if o.work < 0 || o.work > maxWork {
		errs = append(errs, fmt.Errorf("-work %v: want 0 to %v", o.work, maxWork))
	}
	if o.timeout < 10*time.Millisecond || o.timeout > maxTimeout {
		errs = append(errs, fmt.Errorf("-timeout %v: want 10ms to %v", o.timeout, maxTimeout))
	}
	return o, errors.Join(errs...)
}

// run parses args, sends the load, prints the table to stdout, writes the
// chart, and returns what it measured.
func run(ctx context.Context, args []string, stdout io.Writer) (_ *report, err error) {
	if len(args) > 1 && args[1] == "queue" {
		_, err := runQueue(ctx, args[2:], stdout)
		return nil, err
	}
	o, err := parseFlags(args, stdout)
	if err != nil {
		return nil, err
	}
	load := []tenantLoad{
		{tenant: "globex", tier: "basic", rate: o.floodRate, maxInFlight: floodInFlight, timeout: floodTimeout,
			client: fmt.Sprintf("batch client, %d in flight, %v timeout", floodInFlight, floodTimeout)},
		{tenant: "acme", tier: "premium", rate: o.steadyRate, maxInFlight: steadyInFlight, timeout: o.timeout,
			client: fmt.Sprintf("interactive client, %v timeout", o.timeout)},
	}
	st, err := startStack(ctx, load, newWorkers(o.workers, o.work), o.throttle)
	if err != nil {
		return nil, fmt.Errorf("start the service: %w", err)
	}
	defer func() {
		if serr := st.shutdown(); serr != nil {
			err = errors.Join(err, fmt.Errorf("shut the service down: %w", serr))
		}
	}()

	tallies := make([]tally, len(load))
	var requests, senders sync.WaitGroup
	start := time.Now()
	for i, l := range load {
		// A connection pool per tenant, as two customers would have.
		tr := &http.Transport{MaxIdleConnsPerHost: l.maxInFlight}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		senders.Go(func() {
			generate(ctx, start, o.duration, l, client, st.url+"/orders", st.tokens[l.tenant], &tallies[i], &requests)
		})
	}
	senders.Wait()
	requests.Wait() // every request has a timeout
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}

	rep := newReport(o, load, tallies, st.limiter, elapsed)
	if err := rep.print(stdout); err != nil {
		return nil, err
	}
	if o.svg != "" {
		if err := writeChartFile(o.svg, rep.chart); err != nil {
			return nil, err
		}
		if _, err := fmt.Fprintf(stdout, "\nchart: %s\n", o.svg); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// writeChartFile writes the chart chart draws to path.
func writeChartFile(path string, chart func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("-svg: %w", err)
	}
	if err := chart(f); err != nil {
		f.Close()
		return fmt.Errorf("-svg %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("-svg %s: %w", path, err)
	}
	return nil
}
