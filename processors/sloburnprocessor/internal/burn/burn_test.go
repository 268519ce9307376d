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

// TestConditionStrictlyAboveFactor: the workbook's and Sloth's comparison, error ratio >
// factor x budget over both windows; a burn of exactly the factor does not fire.
func TestConditionStrictlyAboveFactor(t *testing.T) {
	const obj = 0.995
	page := Workbook()[0]
	exact := ErrorRatio(72, 1000)   // 14.4x
	above := ErrorRatio(73, 1000)   // 14.6x
	below := ErrorRatio(715, 10000) // 14.3x
	assert.False(t, page.Holds(exact, exact, obj), "exactly 14.4x does not page")
	assert.True(t, page.Holds(above, above, obj))
	assert.False(t, page.Holds(above, below, obj), "the short window must burn too")
	assert.False(t, page.Holds(below, above, obj), "the long window must burn too")
	slow := Workbook()[3]
	assert.False(t, slow.Holds(ErrorRatio(45, 10000), ErrorRatio(45, 10000), obj), "0.9x stays silent")
	assert.False(t, slow.Holds(ErrorRatio(50, 10000), ErrorRatio(50, 10000), obj), "1x stays silent")
	assert.True(t, slow.Holds(ErrorRatio(51, 10000), ErrorRatio(51, 10000), obj), "1.02x opens a ticket")
}

func TestWindows(t *testing.T) {
	assert.Equal(t, []time.Duration{
		5 * time.Minute, time.Hour, 30 * time.Minute, 6 * time.Hour, 2 * time.Hour, 24 * time.Hour, 72 * time.Hour,
	}, Windows(Workbook()))
}
