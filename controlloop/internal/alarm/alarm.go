// Package alarm holds the latching alarms of a control loop and persists which of them are
// latched, so that a restart does not silently re-arm a machine that tripped.
//
// An alarm's state is owned by the loop goroutine: Evaluate and Ack are plain method calls
// without locks, and the loop publishes the latched set as a bit mask (see Set.Mask) that a
// separate goroutine persists with Store.
package alarm

import (
	"errors"
	"fmt"
)

// Transition is what changed on an alarm; None when nothing did.
type Transition uint8

const (
	// None means no change.
	None Transition = iota
	// Raised means the condition appeared and the alarm latched.
	Raised
	// Acknowledged means an operator acknowledged a latched alarm whose condition was gone.
	Acknowledged
	// Cleared means the latch was released.
	Cleared
)

// String is the telemetry value of the `transition` attribute.
func (t Transition) String() string {
	switch t {
	case Raised:
		return "raised"
	case Acknowledged:
		return "acknowledged"
	case Cleared:
		return "cleared"
	}
	return "none"
}

// Errors returned by Ack; the command API maps them to 409 Conflict.
var (
	ErrConditionActive = errors.New("alarm condition is still present; fix the cause before acknowledging")
	ErrNotLatched      = errors.New("alarm is not latched")
	ErrUnknownAlarm    = errors.New("no such alarm")
)

// MaxAlarms is how many alarms one loop may have: the latched set is one uint64.
const MaxAlarms = 64

// Alarm is one latching alarm.
type Alarm struct {
	Name string
	// active is the condition as of the last evaluation; latched stays set from the first
	// active evaluation until an acknowledgement arrives after the condition went away.
	active  bool
	latched bool
}

// Active reports whether the condition held at the last evaluation.
func (a *Alarm) Active() bool { return a.active }

// Latched reports whether the alarm is latched.
func (a *Alarm) Latched() bool { return a.latched }

// Set is a loop's alarms. Its index order is fixed at construction and used for the mask.
type Set struct {
	alarms []Alarm
}

// NewSet builds a set of alarms named names; names must be unique and at most MaxAlarms.
func NewSet(names []string) (*Set, error) {
	if len(names) > MaxAlarms {
		return nil, fmt.Errorf("at most %d alarms per loop, got %d", MaxAlarms, len(names))
	}
	s := &Set{alarms: make([]Alarm, len(names))}
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		if seen[n] {
			return nil, fmt.Errorf("alarm %q is defined twice", n)
		}
		seen[n] = true
		s.alarms[i].Name = n
	}
	return s, nil
}

// Len is the number of alarms.
func (s *Set) Len() int { return len(s.alarms) }

// At returns alarm i.
func (s *Set) At(i int) *Alarm { return &s.alarms[i] }

// Index finds an alarm by name, -1 if absent.
func (s *Set) Index(name string) int {
	for i := range s.alarms {
		if s.alarms[i].Name == name {
			return i
		}
	}
	return -1
}

// Evaluate records the condition of alarm i for this cycle and returns the transition. A
// present condition latches the alarm; its disappearance alone never clears it.
func (s *Set) Evaluate(i int, condition bool) Transition {
	a := &s.alarms[i]
	a.active = condition
	if condition && !a.latched {
		a.latched = true
		return Raised
	}
	return None
}

// Ack acknowledges alarm i. It clears the latch only if the condition is gone, and reports
// ErrConditionActive otherwise, leaving the alarm latched and the outputs safe.
func (s *Set) Ack(i int) error {
	if i < 0 || i >= len(s.alarms) {
		return ErrUnknownAlarm
	}
	a := &s.alarms[i]
	if !a.latched {
		return ErrNotLatched
	}
	if a.active {
		return ErrConditionActive
	}
	a.latched = false
	return nil
}

// AnyLatched reports whether any alarm holds the loop in its safe state.
func (s *Set) AnyLatched() bool { return s.Mask() != 0 }

// Mask is the latched set as bits in index order.
func (s *Set) Mask() uint64 {
	var m uint64
	for i := range s.alarms {
		if s.alarms[i].latched {
			m |= 1 << uint(i)
		}
	}
	return m
}

// Restore latches the alarms named in names, as after a restart. It returns the names that
// this set does not know (an alarm removed from the config), which the caller logs.
func (s *Set) Restore(names []string) (unknown []string) {
	for _, n := range names {
		i := s.Index(n)
		if i < 0 {
			unknown = append(unknown, n)
			continue
		}
		s.alarms[i].latched = true
	}
	return unknown
}

// Names returns the names of the alarms whose bit is set in mask.
func (s *Set) Names(mask uint64) []string {
	var out []string
	for i := range s.alarms {
		if mask&(1<<uint(i)) != 0 {
			out = append(out, s.alarms[i].Name)
		}
	}
	return out
}
