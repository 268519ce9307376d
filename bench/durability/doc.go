// Package durability cuts the power under the diskqueue exporter and, as the anchor, under
// core's otlphttp exporter with a persistent sending queue on contrib's file_storage
// extension (bbolt, fsync true and false), on the same faultfs harness: the exporter runs
// in a child process that writes through a FUSE mount; at a random moment the mount stops
// taking operations, the child is killed and every write and directory change that was
// not fsynced is rolled back. The next child starts on what is left. At the end a clean
// start drains the queue to the sink, and every record the children saw acknowledged is
// looked for. docs/durability.md reports the figures.
//
// TestKillAnchors runs the same subjects through kill -9 instead of power cuts, on a plain
// directory (the page cache survives), and reports duplicates as a share of the records
// acknowledged and out-of-order arrivals per sender.
//
// Run (root and /dev/fuse needed): go test -v -run TestPowerCutAnchors ./bench/durability/
// FIELDCOL_ANCHOR_CUTS=200 sets the cuts (or kills) per subject (default 20 cuts, 40 kills;
// 200 and 1000 with FIELDCOL_SOAK=1). FIELDCOL_ANCHOR_WINDOW=1s widens the random moment of
// the cut or kill (default 110 ms after 10 ms), so each child acknowledges more;
// FIELDCOL_ANCHOR_CHECKPOINT_INTERVAL sets diskqueue's checkpoint_interval (default 1s).
package durability // import "github.com/fieldcol/fieldcol/bench/durability"
