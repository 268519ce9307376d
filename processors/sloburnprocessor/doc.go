//go:generate ../../.tools/mdatagen metadata.yaml

// Package sloburnprocessor implements the `sloburn` processor: multiwindow, multi-burn-rate
// SLOs computed from counters and histograms of the metrics pipeline, emitted as the slo.*
// metrics of pipeline_metrics.yaml beside the input, which passes through unchanged.
package sloburnprocessor // import "github.com/fieldcol/fieldcol/processors/sloburnprocessor"
