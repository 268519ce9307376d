//go:generate ../../.tools/mdatagen metadata.yaml

// Package hardwarereceiver reads GPIO, ADC and temperature sensors through internal/hardware
// and bridges the controlloop extension's telemetry into the pipelines.
package hardwarereceiver // import "github.com/fieldcol/fieldcol/receivers/hardwarereceiver"
