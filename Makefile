# make bench: every benchmark of bench/ against the anchors, COUNT times
# (default 6), the benchstat table and bench/RESULTS.md. bench/http.sh adds
# the loopback HTTP comparison with wrk.
.PHONY: bench test

bench:
	bench/run.sh

test:
	scripts/test
