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

// Condition fires when the error ratio is strictly above Factor x error budget over both the
// long and the short window, as the workbook and Sloth write it: the long window proves that
// enough budget was spent, the short one that it is still burning. A steady burn of exactly
// the factor does not fire (a 1x burn spends exactly the budget over the period).
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

// Holds reports whether the condition fires for the error ratios over its two windows. It
// compares ratios with Factor * (1 - objective), the expression of the central rules and of
// Sloth's, rather than burn rates with Factor, so that the two agree to the last bit.
func (c Condition) Holds(longRatio, shortRatio, objective float64) bool {
	threshold := c.Factor * (1 - objective)
	return longRatio > threshold && shortRatio > threshold
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
