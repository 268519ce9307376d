// Package loopbridge is the contract between the controlloop extension, which owns the
// control loops and their devices, and the hardware receiver, which brings the loops'
// telemetry into the collector's pipelines. It holds only the interface so that neither
// component imports the other.
package loopbridge

import (
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Source is implemented by the controlloop extension. The hardware receiver finds it with
// host.GetExtensions()[id] and a type assertion when its `controlloop` key names the extension.
type Source interface {
	// CollectMetrics appends the current controlloop.* metrics as one ResourceMetrics to ms.
	CollectMetrics(ms pmetric.Metrics) error
	// DrainLogs moves the buffered events (alarm transitions, commands, faults) into ld as
	// log records and returns how many it moved. Each event is delivered once.
	DrainLogs(ld plog.Logs) int
	// DrainTraces moves the buffered spans (commands, sampled cycles) into td and returns how
	// many it moved. Each span is delivered once.
	DrainTraces(td ptrace.Traces) int
	// OwnsDevice reports whether a control loop owns the named device; the receiver never
	// reads such a device itself and takes the loop's readings instead.
	OwnsDevice(name string) bool
}
