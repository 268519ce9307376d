package sloburnprocessor

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.yaml.in/yaml/v3"

	"github.com/fieldcol/fieldcol/internal/testproc"
)

// The shipped rules that the processor must agree with.
const rulesFile = "../../alerts/slo/slo-rules.yaml"

// equivalenceTolerance is the bound: burn rates agree within 1%.
const equivalenceTolerance = 0.01

// scenario is a deterministic day-by-day story of the oven loop, one point a minute: quiet
// hours, an overrun storm that pages, a steady 4x day that opens a ticket, a source restart,
// and a wavy tail. It returns the increments of ok, overrun and skipped cycles at minute k.
func scenario(k int) (ok, overrun, skipped float64) {
	total := math.Round(1000 + 200*math.Sin(float64(k)/37))
	k %= 4440 // longer runs replay the story
	var ratio float64
	switch {
	case k < 360:
		ratio = 0.002
	case k < 480:
		ratio = 0.10
	case k < 1440:
		ratio = 0.004
	case k < 2880:
		ratio = 0.02
	default:
		ratio = 0.001 + 0.004*(1+math.Sin(float64(k)/50))/2
	}
	bad := math.Round(total * ratio)
	overrun = math.Round(bad * 0.7)
	return total - bad, overrun, bad - overrun
}

// TestEquivalenceWithPrometheus feeds the scenario to the processor, takes the slo.events it
// emits every minute as the samples of slo_events_total, and has promtool (Prometheus' rule
// engine) evaluate alerts/slo/slo-rules.yaml over them. At every 72 minutes (where every
// window edge of the processor is exact) for 74 hours, each burn rate of the rules must be
// within 1% of the processor's, the period burn rate too, and the page and ticket alerts must
// fire exactly when the processor's slo.alert says so.
func TestEquivalenceWithPrometheus(t *testing.T) {
	runEquivalence(t, 74*60, 1, 72)
}

// TestEquivalenceOverAPeriod is the same comparison over 31 days at 5-minute samples, so
// that the 30-day period window slides too (evaluated every 12 hours, its bucket width).
func TestEquivalenceOverAPeriod(t *testing.T) {
	runEquivalence(t, 31*24*60, 5, 12*60)
}

