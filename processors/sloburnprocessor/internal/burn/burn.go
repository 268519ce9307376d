// Package burn holds the arithmetic of error budgets: burn rates, the budget left, and the
// multiwindow, multi-burn-rate alert conditions of the SRE workbook (chapter "Alerting on
// SLOs"), which are the same conditions that alerts/slo/slo-rules.yaml evaluates centrally.
package burn

import "time"

// Severity of an alert condition: a page wakes someone, a ticket waits for working hours.
const (
	Page   = "page"
	Ticket = "ticket"
)

// Tolerance is the relative slack of the comparison with a factor. 1 - 0.995 is not exact in
// binary floating point, so an error ratio of exactly 14.4 x 0.005 computes as a burn rate of
// 14.399999999999988; without slack the workbook's own threshold would not fire. The rules
// under alerts/slo use the same slack, so the edge and the centre agree at the boundary.
const Tolerance = 1e-6

// Condition fires when the burn rate exceeds Factor over both the long and the short window:
// the long window proves that enough budget was spent, the short one that it is still burning.
type Condition struct {
	Severity string
	Long     time.Duration
	Short    time.Duration
	Factor   float64
}

// Workbook is the default policy: 2% of a 30-day budget in 1 hour or 5% in 6 hours pages,
// 10% in 3 days or 100% at the rate of a whole period in 3 days opens a ticket.
func Workbook() []Condition {
	return []Condition{
		{Severity: Page, Long: time.Hour, Short: 5 * time.Minute, Factor: 14.4},
		{Severity: Page, Long: 6 * time.Hour, Short: 30 * time.Minute, Factor: 6},
		{Severity: Ticket, Long: 24 * time.Hour, Short: 2 * time.Hour, Factor: 3},
		{Severity: Ticket, Long: 72 * time.Hour, Short: 6 * time.Hour, Factor: 1},
	}
}

// ErrorRatio is bad/total, 0 when nothing happened (no events spend no budget) and clamped
// to [0, 1] because counters seen in different batches can briefly disagree.
func ErrorRatio(bad, total float64) float64 {
	if total <= 0 || bad <= 0 {
		return 0
	}
	return min(bad/total, 1)
}

// Rate is how many times faster than allowed the budget is being spent: the error ratio
// divided by the budget 1 - objective. A rate of 1 spends exactly the budget over the period.
func Rate(bad, total, objective float64) float64 {
	return ErrorRatio(bad, total) / (1 - objective)
}

// BudgetRemaining is the share of the period's error budget not yet spent: 1 untouched, 0
// spent, negative overspent.
func BudgetRemaining(bad, total, objective float64) float64 {
	return 1 - Rate(bad, total, objective)
}

// Holds reports whether the condition fires for the burn rates over its two windows.
func (c Condition) Holds(long, short float64) bool {
	threshold := c.Factor * (1 - Tolerance)
	return long >= threshold && short >= threshold
}

// Windows lists every window the conditions read, long and short, without repeats.
func Windows(conds []Condition) []time.Duration {
	var out []time.Duration
	seen := map[time.Duration]bool{}
	for _, c := range conds {
		for _, w := range []time.Duration{c.Short, c.Long} {
			if !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	return out
}
