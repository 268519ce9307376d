package piiredaction

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/redactionprocessor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/fieldcol/fieldcol/processors/piiredactionprocessor"
)

const (
	corpusSize = 3000
	corpusSeed = 20251217
	batchSize  = 100
)

// contribBlockedValues are RE2 equivalents of the piiredaction detectors, written the way an
// operator would configure contrib's redaction processor for the same data.
var contribBlockedValues = []string{
	// email
	`[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`,
	// phone: international, North American, national with trunk prefix
	`(?:\+|\b00)[1-9][0-9]{0,3}(?:[ .-]?\(?[0-9]{1,5}\)?){2,5}`,
	`(?:\(\d{3}\)\s?|\b\d{3}[.-])\d{3}[.-]\d{4}\b`,
	`\b0[1-9][0-9]{0,4}(?:[ /-][0-9]{2,8}){1,4}\b`,
	// IPv4
	`\b(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\b`,
	// IPv6 (full and compressed forms)
	`(?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|\b(?:[0-9a-f]{1,4}:){1,7}:(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})?`,
	// payment cards (no Luhn check is possible in a regular expression)
	`\b(?:[2-6][0-9]{3}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}|3[47][0-9]{2}[ -]?[0-9]{6}[ -]?[0-9]{5})\b`,
	// IBAN (no mod-97 check either)
	`\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b`,
	// US SSN
	`\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b`,
	// JWT, bearer tokens
	`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`,
	`(?i)\bbearer\s+[A-Za-z0-9._~+/-]+=*`,
	// credentials in URLs and query strings
	`://[^/\s:@]+:[^/\s@]+@`,
	`(?i)\b(?:password|passwd|pwd|secret|token|access_token|api_key|apikey)=[^&\s"]+`,
	// coordinates
	`(?i)\b(?:lat|latitude|lon|lng|longitude)=-?[0-9]+(?:\.[0-9]+)?`,
}

var allowedKeys = []string{"trace_id", "span_id", "service.name", "device.id", "vehicle.id"}

func newContrib(tb testing.TB, next consumer.Logs) processor.Logs {
	f := redactionprocessor.NewFactory()
	cfg := f.CreateDefaultConfig().(*redactionprocessor.Config)
	cfg.AllowAllKeys = true
	cfg.BlockedValues = contribBlockedValues
	cfg.BlockedKeyPatterns = []string{`^resident_name$`, `^user\.email$`, `(?i)(?:^|[._])(?:lat|latitude|lon|lng|longitude)$`}
	cfg.IgnoredKeys = allowedKeys
	cfg.Summary = "silent"
	return start(tb, f, cfg, next)
}

func newPII(tb testing.TB, next consumer.Logs) processor.Logs {
	f := piiredactionprocessor.NewFactory()
	cfg := f.CreateDefaultConfig().(*piiredactionprocessor.Config)
	cfg.Keys = []piiredactionprocessor.KeyRule{{Name: "resident", Keys: []string{"resident_name"}, Action: piiredactionprocessor.ActionMask}}
	cfg.AllowKeys = allowedKeys
	return start(tb, f, cfg, next)
}

func start(tb testing.TB, f processor.Factory, cfg component.Config, next consumer.Logs) processor.Logs {
	tb.Helper()
	p, err := f.CreateLogs(context.Background(), processortest.NewNopSettings(f.Type()), cfg, next)
	require.NoError(tb, err)
	require.NoError(tb, p.Start(context.Background(), componenttest.NewNopHost()))
	tb.Cleanup(func() { require.NoError(tb, p.Shutdown(context.Background())) })
	return p
}

func clone(batches []plog.Logs) []plog.Logs {
	out := make([]plog.Logs, len(batches))
	for i, ld := range batches {
		out[i] = plog.NewLogs()
		ld.CopyTo(out[i])
	}
	return out
}

// Quality is how a processor did on the labelled corpus.
type Quality struct {
	PIITotal, PIILeaked   int
	KeepTotal, KeepBroken int
}

// Recall is the share of personal values that did not survive.
func (q Quality) Recall() float64 { return 1 - float64(q.PIILeaked)/float64(q.PIITotal) }

func measure(tb testing.TB, newProc func(testing.TB, consumer.Logs) processor.Logs, records []Record) Quality {
	sink := new(consumertest.LogsSink)
	p := newProc(tb, sink)
	for _, ld := range Logs(records, batchSize) {
		require.NoError(tb, p.ConsumeLogs(context.Background(), ld))
	}
	var q Quality
	i := 0
	for _, ld := range sink.AllLogs() {
		lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for j := 0; j < lrs.Len(); j++ {
			lr := lrs.At(j)
			out := recordText(lr)
			rec := records[i]
			i++
			for _, v := range rec.PII {
				q.PIITotal++
				if strings.Contains(out, v) {
					q.PIILeaked++
				}
			}
			for _, v := range rec.Keep {
				q.KeepTotal++
				if !strings.Contains(out, v) {
					q.KeepBroken++
				}
			}
		}
	}
	require.Equal(tb, len(records), i, "no record may be dropped")
	return q
}

