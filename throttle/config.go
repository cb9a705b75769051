package throttle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
)

// DecodeLimits reads limits by name (tier name or tenant ID) from a JSON
// object, the format of a service's tiers or overrides file:
//
//	{
//	  "basic":   {"rate": 5, "burst": 10, "quotas": [{"limit": 10000, "period": "day"}]},
//	  "premium": {"rate": 500, "burst": 1000, "max_concurrent": 64, "on_store_failure": "open"}
//	}
//
// Unknown fields, trailing data and invalid limits are errors that name the
// entry and the field.
func DecodeLimits(r io.Reader) (map[string]Limits, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var raw map[string]Limits
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("throttle: limits: %w", err)
	}
	if dec.More() {
		return nil, errors.New("throttle: limits: data after the JSON object")
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := raw[name].Validate(); err != nil {
			return nil, fmt.Errorf("throttle: limits %q: %w", name, err)
		}
	}
	return raw, nil
}
