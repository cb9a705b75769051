// Command report turns the output of bench/run.sh and bench/http.sh into
// bench/RESULTS.md: the machine, each target met or missed, the ratios of
// ours to the anchors, what each stack adds over the bare handler, the
// benchstat table, the wrk runs, and the profile of our stack.
//
//	go run ./cmd/report -dir results -out RESULTS.md
//
// It reads from -dir: bench.txt (go test -bench output, required),
// machine.txt (key: value lines written by run.sh), benchstat.txt,
// http.txt (written by http.sh) and profile.txt, each optional. It prints
// the targets and ratios to stdout as well.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	dir := flag.String("dir", "results", "folder holding bench.txt and the other inputs")
	out := flag.String("out", "RESULTS.md", "the Markdown file to write")
	flag.Parse()
	if err := run(*dir, *out, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(dir, out string, stdout io.Writer) error {
	raw, err := os.ReadFile(filepath.Join(dir, "bench.txt"))
	if err != nil {
		return fmt.Errorf("%w (run bench/run.sh first)", err)
	}
	res := parseBench(raw)
	if len(res) == 0 {
		return fmt.Errorf("no benchmark results in %s", filepath.Join(dir, "bench.txt"))
	}
	machine := parseKeyValues(readOptional(dir, "machine.txt"))
	httpRuns := parseHTTP(readOptional(dir, "http.txt"))

	var md bytes.Buffer
	targets := checkTargets(res, httpRuns)
	ratios := ratioRows(res)
	writeReport(&md, machine, targets, ratios, res, httpRuns,
		readOptional(dir, "benchstat.txt"), readOptional(dir, "http.txt"), readOptional(dir, "profile.txt"))
	if err := os.WriteFile(out, md.Bytes(), 0o644); err != nil {
		return err
	}

	// The console gets the two tables that matter.
	fmt.Fprintln(stdout)
	writeTargets(stdout, targets)
	fmt.Fprintln(stdout)
	writeRatios(stdout, ratios)
	fmt.Fprintf(stdout, "\nwrote %s\n", out)
	return nil
}

func readOptional(dir, name string) []byte {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return b
}

// results holds every sample of every benchmark, by name (without the
// GOMAXPROCS suffix) and unit.
type results map[string]map[string][]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads the standard benchmark format: a name, the iteration
// count, then value-unit pairs.
func parseBench(raw []byte) results {
	res := results{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(fields[0], "Benchmark"), "")
		if res[name] == nil {
			res[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				break
			}
			res[name][fields[i+1]] = append(res[name][fields[i+1]], v)
		}
	}
	return res
}

// median returns the median of name's samples in unit, and whether there
// are any.
func (r results) median(name, unit string) (float64, bool) {
	xs := r[name][unit]
	if len(xs) == 0 {
		return 0, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2], true
	} else {
		return (s[n/2-1] + s[n/2]) / 2, true
	}
}

// over returns what name adds over base, in unit.
func (r results) over(name, base, unit string) (float64, bool) {
	a, ok1 := r.median(name, unit)
	b, ok2 := r.median(base, unit)
	return a - b, ok1 && ok2
}

func parseKeyValues(b []byte) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// httpRun is one wrk run against one server.
type httpRun struct {
	server string // "bare" or "orders"
	round  int
	rps    float64
	non2xx int64
	errors string // wrk's socket error line, if any
}

var (
	runHeader = regexp.MustCompile(`^== (\S+) round (\d+)`)
	rpsLine   = regexp.MustCompile(`^Requests/sec:\s+([\d.]+)`)
	non2xx    = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	sockErr   = regexp.MustCompile(`^\s*Socket errors:.*`)
)

