// Package controlloop benchmarks the wake-up lateness of the control loop's scheduler
// (clock_nanosleep to absolute CLOCK_MONOTONIC deadlines on a locked OS thread) side by side
// with a naive time.Ticker loop, at 100 Hz and 1 kHz, while the process serves OTLP/gRPC
// trace load, as the edge collector does next to its loops.
//
// Run: go test -run '^$' -bench . -benchmem ./bench/controlloop/
// FIELDCOL_BENCH_DURATION (default 60s) sets the measurement time of each rate;
// FIELDCOL_BENCH_LOAD=saturate sends OTLP as fast as possible instead of 20 000 spans/s.
package controlloop // import "github.com/fieldcol/fieldcol/bench/controlloop"
