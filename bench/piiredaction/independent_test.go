package piiredaction

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
)

const independentSeed = 20261206

// independentValues is the whole independent corpus: libphonenumber's and go-iban's examples,
// and perKind values of each gofakeit kind.
func independentValues(tb testing.TB, perKind int) []Labelled {
	tb.Helper()
	ibans, err := IBANExamples()
	require.NoError(tb, err)
	require.NotEmpty(tb, ibans)
	values := append(PhoneExamples(), ibans...)
	return append(values, fakeValues(independentSeed, perKind)...)
}

func independentLogs(records []IRecord) []plog.Logs {
	plain := make([]Record, len(records))
	for i, r := range records {
		plain[i] = Record{Body: r.Body, Attrs: r.Attrs}
	}
	return Logs(plain, batchSize)
}

// kindScore counts, for one kind, the values that survived (leaked personal values, or
// intact hard negatives) out of all, and keeps a few of the records it got wrong.
type kindScore struct {
	total, survived int
	wrong           []string
}

// Rate is the share of values of the kind that redaction changed: recall for personal
// kinds, false-positive rate for hard negatives.
func (k kindScore) Rate() float64 { return 1 - float64(k.survived)/float64(k.total) }

// scoreByKind runs the records through a processor and scores each kind; the kind's group
// ("phone" for "phone/e164") is scored too.
func scoreByKind(tb testing.TB, newProc func(testing.TB, consumer.Logs) processor.Logs, records []IRecord) map[string]*kindScore {
	sink := new(consumertest.LogsSink)
	p := newProc(tb, sink)
	for _, ld := range independentLogs(records) {
		require.NoError(tb, p.ConsumeLogs(context.Background(), ld))
	}
	scores := map[string]*kindScore{}
	bump := func(kind string, v Labelled, survived bool, out string) {
		s := scores[kind]
		if s == nil {
			s = &kindScore{}
			scores[kind] = s
		}
		s.total++
		if survived {
			s.survived++
		}
		if survived == v.PII && len(s.wrong) < 3 {
			s.wrong = append(s.wrong, fmt.Sprintf("%q -> %q", v.Value, out))
		}
	}
	i := 0
	for _, ld := range sink.AllLogs() {
		lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for j := 0; j < lrs.Len(); j++ {
			lr := lrs.At(j)
			v := records[i].Value
			i++
			out := recordText(lr)
			survived := strings.Contains(out, v.Value)
			bump(v.Kind, v, survived, out)
			if g, _, ok := strings.Cut(v.Kind, "/"); ok {
				bump(g, v, survived, out)
			}
			if v.PII {
				bump("all personal", v, survived, out)
			} else {
				bump("all negatives", v, survived, out)
			}
		}
	}
	require.Equal(tb, len(records), i, "no record may be dropped")
	return scores
}

func scoreTable(ours, theirs map[string]*kindScore, pii map[string]bool) string {
	kinds := make([]string, 0, len(ours))
	for k := range ours {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if pii[kinds[i]] != pii[kinds[j]] {
			return pii[kinds[i]]
		}
		return kinds[i] < kinds[j]
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%-34s %7s %22s %22s\n", "kind", "values", "piiredaction", "contrib redaction")
	for _, k := range kinds {
		what := "FPR"
		if pii[k] {
			what = "recall"
		}
		fmt.Fprintf(&b, "%-34s %7d %6s %15.4f %6s %15.4f\n", k, ours[k].total, what, ours[k].Rate(), what, theirs[k].Rate())
	}
	for _, k := range kinds {
		if strings.HasPrefix(k, "all ") || !strings.Contains(k, "/") && strings.Contains(strings.Join(kinds, " "), k+"/") {
			continue
		}
		for _, w := range ours[k].wrong {
			fmt.Fprintf(&b, "piiredaction wrong on %s: %s\n", k, w)
		}
	}
	return b.String()
}

func piiKinds(values []Labelled) map[string]bool {
	m := map[string]bool{"all personal": true}
	for _, v := range values {
		if v.PII {
			m[v.Kind] = true
			if g, _, ok := strings.Cut(v.Kind, "/"); ok {
				m[g] = true
			}
		}
	}
	return m
}

// TestIndependentCorpus is the quick form of the independent comparison in make test: values
// no one here wrote (libphonenumber, go-iban, gofakeit), each kind's recall or false-positive
// rate for piiredaction and contrib's redaction processor on the same records, and floors
// for piiredaction.
func TestIndependentCorpus(t *testing.T) {
	values := independentValues(t, 40)
	records := IndependentCorpus(values, independentSeed)
	ours := scoreByKind(t, newPII, records)
	theirs := scoreByKind(t, newContrib, records)
	t.Logf("independent corpus, %d records:\n%s", len(records), scoreTable(ours, theirs, piiKinds(values)))

	// Floors: recall of each personal kind, false-positive rate of each negative kind.
	recall := map[string]float64{
		"email": 0.99, "credit_card": 0.99, "iban": 0.99, "us_ssn": 0.99, "ipv4": 0.99, "ipv6": 0.99,
		"jwt": 0.99, "password": 0.99, "phone/e164": 0.99, "phone/international": 0.99, "phone/00": 0.99,
		"phone/rfc3966": 0.99, "phone/international-dashes": 0.99, "phone/international-dots": 0.95,
		// National forms without a trunk prefix and in no phone context are the known gap
		// (processors/piiredactionprocessor/README.md, caveats): 0.66 measured.
		"phone/national":        0.6,
		"person/name-under-key": 0.99, "person/address-under-key": 0.99,
		// Names in prose are not detected (README caveat): reported, no floor.
	}
	for k, floor := range recall {
		require.Contains(t, ours, k)
		assert.GreaterOrEqual(t, ours[k].Rate(), floor, "recall of %s", k)
	}
	for k, s := range ours {
		if !piiKinds(values)[k] {
			assert.LessOrEqual(t, s.Rate(), 0.005, "false-positive rate of %s", k)
		}
	}
}

// BenchmarkIndependentCorpus runs the independent corpus through both processors in the same
// run, alternating them, and reports the throughput ratio and the overall recall and
// false-positive rate of each.
func BenchmarkIndependentCorpus(b *testing.B) {
	values := independentValues(b, 200)
	records := IndependentCorpus(values, independentSeed)
	ours := scoreByKind(b, newPII, records)
	theirs := scoreByKind(b, newContrib, records)
	b.Logf("independent corpus, %d records:\n%s", len(records), scoreTable(ours, theirs, piiKinds(values)))
	alternate(b, independentLogs(records), len(records))
	b.ReportMetric(ours["all personal"].Rate(), "pii-recall")
	b.ReportMetric(theirs["all personal"].Rate(), "contrib-recall")
	b.ReportMetric(ours["all negatives"].Rate(), "pii-fpr")
	b.ReportMetric(theirs["all negatives"].Rate(), "contrib-fpr")
}
