package looptiming

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldcol/fieldcol/controlloop/schedule"
)

// The probe is a Go loop thread in a process of its own: this test binary, executed again,
// runs the loop's scheduler (schedule.Ticker on a locked thread, SCHED_FIFO and mlockall
// through schedule.Realtime when a priority is given, the loop's default precise window) and
// nothing else. Beside the loop in the loaded edge and cyclictest, it shows what moving the
// loops into a process of their own would give: the same Go runtime, without the
// collector's goroutines and garbage in it.
const (
	probePeriodEnv   = "FIELDCOL_LOOPTIMING_PROBE_PERIOD"
	probeCyclesEnv   = "FIELDCOL_LOOPTIMING_PROBE_CYCLES"
	probePriorityEnv = "FIELDCOL_LOOPTIMING_PROBE_PRIORITY"
	// probeWindowEnv, when set by whoever runs the benchmark, is the probe's precise window
	// instead of the loop's default: 0s sleeps all the way in a plain syscall.
	probeWindowEnv = "FIELDCOL_LOOPTIMING_PROBE_WINDOW"
	// probeAllFIFOEnv, when set, runs every thread of the probe's process at SCHED_FIFO
	// (chrt), as a loop process of its own could be started.
	probeAllFIFOEnv = "FIELDCOL_LOOPTIMING_PROBE_ALL_FIFO"
	// probeYieldEnv, when set, makes the probe's ticker yield at the start of its precise
	// window (schedule.Options.Yield, the loop's yield_before_precise_window).
	probeYieldEnv = "FIELDCOL_LOOPTIMING_PROBE_YIELD"
)

func TestMain(m *testing.M) {
	if os.Getenv(probePeriodEnv) != "" {
		if err := probeMain(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// probeMain runs the probe's cycles and prints one lateness (ns) a line.
func probeMain(out *os.File) error {
	period, err := time.ParseDuration(os.Getenv(probePeriodEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", probePeriodEnv, err)
	}
	cycles, err := strconv.Atoi(os.Getenv(probeCyclesEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", probeCyclesEnv, err)
	}
	prio, err := strconv.Atoi(os.Getenv(probePriorityEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", probePriorityEnv, err)
	}
	lateness := make([]int64, cycles) // allocated before the loop, as the loop's rings are
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // not unlocked: a SCHED_FIFO thread exits with its goroutine
		if prio > 0 {
			if err := schedule.Realtime(prio); err != nil {
				done <- err
				return
			}
		}
		// Half a period out of phase with cyclictest, which starts with it: two threads of
		// the same priority waking at the same instant on one CPU would delay each other.
		schedule.SleepUntil(schedule.Now() + int64(period/2))
		opts := schedule.Options{Window: schedule.DefaultPreciseWindow, Yield: os.Getenv(probeYieldEnv) != ""}
		var err error
		if w := os.Getenv(probeWindowEnv); w != "" {
			opts.Window, err = time.ParseDuration(w)
		}
		var tk *schedule.Ticker
		if err == nil {
			tk, err = schedule.NewTickerOptions(period, opts)
		}
		if err != nil {
			done <- err
			return
		}
		for i := range lateness {
			t := tk.Wait()
			lateness[i] = t.Woke - t.Deadline
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	for _, v := range lateness {
		fmt.Fprintln(w, v)
	}
	return w.Flush()
}

// startProbe runs the probe for cycles of period beside the measurement; wait returns its
// figures.
func startProbe(period time.Duration, cycles int64, priority int) (wait func() (figures, error), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cycles+1)*period+time.Minute)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, self)
	if os.Getenv(probeAllFIFOEnv) != "" && priority > 0 {
		// Every thread of the probe's runtime at the loop's priority, not only the loop's:
		// chrt sets the policy before the runtime starts its threads, which inherit it.
		cmd = exec.CommandContext(ctx, "chrt", "-f", strconv.Itoa(priority), self)
	}
	cmd.Env = append(os.Environ(), probePeriodEnv+"="+period.String(),
		probeCyclesEnv+"="+strconv.FormatInt(cycles, 10), probePriorityEnv+"="+strconv.Itoa(priority))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("starting the probe: %w", err)
	}
	return func() (figures, error) {
		defer cancel()
		if err := cmd.Wait(); err != nil {
			return figures{}, fmt.Errorf("probe: %w: %s", err, stderr.String())
		}
		samples, err := parseProbe(stdout.Bytes())
		if err != nil {
			return figures{}, err
		}
		if int64(len(samples)) != cycles {
			return figures{}, fmt.Errorf("probe printed %d samples, ran %d cycles", len(samples), cycles)
		}
		return stats(samples), nil
	}, nil
}

func parseProbe(out []byte) ([]int64, error) {
	var samples []int64
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		v, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("probe output %q: %w", line, err)
		}
		samples = append(samples, v)
	}
	if len(samples) == 0 {
		return nil, errors.New("the probe printed no sample")
	}
	return samples, nil
}
