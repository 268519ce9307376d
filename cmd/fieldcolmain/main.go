package fieldcolmain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"go.opentelemetry.io/collector/otelcol"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
	"github.com/fieldcol/fieldcol/internal/hardware/probe"
	"github.com/fieldcol/fieldcol/internal/validatecmd"
)

// version, when set at link time (-ldflags "-X github.com/fieldcol/fieldcol/cmd/fieldcolmain.version=V"),
// replaces the manifest's dist.version in the build info: scripts/dist.sh stamps release
// builds this way, so no generated file is edited for a release.
var version string

// Main is what the ocb-generated main of every distribution calls instead of run(set):
// `safe-outputs` drives the control loops' actuators safe without starting the collector;
// `hardware-probe` reports what hardware the machine offers, before a config is written;
// `drain` waits until a running collector emptied its exporters' queues (a preStop hook);
// anything else is the collector's own command line, run by run, whose error passes
// through ForgiveSelfTelemetryFlush. A non-nil error means exit 1; the collector's errors
// are already printed by its command, the subcommands print their own.
func Main(set otelcol.CollectorSettings, run func(otelcol.CollectorSettings) error) error {
	if version != "" {
		set.BuildInfo.Version = version
	}
	return dispatch(os.Args[1:], set, run, backends.NewRegistry(nil), os.Stdout, os.Stderr)
}

func dispatch(args []string, set otelcol.CollectorSettings, run func(otelcol.CollectorSettings) error,
	reg *hardware.Registry, stdout, stderr io.Writer,
) error {
	if len(args) > 0 && args[0] == safeOutputsCommand {
		// No cancellation on SIGTERM: every write is bounded by its device timeout, and a
		// write cut short could leave an output energized.
		err := safeOutputs(context.Background(), args[1:], set, reg, stdout, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "%s %s: %v\n", set.BuildInfo.Command, safeOutputsCommand, err)
		}
		return err
	}
	if len(args) > 0 && args[0] == hardwareProbeCommand {
		err := hardwareProbe(args[1:], set.BuildInfo.Command, probe.Options{}, stdout, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "%s %s: %v\n", set.BuildInfo.Command, hardwareProbeCommand, err)
		}
		return err
	}
	if len(args) > 0 && args[0] == drainCommand {
		err := drainMain(args[1:], set.BuildInfo.Command, os.Getenv, stdout, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "%s %s: %v\n", set.BuildInfo.Command, drainCommand, err)
		}
		return err
	}
	if len(args) > 0 && args[0] == "validate" {
		// Machine checks (a queue directory's permissions, a read-only or full disk) are
		// reported here, never at a start, where they run degraded instead.
		validatecmd.Mark()
	}
	return ForgiveSelfTelemetryFlush(run(set))
}

// parseFlags parses a subcommand's command line, which takes flags only. help is true when
// -h or --help printed the usage: the subcommand then does nothing and succeeds.
func parseFlags(fs *flag.FlagSet, args []string, accepted string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, err
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("unexpected argument %q: only %s accepted", fs.Arg(0), accepted)
	}
	return false, nil
}
