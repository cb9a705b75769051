package throttle

import (
	"bytes"
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
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("throttle: limits: the file is empty; want a JSON object of limits by name")
		}
		return nil, fmt.Errorf("throttle: limits: %w", err)
	}
	if raw == nil {
		return nil, errors.New("throttle: limits: want a JSON object of limits by name, got null")
	}
	if dec.More() {
		return nil, errors.New("throttle: limits: data after the JSON object")
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make(map[string]Limits, len(raw))
	for _, name := range names {
		entry := json.NewDecoder(bytes.NewReader(raw[name]))
		entry.DisallowUnknownFields()
		var lim Limits
		if err := entry.Decode(&lim); err != nil {
			return nil, fmt.Errorf("throttle: limits %q: %w", name, err)
		}
		if err := lim.Validate(); err != nil {
			return nil, fmt.Errorf("throttle: limits %q: %w", name, err)
		}
		out[name] = lim
	}
	return out, nil
}
