//go:generate ../.tools/mdatagen metadata.yaml

// Package controlloop is the `controlloop` extension: the control-loop runtime of a
// Raspberry Pi PLC (scheduler, PID and on/off controllers, interlocks, latching alarms,
// command API, systemd watchdog) whose telemetry the hardware receiver collects through
// internal/loopbridge. Its metrics are declared in metadata.yaml.
package controlloop // import "github.com/fieldcol/fieldcol/controlloop"
