package fieldcolmain

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fieldcol/fieldcol/internal/drain"
)

const drainCommand = "drain"

// drainMain is `<binary> drain [--metrics URL] [--quiet D] [--timeout D]`: the gateway
// chart's preStop hook. The pod has left its Service's endpoints, so no new data comes; it
// waits until the running collector's exporter queues are empty and its receivers were quiet
// for --quiet (a sampler: longer than decision_wait), then the kubelet sends SIGTERM. What
// is still queued at --timeout stays on the pod's volume for the next pod of that ordinal.
func drainMain(args []string, command string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(command+" "+drainCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	host, port := getenv("FIELDCOL_TELEMETRY_HOST"), getenv("FIELDCOL_TELEMETRY_PORT")
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "8888"
	}
	var o drain.Options
	fs.StringVar(&o.MetricsURL, "metrics", "http://"+host+":"+port+"/metrics",
		"the collector's own metrics (default from FIELDCOL_TELEMETRY_HOST and FIELDCOL_TELEMETRY_PORT)")
	fs.DurationVar(&o.Quiet, "quiet", 5*time.Second, "how long the receivers must accept nothing")
	fs.DurationVar(&o.Interval, "interval", time.Second, "time between two looks at the metrics")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long (keep it below terminationGracePeriodSeconds)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s %s [--metrics URL] [--quiet 5s] [--interval 1s] [--timeout 5m]\n\n"+
			"Waits until the collector that serves --metrics has emptied its exporters' queues\n"+
			"(otelcol_exporter_queue_size) and its receivers accepted nothing for --quiet. Run it\n"+
			"as a preStop hook once the pod receives no new data. Exit status 0 when drained, 1\n"+
			"at --timeout or for a bad command line or an endpoint without those metrics.\n\n", command, drainCommand)
		fs.PrintDefaults()
	}
	if help, err := parseFlags(fs, args, "--metrics, --quiet, --interval and --timeout are"); help || err != nil {
		return err
	}
	if o.Interval <= 0 || o.Quiet < 0 || *timeout <= 0 {
		return fmt.Errorf("--interval and --timeout must be positive and --quiet not negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	start := time.Now()
	var last drain.State
	err := drain.Wait(ctx, o, func(s drain.State) { last = s })
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "drained in %s: queues empty, %g items accepted in all\n", time.Since(start).Round(time.Second), last.Accepted)
	return nil
}