func TestCorpusIsDeterministic(t *testing.T) {
	assert.Equal(t, Corpus(200, 7), Corpus(200, 7))
	assert.NotEqual(t, Corpus(200, 7), Corpus(200, 8))
}

// TestCorpusQuality checks the functional side of the comparison (speed is only ever
// measured by the benchmarks): piiredaction finds every labelled value and breaks no near miss,
// so its recall is at least contrib's and its false positives at most contrib's.
func TestCorpusQuality(t *testing.T) {
	records := Corpus(corpusSize, corpusSeed)
	ours := measure(t, newPII, records)
	theirs := measure(t, newContrib, records)
	t.Logf("piiredaction: recall %.4f (%d/%d leaked), false positives %d/%d", ours.Recall(), ours.PIILeaked, ours.PIITotal, ours.KeepBroken, ours.KeepTotal)
	t.Logf("contrib redaction: recall %.4f (%d/%d leaked), false positives %d/%d", theirs.Recall(), theirs.PIILeaked, theirs.PIITotal, theirs.KeepBroken, theirs.KeepTotal)
	assert.Zero(t, ours.PIILeaked)
	assert.Zero(t, ours.KeepBroken)
	assert.GreaterOrEqual(t, ours.Recall(), theirs.Recall())
	assert.LessOrEqual(t, ours.KeepBroken, theirs.KeepBroken)
}

type run struct {
	elapsed time.Duration
	mallocs uint64
	records int
}

// runOnce pushes fresh copies of the batches through p and measures only the processing.
func runOnce(tb testing.TB, p processor.Logs, batches []plog.Logs, records int, r *run) {
	copies := clone(batches)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m0 := ms.Mallocs
	t0 := time.Now()
	for _, ld := range copies {
		if err := p.ConsumeLogs(context.Background(), ld); err != nil {
			tb.Fatal(err)
		}
	}
	r.elapsed += time.Since(t0)
	runtime.ReadMemStats(&ms)
	r.mallocs += ms.Mallocs - m0
	r.records += records
}

func (r run) nsPerRecord() float64 { return float64(r.elapsed.Nanoseconds()) / float64(r.records) }
func (r run) allocsPerRecord() float64 {
	return float64(r.mallocs) / float64(r.records)
}

// BenchmarkSideBySide runs the corpus through both processors in alternation, in the same
// process and run, and reports per-record cost, the speed ratio, and each one's quality.
func BenchmarkSideBySide(b *testing.B) {
	records := Corpus(corpusSize, corpusSeed)
	batches := Logs(records, batchSize)
	qContrib := measure(b, newContrib, records)
	qPII := measure(b, newPII, records)
	alternate(b, batches, len(records))
	b.ReportMetric(qContrib.Recall(), "contrib-recall")
	b.ReportMetric(qPII.Recall(), "pii-recall")
	b.ReportMetric(float64(qContrib.KeepBroken), "contrib-false-positives")
	b.ReportMetric(float64(qPII.KeepBroken), "pii-false-positives")
}

// alternate runs the batches through contrib and piiredaction in turn, b.N times each, and
// reports each one's cost per record and the ratio.
func alternate(b *testing.B, batches []plog.Logs, records int) {
	contrib := newContrib(b, consumertest.NewNop())
	pii := newPII(b, consumertest.NewNop())
	var rc, rp run
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runOnce(b, contrib, batches, records, &rc)
		runOnce(b, pii, batches, records, &rp)
	}
	b.StopTimer()
	b.ReportMetric(rc.nsPerRecord(), "contrib-ns/record")
	b.ReportMetric(rp.nsPerRecord(), "pii-ns/record")
	b.ReportMetric(rc.nsPerRecord()/rp.nsPerRecord(), "speedup-x")
	b.ReportMetric(rc.allocsPerRecord(), "contrib-allocs/record")
	b.ReportMetric(rp.allocsPerRecord(), "pii-allocs/record")
}

// BenchmarkProcessors measures each processor on its own over the whole corpus per iteration.
func BenchmarkProcessors(b *testing.B) {
	records := Corpus(corpusSize, corpusSeed)
	batches := Logs(records, batchSize)
	for _, tc := range []struct {
		name string
		new  func(testing.TB, consumer.Logs) processor.Logs
	}{{"contrib_redaction", newContrib}, {"piiredaction", newPII}} {
		b.Run(tc.name, func(b *testing.B) {
			q := measure(b, tc.new, records)
			p := tc.new(b, consumertest.NewNop())
			var r run
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				runOnce(b, p, batches, len(records), &r)
			}
			b.StopTimer()
			b.ReportMetric(r.nsPerRecord(), "ns/record")
			b.ReportMetric(r.allocsPerRecord(), "allocs/record")
			b.ReportMetric(q.Recall(), "recall")
			b.ReportMetric(float64(q.KeepBroken), "false-positives")
		})
	}
}

// recordText is a record's body and attribute values, NUL-separated, as the scorers read
// what a processor let through.
func recordText(lr plog.LogRecord) string {
	var b strings.Builder
	b.WriteString(lr.Body().AsString())
	for _, v := range lr.Attributes().All() {
		b.WriteString("\x00")
		b.WriteString(v.AsString())
	}
	return b.String()
}
