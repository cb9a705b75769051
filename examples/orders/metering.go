package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tenancykit/tenancy/meter"
)

// Metering of the service.
const (
	// meterService names the service in every usage record.
	meterService = "orders"
	// emfNamespace is the CloudWatch namespace of the EMF lines.
	emfNamespace = "Tenancy/Orders"
	// meterOrdersCreated counts the orders a tenant placed.
	meterOrdersCreated = "orders.created"
	// spoolSuffix names the spool file beside METER_FILE.
	spoolSuffix = ".spool"
	// meterShutdownTimeout bounds the delivery of usage records at
	// shutdown; what is not delivered by then goes to the spool file.
	meterShutdownTimeout = 5 * time.Second
)

// meters are the meters the service declares: those of meter.Middleware,
// per route, and the orders placed.
var meters = append(meter.HTTPMeters(),
	meter.Meter{Name: meterOrdersCreated, Unit: meter.UnitCount})

// usageRecorder is the service's usage recorder with its sink, built by
// [newRecorder].
type usageRecorder struct {
	rec       *meter.Recorder
	sink      string // "file" or "emf", for the start line and the banner
	closeSink func() error
	meterFile string
	done      bool
}

// newRecorder builds the usage recorder of cfg: records appended to
// METER_FILE as JSON lines, with what cannot be written at shutdown kept
// in METER_FILE.spool for the next start; or, without METER_FILE,
// CloudWatch EMF lines on emf, for the awslogs driver to turn into
// metrics.
func newRecorder(cfg config, emf io.Writer, log *slog.Logger) (*usageRecorder, error) {
	opts := []meter.Option{meter.WithMeters(meters...), meter.WithLogger(log)}
	u := &usageRecorder{closeSink: func() error { return nil }, meterFile: cfg.meterFile}
	var s meter.Sink
	if cfg.meterFile != "" {
		jl, err := meter.OpenJSONLines(cfg.meterFile)
		if err != nil {
			return nil, fmt.Errorf("METER_FILE %s: %w", cfg.meterFile, err)
		}
		s, u.closeSink, u.sink = jl, jl.Close, "file"
		opts = append(opts, meter.WithSpool(cfg.meterFile+spoolSuffix))
	} else {
		e, err := meter.NewEMF(emf, emfNamespace)
		if err != nil {
			return nil, err // unreachable: the namespace is set
		}
		s, u.sink = e, "emf"
	}
	rec, err := meter.New(meterService, s, opts...)
	if err != nil {
		u.closeSink()
		if cfg.meterFile != "" {
			return nil, fmt.Errorf("METER_FILE %s: %w", cfg.meterFile, err)
		}
		return nil, err
	}
	u.rec = rec
	return u, nil
}

// shutdown delivers what was recorded, within meterShutdownTimeout (the
// rest goes to the spool with METER_FILE), and closes the sink. Calls
// after the first do nothing.
func (u *usageRecorder) shutdown() error {
	if u.done {
		return nil
	}
	u.done = true
	ctx, cancel := context.WithTimeout(context.Background(), meterShutdownTimeout)
	defer cancel()
	err := u.rec.Shutdown(ctx)
	if cerr := u.closeSink(); err == nil && cerr != nil {
		err = fmt.Errorf("METER_FILE %s: %w", u.meterFile, cerr)
	}
	return err
}

// shutdownOnError delivers what was recorded when run returns early, and
// logs what could not be: on every way out, the usage of the requests
// served is delivered (run's normal way shuts down after the drain).
func (u *usageRecorder) shutdownOnError(log *slog.Logger) {
	if err := u.shutdown(); err != nil {
		log.Error("usage records lost", "error", err)
	}
}
