package looptiming

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// figures are p50, p99 and max of a lateness distribution, in ns, and how many cycles
// were later than each of exceedBounds (-1 where a histogram has no such bound).
type figures struct {
	n             int64
	p50, p99, max int64
	over          [len(exceedBounds)]int64
}

// exceedBounds are bucket bounds of the loop's histogram (ns) at which the share of later
// cycles is compared: the VM's or the kernel's stalls delay both sides alike, so a share
// the loop has beyond cyclictest's is the loop's own.
var exceedBounds = [...]int64{100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000}

// stats takes nearest-rank percentiles of exact samples (cyclictest's).
func stats(samples []int64) figures {
	s := slices.Clone(samples)
	slices.Sort(s)
	at := func(q float64) int64 { return s[max(0, int(math.Ceil(q*float64(len(s))))-1)] }
	f := figures{n: int64(len(s)), p50: at(0.50), p99: at(0.99), max: s[len(s)-1]}
	for i, b := range exceedBounds {
		// The samples after the last one at or below b.
		f.over[i] = int64(len(s) - sort.Search(len(s), func(j int) bool { return s[j] > b }))
	}
	return f
}

// histogram is one series of a Prometheus histogram: cumulative counts at each upper
// bound (seconds), +Inf last.
type histogram struct {
	bounds []float64
	counts []uint64
}

// count is the number of observations (the +Inf bucket).
func (h histogram) count() uint64 {
	if len(h.counts) == 0 {
		return 0
	}
	return h.counts[len(h.counts)-1]
}

// since is h minus an earlier scrape of the same cumulative series: what was observed in
// between.
func (h histogram) since(earlier histogram) (histogram, error) {
	if !slices.Equal(h.bounds, earlier.bounds) {
		return histogram{}, fmt.Errorf("bucket bounds changed between scrapes: %v, then %v", earlier.bounds, h.bounds)
	}
	d := histogram{bounds: h.bounds, counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		if h.counts[i] < earlier.counts[i] {
			return histogram{}, errors.New("a cumulative bucket went down between scrapes: the edge restarted")
		}
		d.counts[i] = h.counts[i] - earlier.counts[i]
	}
	return d, nil
}

// quantile is the upper bound of the bucket that holds the q-th observation (nearest
// rank): the true value is at most this, and q = 1 gives the largest non-empty bucket's
// bound, which is how the dashboards and alerts read the maximum. An observation in the
// +Inf bucket gives +Inf.
func (h histogram) quantile(q float64) float64 {
	n := h.count()
	if n == 0 {
		return math.NaN()
	}
	rank := uint64(max(1, math.Ceil(q*float64(n))))
	for i, c := range h.counts {
		if c >= rank {
			return h.bounds[i]
		}
	}
	return math.Inf(1)
}

// figures are the histogram's percentiles as bucket upper bounds, in ns (+Inf as MaxInt64).
func (h histogram) figures() figures {
	ns := func(s float64) int64 {
		if math.IsInf(s, 1) {
			return math.MaxInt64
		}
		return int64(math.Round(s * 1e9))
	}
	f := figures{n: int64(h.count()), p50: ns(h.quantile(0.5)), p99: ns(h.quantile(0.99)), max: ns(h.quantile(1))}
	for i, b := range exceedBounds {
		f.over[i] = -1
		for j, hb := range h.bounds {
			if ns(hb) == b {
				f.over[i] = int64(h.count() - h.counts[j])
			}
		}
	}
	return f
}

// bucketOf is the upper bound (ns) of the bucket of h that holds v ns: where a value of
// cyclictest's would land in the loop's histogram.
func (h histogram) bucketOf(v int64) int64 {
	for _, b := range h.bounds {
		if float64(v) <= b*1e9 {
			if math.IsInf(b, 1) {
				return math.MaxInt64
			}
			return int64(math.Round(b * 1e9))
		}
	}
	return math.MaxInt64
}

const (
	latenessFamily = "controlloop_cycle_lateness_seconds"
	// runtimeFamily is the runtime's part of the lateness (wake-up minus the kernel's).
	runtimeFamily = "controlloop_cycle_lateness_runtime_seconds"
)

// scraped are the loop's histograms in one scrape: the lateness, and its runtime's part
// (empty when the edge exposes none: a build before it, or no precise window).
type scraped struct {
	lateness, runtime histogram
}

// scrapeLateness reads the lateness histograms of loop from a Prometheus exposition.
func scrapeLateness(client *http.Client, url, loop string) (scraped, error) {
	resp, err := client.Get(url)
	if err != nil {
		return scraped{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return scraped{}, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return parseExposition(resp.Body, loop)
}

var errNoSeries = errors.New("no lateness series for the loop yet")

// parseLateness finds the lateness histogram of loop in an exposition in text format.
func parseLateness(r io.Reader, loop string) (histogram, error) {
	s, err := parseExposition(r, loop)
	return s.lateness, err
}

// parseExposition finds both lateness histograms of loop in an exposition in text format.
func parseExposition(r io.Reader, loop string) (scraped, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return scraped{}, fmt.Errorf("parsing the exposition: %w", err)
	}
	var s scraped
	if s.lateness, err = seriesOf(fams, latenessFamily, loop); err != nil {
		return scraped{}, err
	}
	if s.runtime, err = seriesOf(fams, runtimeFamily, loop); err != nil && !errors.Is(err, errNoSeries) {
		return scraped{}, err
	}
	return s, nil
}

// seriesOf is the histogram of family for loop.
func seriesOf(fams map[string]*dto.MetricFamily, family, loop string) (histogram, error) {
	fam, ok := fams[family]
	if !ok {
		return histogram{}, fmt.Errorf("%w: no %s", errNoSeries, family)
	}
	if fam.GetType() != dto.MetricType_HISTOGRAM {
		return histogram{}, fmt.Errorf("%s is a %s, not a histogram", family, fam.GetType())
	}
	var found *dto.Histogram
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "loop" && l.GetValue() == loop {
				if found != nil {
					return histogram{}, fmt.Errorf("two %s series for loop %q", family, loop)
				}
				found = m.GetHistogram()
			}
		}
	}
	if found == nil {
		return histogram{}, fmt.Errorf("%w: no %s{loop=%q}", errNoSeries, family, loop)
	}
	var h histogram
	for _, b := range found.GetBucket() {
		if math.IsInf(b.GetUpperBound(), 1) {
			continue // added below from the sample count, whether the parser kept it or not
		}
		h.bounds = append(h.bounds, b.GetUpperBound())
		h.counts = append(h.counts, b.GetCumulativeCount())
	}
	h.bounds = append(h.bounds, math.Inf(1))
	h.counts = append(h.counts, found.GetSampleCount())
	return h, nil
}

// resolution checks the bounds against what the comparison with cyclictest needs: steps of
// at most 25 µs from the first bound (at most 10 µs) up to 200 µs.
func resolution(bounds []float64) error {
	if len(bounds) == 0 || bounds[0] > 10e-6 {
		return fmt.Errorf("first bound %v, want at most 10 µs", bounds)
	}
	for i := 1; i < len(bounds); i++ {
		if bounds[i-1] >= 200e-6-1e-12 {
			return nil
		}
		if step := bounds[i] - bounds[i-1]; step > 25e-6+1e-12 {
			return fmt.Errorf("bounds %g s and %g s are %v apart, more than 25 µs", bounds[i-1], bounds[i], time.Duration(step*1e9))
		}
	}
	return fmt.Errorf("bounds %v end below 200 µs", bounds)
}
