//go:generate ../../.tools/mdatagen metadata.yaml

// Package diskqueueexporter implements the `diskqueue` exporter: a crash-safe on-disk
// write-ahead queue with group commit that forwards telemetry over OTLP.
package diskqueueexporter // import "github.com/fieldcol/fieldcol/exporters/diskqueueexporter"
