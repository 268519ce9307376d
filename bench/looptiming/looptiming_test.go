package looptiming

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/fieldcol/fieldcol/controlloop/schedule"
	"github.com/fieldcol/fieldcol/internal/testproc"
)

// measuredLoop is the shipped config's fastest loop; cyclictest copies its period.
const measuredLoop = "conveyor"

// warmup lets the load reach a steady state before the window opens.
const warmup = 2 * time.Second

// duration is the measured time of each policy in the benchmark.
func duration() time.Duration {
	if v := os.Getenv("FIELDCOL_BENCH_DURATION"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d
		}
	}
	return 60 * time.Second
}

// policy is one side-by-side run: the loop with `realtime:` false or true, cyclictest with
// the matching policy.
type policy struct {
	name     string
	realtime bool
}

// policies are SCHED_OTHER, and SCHED_FIFO when this process may use it (root or
// CAP_SYS_NICE; the edge it starts inherits that).
func policies() []policy {
	ps := []policy{{"SCHED_OTHER", false}}
	ok := make(chan bool)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread exits with the goroutine, priority and all
		ok <- schedule.FIFO(1) == nil
	}()
	if <-ok {
		ps = append(ps, policy{"SCHED_FIFO", true})
	}
	return ps
}

// run is one window of both measurements.
type run struct {
	timing     loopTiming
	realtime   bool
	loop       figures   // the edge's histogram, bucket upper bounds
	cyclic     figures   // cyclictest's samples, exact
	probe      figures   // a Go loop thread in a process of its own, exact
	probeRT    figures   // the runtime's part of the probe's lateness (after the kernel woke it)
	loopRT     figures   // the runtime's part of the loop's lateness, from the edge's histogram
	hist       histogram // the loop's window
	fifo       int       // edge threads at SCHED_FIFO with the loop's priority
	load       loadStats
	cyclicArgs []string
	gc         *gcSummary // with GODEBUG=gctrace=1 in FIELDCOL_LOOPTIMING_EDGE_ENV
}

// measure starts the edge with realtime, puts the OTLP load on it, and runs cyclictest for
// d with the same policy. The loop's window is the difference of two scrapes of the edge's
// exposition, each taken right after the hardware receiver collected the loop's metrics:
// the first just before cyclictest starts, the second once the loop has counted at least
// as many cycles as cyclictest did, so the loop's window covers cyclictest's, both under
// the same load.
func measure(tb testing.TB, realtime bool, d time.Duration) run {
	tb.Helper()
	cyclictest := testproc.LookPath(tb, "cyclictest", "Debian package rt-tests; scripts/ensure-debs.sh installs it")
	cfg, err := os.ReadFile(shippedConfig(tb))
	if err != nil {
		tb.Fatal(err)
	}
	lt, err := timingOf(cfg, measuredLoop)
	if err != nil {
		tb.Fatal(err)
	}
	r := run{timing: lt, realtime: realtime}
	prio := 0
	if realtime {
		prio = lt.priority
	}

	e := startEdge(tb, realtime)
	client := &http.Client{Timeout: 5 * time.Second}
	url := "http://" + e.metrics + "/metrics"
	scrape := func(what string, done func(histogram) bool) scraped {
		tb.Helper()
		s, err := waitScrape(client, url, e.proc, done, 60*time.Second)
		if err != nil {
			tb.Fatalf("%s: %v\n----- log of the edge -----\n%s", what, err, e.proc.Log())
		}
		return s
	}
	scrape("the loop's lateness in the exposition", func(h histogram) bool { return h.count() > 0 })
	if realtime {
		if r.fifo, err = fifoThreads(e.proc.Pid(), prio); err != nil {
			tb.Fatal(err)
		}
		if r.fifo == 0 {
			tb.Fatalf("no thread of the edge runs SCHED_FIFO at %d: `realtime: true` did not take effect\n%s", prio, e.proc.Log())
		}
	}

	ld, err := startLoad(e)
	if err != nil {
		tb.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			ld.stop()
		}
	}()
	time.Sleep(warmup)
	prev := scrape("a scrape under load", func(histogram) bool { return true })
	before := scrape("a fresh collection before cyclictest", func(h histogram) bool { return h.count() != prev.lateness.count() })
	from := time.Since(e.started)

	r.cyclicArgs = cyclictestArgs(lt.period, d, prio)
	waitProbe, err := startProbe(lt.period, cycles(lt.period, d), prio)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	r.cyclic, err = runCyclictest(ctx, cyclictest, r.cyclicArgs)
	cancel()
	if err != nil {
		tb.Fatal(err)
	}
	pf, err := waitProbe()
	if err != nil {
		tb.Fatal(err)
	}
	r.probe, r.probeRT = pf.lateness, pf.runtime
	after := scrape("the loop's cycles of cyclictest's window", func(h histogram) bool {
		return h.count() >= before.lateness.count()+uint64(r.cyclic.n)
	})
	to := time.Since(e.started)
	r.load = ld.stop()
	stopped = true
	if strings.Contains(os.Getenv("FIELDCOL_LOOPTIMING_EDGE_ENV"), "gctrace=1") {
		g, err := parseGCTrace(e.proc.Log(), from, to)
		if err != nil {
			tb.Fatal(err)
		}
		r.gc = &g
	}
	if r.hist, err = after.lateness.since(before.lateness); err != nil {
		tb.Fatal(err)
	}
	if after.runtime.count() > 0 && before.runtime.count() > 0 {
		rt, err := after.runtime.since(before.runtime)
		if err != nil {
			tb.Fatal(err)
		}
		r.loopRT = rt.figures()
	}
	if err := e.proc.Stop(20 * time.Second); err != nil {
		tb.Errorf("the edge did not stop cleanly: %v", err)
	}
	r.loop = r.hist.figures()
	return r
}

