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

// probeMain runs the probe's cycles and prints, one cycle a line, its lateness and the
// runtime's part of it (ns): the wake-up minus the kernel's wake-up from the raw leg
// (schedule.Tick.Kernel), -1 when the cycle had no raw leg.
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
	// Allocated before the loop, as the loop's rings are.
	lateness, runtimePart := make([]int64, cycles), make([]int64, cycles)
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
			lateness[i], runtimePart[i] = t.Woke-t.Deadline, -1
			if t.Kernel != 0 {
				runtimePart[i] = t.Woke - t.Kernel
			}
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	for i, v := range lateness {
		fmt.Fprintln(w, v, runtimePart[i])
	}
	return w.Flush()
}

// probeFigures are the probe's lateness and, over the cycles with a raw leg, the runtime's
// part of it.
type probeFigures struct {
	lateness, runtime figures
}

// startProbe runs the probe for cycles of period beside the measurement; wait returns its
// figures.
func startProbe(period time.Duration, cycles int64, priority int) (wait func() (probeFigures, error), err error) {
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
	return func() (probeFigures, error) {
		defer cancel()
		if err := cmd.Wait(); err != nil {
			return probeFigures{}, fmt.Errorf("probe: %w: %s", err, stderr.String())
		}
		samples, runtimePart, err := parseProbe(stdout.Bytes())
		if err != nil {
			return probeFigures{}, err
		}
		if int64(len(samples)) != cycles {
			return probeFigures{}, fmt.Errorf("probe printed %d samples, ran %d cycles", len(samples), cycles)
		}
		f := probeFigures{lateness: stats(samples)}
		if len(runtimePart) > 0 {
			f.runtime = stats(runtimePart)
		}
		return f, nil
	}, nil
}

// parseProbe reads the probe's lines: the lateness, and the runtime's part of it (-1, left
// out, for a cycle without a raw leg).
func parseProbe(out []byte) (lateness, runtimePart []int64, err error) {
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, nil, fmt.Errorf("probe output %q: want lateness and the runtime's part", line)
		}
		var v [2]int64
		for i := range v {
			if v[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
				return nil, nil, fmt.Errorf("probe output %q: %w", line, err)
			}
		}
		lateness = append(lateness, v[0])
		if v[1] >= 0 {
			runtimePart = append(runtimePart, v[1])
		}
	}
	if len(lateness) == 0 {
		return nil, nil, errors.New("the probe printed no sample")
	}
	return lateness, runtimePart, nil
}
