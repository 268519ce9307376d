// Package watchdog tells systemd that the control loops are alive. READY=1 goes out once
// the loops run; WATCHDOG=1 goes out only while every loop has completed a healthy cycle
// recently, so a stalled or dead loop makes systemd restart the process (WatchdogSec in the
// unit). A loop that stalls with its thread stuck (a hung driver) also gets its outputs
// forced safe from here, since its own thread cannot do it. STATUS= tells systemctl status
// which loops run, and which one stalled or stopped.
package watchdog

import (
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// Loop is what the watchdog watches.
type Loop interface {
	Name() string
	// Running reports whether the loop thread is alive.
	Running() bool
	// Heartbeat is the monotonic ns of the last healthy cycle.
	Heartbeat() int64
	// StallAfter is how old a heartbeat may get before the loop counts as stalled.
	StallAfter() time.Duration
	// ForceSafe writes the safe state from outside the loop thread.
	ForceSafe() error
}

// Notifier runs the notification goroutine.
type Notifier struct {
	loops    []Loop
	log      *zap.Logger
	now      func() int64
	notify   func(state string) (bool, error)
	interval time.Duration

	mu      sync.Mutex
	stalled map[string]bool
	status  string // the last STATUS= sent
	started bool
	stop    chan struct{}
	wg      sync.WaitGroup
	sent    int
}

// New returns a notifier for loops; now reads the loops' monotonic clock. The watchdog
// interval comes from systemd's WATCHDOG_USEC (0 when not under a systemd watchdog).
func New(loops []Loop, log *zap.Logger, now func() int64) *Notifier {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("ignoring malformed systemd watchdog environment", zap.Error(err))
		interval = 0
	}
	n := &Notifier{
		loops: loops, log: log, now: now, interval: interval,
		notify:  func(state string) (bool, error) { return daemon.SdNotify(false, state) },
		stalled: map[string]bool{},
		stop:    make(chan struct{}),
	}
	n.status = statusLine(loops, nil)
	return n
}

// statusLine is what systemctl status shows: every loop running, or the loops in trouble.
func statusLine(loops []Loop, trouble []string) string {
	if len(trouble) > 0 {
		return "control loop " + strings.Join(trouble, ", ") + "; outputs forced safe, systemd's watchdog not fed"
	}
	names := make([]string, len(loops))
	for i, l := range loops {
		names[i] = l.Name()
	}
	return "control loops running: " + strings.Join(names, ", ")
}

// Start sends READY=1 and, if systemd asked for a watchdog, starts petting it at half its
// interval. Only the first call does anything.
func (n *Notifier) Start() {
	n.mu.Lock()
	started := n.started
	n.started = true
	n.mu.Unlock()
	if started {
		return
	}
	n.mu.Lock()
	status := n.status
	n.mu.Unlock()
	if ok, err := n.notify(daemon.SdNotifyReady + "\nSTATUS=" + status); err != nil {
		n.log.Warn("could not notify systemd of readiness", zap.Error(err))
	} else if ok {
		n.log.Info("notified systemd: ready", zap.Duration("watchdog_interval", n.interval))
	}
	if n.interval <= 0 {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(n.interval / 2)
		defer t.Stop()
		for {
			select {
			case <-n.stop:
				return
			case <-t.C:
				n.Check()
			}
		}
	}()
}

// Check pets the watchdog if every loop is healthy, and forces a stalled loop safe.
// It returns whether it sent WATCHDOG=1.
func (n *Notifier) Check() bool {
	healthy := true
	var trouble []string
	now := n.now()
	for _, l := range n.loops {
		if !l.Running() {
			healthy = false
			trouble = append(trouble, l.Name()+" stopped")
			continue
		}
		if age := time.Duration(now - l.Heartbeat()); age > l.StallAfter() {
			healthy = false
			trouble = append(trouble, l.Name()+" stalled")
			n.mu.Lock()
			first := !n.stalled[l.Name()]
			n.stalled[l.Name()] = true
			n.mu.Unlock()
			if first {
				err := l.ForceSafe()
				n.log.Error("control loop stalled: outputs forced safe from the watchdog and systemd's watchdog is no longer fed",
					zap.String("loop", l.Name()), zap.Duration("since_last_healthy_cycle", age), zap.NamedError("safe_state_error", err))
			}
			continue
		}
		n.mu.Lock()
		delete(n.stalled, l.Name())
		n.mu.Unlock()
	}
	n.setStatus(statusLine(n.loops, trouble))
	if !healthy {
		return false
	}
	if _, err := n.notify(daemon.SdNotifyWatchdog); err != nil {
		n.log.Warn("could not feed systemd's watchdog", zap.Error(err))
		return false
	}
	n.mu.Lock()
	n.sent++
	n.mu.Unlock()
	return true
}

// setStatus sends STATUS= when it changed.
func (n *Notifier) setStatus(status string) {
	n.mu.Lock()
	changed := status != n.status
	n.status = status
	n.mu.Unlock()
	if changed {
		_, _ = n.notify("STATUS=" + status)
	}
}

// Stop ends petting and tells systemd the service is stopping.
func (n *Notifier) Stop() {
	select {
	case <-n.stop:
		return
	default:
		close(n.stop)
	}
	n.wg.Wait()
	_, _ = n.notify(daemon.SdNotifyStopping)
}
