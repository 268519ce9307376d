// Package edge tests fieldcol-edge as a Pi runs it, on the simulated plant: OTLP through
// the disk queue to a gateway, the control loops and their command API, the safety
// envelope, PII, the hardware receiver, safe-outputs, and the shipped dashboards and alerts
// on a real Prometheus and Alertmanager; also the full distribution with the edge config.
package edge

import (
	"testing"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
)

// TestMain builds the distributions this tier runs (safe-outputs runs the gateway too).
func TestMain(m *testing.M) {
	harness.Main(m, "bin/fieldcol-edge", "bin/fieldcol", "bin/fieldcol-gateway")
}
