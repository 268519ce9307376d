package sloburnprocessor

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fieldcol/fieldcol/internal/testproc"
)

// The SLO that Sloth v0.16.0 generates rules for, the same as ovenConfig's: 99.5% of the oven
// loop's cycles on time, the workbook's windows and alerts.
const slothSpec = `version: "prometheus/v1"
service: "fieldcol"
slos:
  - name: "oven-deadline"
    objective: 99.5
    sli:
      events:
        error_query: sum(rate(controlloop_cycles_total{loop="oven",outcome=~"overrun|skipped"}[{{.window}}]))
        total_query: sum(rate(controlloop_cycles_total{loop="oven"}[{{.window}}]))
    alerting:
      name: OvenDeadlineBurn
      page_alert:
        labels:
          severity: page
      ticket_alert:
        labels:
          severity: ticket
`

// peerWindows are Sloth's windows, which are the workbook's; the page reads four of them,
// the ticket four others.
var (
	peerWindows   = []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour}
	pageWindows   = []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 6 * time.Hour}
	ticketWindows = []time.Duration{2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour}
)

type restartKind int

const (
	restartClean     restartKind = iota // shutdown, checkpoint, start with the storage
	restartCrash                        // kill -9: the storage holds an older checkpoint
	restartNoStorage                    // no storage: the new processor starts empty
)

func (k restartKind) String() string {
	return [...]string{"clean", "crash", "no-storage"}[k]
}

// restart takes the processor down after minute at (crash: its last checkpoint was written
// at minute checkpoint) and up again at minute at+down.
type restart struct {
	kind             restartKind
	at, down         int
	checkpoint       int
	lastBefore, next int // the last sample the restored state holds, the first after
}

// peerScenario is one randomized story, sampled once a minute.
type peerScenario struct {
	seed     uint64
	minutes  int
	skew     time.Duration // of the source's clock against the processor's and Prometheus'
	present  []bool        // a sample at this minute (false: a gap)
	values   [][3]float64  // cumulative ok, overrun, skipped at each minute
	resets   map[int]bool  // the source restarted just before this minute
	restarts []restart
	story    []string
}

