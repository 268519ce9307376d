package fieldcolmain

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/fieldcol/fieldcol/internal/hardware/probe"
)

const hardwareProbeCommand = "hardware-probe"

// hardwareProbe is `<binary> hardware-probe [--json] [--root DIR] [--no-scan]`: what an
// operator runs on a Pi before writing a config. Finding nothing is an answer, not an
// error: only a bad command line returns one.
func hardwareProbe(args []string, command string, opts probe.Options, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(command+" "+hardwareProbeCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.StringVar(&opts.Root, "root", "/", "read every file under this directory instead of / (periph's drivers still see the machine itself)")
	fs.BoolVar(&opts.NoScan, "no-scan", false, "no bus transfer: read no I2C address and no 1-Wire sensor, only files and GPIO line info")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s %s [--json] [--root DIR] [--no-scan]\n\n"+
			"Reports what a Raspberry Pi offers the hardware backend, before you write a config:\n"+
			"the board, periph's drivers, GPIO chips and lines, the I2C buses and the chips that\n"+
			"answer there, SPI ports, 1-Wire sensors, the SoC temperature, device access and\n"+
			"groups, kernel modules, and a suggested hardware block. Each section that finds\n"+
			"nothing says why. It requests no GPIO line and writes to no chip but an MCP9808's\n"+
			"register pointer (to read its ID). Exit status 0 whatever it finds, 1 for a bad\n"+
			"command line.\n\n", command, hardwareProbeCommand)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, args, "--json, --root and --no-scan are"); help || err != nil {
		return err
	}
	if st, err := os.Stat(opts.Root); err != nil || !st.IsDir() {
		return fmt.Errorf("--root %s: not a directory", opts.Root)
	}
	// Ctrl-C ends a long I2C scan or 1-Wire read with the report of what was found so far.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	r := probe.Run(ctx, opts)
	if *asJSON {
		return r.WriteJSON(stdout)
	}
	return r.WriteText(stdout)
}
