// Package durability cuts the power under the diskqueue exporter and, as the anchor, under
// core's otlphttp exporter with a persistent sending queue on contrib's file_storage
// extension (bbolt, fsync true and false), on the same faultfs harness: the exporter runs
// in a child process that writes through a FUSE mount; at a random moment the mount stops
// taking operations, the child is killed and every write and directory change that was
// not fsynced is rolled back. The next child starts on what is left. At the end a clean
// start drains the queue to the sink, and every record the children saw acknowledged is
// looked for. docs/durability.md reports the figures.
//
// Run (root and /dev/fuse needed): go test -v -run TestPowerCutAnchors ./bench/durability/
// FIELDCOL_ANCHOR_CUTS=200 sets the cuts per subject (default 20; 200 with FIELDCOL_SOAK=1).
package durability // import "github.com/fieldcol/fieldcol/bench/durability"
