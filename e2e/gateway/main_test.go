// Package gateway tests the gateway tier: fieldcol-gateway as one gateway and as
// load-balancing and sampler tiers (routing by trace ID, scale-out, a sampler leaving or
// crashing), delivery from an edge into real stores (Prometheus, Jaeger, VictoriaLogs) and
// through their outages, and the Helm chart.
package gateway

import (
	"testing"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
)

// TestMain builds the distributions this tier runs (an edge feeds the stores test).
func TestMain(m *testing.M) {
	harness.Main(m, "bin/fieldcol-gateway", "bin/fieldcol", "bin/fieldcol-edge")
}
