// Package diskqueue benchmarks the diskqueue exporter side by side with core's otlphttp
// exporter using a persistent sending queue on contrib's file_storage extension (bbolt),
// with the same 1 KiB log records, the same callers and the same OTLP/HTTP sink.
//
// Run: go test -run '^$' -bench . -benchmem ./bench/diskqueue/
package diskqueue // import "github.com/fieldcol/fieldcol/bench/diskqueue"
