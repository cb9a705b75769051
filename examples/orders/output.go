package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/tenancykit/tenancy/examples/internal/kit"
	"github.com/tenancykit/tenancy/logging"
)

// newLogging returns the service's logger, JSON lines on out's log stream
// at level and above, and its auditor, on out's audit stream. Audit events
// (authz refusals, DynamoDB guard refusals) are told apart by log_type
// "audit", and written whatever LOG_LEVEL.
func newLogging(ctx context.Context, out *kit.Stdout, level slog.Level) (*slog.Logger, *logging.Auditor) {
	log := newLogger(out.Log, level)
	// On ECS or Fargate every line also names the cluster, task and
	// container; elsewhere this adds nothing.
	ecs := logging.ECSMetadata(ctx, logging.WithECSWarnings(log))
	if len(ecs) > 0 {
		log = newLogger(out.Log, level, ecs...)
	}
	return log, logging.NewAuditor(newLogger(out.Audit, level, ecs...).Handler())
}

// newLogger returns the service's logger: JSON lines on out, with the
// tenant, request and trace fields of logging.Handler, at level and above,
// and with attrs (ECS metadata) on every line.
func newLogger(out io.Writer, level slog.Level, attrs ...slog.Attr) *slog.Logger {
	// The JSON handler passes everything; logging.Handler decides the
	// level, so that logging.Levels could lower it for one tenant.
	json := logging.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(logging.NewHandler(json, logging.WithLevels(logging.NewLevels(level)), logging.WithAttrs(attrs...)))
}