func parseHTTP(b []byte) []httpRun {
	var runs []httpRun
	var cur *httpRun
	for line := range strings.SplitSeq(string(b), "\n") {
		if m := runHeader.FindStringSubmatch(line); m != nil {
			round, _ := strconv.Atoi(m[2])
			runs = append(runs, httpRun{server: m[1], round: round})
			cur = &runs[len(runs)-1]
			continue
		}
		if cur == nil {
			continue
		}
		if m := rpsLine.FindStringSubmatch(line); m != nil {
			cur.rps, _ = strconv.ParseFloat(m[1], 64)
		}
		if m := non2xx.FindStringSubmatch(line); m != nil {
			cur.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if sockErr.MatchString(line) {
			cur.errors = strings.TrimSpace(line)
		}
	}
	return runs
}

// medianRPS returns the median requests per second of server's runs, and
// how many there were. The median, because other work on the machine
// slows some runs down.
func medianRPS(runs []httpRun, server string) (float64, int) {
	var xs []float64
	for _, r := range runs {
		if r.server == server && r.rps > 0 {
			xs = append(xs, r.rps)
		}
	}
	if len(xs) == 0 {
		return 0, 0
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2], n
	}
	return (xs[n/2-1] + xs[n/2]) / 2, n
}

// target is one of the targets, checked.
type target struct {
	name     string
	measured string
	met      bool
	known    bool // false when the results needed are missing
}

func checkTargets(r results, runs []httpRun) []target {
	var ts []target
	add := func(name string, known, met bool, format string, args ...any) {
		ts = append(ts, target{name: name, measured: fmt.Sprintf(format, args...), met: met, known: known})
	}

	ns, ok := r.over("Stack/tenancy-cached", "Stack/bare", "ns/op")
	add("full stack, cached token: ≤ 2 µs over bare", ok, ns <= 2000, "%s over bare", fmtNS(ns))
	allocs, ok := r.over("Stack/tenancy-cached", "Stack/bare", "allocs/op")
	add("full stack, cached token: ≤ 12 allocs over bare", ok, allocs <= 12, "%.0f allocs over bare", allocs)
	anchor, ok2 := r.over("Stack/anchor", "Stack/bare", "ns/op")
	add("full stack, cached token: ≤ 1/10 of what the anchor adds over bare", ok && ok2, ns <= anchor/10,
		"%s vs %s: %s", fmtNS(ns), fmtNS(anchor), fmtRatio(ns/anchor))

	fresh, ok := r.over("Stack/tenancy-fresh", "Stack/bare", "ns/op")
	parse, ok2 := r.median("Verify/jwt.Parse", "ns/op")
	add("full stack, fresh token: ≤ 1.1 × raw golang-jwt verification", ok && ok2, fresh <= 1.1*parse,
		"%s over bare vs jwt.Parse %s: %.2f ×", fmtNS(fresh), fmtNS(parse), fresh/parse)
	verify, ok3 := r.median("Verify/tenancy", "ns/op")
	add("(component) authz verification without cache: ≤ 1.1 × raw golang-jwt verification", ok2 && ok3, verify <= 1.1*parse,
		"%s vs %s: %.2f ×", fmtNS(verify), fmtNS(parse), verify/parse)

	al, ok := r.median("AccessLog/tenancy", "ns/op")
	alAnchor, ok2 := r.median("AccessLog/anchor", "ns/op")
	add("access log middleware: no slower than the anchor's hand-written slog access log", ok && ok2, al <= alAnchor,
		"%s vs %s: %.2f ×", fmtNS(al), fmtNS(alAnchor), al/alAnchor)

	thr, ok := r.median("Throttle/tenancy", "ns/op")
	add("throttle decision, 100,000 tenants, parallel: ≤ 200 ns", ok, thr <= 200, "%s", fmtNS(thr))

	mns, ok := r.median("MeterAdd/tenancy", "ns/op")
	mal, ok2 := r.median("MeterAdd/tenancy", "allocs/op")
	add("meter.Add: ≤ 100 ns and 0 allocs", ok && ok2, mns <= 100 && mal == 0, "%s, %.0f allocs", fmtNS(mns), mal)

	// Messages (issue 17).
	for _, alg := range []string{"ES256", "RS256"} {
		st, ok := r.median("StampVerify/"+alg+"/stamp", "ns/op")
		parse, ok2 := r.median("StampVerify/"+alg+"/jwt.Parse", "ns/op")
		az, ok3 := r.median("StampVerify/"+alg+"/authz", "ns/op")
		add("stamp verification ("+alg+"), not cached: ≤ 1.1 × golang-jwt's jwt.Parse of the stamp", ok && ok2, st <= 1.1*parse,
			"%s vs %s: %.2f ×", fmtNS(st), fmtNS(parse), st/parse)
		add("stamp verification ("+alg+"), not cached: ≤ authz verification of an uncached access token of the stamp's size and claims, same key and algorithm", ok && ok3, st <= az,
			"%s vs %s: %.2f ×", fmtNS(st), fmtNS(az), st/az)
		cached, ok4 := r.median("StampVerify/"+alg+"/stamp-cached", "ns/op")
		add("redelivered stamp ("+alg+"): cached path cheaper than the fresh path", ok && ok4, cached < st,
			"%s vs %s: %s", fmtNS(cached), fmtNS(st), fmtRatio(cached/st))
	}
	for _, name := range []string{"tenancy-stamp-cached", "tenancy-boundqueue"} {
		ns, ok := r.over("MessageStack/"+name, "MessageStack/bare", "ns/op")
		al, ok2 := r.over("MessageStack/"+name, "MessageStack/bare", "allocs/op")
		add("consumer stack, "+strings.TrimPrefix(name, "tenancy-")+": ≤ 2 µs and ≤ 12 allocs over a bare message.Handler", ok && ok2, ns <= 2000 && al <= 12,
			"%s, %.0f allocs over bare", fmtNS(ns), al)
	}

	bare, nb := medianRPS(runs, "bare")
	orders, no := medianRPS(runs, "orders")
	known := nb > 0 && no > 0
	measured := "not run (bench/http.sh)"
	if known {
		measured = fmt.Sprintf("median %.0f vs %.0f requests/s: %.1f %%", orders, bare, 100*orders/bare)
	}
	ts = append(ts, target{name: "HTTP: examples/orders ≥ 75 % of the bare service's requests/s", measured: measured, met: known && orders >= 0.75*bare, known: known})
	return ts
}