// waitScrape scrapes url until the lateness histogram of the measured loop satisfies done.
func waitScrape(client *http.Client, url string, p *testproc.Process, done func(histogram) bool, timeout time.Duration) (scraped, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p.Exited() {
			return scraped{}, errors.New("the edge exited")
		}
		s, err := scrapeLateness(client, url, measuredLoop)
		if err == nil && done(s.lateness) {
			return s, nil
		}
		if err != nil {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return scraped{}, fmt.Errorf("not within %s (last error: %v)", timeout, last)
}

// ns formats a lateness; MaxInt64 is the +Inf bucket.
func ns(v int64) string {
	switch {
	case v == math.MaxInt64:
		return "> 10 s"
	case v < 1_000_000:
		return fmt.Sprintf("%.0f µs", float64(v)/1e3)
	default:
		return fmt.Sprintf("%.2f ms", float64(v)/1e6)
	}
}

func ratio(loop, cyclic int64) string {
	if loop == math.MaxInt64 || cyclic <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("≤ %.2f", float64(loop)/float64(cyclic))
}

func exact(a, b int64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(a)/float64(b))
}

// table is the run as Markdown rows: the loop's figures are the upper bounds of the
// histogram buckets that hold them (the true value is at most that); cyclictest's are exact,
// with the loop's bucket they fall in; the ratios divide the first by the second.
func (r run) table() []string {
	pol, rt := "SCHED_OTHER", "false"
	if r.realtime {
		pol, rt = fmt.Sprintf("SCHED_FIFO %d", r.timing.priority), "true"
	}
	in := func(v int64) string { return fmt.Sprintf("%s (≤ %s)", ns(v), ns(r.hist.bucketOf(v))) }
	return []string{
		fmt.Sprintf("| %s loop, `realtime: %s` (histogram) | %d | ≤ %s | ≤ %s | ≤ %s |", measuredLoop, rt, r.loop.n, ns(r.loop.p50), ns(r.loop.p99), ns(r.loop.max)),
		fmt.Sprintf("| cyclictest, %s, %s period | %d | %s | %s | %s |", pol, r.timing.period, r.cyclic.n, in(r.cyclic.p50), in(r.cyclic.p99), in(r.cyclic.max)),
		fmt.Sprintf("| ratio loop / cyclictest | | %s | %s | %s |", ratio(r.loop.p50, r.cyclic.p50), ratio(r.loop.p99, r.cyclic.p99), ratio(r.loop.max, r.cyclic.max)),
		fmt.Sprintf("| Go loop thread in a process of its own (probe), %s | %d | %s | %s | %s |", pol, r.probe.n, in(r.probe.p50), in(r.probe.p99), in(r.probe.max)),
		fmt.Sprintf("| ratio probe / cyclictest | | %s | %s | %s |", exact(r.probe.p50, r.cyclic.p50), exact(r.probe.p99, r.cyclic.p99), exact(r.probe.max, r.cyclic.max)),
	}
}

// extra names the knobs of the run and what gctrace saw, when they were used.
func (r run) extra() string {
	var out string
	if o := os.Getenv("FIELDCOL_LOOPTIMING_OVERLAY"); o != "" {
		out += "; overlay " + o
	}
	if env := os.Getenv("FIELDCOL_LOOPTIMING_EDGE_ENV"); env != "" {
		out += "; edge environment " + env
	}
	if r.gc != nil {
		out += "; " + r.gc.String()
	}
	return out
}

