// Package validatecmd tells a component's Config.Validate whether it runs for the
// collector's `validate` subcommand rather than for a starting collector.
//
// Why: the collector validates its config at every start, so a check of the machine (a
// directory's permissions, a read-only or full file system) would stop a starting
// collector, and with it the control loops, for a condition that may heal by itself; at
// run time such components start degraded instead. An operator who runs `validate` before
// a deployment wants exactly those conditions reported, so the distribution's main marks
// that run and components add their machine checks only then.
package validatecmd

import "sync/atomic"

var running atomic.Bool

// Mark records that this process runs the `validate` subcommand. The distribution's main
// calls it before handing the command line to the collector.
func Mark() { running.Store(true) }

// Running reports whether this process runs the `validate` subcommand.
func Running() bool { return running.Load() }