func newPeerScenario(seed uint64) *peerScenario {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	sc := &peerScenario{seed: seed, minutes: 26*60 + r.IntN(4*60), resets: map[int]bool{}}
	switch r.IntN(3) {
	case 1:
		sc.skew = time.Hour
	case 2:
		sc.skew = -time.Hour
	}
	rate := 400 + float64(r.IntN(1200))
	base := 0.005 * 2 * r.Float64() // a steady burn of 0 to 2x
	badAt := make([]float64, sc.minutes+1)
	for m := range badAt {
		badAt[m] = base
	}
	sc.story = append(sc.story, fmt.Sprintf("%.0f cycles/min, steady %.2fx, clock %v", rate, base/0.005, sc.skew))
	var bursts [][2]int
	for range 1 + r.IntN(5) {
		start, length, frac := r.IntN(sc.minutes), 2+r.IntN(120), 0.01+0.5*r.Float64()
		for m := start; m < min(start+length, sc.minutes+1); m++ {
			badAt[m] = max(badAt[m], frac)
		}
		bursts = append(bursts, [2]int{start, length})
		sc.story = append(sc.story, fmt.Sprintf("burst %.0f%% at %d for %dm", frac*100, start, length))
	}
	sc.present = make([]bool, sc.minutes+1)
	for m := range sc.present {
		sc.present[m] = true
	}
	for range 1 + r.IntN(4) {
		start, length := 1+r.IntN(sc.minutes-1), 1+r.IntN(20)
		if r.IntN(2) == 0 {
			// Around a burst, where a gap's increase weighs on the ratio.
			b := bursts[r.IntN(len(bursts))]
			start = min(max(b[0]+r.IntN(b[1]+20)-10, 1), sc.minutes-1)
		}
		for m := start; m < min(start+length, sc.minutes); m++ {
			sc.present[m] = false
		}
		sc.story = append(sc.story, fmt.Sprintf("gap at %d for %dm", start, length))
	}
	for range r.IntN(3) {
		m := 1 + r.IntN(sc.minutes)
		sc.resets[m] = true
		sc.story = append(sc.story, fmt.Sprintf("source restart at %d", m))
	}
	// Processor restarts, apart from each other by more than their downtime.
	next := 60
	for range r.IntN(3) {
		at := next + r.IntN(sc.minutes/3)
		down := 1 + r.IntN(20)
		if at+down+30 >= sc.minutes {
			break
		}
		rs := restart{kind: restartKind(r.IntN(3)), at: at, down: down, checkpoint: at}
		if len(sc.restarts) > 0 && sc.restarts[len(sc.restarts)-1].kind == restartNoStorage {
			rs.kind = restartNoStorage // a processor without storage restarts without
		}
		if rs.kind == restartCrash {
			rs.checkpoint = at - 1 - r.IntN(10)
		}
		sc.restarts = append(sc.restarts, rs)
		sc.story = append(sc.story, fmt.Sprintf("%v restart at %d, down %dm", rs.kind, at, down))
		next = at + down + 30
	}

	// The source ran before: counters far above one burst, so that Prometheus sees each of
	// its restarts as a drop.
	v := [3]float64{5e7, 2e6, 1e6}
	sc.values = make([][3]float64, sc.minutes+1)
	for m := 0; m <= sc.minutes; m++ {
		if sc.resets[m] {
			v = [3]float64{}
		}
		if m > 0 {
			bad := math.Round(rate * badAt[m])
			overrun := math.Round(bad * r.Float64())
			v[0] += rate - bad
			v[1] += overrun
			v[2] += bad - overrun
		}
		sc.values[m] = v
	}
	for i := range sc.restarts {
		rs := &sc.restarts[i]
		rs.lastBefore = -1
		for m := rs.checkpoint; m >= 0; m-- {
			if sc.present[m] {
				rs.lastBefore = m
				break
			}
		}
		rs.next = sc.minutes + 1
		for m := rs.at + rs.down; m <= sc.minutes; m++ {
			if sc.present[m] {
				rs.next = m
				break
			}
		}
	}
	return sc
}

// peerEmit is what the processor emitted at one minute.
type peerEmit struct {
	up       bool
	ratio    map[time.Duration]float64
	coverage map[time.Duration]float64
	page     bool
	ticket   bool
}

// run drives the processor through the scenario on its own clock.
func (sc *peerScenario) run(t *testing.T) []peerEmit {
	cfg := ovenConfig()
	cfg.EmitInterval = time.Minute
	cfg.Storage = &storageID
	mem := &memStorage{values: map[string][]byte{}}
	at := func(m int) time.Time { return epoch.Add(time.Duration(m) * time.Minute) }
	srcStart := epoch.Add(-24 * time.Hour)
	open := func(m int, storage bool) *harness {
		c := *cfg
		if !storage {
			c.Storage = nil
		}
		h := newHarnessAt(t, &c, at(m))
		if storage {
			require.NoError(t, h.p.start(context.Background(), hostWith{storageID: mem}))
			// The test emits by hand, on its own clock.
			close(h.p.stop)
			<-h.p.done
			h.p.stop = nil
		}
		return h
	}
	h := open(0, true)
	// Prometheus' range covers the time before its first sample as the processor's windows
	// cover the time before its start: neither saw anything there.
	h.p.origin = epoch.Add(-80 * time.Hour).UnixNano()
	emits := make([]peerEmit, sc.minutes+1)
	down := -1 // the restart the processor is down for
	for m := 0; m <= sc.minutes; m++ {
		h.clk.t = at(m)
		if down >= 0 {
			rs := sc.restarts[down]
			if m < rs.at+rs.down {
				continue
			}
			h = open(m, rs.kind != restartNoStorage)
			down = -1
		}
		if sc.resets[m] {
			srcStart = at(m).Add(-time.Second)
		}
		if sc.present[m] {
			v := sc.values[m]
			h.proc(counter("controlloop.cycles", pmetric.AggregationTemporalityCumulative, srcStart.Add(sc.skew), at(m).Add(sc.skew), nil,
				sample{attrsOf("loop", "oven", "outcome", "ok"), v[0]},
				sample{attrsOf("loop", "oven", "outcome", "overrun"), v[1]},
				sample{attrsOf("loop", "oven", "outcome", "skipped"), v[2]}))
		}
		md := h.p.collect(at(m))
		e := peerEmit{up: true, ratio: map[time.Duration]float64{}, coverage: map[time.Duration]float64{}}
		if md.DataPointCount() > 0 {
			for _, w := range peerWindows {
				e.ratio[w] = burnRate(t, md, "oven-deadline", windowLabel(w)) * (1 - 0.995)
				e.coverage[w] = value(t, md, metricCoverage, attrsOf("slo", "oven-deadline", "window", windowLabel(w)))
			}
			e.page = alertOf(t, md, "oven-deadline", "page") == 1
			e.ticket = alertOf(t, md, "oven-deadline", "ticket") == 1
		} else {
			e.up = false // no series yet: nothing was emitted
		}
		emits[m] = e
		for i, rs := range sc.restarts {
			if rs.checkpoint == m && rs.kind == restartCrash {
				h.p.saveCheckpoint(context.Background())
			}
			if rs.at != m {
				continue
			}
			switch rs.kind {
			case restartClean:
				require.NoError(t, h.p.shutdown(context.Background()))
			case restartCrash: // nothing more reaches the storage
			case restartNoStorage:
				require.NoError(t, h.p.shutdown(context.Background()))
				mem.values = map[string][]byte{}
			}
			down = i
		}
	}
	return emits
}

