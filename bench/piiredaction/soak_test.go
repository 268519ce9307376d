package piiredaction

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSoakManySeeds runs a much larger corpus over several seeds; only with FIELDCOL_SOAK=1
// (make soak): 200000 records, several seconds on the two-core machine.
func TestSoakManySeeds(t *testing.T) {
	if os.Getenv("FIELDCOL_SOAK") != "1" {
		t.Skip("set FIELDCOL_SOAK=1 to run the soak variant")
	}
	for seed := uint64(1); seed <= 10; seed++ {
		records := Corpus(20000, seed)
		q := measure(t, newPII, records)
		assert.Zero(t, q.PIILeaked, "seed %d", seed)
		assert.Zero(t, q.KeepBroken, "seed %d", seed)
	}
}
