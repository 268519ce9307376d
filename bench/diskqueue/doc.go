// Package diskqueue benchmarks the diskqueue exporter side by side with core's otlphttp
// exporter using a persistent sending queue on contrib's file_storage extension (bbolt),
// with the same 1 KiB log records, the same callers and the same OTLP/HTTP sink.
//
// BenchmarkCallers adds 1, 2 and 32 callers; BenchmarkSlowFsync runs both queues on a faultfs
// mount (served by a child process; root and /dev/fuse needed, skipped otherwise) whose
// fsync takes 2 to 20 ms, as an SD card's does, at 1, 2, 8 and 32 callers.
//
// Run: go test -run '^$' -bench . -benchmem ./bench/diskqueue/
package diskqueue // import "github.com/fieldcol/fieldcol/bench/diskqueue"
