package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"sync"

	"github.com/tenancykit/tenancy/examples/internal/kit"
	"github.com/tenancykit/tenancy/throttle"
)

// limitsReloader applies TIERS_FILE and TENANT_OVERRIDES_FILE to a running
// Limiter again, at each SIGHUP.
type limitsReloader struct {
	tiersFile, overridesFile string
	limiter                  *throttle.Limiter
	log                      *slog.Logger
	overrides                map[string]throttle.Limits // in force
}

// reload reads both files, checks them as a start would (throttle.New on
// the same tiers), and only then applies them: new tier limits, new and
// changed overrides, and the overrides no longer in the file deleted. A
// file with a mistake changes nothing. Each call takes effect in a few
// steps, one atomic swap of the Limiter's policy each: a request decided
// in between sees some of the new limits and some of the old.
func (r *limitsReloader) reload() error {
	env := kit.NewEnv(func(string) string { return "" })
	c := config{tiersFile: r.tiersFile, overridesFile: r.overridesFile}
	c.loadLimits(env)
	if err := env.Err(); err != nil {
		return err
	}
	if _, err := throttle.New(tiers, c.tierLimits, throttle.WithOverrides(c.overrides)); err != nil {
		if c.tiersFile == "" {
			return err
		}
		return fmt.Errorf("TIERS_FILE %s: %w", c.tiersFile, err)
	}
	for _, name := range sortedNames(c.tierLimits) {
		if err := r.limiter.SetTierLimits(name, c.tierLimits[name]); err != nil {
			return err // unreachable: throttle.New checked the same
		}
	}
	for _, id := range sortedNames(c.overrides) {
		if err := r.limiter.SetOverride(id, c.overrides[id]); err != nil {
			return err // unreachable: throttle.New checked the same
		}
	}
	for id := range r.overrides {
		if _, ok := c.overrides[id]; !ok {
			r.limiter.DeleteOverride(id)
		}
	}
	r.overrides = maps.Clone(c.overrides)
	return nil
}

// serveReloads reloads the limits at each value of signals until ctx is
// done, logging the outcome of each: a mistake once, with the limits in
// force kept. stop waits for it to return.
func (r *limitsReloader) serveReloads(ctx context.Context, signals <-chan os.Signal) (stop func()) {
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-signals:
			}
			if err := r.reload(); err != nil {
				r.log.Error("limits not reloaded: the limits in force stay", "error", err.Error())
				continue
			}
			r.log.Info("limits reloaded", "tiers_file", r.tiersFile, "overrides_file", r.overridesFile, "overrides", len(r.overrides))
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}
