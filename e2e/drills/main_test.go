// Package drills holds the chaos drills of the resilience plan (docs/drills.md) and the
// disaster-recovery drill: backup to a real S3 server and restore into dry run
// (docs/disaster-recovery.md), against the built fieldcol-edge and fieldcol-gateway.
package drills

import (
	"testing"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
)

// TestMain builds the distributions the drills run.
func TestMain(m *testing.M) {
	harness.Main(m, "bin/fieldcol-edge", "bin/fieldcol-gateway")
}
