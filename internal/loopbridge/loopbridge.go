// Package loopbridge is the contract between the controlloop extension, which owns the
// control loops, their devices and the hardware registry they are open on, and the
// hardware receiver, which brings the loops' telemetry into the collector's pipelines and
// opens its own devices on the same registry. It holds only the interface so that neither
// component imports the other.
package loopbridge

import (
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fieldcol/fieldcol/internal/hardware"
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
	// HardwareRegistry returns the registry the loops' devices are open on. The receiver
	// opens its own devices on it, so that both see one sim plant and one fault table, and
	// never talk on a bus at the same time.
	HardwareRegistry() *hardware.Registry
}
