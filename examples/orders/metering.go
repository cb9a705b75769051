package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/tenancykit/tenancy/examples/internal/kit"
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
	// spoolSuffix names the spool file beside METER_FILE (or in
	// METER_STATE_DIR); the checkpoint is the spool's name with
	// checkpointSuffix added.
	spoolSuffix      = ".spool"
	checkpointSuffix = ".checkpoint"
	// deadLetterSuffix names the file, beside the spool, of the records
	// METER_FILE's sink can never take: they wait there with the reason,
	// for someone to look at, and hold up no other.
	deadLetterSuffix = ".deadletter"
	// stateDirSpool names the spool file in METER_STATE_DIR.
	stateDirSpool = "usage.spool"
	// meterShutdownTimeout bounds the delivery of usage records at
	// shutdown; the records are in the spool file before it starts, and
	// what is not delivered by then stays there. A second signal cuts it
	// short.
	meterShutdownTimeout = 5 * time.Second
	// meterCrashBound is what a kill -9 may lose with METER_FILE: the
	// usage of the orders answered in the last meterCrashBound before it.
	// The checkpoint runs every meter.DefaultCheckpointInterval (500 ms);
	// the rest is room for writing and syncing it on a busy disk.
	meterCrashBound = time.Second
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
	spool     string          // "" without METER_FILE
	runCtx    context.Context // run's: a second signal cuts the shutdown short
	done      bool
}

// newRecorder builds the usage recorder of cfg: records appended to
// METER_FILE as JSON lines, durable across a crash: undelivered records
// in a spool file and the open windows in a checkpoint written every
// 500 ms, both beside METER_FILE or in METER_STATE_DIR ([spoolPath]), so
// that a kill -9 loses at most the usage of the last meterCrashBound and
// the next start with the same environment delivers the rest, and records
// the sink can never take go to a dead-letter file beside the spool; or, without
// METER_FILE, CloudWatch EMF lines on emf, for the awslogs driver to turn
// into metrics. ctx is run's, for [kit.Urgent].
func newRecorder(ctx context.Context, cfg config, emf io.Writer, log *slog.Logger) (*usageRecorder, error) {
	opts := []meter.Option{meter.WithMeters(meters...), meter.WithLogger(log)}
	u := &usageRecorder{closeSink: func() error { return nil }, meterFile: cfg.meterFile, runCtx: ctx}
	var s meter.Sink
	if cfg.meterFile != "" {
		jl, err := meter.OpenJSONLines(cfg.meterFile)
		if err != nil {
			return nil, fmt.Errorf("METER_FILE %s: %w", cfg.meterFile, err)
		}
		s, u.closeSink, u.sink = jl, jl.Close, "file"
		u.spool = spoolPath(cfg)
		opts = append(opts, meter.WithSpool(u.spool), meter.WithCheckpoint(meter.DefaultCheckpointInterval),
			meter.WithDeadLetter(u.spool+deadLetterSuffix))
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
		if cfg.meterStateDir != "" {
			return nil, fmt.Errorf("METER_FILE %s, METER_STATE_DIR %s: %w", cfg.meterFile, cfg.meterStateDir, err)
		}
		if cfg.meterFile != "" {
			return nil, fmt.Errorf("METER_FILE %s: %w", cfg.meterFile, err)
		}
		return nil, err
	}
	u.rec = rec
	return u, nil
}

// spoolPath is where the spool of cfg's METER_FILE is: METER_FILE.spool,
// or usage.spool in METER_STATE_DIR, whatever METER_FILE is, so that a
// start with another METER_FILE delivers what the one before left. Its
// checkpoint is beside it, with checkpointSuffix added
// (meter.WithCheckpoint's naming).
func spoolPath(cfg config) string {
	if cfg.meterStateDir == "" {
		return cfg.meterFile + spoolSuffix
	}
	return filepath.Join(cfg.meterStateDir, stateDirSpool)
}

// shutdown writes what was recorded to the spool with METER_FILE, then
// delivers it, within meterShutdownTimeout or until a second signal
// (kit.Urgent), whichever comes first (what is not delivered stays in the
// spool), and closes the sink. Calls after the first do nothing.
func (u *usageRecorder) shutdown() error {
	if u.done {
		return nil
	}
	u.done = true
	ctx, cancel := kit.UrgentTimeout(u.runCtx, meterShutdownTimeout)
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
