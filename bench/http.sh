#!/usr/bin/env bash
# Loads examples/orders (development mode: its full middleware stack) and
# bench/cmd/bare (the same GET /orders without any middleware) with wrk over
# loopback, alternating, and reports orders' requests per second as a share
# of bare's (target: at least 75 %). The runs go to bench/results/http.txt
# and, when bench/results/bench.txt exists, into bench/RESULTS.md.
#
#   bench/http.sh
#   DURATION=30s ROUNDS=3 CONNECTIONS=64 bench/http.sh
#
# Installs wrk with apt-get when it is missing. Both servers listen on
# 127.0.0.1 only, every wrk run is bounded by DURATION, and the servers are
# stopped when the script ends, however it ends.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION="${DURATION:-10s}"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
out=bench/results
mkdir -p "$out"

if ! command -v wrk >/dev/null; then
	echo "== installing wrk (Debian package)" >&2
	if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq wrk >/dev/null
fi
command -v curl >/dev/null || { echo "http.sh: curl is needed to place the first order" >&2; exit 1; }

tmp="$(mktemp -d)"
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building examples/orders and bench/cmd/bare" >&2
go build -o "$tmp/orders" ./examples/orders
(cd bench && go build -o "$tmp/bare" ./cmd/bare)

# Tenant acme gets limits no run reaches, so that every answer is a 200
# and the throttle measures its allowed path.
echo '{"acme": {"rate": 1000000000, "burst": 1000000000}}' >"$tmp/overrides.json"

# waitfor FILE PATTERN: waits up to 30 s for a line matching PATTERN.
waitfor() {
	for _ in $(seq 300); do
		if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "http.sh: no '$2' in the server's output:" >&2
	cat "$1" >&2
	exit 1
}

# The service logs JSON lines to stdout; they are formatted and discarded.
ADDR=127.0.0.1:0 TENANT_OVERRIDES_FILE="$tmp/overrides.json" DEV_TOKEN_LIFETIME=1h \
	"$tmp/orders" >/dev/null 2>"$tmp/orders.err" &
pids+=($!)
ADDR=127.0.0.1:0 "$tmp/bare" >/dev/null 2>"$tmp/bare.err" &
pids+=($!)

waitfor "$tmp/orders.err" '^export ACME_TOKEN='
waitfor "$tmp/bare.err" '^listening on http://'
orders_url="$(grep -m1 -o 'listening on http://[^ ]*' "$tmp/orders.err" | cut -d' ' -f3)"
bare_url="$(grep -m1 -o 'listening on http://[^ ]*' "$tmp/bare.err" | cut -d' ' -f3)"
token="$(grep -m1 '^export ACME_TOKEN=' "$tmp/orders.err" | cut -d= -f2-)"

# One order in acme's partition, as bare serves one.
curl -fsS -o /dev/null -X POST "$orders_url/orders" -H "Authorization: Bearer $token" \
	-H 'Content-Type: application/json' -d '{"item":"anvil","quantity":2}'
for url in "$orders_url" "$bare_url"; do
	code="$(curl -s -o /dev/null -w '%{http_code}' "$url/orders" -H "Authorization: Bearer $token")"
	[ "$code" = 200 ] || { echo "http.sh: GET $url/orders answered $code" >&2; exit 1; }
done

load() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1" --latency -H "Authorization: Bearer $token" "$2/orders"; }

echo "== warming up (2 s each)" >&2
load 2s "$bare_url" >/dev/null
load 2s "$orders_url" >/dev/null

{
	echo "# wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, GET /orders with acme's bearer token, loopback"
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- . ':!bench' 2>/dev/null || echo ', with uncommitted changes outside bench/')"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
	echo "cores: $(nproc)"
	echo "load_before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/http.txt"
for round in $(seq "$ROUNDS"); do
	for server in bare orders; do
		url="$bare_url"
		[ "$server" = orders ] && url="$orders_url"
		echo "== $server round $round ($DURATION)" >&2
		{
			echo "== $server round $round"
			load "$DURATION" "$url"
		} | tee -a "$out/http.txt"
	done
done
echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/http.txt"

# The median of each server's rounds: other work on the machine slows
# some runs down.
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rps() { awk -v s="== $1 round" 'index($0, s) == 1 { on = 1; next } /^== / { on = 0 } on && /^Requests\/sec:/ { print $2 }' "$out/http.txt" | median; }
bare_rps="$(rps bare)"
orders_rps="$(rps orders)"
awk -v b="$bare_rps" -v o="$orders_rps" 'BEGIN {
	printf "\nmedian of %s rounds: bare %.0f requests/s, orders %.0f requests/s: orders is %.1f %% of bare (target >= 75 %%)\n", '"$ROUNDS"', b, o, 100 * o / b
}'

if [ -f "$out/bench.txt" ]; then
	(cd bench && go run ./cmd/report -dir results -out RESULTS.md >/dev/null)
	echo "updated bench/RESULTS.md" >&2
fi
