package tenant

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Tier is a plan in an ordered [Tiers] set. Tiers are compared by their rank
// in that set, so a service can ask "at least premium" with [Tier.AtLeast].
// The zero Tier is the unknown tier: it is below every tier and its name is
// empty.
//
// Obtain Tiers from [Tiers.Lookup]; two Tiers from the same set are equal
// when they name the same plan.
type Tier struct {
	name string
	rank int // 1-based; 0 is the unknown tier
}

// String returns the tier's name, "" for the zero Tier.
func (t Tier) String() string { return t.name }

// Rank returns the tier's position in its set, 1 for the lowest, 0 for the
// zero Tier.
func (t Tier) Rank() int { return t.rank }

// IsZero reports whether t is the unknown tier.
func (t Tier) IsZero() bool { return t.rank == 0 }

// AtLeast reports whether t is min or above it. The unknown tier is at least
// nothing but the unknown tier.
func (t Tier) AtLeast(min Tier) bool { return t.rank >= min.rank }

// MarshalText encodes the tier as its name.
func (t Tier) MarshalText() ([]byte, error) { return []byte(t.name), nil }

// Tiers is an ordered set of plans, lowest first. A Tiers is immutable and
// safe for concurrent use. Its zero value is not usable: build one with
// [NewTiers]. Tiers of different sets must not be compared.
type Tiers struct {
	list []Tier
}

// DefaultTiers is basic < standard < premium < platinum. Services that sell
// other plans build their own with [NewTiers].
var DefaultTiers = MustTiers("basic", "standard", "premium", "platinum")

// ErrUnknownTier is wrapped by the error [Tiers.Parse] returns for a name
// that is not in the set.
var ErrUnknownTier = errors.New("tenant: unknown tier")

// NewTiers returns the ordered set of the named tiers, lowest first. Names
// must be non-empty, unique (case-insensitively) and without white space.
func NewTiers(names ...string) (*Tiers, error) {
	if len(names) == 0 {
		return nil, errors.New("tenant: NewTiers needs at least one tier name")
	}
	ts := &Tiers{list: make([]Tier, 0, len(names))}
	for i, n := range names {
		if n == "" || strings.ContainsFunc(n, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return nil, fmt.Errorf("tenant: tier name %q is empty or has white space or control characters", n)
		}
		if _, dup := ts.Lookup(n); dup {
			return nil, fmt.Errorf("tenant: tier %q is listed twice", n)
		}
		ts.list = append(ts.list, Tier{name: n, rank: i + 1})
	}
	return ts, nil
}

// MustTiers is like [NewTiers] but panics on error. It is meant for package
// level variables.
func MustTiers(names ...string) *Tiers {
	ts, err := NewTiers(names...)
	if err != nil {
		panic(err)
	}
	return ts
}

// Lookup returns the tier with the given name, compared case-insensitively.
func (ts *Tiers) Lookup(name string) (Tier, bool) {
	for _, t := range ts.list {
		if strings.EqualFold(t.name, name) {
			return t, true
		}
	}
	return Tier{}, false
}

// Parse is like Lookup but returns an error wrapping [ErrUnknownTier], which
// lists the known tiers, for a name that is not in the set.
func (ts *Tiers) Parse(name string) (Tier, error) {
	if t, ok := ts.Lookup(name); ok {
		return t, nil
	}
	return Tier{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownTier, name, strings.Join(ts.Names(), ", "))
}

// MustLookup is like Lookup but panics when the tier is unknown.
func (ts *Tiers) MustLookup(name string) Tier {
	t, err := ts.Parse(name)
	if err != nil {
		panic(err)
	}
	return t
}

// Names returns the tier names, lowest first.
func (ts *Tiers) Names() []string {
	out := make([]string, len(ts.list))
	for i, t := range ts.list {
		out[i] = t.name
	}
	return out
}

// All returns the tiers, lowest first.
func (ts *Tiers) All() []Tier { return slices.Clone(ts.list) }

// From returns min and every tier above it, lowest first: handy for
// "premium and up" in a feature table.
func (ts *Tiers) From(min Tier) []Tier {
	var out []Tier
	for _, t := range ts.list {
		if t.AtLeast(min) {
			out = append(out, t)
		}
	}
	return out
}

// Lowest returns the lowest tier of the set.
func (ts *Tiers) Lowest() Tier { return ts.list[0] }
