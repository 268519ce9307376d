// Package packaging tests what ships: the components each distribution lists, the shipped
// configs validating in every distribution that runs them, and what scripts/dist.sh builds
// into dist/ (static binaries for amd64, arm64 and armv7 under qemu, the .deb, its systemd
// unit, lintian, an install, upgrade, remove and purge), and the Ansible playbook.
package packaging

import (
	"testing"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
)

// TestMain builds the three distributions and what make dist-test puts into dist/
// (scripts/dist.sh --test: the edge for three architectures and the amd64 .deb) and the
// gateway's linux/amd64 image (make image-test), so that the tier never checks a dist/ older
// than the sources.
func TestMain(m *testing.M) {
	harness.Main(m, "build", "dist-test", "image-test")
}
