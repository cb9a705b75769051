package throttle_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tenancykit/tenancy/throttle"
)

func TestDecodeLimits(t *testing.T) {
	got, err := throttle.DecodeLimits(strings.NewReader(`{
		"basic": {"rate": 5, "burst": 10, "quotas": [{"limit": 10000, "period": "day"}]},
		"premium": {"rate": 500, "burst": 1000, "max_concurrent": 64, "on_store_failure": "open"}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]throttle.Limits{
		"basic":   {Rate: 5, Burst: 10, Quotas: []throttle.Quota{{Limit: 10000, Period: throttle.Day}}},
		"premium": {Rate: 500, Burst: 1000, MaxConcurrent: 64, OnStoreFailure: throttle.FailOpen},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("DecodeLimits (-want +got):\n%s", diff)
	}
}

func TestDecodeLimitsErrors(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"unknown field":   {`{"basic": {"rate": 5, "burst": 10, "brust": 3}}`, `unknown field "brust"`},
		"bad period":      {`{"basic": {"rate": 5, "burst": 10, "quotas": [{"limit": 1, "period": "week"}]}}`, `unknown period "week"`},
		"zero rate":       {`{"basic": {"burst": 10}}`, `limits "basic": Rate must be a positive number`},
		"burst":           {`{"gold": {"rate": 1, "burst": 0}}`, `limits "gold": Burst must be at least 1`},
		"policy":          {`{"basic": {"rate": 1, "burst": 1, "on_store_failure": "maybe"}}`, `OnStoreFailure must be`},
		"trailing data":   {`{"basic": {"rate": 1, "burst": 1}} {}`, `data after the JSON object`},
		"not an object":   {`[1]`, `throttle: limits:`},
		"duplicate quota": {`{"b": {"rate": 1, "burst": 1, "quotas": [{"limit": 1, "period": "day"}, {"limit": 2, "period": "day"}]}}`, `a second quota per day`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := throttle.DecodeLimits(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
