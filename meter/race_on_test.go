//go:build race

package meter_test

// raceEnabled is set when the race detector is on: tests of a million
// records run on fewer, the same shape.
const raceEnabled = true
