package burn

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRateAndBudget(t *testing.T) {
	tests := []struct {
		name            string
		bad, total, obj float64
		rate, remaining float64
	}{
		{"no events", 0, 0, 0.995, 0, 1},
		{"no errors", 0, 1000, 0.995, 0, 1},
		{"exactly the budget", 5, 1000, 0.995, 1, 0},
		{"workbook page rate", 72, 1000, 0.995, 14.4, -13.4},
		{"all bad", 10, 10, 0.99, 100, -99},
		{"bad seen before total is clamped", 12, 10, 0.99, 100, -99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.rate, Rate(tt.bad, tt.total, tt.obj), 1e-9)
			assert.InDelta(t, tt.remaining, BudgetRemaining(tt.bad, tt.total, tt.obj), 1e-9)
		})
	}
}

func TestConditionAtItsThreshold(t *testing.T) {
	page := Workbook()[0]
	exact := Rate(72, 1000, 0.995)
	assert.Less(t, exact, 14.4, "the float rounding that Tolerance exists for")
	assert.True(t, page.Holds(exact, exact), "a burn of exactly 14.4 pages")
	assert.False(t, page.Holds(exact, 14.3), "the short window must burn too")
	assert.False(t, page.Holds(14.3, exact), "the long window must burn too")
	slow := Workbook()[3]
	assert.False(t, slow.Holds(0.9, 0.9), "0.9x stays silent")
	assert.True(t, slow.Holds(1, 1))
}

func TestWindows(t *testing.T) {
	assert.Equal(t, []time.Duration{
		5 * time.Minute, time.Hour, 30 * time.Minute, 6 * time.Hour, 2 * time.Hour, 24 * time.Hour, 72 * time.Hour,
	}, Windows(Workbook()))
}