// comparable says whether window w at minute t must agree with Prometheus:
//   - the processor emitted at t and its window is covered;
//   - Prometheus' range [t-w, t] holds two samples at least (else rate() has no value);
//   - when the range starts in a gap, Prometheus extrapolates the first sample's rate to the
//     range's start by the same factor on every stream, which leaves the ratio alone, unless
//     a counter is small against its increase (after a source restart), where rate() stops
//     the extrapolation at zero per stream: those instants are left out;
//   - the range does not start between the last sample a processor restart restored and the
//     first after it (the processor then holds the outage's increase at the sample before
//     it, Prometheus spreads it over the samples it scraped meanwhile), and does not span an
//     outage during which the source restarted (the processor sees only what the source
//     counted since its restart).
func (sc *peerScenario) comparable(emits []peerEmit, w time.Duration, t int) bool {
	if t < 0 || t > sc.minutes || !emits[t].up || emits[t].coverage[w] < 1 {
		return false
	}
	s := t - int(w/time.Minute)
	samples := 0
	for m := max(s, 0); m <= t && samples < 2; m++ {
		if sc.present[m] {
			samples++
		}
	}
	if samples < 2 {
		return false
	}
	if s >= 0 && !sc.present[s] {
		for m := range sc.resets {
			if m <= t {
				return false
			}
		}
	}
	for _, rs := range sc.restarts {
		if rs.kind != restartNoStorage && rs.lastBefore < s && s < rs.next {
			return false
		}
		// The source restarted while the processor was down: the processor sees only what it
		// counted since, Prometheus also what it counted before, up to its restart.
		if rs.kind != restartNoStorage && s <= rs.lastBefore && t >= rs.next {
			for m := range sc.resets {
				if rs.lastBefore < m && m <= rs.next {
					return false
				}
			}
		}
	}
	return true
}

