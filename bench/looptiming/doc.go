// Package looptiming measures the control loop's wake-up lateness in the built fieldcol-edge
// against the machine's limit: cyclictest (Debian rt-tests) runs at the conveyor loop's
// period with the loop's scheduling policy, at the same time, while OTLP load (20,000
// spans/s over gRPC, 5,000 logs/s over HTTP) flows through the same edge. The loop's
// figures are what an operator reads: the controlloop_cycle_lateness_seconds histogram of
// the edge's Prometheus exposition.
//
// Run (make bench builds bin/fieldcol-edge and installs cyclictest first):
//
//	go test -run '^$' -bench LoopTiming ./bench/looptiming/
//
// FIELDCOL_BENCH_DURATION (default 60s) sets the measured time of each policy. The short
// form, TestSideBySide, runs a few seconds per policy and checks only that both sides
// produced figures. README.md holds the figures measured here.
package looptiming // import "github.com/fieldcol/fieldcol/bench/looptiming"
