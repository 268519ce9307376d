package window

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

const minute = int64(time.Minute / time.Millisecond)

func TestPlanLayout(t *testing.T) {
	p := NewPlan([]time.Duration{5 * time.Minute, time.Hour, 5 * time.Minute, 72 * time.Hour}, time.Millisecond, 60)
	assert.Equal(t, []time.Duration{5 * time.Minute, time.Hour, 72 * time.Hour}, p.Windows())
	assert.Equal(t, 5*time.Second, p.BucketWidth(5*time.Minute))
	assert.Equal(t, 72*time.Minute, p.BucketWidth(72*time.Hour))
	assert.Zero(t, p.BucketWidth(2*time.Hour))
	// 3 rings of 60 pairs of float64 plus one int64 head each, plus the Series header.
	assert.Equal(t, 3*60*16+3*8+56, p.StateBytes())
}

// TestWindowEdges checks the exact window (t-w, t]: an increase at t-w is out, one just
// after it is in, and one at t is in.
func TestWindowEdges(t *testing.T) {
	p := NewPlan([]time.Duration{5 * time.Minute}, time.Millisecond, 60)
	s := p.NewSeries()
	now := 1000 * minute
	require.True(t, s.Add(now-5*minute, Pair{Total: 1, Part: 1}))
	require.True(t, s.Add(now-5*minute+5000, Pair{Total: 10}))
	require.True(t, s.Add(now, Pair{Total: 100, Part: 2}))
	assert.Equal(t, Pair{Total: 110, Part: 2}, s.Sum(5*time.Minute, now))
	// One bucket later the increase at now-5m+5s has left the window too.
	assert.Equal(t, Pair{Total: 100, Part: 2}, s.Sum(5*time.Minute, now+5000))
	// Long after, nothing is left.
	assert.Equal(t, Pair{}, s.Sum(5*time.Minute, now+10*minute))
	assert.Equal(t, Pair{}, s.Sum(time.Hour, now), "an unknown window sums to zero")
}

func TestEpochZero(t *testing.T) {
	s := NewPlan([]time.Duration{time.Minute}, time.Millisecond, 60).NewSeries()
	require.True(t, s.Add(0, Pair{Total: 3, Part: 1}))
	assert.Equal(t, Pair{Total: 3, Part: 1}, s.Sum(time.Minute, 0))
	assert.Equal(t, Pair{Total: 3, Part: 1}, s.Sum(time.Minute, 59_000))
	assert.Equal(t, Pair{}, s.Sum(time.Minute, 60_000), "0 is outside (0, 60s]")
}

func TestLateAndTooOld(t *testing.T) {
	p := NewPlan([]time.Duration{5 * time.Minute, time.Hour}, time.Millisecond, 60)
	s := p.NewSeries()
	now := 600 * minute
	require.True(t, s.Add(now, Pair{Total: 1}))
	// Late by 10 minutes: too old for the 5m ring, kept by the 1h ring.
	require.True(t, s.Add(now-10*minute, Pair{Total: 5, Part: 5}))
	assert.Equal(t, Pair{Total: 1}, s.Sum(5*time.Minute, now))
	assert.Equal(t, Pair{Total: 6, Part: 5}, s.Sum(time.Hour, now))
	// Late by 2 hours: no ring holds it.
	assert.False(t, s.Add(now-2*60*minute, Pair{Total: 7}))
	assert.Equal(t, Pair{Total: 6, Part: 5}, s.Sum(time.Hour, now))
}

// TestGapClearsReusedBuckets checks that buckets reused after a gap start from zero, both for
// a gap shorter than the ring and for one longer than it.
func TestGapClearsReusedBuckets(t *testing.T) {
	p := NewPlan([]time.Duration{time.Minute}, time.Millisecond, 60)
	s := p.NewSeries()
	for i := int64(1); i <= 60; i++ {
		s.Add(i*1000, Pair{Total: 1})
	}
	assert.Equal(t, Pair{Total: 60}, s.Sum(time.Minute, 60_000))
	s.Add(90_000, Pair{Total: 1, Part: 1}) // 30 s gap: buckets 31..90 s remain
	assert.Equal(t, Pair{Total: 31, Part: 1}, s.Sum(time.Minute, 90_000))
	s.Add(1_000_000, Pair{Total: 2}) // gap longer than the ring
	assert.Equal(t, Pair{Total: 2}, s.Sum(time.Minute, 1_000_000))
	assert.Equal(t, int64(1_000_000), s.LastActive())
}

