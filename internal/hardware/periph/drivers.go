package periph

import (
	"fmt"
	"sort"
	"strings"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/host/v3"
)

// DriverState is what periph's host.Init did with each of its drivers. host.Init returns
// an error only when it could not run at all; a driver that failed (no permission on
// /dev/gpiomem, a bus that is not enabled) is only in its state, so that is what explains
// why a pin or a bus is missing.
type DriverState struct {
	// Loaded are the drivers that initialised.
	Loaded []string
	// Skipped are the drivers that do not apply to this host, with periph's reason.
	Skipped []DriverProblem
	// Failed are the drivers that apply but could not initialise, with periph's reason.
	Failed []DriverProblem
}

// DriverProblem is one skipped or failed driver.
type DriverProblem struct {
	Driver string
	Reason string
}

// driverState converts periph's state, sorted by driver name.
func driverState(s *driverreg.State) DriverState {
	var d DriverState
	if s == nil {
		return d
	}
	for _, l := range s.Loaded {
		d.Loaded = append(d.Loaded, l.String())
	}
	problems := func(fs []driverreg.DriverFailure) []DriverProblem {
		var out []DriverProblem
		for _, f := range fs {
			reason := "<no reason given>"
			if f.Err != nil {
				reason = f.Err.Error()
			}
			out = append(out, DriverProblem{Driver: f.D.String(), Reason: reason})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Driver < out[j].Driver })
		return out
	}
	d.Skipped, d.Failed = problems(s.Skipped), problems(s.Failed)
	sort.Strings(d.Loaded)
	return d
}

// Summary is one line for logs and open errors: the loaded drivers and every failure with
// its reason. Skipped drivers are left out: they are the other boards' drivers.
func (d DriverState) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "periph drivers loaded: [%s]", strings.Join(d.Loaded, ", "))
	if len(d.Failed) == 0 {
		b.WriteString("; none failed")
		return b.String()
	}
	b.WriteString("; failed:")
	for i, f := range d.Failed {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %s (%s)", f.Driver, f.Reason)
	}
	return b.String()
}

// initHost runs periph's host.Init and returns its driver state; a variable so that tests
// can run the periph backend against the conn/v3 test doubles registered in gpioreg,
// i2creg, spireg and onewirereg, or simulate a failed driver.
var initHost = func() (DriverState, error) {
	s, err := host.Init()
	return driverState(s), err
}

// Drivers initialises periph (once per process; later calls return the same state)
// and reports its drivers, for the hardware probe and the start-up log.
func Drivers() (DriverState, error) { return initHost() }
