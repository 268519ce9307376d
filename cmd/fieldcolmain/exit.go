// Package fieldcolmain holds what the ocb-generated main of every fieldcol distribution
// calls besides the collector itself (distributions/_ocb/main_others.go wires it in; see
// scripts/ocb-build.sh).
package fieldcolmain // import "github.com/fieldcol/fieldcol/cmd/fieldcolmain"

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// The only shutdown error this package forgives, as the collector words it.
const selfFlushPrefix = "failed to shutdown service after error: failed to shutdown meter provider: "

// ForgiveSelfTelemetryFlush returns nil when err is only the failure of the last push of
// the collector's own metrics at shutdown, and err otherwise.
//
// The shipped configs push the collector's own metrics over OTLP to its own OTLP receiver,
// so they flow through the pipelines like any other metric. At shutdown the collector stops
// its pipelines first and flushes its meter provider last, so that final push always finds
// the receiver gone (connection refused). Nothing is lost that a running collector could
// still deliver, so a clean stop must not exit non-zero and make systemd or a supervisor
// report a failure; the flush failure is still written to the log.
func ForgiveSelfTelemetryFlush(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, selfFlushPrefix) || strings.Count(msg, "failed to shutdown") != 2 ||
		!errors.Is(err, syscall.ECONNREFUSED) {
		return err
	}
	fmt.Fprintln(os.Stderr, "fieldcol: stopped cleanly; the last push of the collector's own metrics found its OTLP receiver already stopped, as it does at every shutdown")
	return nil
}
