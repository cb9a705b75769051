package tenancychi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/tenancykit/tenancy"
	"github.com/tenancykit/tenancy/adapters/tenancychi"
	"github.com/tenancykit/tenancy/internal/stacktest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRouter: with the stack in the router's Use, around it, or in front
// of a mounted router, chi's pattern reaches the access log and the meter
// for every request, refused ones included, and the stack sees what the
// handler wrote.
func TestRouter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(t *testing.T, f *stacktest.Fixture) http.Handler
	}{
		{"use", func(t *testing.T, f *stacktest.Fixture) http.Handler {
			r := chi.NewRouter()
			r.Use(newStack(t, r, f))
			r.Get("/t/{tenant}/orders", stacktest.Tenant)
			return r
		}},
		{"around", func(t *testing.T, f *stacktest.Fixture) http.Handler {
			r := chi.NewRouter()
			r.Get("/t/{tenant}/orders", stacktest.Tenant)
			return newStack(t, r, f)(r)
		}},
		{"mounted", func(t *testing.T, f *stacktest.Fixture) http.Handler {
			r := chi.NewRouter()
			r.Use(newStack(t, r, f))
			sub := chi.NewRouter()
			sub.Use(func(next http.Handler) http.Handler { // copies the request, as many middlewares do
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { next.ServeHTTP(w, r.WithContext(r.Context())) })
			})
			sub.Get("/{tenant}/orders", stacktest.Tenant)
			r.Mount("/t", sub)
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := stacktest.New(t)
			f.CheckRouter(t, tc.build(t, f), "/t/{tenant}/orders")
		})
	}
}

func newStack(t *testing.T, r chi.Routes, f *stacktest.Fixture) func(http.Handler) http.Handler {
	t.Helper()
	mw, err := tenancychi.New(r, f.Options(t)...)
	if err != nil {
		t.Fatal(err)
	}
	return mw
}

func TestNewRefusesMistakes(t *testing.T) {
	if _, err := tenancychi.New(nil, tenancy.WithMeter(nil)); err == nil || !strings.Contains(err.Error(), "chi router") {
		t.Errorf("New(nil) = %v, want an error naming the router", err)
	}
	if _, err := tenancychi.New(chi.NewRouter()); err == nil || !strings.Contains(err.Error(), "at least one part") {
		t.Errorf("New without parts = %v, want tenancy.New's error", err)
	}
}
