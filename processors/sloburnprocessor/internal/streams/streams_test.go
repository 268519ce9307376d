package streams

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDelta(t *testing.T) {
	started := time.Unix(1000, 0)
	s := started.UnixNano()
	sec := int64(time.Second)
	type step struct {
		p      Point
		want   Values
		result Result
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"counter started before us: first point is a baseline", []step{
			{Point{Start: s - 100*sec, Time: s + sec, V: Values{50}}, Values{}, Baseline},
			{Point{Start: s - 100*sec, Time: s + 2*sec, V: Values{53}}, Values{3}, Increase},
		}},
		{"no start time: baseline, like Prometheus", []step{
			{Point{Time: s + sec, V: Values{50}}, Values{}, Baseline},
			{Point{Time: s + 2*sec, V: Values{51}}, Values{1}, Increase},
		}},
		{"counter started after us: everything counts", []step{
			{Point{Start: s + sec, Time: s + 2*sec, V: Values{7, 2}}, Values{7, 2}, Reset},
		}},
		{"value drops: reset", []step{
			{Point{Time: s + sec, V: Values{50, 10}}, Values{}, Baseline},
			{Point{Time: s + 2*sec, V: Values{4, 1}}, Values{4, 1}, Reset},
			{Point{Time: s + 3*sec, V: Values{6, 1}}, Values{2, 0}, Increase},
		}},
		{"only the second value drops: reset", []step{
			{Point{Time: s + sec, V: Values{50, 10}}, Values{}, Baseline},
			{Point{Time: s + 2*sec, V: Values{60, 3}}, Values{60, 3}, Reset},
		}},
		{"restart seen by the start time even when the value grew", []step{
			{Point{Start: s - sec, Time: s + sec, V: Values{5}}, Values{}, Baseline},
			{Point{Start: s + 2*sec, Time: s + 9*sec, V: Values{8}}, Values{8}, Reset},
		}},
		{"late and duplicate points are ignored", []step{
			{Point{Time: s + 5*sec, V: Values{50}}, Values{}, Baseline},
			{Point{Time: s + 4*sec, V: Values{49}}, Values{}, OutOfOrder},
			{Point{Time: s + 5*sec, V: Values{50}}, Values{}, OutOfOrder},
			{Point{Time: s + 6*sec, V: Values{52}}, Values{2}, Increase},
		}},
		{"a gap changes nothing: the whole increase arrives with the next point", []step{
			{Point{Time: s + sec, V: Values{10}}, Values{}, Baseline},
			{Point{Time: s + 3600*sec, V: Values{910}}, Values{900}, Increase},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := New(10, started)
			for i, st := range tt.steps {
				got, r, _ := tr.Delta(1, st.p, st.p.Time)
				assert.Equal(t, st.result, r, "step %d", i)
				assert.Equal(t, st.want, got, "step %d", i)
			}
		})
	}
}

func TestOverflowAndForget(t *testing.T) {
	tr := New(2, time.Unix(0, 0))
	_, r, _ := tr.Delta(1, Point{Time: 10, V: Values{1}}, 100)
	assert.Equal(t, Baseline, r, "a start time of 0 means unknown, not the epoch")
	_, r, _ = tr.Delta(2, Point{Time: 10, V: Values{1}}, 200)
	assert.NotEqual(t, Overflow, r)
	_, r, _ = tr.Delta(3, Point{Time: 10, V: Values{1}}, 200)
	assert.Equal(t, Overflow, r)
	assert.Equal(t, 2, tr.Len())
	assert.Equal(t, 1, tr.Forget(150))
	assert.Equal(t, 1, tr.Len())
	_, r, _ = tr.Delta(3, Point{Time: 10, V: Values{1}}, 300)
	assert.NotEqual(t, Overflow, r, "room again after forgetting an idle stream")
}

func TestSaveAndRestore(t *testing.T) {
	tr := New(10, time.Unix(0, 0))
	tr.Delta(1, Point{Time: 10, V: Values{100}}, 10)
	tr.Delta(2, Point{Time: 10, V: Values{7}}, 10)
	restored := New(1, time.Unix(0, 0))
	saved := tr.Save()
	restored.Restore(saved)
	assert.Equal(t, 1, restored.Len(), "never more than the table holds")

	restored = New(10, time.Unix(0, 0))
	restored.Restore(saved)
	d, r, _ := restored.Delta(1, Point{Time: 20, V: Values{130}}, 20)
	assert.Equal(t, Increase, r, "the stream continues across the restart")
	assert.Equal(t, Values{30}, d)
}

// TestDeltaHandsBackThePreviousPlacement: an increase comes with the At of the point before
// it, where Prometheus' range functions place it.
func TestDeltaHandsBackThePreviousPlacement(t *testing.T) {
	tr := New(10, time.Unix(0, 0))
	_, r, at := tr.Delta(1, Point{Time: 10, At: 11, V: Values{5}}, 10)
	assert.Equal(t, Baseline, r)
	assert.Zero(t, at)
	d, r, at := tr.Delta(1, Point{Time: 20, At: 21, V: Values{8}}, 20)
	assert.Equal(t, Increase, r)
	assert.Equal(t, Values{3}, d)
	assert.Equal(t, int64(11), at)
	_, r, at = tr.Delta(1, Point{Time: 30, At: 31, V: Values{2}}, 30)
	assert.Equal(t, Reset, r)
	assert.Equal(t, int64(21), at)
}
