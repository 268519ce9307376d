package watchdog

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeLoop struct {
	running   bool
	heartbeat int64
	forced    int
}

func (f *fakeLoop) Name() string              { return "oven" }
func (f *fakeLoop) Running() bool             { return f.running }
func (f *fakeLoop) Heartbeat() int64          { return f.heartbeat }
func (f *fakeLoop) StallAfter() time.Duration { return time.Second }
func (f *fakeLoop) ForceSafe() error          { f.forced++; return nil }

type recorder struct {
	mu     sync.Mutex
	states []string
}

func (r *recorder) notify(s string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, s)
	return true, nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.states...)
}

func newNotifier(l *fakeLoop, now *int64, rec *recorder) *Notifier {
	n := New([]Loop{l}, zap.NewNop(), func() int64 { return *now })
	n.notify = rec.notify
	return n
}

func TestPetsOnlyHealthyLoops(t *testing.T) {
	now := int64(10 * time.Second)
	l := &fakeLoop{running: true, heartbeat: now}
	rec := &recorder{}
	n := newNotifier(l, &now, rec)

	assert.True(t, n.Check())
	now += int64(2 * time.Second) // no healthy cycle for two seconds
	assert.False(t, n.Check())
	assert.False(t, n.Check())
	assert.Equal(t, 1, l.forced, "a stalled loop is forced safe once")
	l.heartbeat = now
	assert.True(t, n.Check())
	l.running = false // the loop panicked and stopped
	assert.False(t, n.Check())
	assert.Equal(t, []string{
		"WATCHDOG=1",
		"STATUS=control loop oven stalled; outputs forced safe, systemd's watchdog not fed",
		"STATUS=control loops running: oven", "WATCHDOG=1",
		"STATUS=control loop oven stopped; outputs forced safe, systemd's watchdog not fed",
	}, rec.got())
}

func TestStartStopWithSystemdWatchdog(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "20000") // 20 ms
	t.Setenv("WATCHDOG_PID", "")
	now := int64(time.Second)
	l := &fakeLoop{running: true, heartbeat: now}
	rec := &recorder{}
	n := newNotifier(l, &now, rec)
	require.Equal(t, 20*time.Millisecond, n.interval)
	n.Start()
	assert.Eventually(t, func() bool { return len(rec.got()) >= 3 }, 5*time.Second, time.Millisecond)
	n.Stop()
	n.Stop()
	got := rec.got()
	assert.Equal(t, "READY=1\nSTATUS=control loops running: oven", got[0])
	assert.Equal(t, "WATCHDOG=1", got[1])
	assert.Equal(t, "STOPPING=1", got[len(got)-1])
}

func TestNotifyErrorDoesNotPet(t *testing.T) {
	now := int64(time.Second)
	l := &fakeLoop{running: true, heartbeat: now}
	n := New([]Loop{l}, zap.NewNop(), func() int64 { return now })
	n.notify = func(string) (bool, error) { return false, errors.New("socket gone") }
	assert.False(t, n.Check())
}

func TestWithoutSystemdNothingRuns(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	t.Setenv("NOTIFY_SOCKET", "")
	now := int64(time.Second)
	n := New([]Loop{&fakeLoop{running: true}}, zap.NewNop(), func() int64 { return now })
	assert.Zero(t, n.interval)
	n.Start() // SdNotify without NOTIFY_SOCKET is a no-op
	n.Stop()
}
