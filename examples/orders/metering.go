package main

import (
	"fmt"
	"io"
	"log/slog"

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
)

// meters are the meters the service declares: those of meter.Middleware,
// per route, and the orders placed.
var meters = append(meter.HTTPMeters(),
	meter.Meter{Name: meterOrdersCreated, Unit: meter.UnitCount})

// newRecorder builds the usage recorder of cfg: records appended to
// METER_FILE as JSON lines, with what cannot be written at shutdown kept
// in METER_FILE.spool for the next start; or, without METER_FILE,
// CloudWatch EMF lines on emf, for the awslogs driver to turn into
// metrics. closeSink closes the sink once the recorder is shut down; sink
// describes it for the start line and the banner.
func newRecorder(cfg config, emf io.Writer, log *slog.Logger) (rec *meter.Recorder, closeSink func() error, sink string, _ error) {
	opts := []meter.Option{meter.WithMeters(meters...), meter.WithLogger(log)}
	var s meter.Sink
	closeSink = func() error { return nil }
	if cfg.meterFile != "" {
		jl, err := meter.OpenJSONLines(cfg.meterFile)
		if err != nil {
			return nil, nil, "", fmt.Errorf("METER_FILE %s: %w", cfg.meterFile, err)
		}
		s, closeSink, sink = jl, jl.Close, "file"
		opts = append(opts, meter.WithSpool(cfg.meterFile+spoolSuffix))
	} else {
		e, err := meter.NewEMF(emf, emfNamespace)
		if err != nil {
			return nil, nil, "", err // unreachable: the namespace is set
		}
		s, sink = e, "emf"
	}
	rec, err := meter.New(meterService, s, opts...)
	if err != nil {
		closeSink()
		if cfg.meterFile != "" {
			return nil, nil, "", fmt.Errorf("METER_FILE %s: %w", cfg.meterFile, err)
		}
		return nil, nil, "", err
	}
	return rec, closeSink, sink, nil
}
