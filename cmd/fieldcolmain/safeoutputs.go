package fieldcolmain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/otelcol"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fieldcol/fieldcol/controlloop"
	"github.com/fieldcol/fieldcol/internal/hardware"
)

const safeOutputsCommand = "safe-outputs"

// configFlags collects repeated --config flags, in order, as the collector does.
type configFlags []string

func (c *configFlags) String() string { return strings.Join(*c, ", ") }

func (c *configFlags) Set(v string) error {
	*c = append(*c, v)
	return nil
}

// safeOutputs is `<binary> safe-outputs --config=...`: it resolves the configuration with
// the distribution's own config providers (so ${env:...} and ${host:...} mean what they
// mean to the collector) and drives every control loop's actuators to their safe state.
// systemd runs it as ExecStopPost after every exit of the service, crashes included.
func safeOutputs(ctx context.Context, args []string, set otelcol.CollectorSettings, reg *hardware.Registry, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(set.BuildInfo.Command+" "+safeOutputsCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var configs configFlags
	fs.Var(&configs, "config", "the collector's configuration, as --config takes it (a file path, file:, env:, yaml:); repeat to merge")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s %s --config=FILE [--config=...]\n\n"+
			"Drives every actuator of every controlloop extension (loops[].output.actuator and\n"+
			"output.enable) to its configured safe state, opening no sensor and starting no collector.\n"+
			"systemd runs it after every exit of the service. Exit status 1 names each actuator that\n"+
			"could not be driven, after every other one was tried.\n\n", set.BuildInfo.Command, safeOutputsCommand)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, args, "--config is"); help || err != nil {
		return err
	}
	if len(configs) == 0 {
		return errors.New("at least one --config is required (the service's, e.g. --config=/etc/fieldcol/config.yaml)")
	}
	// Warnings only (an unset variable, a scripted fault): journald stamps the time.
	enc := zap.NewDevelopmentEncoderConfig()
	enc.TimeKey = ""
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(stderr), zapcore.WarnLevel))

	// systemd tells ExecStopPost how the service ended; the journal should show it beside
	// what was driven.
	if r := os.Getenv("SERVICE_RESULT"); r != "" {
		fmt.Fprintf(stdout, "after the service ended: SERVICE_RESULT=%s EXIT_CODE=%s EXIT_STATUS=%s\n",
			r, os.Getenv("EXIT_CODE"), os.Getenv("EXIT_STATUS"))
	}

	rs := set.ConfigProviderSettings.ResolverSettings
	rs.URIs = configs
	if rs.DefaultScheme == "" {
		rs.DefaultScheme = "env" // what the collector's command sets
	}
	rs.ProviderSettings.Logger = log
	rs.ConverterSettings.Logger = log
	resolver, err := confmap.NewResolver(rs)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	conf, err := resolver.Resolve(ctx)
	if err != nil {
		return fmt.Errorf("reading --config %s: %w", configs.String(), err)
	}
	defer func() { _ = resolver.Shutdown(ctx) }()

	writes, err := controlloop.DriveSafe(ctx, conf, reg, log)
	ok, sim := 0, false
	for _, w := range writes {
		if w.Err != nil {
			continue
		}
		ok++
		sim = sim || w.Backend == hardware.BackendSim
		fmt.Fprintf(stdout, "%s: loop %q: %s (%s, %s) driven safe: %s\n", w.Extension, w.Loop, w.Device, w.Kind, w.Key, state(w))
	}
	switch {
	case len(writes) == 0 && err == nil:
		fmt.Fprintln(stdout, "nothing to drive: the configuration has no controlloop extension with a loop")
		return nil
	case sim:
		fmt.Fprintln(stdout, "backend sim: the simulated plant lives inside the collector's process; these writes went to a fresh plant of this process and change nothing")
	}
	fmt.Fprintf(stdout, "%d of %d actuators driven safe\n", ok, len(writes))
	return err
}

// state says what a safe write wrote, the way an operator reads it (a pin's logical
// level: active_low is the hardware layer's business).
func state(w controlloop.SafeWrite) string {
	if w.Kind == hardware.KindGPIOOutput {
		if w.Value >= 0.5 {
			return "on"
		}
		return "off"
	}
	return fmt.Sprintf("duty %g", w.Value)
}