// ratio is one comparison of ours with an anchor.
type ratio struct {
	what, ours, anchor string
	oursNS, anchorNS   float64
	oursAl, anchorAl   float64
}

func ratioRows(r results) []ratio {
	var rows []ratio
	// Stacks compare what they add over bare; components compare whole.
	over := func(what, ours, anchor, base string) {
		on, ok1 := r.over(ours, base, "ns/op")
		an, ok2 := r.over(anchor, base, "ns/op")
		oa, _ := r.over(ours, base, "allocs/op")
		aa, _ := r.over(anchor, base, "allocs/op")
		if ok1 && ok2 {
			rows = append(rows, ratio{what, ours, anchor, on, an, oa, aa})
		}
	}
	whole := func(what, ours, anchor string) {
		on, ok1 := r.median(ours, "ns/op")
		an, ok2 := r.median(anchor, "ns/op")
		oa, _ := r.median(ours, "allocs/op")
		aa, _ := r.median(anchor, "allocs/op")
		if ok1 && ok2 {
			rows = append(rows, ratio{what, ours, anchor, on, an, oa, aa})
		}
	}
	over("stack over bare, cached token", "Stack/tenancy-cached", "Stack/anchor", "Stack/bare")
	over("stack over bare, cached token (anchor without OTel SDK)", "Stack/tenancy-cached", "Stack/anchor-noop-otel", "Stack/bare")
	over("stack over bare, fresh token", "Stack/tenancy-fresh", "Stack/anchor", "Stack/bare")
	over("stack over bare, cached token, parallel", "StackParallel/tenancy-cached", "StackParallel/anchor", "StackParallel/bare")
	whole("token verification", "Verify/tenancy", "Verify/auth0")
	whole("token verification", "Verify/tenancy", "Verify/jwt.Parse")
	whole("token verification, cached", "Verify/tenancy-cached", "Verify/auth0")
	for _, a := range []string{"httprate", "throttled", "tollbooth"} {
		whole("throttle decision, parallel", "Throttle/tenancy", "Throttle/"+a)
	}
	whole("one log line", "LogLine/tenancy", "LogLine/json-by-hand")
	whole("one log line", "LogLine/tenancy", "LogLine/anchor-access-line")
	whole("access log middleware", "AccessLog/tenancy", "AccessLog/anchor")
	whole("one metering add, parallel", "MeterAdd/tenancy", "MeterAdd/otel-sdk")
	whole("one metering add, parallel", "MeterAdd/tenancy", "MeterAdd/otel-sdk-kept-set")
	return rows
}

