#!/usr/bin/env bash
# Runs every benchmark of bench/ COUNT times (default 6, interleaved), prints the
# benchstat table, profiles our stack, and writes bench/RESULTS.md with the
# machine, the targets met or missed and the ratios ours/anchor.
#
#   bench/run.sh                       # or: make bench
#   COUNT=10 bench/run.sh
#   BENCH='Stack|Verify' bench/run.sh  # a -bench pattern; the report lists what it has
#   PROFILE=0 bench/run.sh             # skip the profile of our stack
#
# Raw output stays in bench/results/ (bench.txt is benchstat's input, for
# comparing two runs: go tool benchstat old.txt bench/results/bench.txt).
set -euo pipefail

cd "$(dirname "$0")"
COUNT="${COUNT:-6}"
BENCH="${BENCH:-.}"
PROFILE="${PROFILE:-1}"
out=results
mkdir -p "$out"

loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime | sed 's/.*load averages*: //'; }

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || uname -m)"
	echo "cores: $(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
	echo "memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo 2>/dev/null)"
	echo "go: $(go env GOVERSION) $(go env GOOS)/$(go env GOARCH)"
	echo "kernel: $(uname -sr)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- .. ':!.' 2>/dev/null || echo ', with uncommitted changes outside bench/')"
	echo "count: $COUNT"
	echo "load_before: $(loadavg)"
} >"$out/machine.txt"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/bench.test" .

# COUNT rounds of every benchmark rather than -count COUNT, which runs each
# benchmark COUNT times in a row: a burst of other work on the machine then
# slows one benchmark's runs, ours or an anchor's, and skews its ratio.
# Interleaved, every benchmark gets its share of the quiet and the noise.
: >"$out/bench.txt"
for round in $(seq "$COUNT"); do
	echo "== round $round of $COUNT: -bench '$BENCH' (about a minute)" >&2
	"$tmp/bench.test" -test.run '^$' -test.bench "$BENCH" -test.benchmem -test.count 1 -test.timeout 30m |
		tee -a "$out/bench.txt"
done
echo "load_after: $(loadavg)" >>"$out/machine.txt"

echo "== benchstat" >&2
go tool benchstat "$out/bench.txt" | tee "$out/benchstat.txt"

if [ "$PROFILE" != 0 ]; then
	echo "== profile of Stack/tenancy-cached" >&2
	stack='^BenchmarkStack$/^tenancy-cached$'
	"$tmp/bench.test" -test.run '^$' -test.bench "$stack" -test.benchtime 3s \
		-test.cpuprofile "$tmp/cpu.out" >/dev/null
	# Every allocation recorded, so that the counts are exact per request.
	"$tmp/bench.test" -test.run '^$' -test.bench "$stack" -test.benchtime 100000x \
		-test.memprofile "$tmp/mem.out" -test.memprofilerate 1 >/dev/null
	# -focus keeps the requests and leaves out minting the fixture's tokens.
	pprof_top() {
		local profile="$1"
		shift
		go tool pprof -focus 'BenchmarkStack\.func' "$@" "$tmp/bench.test" "$profile" 2>/dev/null |
			grep -v -e '^Build ID' -e '^File:'
	}
	{
		echo "# CPU, by cumulative time (-top -cum)"
		pprof_top "$tmp/cpu.out" -top -cum -nodecount 45
		echo
		echo "# allocations over 100,000 requests, by site (-sample_index=alloc_objects -top)"
		pprof_top "$tmp/mem.out" -sample_index=alloc_objects -top -nodecount 40
	} >"$out/profile.txt"
else
	rm -f "$out/profile.txt"
fi

echo "== report" >&2
go run ./cmd/report -dir "$out" -out RESULTS.md