// exceedance is the share of cycles later than each of exceedBounds, as Markdown rows.
func (r run) exceedance() string {
	var b strings.Builder
	b.WriteString("| later than |")
	for _, v := range exceedBounds {
		fmt.Fprintf(&b, " %s |", ns(v))
	}
	b.WriteString("\n| --- |" + strings.Repeat(" ---: |", len(exceedBounds)) + "\n")
	row := func(name string, f figures) {
		fmt.Fprintf(&b, "| %s |", name)
		for _, o := range f.over {
			if o < 0 || f.n == 0 {
				b.WriteString(" n/a |")
				continue
			}
			fmt.Fprintf(&b, " %.2f%% |", 100*float64(o)/float64(f.n))
		}
		b.WriteString("\n")
	}
	row(measuredLoop+" loop", r.loop)
	row(measuredLoop+" loop, runtime's part (wake-up minus the kernel's)", r.loopRT)
	row("cyclictest", r.cyclic)
	row("probe", r.probe)
	row("probe, runtime's part (wake-up minus the kernel's)", r.probeRT)
	return strings.TrimSuffix(b.String(), "\n")
}

const tableHeader = "| | cycles | p50 | p99 | max |\n| --- | ---: | ---: | ---: | ---: |"

func BenchmarkLoopTiming(b *testing.B) {
	d := duration()
	for _, p := range policies() {
		b.Run(p.name, func(b *testing.B) {
			var r run
			for b.Loop() {
				r = measure(b, p.realtime, d)
			}
			us := func(v int64) float64 { return float64(v) / 1e3 }
			b.ReportMetric(us(r.loop.p50), "loop-p50-µs")
			b.ReportMetric(us(r.loop.p99), "loop-p99-µs")
			b.ReportMetric(us(r.loop.max), "loop-max-µs")
			b.ReportMetric(us(r.cyclic.p50), "cyclictest-p50-µs")
			b.ReportMetric(us(r.cyclic.p99), "cyclictest-p99-µs")
			b.ReportMetric(us(r.cyclic.max), "cyclictest-max-µs")
			b.ReportMetric(us(r.probe.p99), "probe-p99-µs")
			b.ReportMetric(us(r.probe.max), "probe-max-µs")
			b.ReportMetric(float64(r.loop.p99)/float64(r.cyclic.p99), "p99-ratio")
			b.ReportMetric(float64(r.loop.max)/float64(r.cyclic.max), "max-ratio")
			b.ReportMetric(r.load.spansPerSec, "spans/s")
			b.ReportMetric(r.load.logsPerSec, "logs/s")
			// On stdout: the testing package cuts a benchmark's log after ten lines.
			fmt.Printf("\n%s under %s; cyclictest %s%s\n\n%s\n%s\n\n%s\n\n", p.name, r.load, strings.Join(r.cyclicArgs, " "), r.extra(), tableHeader, strings.Join(r.table(), "\n"), r.exceedance())
		})
	}
}

// TestSideBySide is the short form that make test runs: a few seconds per policy, checking
// that both sides produced figures from the same window, that the load reached the edge,
// and that the exposition resolves lateness finely enough to compare; nothing about time.
func TestSideBySide(t *testing.T) {
	for _, p := range policies() {
		t.Run(p.name, func(t *testing.T) {
			r := measure(t, p.realtime, 3*time.Second)
			assert.Positive(t, r.cyclic.n, "cyclictest samples")
			assert.Positive(t, r.probe.n, "probe samples")
			assert.Positive(t, r.loop.n, "cycles the edge's histogram counted in cyclictest's window")
			assert.GreaterOrEqual(t, r.loop.n, r.cyclic.n, "the loop's window covers cyclictest's")
			assert.NoError(t, resolution(r.hist.bounds[:len(r.hist.bounds)-1]), "lateness buckets of the exposition")
			assert.Positive(t, r.load.spansPerSec, "spans accepted: %s", r.load)
			assert.Positive(t, r.load.logsPerSec, "logs accepted: %s", r.load)
			if p.realtime {
				assert.Positive(t, r.fifo, "edge threads at the loop's SCHED_FIFO priority")
			}
			t.Logf("%s\n%s\n%s\n\n%s", r.load, tableHeader, strings.Join(r.table(), "\n"), r.exceedance())
		})
	}
}