// TestSlidingMatchesBruteForce compares every window sum with a direct sum of the increases
// in (t-w, t] at times that are multiples of the bucket width.
func TestSlidingMatchesBruteForce(t *testing.T) {
	w := 10 * time.Minute
	p := NewPlan([]time.Duration{w}, time.Millisecond, 60)
	s := p.NewSeries()
	type inc struct {
		ts int64
		v  float64
	}
	var all []inc
	for i := int64(1); i <= 3000; i++ {
		ts := i * 7000 // every 7 s, not aligned to the 10 s buckets
		v := float64(i % 13)
		if ts%10_000 < 7000 { // first sample past a bucket edge: check at that edge first
			at := ts - ts%10_000
			var want float64
			for _, x := range all {
				if x.ts > at-w.Milliseconds() && x.ts <= at {
					want += x.v
				}
			}
			got := s.Sum(w, at)
			require.InDelta(t, want, got.Total, 1e-9, "at %d", at)
			require.InDelta(t, want/2, got.Part, 1e-9, "at %d", at)
		}
		all = append(all, inc{ts, v})
		s.Add(ts, Pair{Total: v, Part: v / 2})
	}
}

func TestStateAndRestore(t *testing.T) {
	p := NewPlan([]time.Duration{5 * time.Minute, time.Hour}, time.Millisecond, 60)
	s := p.NewSeries()
	now := 100 * minute
	s.Add(now-2*minute, Pair{Total: 10, Part: 1})
	s.Add(now, Pair{Total: 5})
	buckets, heads := s.State()
	r, err := p.Restore(buckets, heads)
	require.NoError(t, err)
	for _, w := range []time.Duration{5 * time.Minute, time.Hour} {
		assert.Equal(t, s.Sum(w, now), r.Sum(w, now))
	}
	r.Add(now, Pair{Total: 1})
	assert.NotEqual(t, s.Sum(time.Hour, now), r.Sum(time.Hour, now), "the restored series owns its buckets")

	other := NewPlan([]time.Duration{5 * time.Minute}, time.Millisecond, 60)
	_, err = other.Restore(buckets, heads)
	assert.ErrorContains(t, err, "saved series has 120 buckets and 2 rings, this plan 60 and 1")
}

// TestPlanAtEmitResolution: with a 15 s resolution and at most 1440 buckets, the workbook's
// windows up to 6h get 15 s buckets (exact at every 15 s emit), 1d 60 s, 3d 180 s, 30d 30 min.
func TestPlanAtEmitResolution(t *testing.T) {
	ws := []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour, 720 * time.Hour}
	p := NewPlan(ws, 15*time.Second, 1440)
	want := []time.Duration{15 * time.Second, 15 * time.Second, 15 * time.Second, 15 * time.Second, 15 * time.Second, time.Minute, 3 * time.Minute, 30 * time.Minute}
	for i, w := range ws {
		assert.Equal(t, want[i], p.BucketWidth(w), "%v", w)
	}
	assert.Equal(t, 56+(20+120+240+480+4*1440)*16+8*8, p.StateBytes())
	// A resolution that does not divide a window falls back to whole-millisecond buckets.
	q := NewPlan([]time.Duration{5 * time.Minute}, 7*time.Second, 1440)
	assert.Equal(t, 240*time.Millisecond, q.BucketWidth(5*time.Minute))
}

// TestSumExactAtEveryResolutionStep: a window evaluated at any multiple of the resolution
// holds exactly the increases in (t-w, t], whatever their times.
func TestSumExactAtEveryResolutionStep(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		res := int64(15_000)
		w := time.Duration(rapid.SampledFrom([]int64{5, 30, 60, 120}).Draw(rt, "minutes")) * time.Minute
		p := NewPlan([]time.Duration{w}, time.Duration(res)*time.Millisecond, 1440)
		s := p.NewSeries()
		type ev struct{ ts, v int64 }
		var evs []ev
		ts := int64(1_000_000_000)
		for i := rapid.IntRange(1, 200).Draw(rt, "n"); i > 0; i-- {
			ts += rapid.Int64Range(0, 4*res).Draw(rt, "gap")
			v := rapid.Int64Range(1, 100).Draw(rt, "v")
			s.Add(ts, Pair{Total: float64(v)})
			evs = append(evs, ev{ts, v})
			now := (ts/res + rapid.Int64Range(0, 3).Draw(rt, "ahead")) * res
			if now < ts {
				continue
			}
			var want float64
			for _, e := range evs {
				if e.ts > now-w.Milliseconds() && e.ts <= now {
					want += float64(e.v)
				}
			}
			if got := s.Sum(w, now).Total; got != want {
				rt.Fatalf("window %v at %d: got %v, want %v", w, now, got, want)
			}
		}
	})
}