// runEquivalence samples the processor every step minutes for the given minutes and compares
// with promtool every evalEvery minutes, which must be a multiple of 72 (the coarsest bucket
// of the alert windows) and of step.
func runEquivalence(t *testing.T, minutes, step, evalEvery int) {
	promtool := testproc.LookPath(t, "promtool", "Debian package prometheus")
	require.Zero(t, evalEvery%72)
	require.Zero(t, evalEvery%step)
	h := newHarness(t, ovenConfig())
	// Prometheus has no notion of coverage: the processor compared with it has watched the
	// (silent) input long enough that every window is covered. Coverage has its own tests.
	h.p.origin = epoch.Add(-31 * 24 * time.Hour).UnixNano()
	srcStart := epoch.Add(-time.Hour)
	var ok, overrun, skipped float64 = 1e6, 300, 200 // the source ran before we started
	good := make([]string, 0, minutes+1)
	bad := make([]string, 0, minutes+1)

	type expect struct {
		minute       int
		burn         map[string]float64
		periodBurn   float64
		page, ticket bool
	}
	var expects []expect
	for k := 0; k <= minutes; k += step {
		if k == 2000 {
			// The control loop restarts: its counters start again from zero.
			srcStart = epoch.Add(time.Duration(k)*time.Minute - time.Second)
			ok, overrun, skipped = 0, 0, 0
		}
		for j := max(k-step+1, 1); j <= k; j++ {
			dOK, dOverrun, dSkipped := scenario(j)
			ok, overrun, skipped = ok+dOK, overrun+dOverrun, skipped+dSkipped
		}
		now := epoch.Add(time.Duration(k) * time.Minute)
		h.clk.t = now
		h.proc(counter("controlloop.cycles", pmetric.AggregationTemporalityCumulative, srcStart, now, nil,
			sample{attrsOf("loop", "oven", "outcome", "ok"), ok},
			sample{attrsOf("loop", "oven", "outcome", "overrun"), overrun},
			sample{attrsOf("loop", "oven", "outcome", "skipped"), skipped}))
		md := h.p.collect(now)
		good = append(good, strconv.FormatFloat(value(t, md, metricEvents, attrsOf("outcome", "good")), 'f', -1, 64))
		bad = append(bad, strconv.FormatFloat(value(t, md, metricEvents, attrsOf("outcome", "bad")), 'f', -1, 64))
		if k > 0 && k%evalEvery == 0 {
			e := expect{minute: k, burn: map[string]float64{}}
			for _, w := range []string{"5m", "30m", "1h", "2h", "6h", "1d", "3d"} {
				e.burn[w] = burnRate(t, md, "oven-deadline", w)
			}
			e.periodBurn = 1 - value(t, md, metricRemaining, attrsOf("slo", "oven-deadline"))
			e.page = alertOf(t, md, "oven-deadline", "page") == 1
			e.ticket = alertOf(t, md, "oven-deadline", "ticket") == 1
			expects = append(expects, e)
		}
	}

	// The story must exercise both alerts and their silence, or the comparison proves little.
	var pages, tickets int
	for _, e := range expects {
		if e.page {
			pages++
		}
		if e.ticket {
			tickets++
		}
	}
	require.NotZero(t, pages, "the scenario must page at some evaluation")
	require.NotZero(t, tickets, "the scenario must open a ticket at some evaluation")
	require.Less(t, pages, len(expects), "the scenario must also be silent")

	annotations := alertAnnotations(t, "oven-deadline")
	var b strings.Builder
	fmt.Fprintf(&b, "rule_files: [slo-rules.yaml]\nevaluation_interval: %dm\ntests:\n  - interval: %dm\n    input_series:\n", evalEvery, step)
	fmt.Fprintf(&b, "      - series: 'slo_events_total{slo=\"oven-deadline\",outcome=\"good\"}'\n        values: '%s'\n", strings.Join(good, " "))
	fmt.Fprintf(&b, "      - series: 'slo_events_total{slo=\"oven-deadline\",outcome=\"bad\"}'\n        values: '%s'\n", strings.Join(bad, " "))
	fmt.Fprintf(&b, "      - series: 'slo_objective{slo=\"oven-deadline\"}'\n        values: '0.995x%d'\n", minutes/step)
	b.WriteString("    promql_expr_test:\n")
	agree := func(expr string, want float64, minute int) {
		// 1 when the rule's value is within the tolerance of the processor's.
		fmt.Fprintf(&b, "      - expr: 'abs(%s{slo=\"oven-deadline\"} - %v) <= bool (%v * %v + 1e-9)'\n        eval_time: %dm\n        exp_samples:\n          - labels: '{slo=\"oven-deadline\"}'\n            value: 1\n",
			expr, want, equivalenceTolerance, math.Abs(want), minute)
	}
	for _, e := range expects {
		for w, v := range e.burn {
			agree("fieldcol_slo:burn_rate:ratio_rate"+w, v, e.minute)
		}
		agree("fieldcol_slo:period_burn_rate:ratio", e.periodBurn, e.minute)
	}
	b.WriteString("    alert_rule_test:\n")
	for _, e := range expects {
		for _, a := range []struct {
			name, severity string
			firing         bool
		}{{"SLOErrorBudgetBurnPage", "page", e.page}, {"SLOErrorBudgetBurnTicket", "ticket", e.ticket}} {
			fmt.Fprintf(&b, "      - eval_time: %dm\n        alertname: %s\n", e.minute, a.name)
			if !a.firing {
				b.WriteString("        exp_alerts: []\n")
				continue
			}
			exp, err := yaml.Marshal([]map[string]any{{
				"exp_labels":      map[string]string{"slo": "oven-deadline", "severity": a.severity},
				"exp_annotations": annotations[a.name],
			}})
			require.NoError(t, err)
			b.WriteString("        exp_alerts:\n")
			for _, line := range strings.Split(strings.TrimRight(string(exp), "\n"), "\n") {
				b.WriteString("          " + line + "\n")
			}
		}
	}

	dir := t.TempDir()
	rules, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "slo-rules.yaml"), rules, 0o600))
	testFile := filepath.Join(dir, "equivalence.test.yaml")
	require.NoError(t, os.WriteFile(testFile, []byte(b.String()), 0o600))
	out, err := exec.Command(promtool, "test", "rules", testFile).CombinedOutput()
	if err != nil {
		msg := string(out)
		if len(msg) > 20000 {
			msg = msg[:20000] + "\n[...]"
		}
		t.Fatalf("promtool disagrees with the processor (%v); %d evaluations, %d paging, %d ticketing:\n%s", err, len(expects), pages, tickets, msg)
	}
	t.Logf("%d evaluations x 8 burn rates and 2 alerts agree; %d paging, %d ticketing", len(expects), pages, tickets)
}

// alertAnnotations reads the annotations of the shipped alerts as Prometheus renders them for
// one slo: the only template they use is {{ $labels.slo }}.
func alertAnnotations(t *testing.T, slo string) map[string]map[string]string {
	t.Helper()
	raw, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &rf))
	out := map[string]map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert != "SLOErrorBudgetBurnPage" && r.Alert != "SLOErrorBudgetBurnTicket" {
				continue // the burn alerts are the ones compared with slo.alert
			}
			ann := map[string]string{}
			for k, v := range r.Annotations {
				v = strings.ReplaceAll(v, "{{ $labels.slo }}", slo)
				require.NotContains(t, v, "{{", "annotation %s of %s uses a template this test does not render", k, r.Alert)
				ann[k] = v
			}
			out[r.Alert] = ann
		}
	}
	return out
}
