package logging

import (
	"context"
	"log/slog"
	"testing"

	"github.com/tenancykit/tenancy/internal/request"
	"github.com/tenancykit/tenancy/tenant"
)

// TestSchemaKeysArePlain holds the JSON handler's shortcut to its
// condition: the keys it writes without looking for anything to escape
// (jsonLine.field, plainKey) are those of the package's schema — the
// access line's, every field appendContext adds under either naming, and
// slog's time, level and message — and each is plain ASCII that a JSON
// string holds as it is. A key added to the schema with a quote, a
// backslash, a control or a non-ASCII character fails here.
func TestSchemaKeysArePlain(t *testing.T) {
	keys := append([]string{slog.TimeKey, slog.LevelKey, slog.MessageKey}, accessKeys[:]...)
	ctx := tenant.NewContext(context.Background(), tenant.Tenant{
		ID: "acme", Tier: tenant.DefaultTiers.MustLookup("premium"), Subject: "user-7",
	})
	ctx = context.WithValue(ctx, request.RequestIDKey, &request.Info{ID: "req-1", TraceID: [16]byte{1}, SpanID: [8]byte{2}})
	for _, names := range []*fieldNames{snakeNames, otelNames} {
		fields := appendContext(nil, ctx, names)
		if len(fields) != 6 {
			t.Fatalf("appendContext added %d fields, want the 6 of the schema: %v", len(fields), fields)
		}
		for _, a := range fields {
			keys = append(keys, a.Key)
		}
	}
	for _, k := range keys {
		if k == "" || string(appendJSONString(nil, k)) != k {
			t.Errorf("schema key %q is written as it is, but JSON needs it escaped", k)
			continue
		}
		for i := 0; i < len(k); i++ {
			if !plainByte[k[i]] {
				t.Errorf("schema key %q holds %q, which is not plain", k, k[i])
			}
		}
	}
}