// TestBurnRatesAgreeWithSloth feeds randomized scenarios (steady burns, bursts at random
// instants, source restarts, gaps, processor restarts with and without storage, a source
// clock an hour ahead or behind) to the processor and, as series, to promtool with the rules
// Sloth v0.16.0 generates for the same SLO. At every minute where a window is comparable
// (see comparable) the error ratios agree within 1%, and each severity's alert agrees at
// every minute that is more than one evaluation from a change of the processor's state (so
// alerts start and end within one evaluation interval of Sloth's).
// FIELDCOL_SLOTH_SEED=<n> replays one scenario.
func TestBurnRatesAgreeWithSloth(t *testing.T) {
	sloth := testproc.Tool(t, "sloth")
	promtool := testproc.LookPath(t, "promtool", "Debian package prometheus")
	dir := t.TempDir()
	spec := filepath.Join(dir, "sloth.yaml")
	require.NoError(t, os.WriteFile(spec, []byte(slothSpec), 0o600))
	out, err := exec.Command(sloth, "generate", "-i", spec, "-o", filepath.Join(dir, "sloth-rules.yaml")).CombinedOutput()
	require.NoError(t, err, "sloth generate: %s", out)

	seeds := []uint64{rand.Uint64(), rand.Uint64(), rand.Uint64()}
	if s := os.Getenv("FIELDCOL_SLOTH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seeds = []uint64{n}
	}
	for _, seed := range seeds {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			sc := newPeerScenario(seed)
			t.Logf("scenario %d (replay: FIELDCOL_SLOTH_SEED=%d): %d minutes; %s", seed, seed, sc.minutes, strings.Join(sc.story, "; "))
			emits := sc.run(t)

			var b strings.Builder
			b.WriteString("rule_files: [sloth-rules.yaml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n")
			for i, outcome := range []string{"ok", "overrun", "skipped"} {
				vals := make([]string, len(sc.values))
				for m, v := range sc.values {
					vals[m] = "_"
					if sc.present[m] {
						vals[m] = strconv.FormatFloat(v[i], 'f', -1, 64)
					}
				}
				fmt.Fprintf(&b, "      - series: 'controlloop_cycles_total{loop=\"oven\",outcome=\"%s\"}'\n        values: '%s'\n", outcome, strings.Join(vals, " "))
			}
			b.WriteString("    promql_expr_test:\n")
			ratios, alerts := 0, 0
			for m := range emits {
				for _, w := range peerWindows {
					if !sc.comparable(emits, w, m) {
						continue
					}
					want := emits[m].ratio[w]
					fmt.Fprintf(&b, "      - expr: 'min(abs(slo:sli_error:ratio_rate%s{sloth_id=\"fieldcol-oven-deadline\"} - %v) <= bool %v)'\n        eval_time: %dm\n        exp_samples: [{labels: '{}', value: 1}]\n",
						windowLabel(w), want, 0.01*want+1e-12, m)
					ratios++
				}
				for _, sev := range []struct {
					name    string
					windows []time.Duration
					firing  func(peerEmit) bool
				}{
					{"page", pageWindows, func(e peerEmit) bool { return e.page }},
					{"ticket", ticketWindows, func(e peerEmit) bool { return e.ticket }},
				} {
					steady := true
					for d := -1; d <= 1 && steady; d++ {
						for _, w := range sev.windows {
							if !sc.comparable(emits, w, m+d) {
								steady = false
							}
						}
						steady = steady && sev.firing(emits[m+d]) == sev.firing(emits[m])
					}
					if !steady {
						continue
					}
					firing := 0
					if sev.firing(emits[m]) {
						firing = 1
					}
					fmt.Fprintf(&b, "      - expr: 'count(ALERTS{alertname=\"OvenDeadlineBurn\",sloth_severity=\"%s\",alertstate=\"firing\"}) or vector(0)'\n        eval_time: %dm\n        exp_samples: [{labels: '{}', value: %d}]\n",
						sev.name, m, firing)
					alerts++
				}
			}
			require.NotZero(t, ratios, "nothing comparable: the scenario proves nothing")
			testFile := filepath.Join(dir, fmt.Sprintf("peer-%d.test.yaml", seed))
			require.NoError(t, os.WriteFile(testFile, []byte(b.String()), 0o600))
			out, err := exec.Command(promtool, "test", "rules", testFile).CombinedOutput()
			if err != nil {
				msg := string(out)
				if len(msg) > 8000 {
					msg = msg[:8000] + "\n[...]"
				}
				t.Fatalf("Sloth's rules disagree with the processor (%v); %d ratio and %d alert comparisons:\n%s", err, ratios, alerts, msg)
			}
			t.Logf("%d error ratios within 1%% and %d alert states agree with Sloth's rules", ratios, alerts)
		})
	}
}
