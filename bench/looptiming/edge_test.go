package looptiming

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fieldcol/fieldcol/controlloop"
	"github.com/fieldcol/fieldcol/internal/testproc"
)

// repoRoot is the repository's top directory, two levels up from this package.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// edgeBinary is the built edge. Nothing here builds it (make bench and make e2e do): when it
// is missing the run is skipped on a developer's machine and fails under CI.
// FIELDCOL_LOOPTIMING_EDGE_BIN names another build (an older one, for a side-by-side).
func edgeBinary(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(repoRoot(tb), "bin", "fieldcol-edge")
	if b := os.Getenv("FIELDCOL_LOOPTIMING_EDGE_BIN"); b != "" {
		p = b
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s is not built (make bin/fieldcol-edge): %v", p, err)
		}
		tb.Skipf("%s is not built (make bin/fieldcol-edge): %v", p, err)
	}
	return p
}

// shippedConfig is the edge config operators start from.
func shippedConfig(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(repoRoot(tb), "distributions", "edge", "config.yaml")
}

// loopTiming is what cyclictest must copy from the shipped config: the measured loop's
// period and the SCHED_FIFO priority `realtime: true` gives it.
type loopTiming struct {
	period   time.Duration
	priority int
}

// timingOf reads loop's period and the realtime priority from the controlloop extension
// of config (the default priority when the config leaves it out).
func timingOf(config []byte, loop string) (loopTiming, error) {
	var doc struct {
		Extensions map[string]struct {
			RealtimePriority *int `yaml:"realtime_priority"`
			Loops            []struct {
				Name   string `yaml:"name"`
				Period string `yaml:"period"`
			} `yaml:"loops"`
		} `yaml:"extensions"`
	}
	if err := yaml.Unmarshal(config, &doc); err != nil {
		return loopTiming{}, fmt.Errorf("parsing the edge config: %w", err)
	}
	ext, ok := doc.Extensions["controlloop"]
	if !ok {
		return loopTiming{}, errors.New("the edge config has no controlloop extension")
	}
	lt := loopTiming{priority: controlloop.NewFactory().CreateDefaultConfig().(*controlloop.Config).RealtimePriority}
	if ext.RealtimePriority != nil {
		lt.priority = *ext.RealtimePriority
	}
	for _, l := range ext.Loops {
		if l.Name != loop {
			continue
		}
		d, err := time.ParseDuration(l.Period)
		if err != nil {
			return loopTiming{}, fmt.Errorf("loop %s: period %q: %w", loop, l.Period, err)
		}
		lt.period = d
		return lt, nil
	}
	return loopTiming{}, fmt.Errorf("the edge config has no loop %q", loop)
}

// edge is a running fieldcol-edge with the shipped config on free loopback ports.
type edge struct {
	proc                             *testproc.Process
	otlpGRPC, otlpHTTP, metrics, api string
	started                          time.Time // about when the process started (gctrace's @ times count from it)
}

// startEdge runs the built edge with the shipped config. The variables are the ones the
// config reads (its header lists them); realtime sets FIELDCOL_REALTIME, which is the
// config's `realtime:` key. The hardware receiver collects the loops' metrics every second
// instead of five, so that the loop's window (two scrapes) ends within a second of
// cyclictest's; it also reads its four sim sensors that often, a load too small to matter
// next to the OTLP load.
func startEdge(tb testing.TB, realtime bool) *edge {
	tb.Helper()
	bin, config := edgeBinary(tb), shippedConfig(tb)
	e := &edge{}
	e.proc = testproc.Retry(tb, func(ports *testproc.Ports) (*testproc.Process, error) {
		health := ports.Addr()
		*e = edge{otlpGRPC: ports.Addr(), otlpHTTP: ports.Addr(), metrics: ports.Addr(), api: ports.Addr()}
		state := tb.TempDir()
		env := []string{
			"FIELDCOL_OTLP_GRPC_ENDPOINT=" + e.otlpGRPC,
			"FIELDCOL_OTLP_HTTP_ENDPOINT=" + e.otlpHTTP,
			"FIELDCOL_HEALTH_ENDPOINT=" + health,
			"FIELDCOL_METRICS_ENDPOINT=" + e.metrics,
			"FIELDCOL_TELEMETRY_PORT=" + strconv.Itoa(ports.Port()),
			"FIELDCOL_API_ENDPOINT=" + e.api,
			"FIELDCOL_API_TOKEN=looptiming-bench-token",
			"FIELDCOL_LATCH_FILE=" + filepath.Join(state, "latches.json"),
			"FIELDCOL_DISKQUEUE_DIR=" + filepath.Join(state, "diskqueue"),
			"FIELDCOL_REALTIME=" + strconv.FormatBool(realtime),
			"FIELDCOL_HW_INTERVAL=1s",
		}
		args := []string{"--config", config}
		// Knobs for finding what causes lateness, never set by make: an extra config merged
		// over the shipped one (e.g. controlloop's precise_window) and extra environment for
		// the edge alone (GOGC, GOMEMLIMIT, GOMAXPROCS, GODEBUG=gctrace=1).
		if o := os.Getenv("FIELDCOL_LOOPTIMING_OVERLAY"); o != "" {
			args = append(args, "--config", o)
		}
		env = append(env, strings.Fields(os.Getenv("FIELDCOL_LOOPTIMING_EDGE_ENV"))...)
		e.started = time.Now()
		p := testproc.Start(tb, bin, args, env...)
		return p, testproc.WaitHTTPErr(p, "http://"+health+"/", 60*time.Second)
	})
	return e
}

// fifoThreads counts the process's threads that run SCHED_FIFO at priority, from
// /proc/<pid>/task/*/stat (fields 40 and 41: rt_priority and policy).
func fifoThreads(pid, priority int) (int, error) {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		return 0, fmt.Errorf("listing the threads of %d: %v", pid, err)
	}
	n := 0
	for _, p := range stats {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue // the thread exited
		}
		prio, policy, err := schedOf(string(raw))
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p, err)
		}
		if policy == 1 && prio == priority { // 1 = SCHED_FIFO in <linux/sched.h>
			n++
		}
	}
	return n, nil
}

// schedOf returns rt_priority and policy from one line of /proc/<pid>/task/<tid>/stat.
// The command name (field 2) may hold spaces and parentheses: fields are counted from the
// last ')'.
func schedOf(stat string) (prio, policy int, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, errors.New("no ')' after the command name")
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3
	if len(f) < 39 {
		return 0, 0, fmt.Errorf("%d fields after the command name, want at least 39", len(f))
	}
	if prio, err = strconv.Atoi(f[40-3]); err != nil {
		return 0, 0, fmt.Errorf("rt_priority: %w", err)
	}
	if policy, err = strconv.Atoi(f[41-3]); err != nil {
		return 0, 0, fmt.Errorf("policy: %w", err)
	}
	return prio, policy, nil
}