func writeTargets(w io.Writer, ts []target) {
	fmt.Fprintln(w, "| target | measured | |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, t := range ts {
		verdict := "**missed**"
		switch {
		case !t.known:
			verdict = "not measured"
		case t.met:
			verdict = "met"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.name, t.measured, verdict)
	}
}

func writeRatios(w io.Writer, rows []ratio) {
	fmt.Fprintln(w, "| comparison | ours | anchor | ours | anchor | time ours/anchor | allocs ours/anchor |")
	fmt.Fprintln(w, "|---|---|---|--:|--:|--:|--:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s, %.0f allocs | %s, %.0f allocs | %s | %s |\n",
			r.what, r.ours, r.anchor, fmtNS(r.oursNS), r.oursAl, fmtNS(r.anchorNS), r.anchorAl,
			fmtRatio(r.oursNS/r.anchorNS), fmtRatio(safeDiv(r.oursAl, r.anchorAl)))
	}
}

func writeOverheads(w io.Writer, r results) {
	fmt.Fprintln(w, "| benchmark | median | over bare | allocs | allocs over bare | B/op |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|")
	for _, group := range []string{"Stack", "StackParallel", "StackLayers", "MessageStack", "MessageLayers"} {
		base := group + "/bare"
		switch group {
		case "StackLayers":
			base = "Stack/bare"
		case "MessageLayers":
			base = "MessageStack/bare"
		}
		for _, name := range sortedNames(r, group+"/") {
			ns, _ := r.median(name, "ns/op")
			al, _ := r.median(name, "allocs/op")
			by, _ := r.median(name, "B/op")
			dns, ok := r.over(name, base, "ns/op")
			dal, _ := r.over(name, base, "allocs/op")
			overNS, overAl := "—", "—"
			if ok && name != base {
				overNS, overAl = fmtNS(dns), fmt.Sprintf("%.0f", dal)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.0f | %s | %.0f |\n", name, fmtNS(ns), overNS, al, overAl, by)
		}
	}
}

// sortedNames returns the benchmarks under prefix in the order they ran.
func sortedNames(r results, prefix string) []string {
	var names []string
	for name := range r {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	order := []string{"bare", "tenancy-cached", "tenancy-fresh", "anchor", "anchor-noop-otel",
		"tenancy-stamp-cached", "tenancy-stamp-fresh", "tenancy-boundqueue"}
	rank := func(n string) int {
		if i := slices.Index(order, strings.TrimPrefix(n, prefix)); i >= 0 {
			return i
		}
		return len(order) + len(n) // layers: fewer layers, shorter name
	}
	slices.SortFunc(names, func(a, b string) int { return rank(a) - rank(b) })
	return names
}

func writeReport(w io.Writer, machine map[string]string, ts []target, rows []ratio, r results, runs []httpRun, benchstat, httpRaw, profile []byte) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("# Benchmark results")
	p("")
	p("Written by `make bench` (bench/run.sh, then bench/cmd/report); the HTTP section by bench/http.sh.")
	p("Do not edit by hand: run them again. What is compared and why: [README.md](README.md).")
	p("")
	p("## Machine")
	p("")
	for _, k := range []string{"date", "commit", "cpu", "cores", "memory", "go", "kernel", "count", "load_before", "load_after"} {
		if v, ok := machine[k]; ok {
			p("- %s: %s", strings.ReplaceAll(k, "_", " "), v)
		}
	}
	if len(machine) == 0 {
		p("(machine.txt missing)")
	}
	p("")
	p("The load average counts other work on the machine during the run; with few cores, a load near")
	p("or above the core count makes every number noisier, anchors and ours alike.")
	p("")
	p("## Targets")
	p("")
	writeTargets(w, ts)
	p("")
	p("Medians of %s runs each. \"Over bare\" is the stack's median minus the bare handler's median.", runsOf(r, "Stack/bare"))
	p("")
	p("## Ours against the anchors")
	p("")
	writeRatios(w, rows)
	p("")
	p("Below 1 ours is cheaper. Stacks are compared by what they add over the bare handler; components whole.")
	p("")
	p("## What each stack adds per request")
	p("")
	writeOverheads(w, r)
	p("")
	p("StackLayers adds our middleware one at a time, outermost first, around the same app (compared with Stack/bare).")
	p("MessageStack handles one stamped message, delivered again and again, through a bare message.Handler and our")
	p("consumer stack (tenancy.New(...).WrapMessages); MessageLayers adds the stack's parts one at a time around the")
	p("stamp's trust mode (compared with MessageStack/bare).")
	writeStamps(w, r)
	if len(benchstat) > 0 {
		p("")
		p("## benchstat")
		p("")
		p("```")
		w.Write(bytes.TrimSpace(benchstat))
		p("")
		p("```")
	}
	p("")
	p("## HTTP over loopback")
	p("")
	if len(runs) == 0 {
		p("Not run yet: `bench/http.sh` runs wrk against examples/orders and bench/cmd/bare.")
	} else {
		p("wrk against examples/orders (development mode: its full stack, tenant acme with limits no run reaches)")
		p("and bench/cmd/bare (the same JSON for GET /orders, no middleware), alternating, on this machine:")
		p("")
		p("| server | round | requests/s | non-2xx | socket errors |")
		p("|---|--:|--:|--:|---|")
		for _, run := range runs {
			p("| %s | %d | %.0f | %d | %s |", run.server, run.round, run.rps, run.non2xx, run.errors)
		}
		bare, _ := medianRPS(runs, "bare")
		orders, _ := medianRPS(runs, "orders")
		if bare > 0 && orders > 0 {
			p("")
			p("Median: orders %.0f, bare %.0f requests/s: **%.1f %%** of bare (target ≥ 75 %%).", orders, bare, 100*orders/bare)
		}
		p("")
		p("<details><summary>wrk output</summary>")
		p("")
		p("```")
		w.Write(bytes.TrimSpace(httpRaw))
		p("")
		p("```")
		p("</details>")
	}
	if len(profile) > 0 {
		p("")
		p("## Where our stack's time goes")
		p("")
		p("CPU and allocation profiles of Stack/tenancy-cached (`go tool pprof -top`), written by run.sh:")
		p("")
		p("```")
		w.Write(bytes.TrimSpace(profile))
		p("")
		p("```")
	}
}

// writeStamps writes the stamp verifications of each algorithm side by
// side, when they ran.
func writeStamps(w io.Writer, r results) {
	names := sortedNames(r, "StampVerify/")
	if len(names) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Stamp verification")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| benchmark | median | allocs | B/op |")
	fmt.Fprintln(w, "|---|--:|--:|--:|")
	for _, name := range names {
		ns, _ := r.median(name, "ns/op")
		al, _ := r.median(name, "allocs/op")
		by, _ := r.median(name, "B/op")
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f |\n", name, fmtNS(ns), al, by)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "stamp: stamp.Trusted around a no-op handler, its verifier without the verified-stamp cache (every delivery")
	fmt.Fprintln(w, "checks the signature); stamp-cached: the same message redelivered through the cache; jwt.Parse: golang-jwt")
	fmt.Fprintln(w, "verifying the same stamp with the same key; authz: authz.Verifier.Verify of an access token of the same")
	fmt.Fprintln(w, "claims, key and algorithm, without its cache.")
}

func runsOf(r results, name string) string {
	return strconv.Itoa(len(r[name]["ns/op"]))
}

func fmtNS(ns float64) string {
	switch {
	case math.Abs(ns) >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case math.Abs(ns) >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.0f ns", ns)
	}
}

func fmtRatio(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "—"
	}
	return fmt.Sprintf("%.2f", x)
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		if a == 0 {
			return math.NaN()
		}
		return math.Inf(1)
	}
	return a / b
}
