// Package testproc runs the processes that end-to-end tests need (built collectors,
// Prometheus, Alertmanager): it captures their output to a file, stops them cleanly at the
// end of the test, and prints their log when the test failed.
package testproc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a child process owned by one test.
type Process struct {
	Name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File

	done    chan struct{}
	waitErr error

	stopOnce sync.Once
	stopErr  error
	// abandoned is set by Retry for a start that lost a port race: its exit is expected.
	abandoned bool
}

// Start starts name with args and extra environment entries (KEY=VALUE, added to the test's
// environment). The process is stopped when the test ends; if the test failed, its log is
// printed.
func Start(t testing.TB, name string, args []string, env ...string) *Process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(name)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("creating the log of %s: %v", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Its own process group, so a test's Ctrl-C does not reach it before Stop does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &Process{Name: filepath.Base(name), cmd: cmd, logPath: logPath, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.abandoned {
			_ = p.Stop(15 * time.Second)
			_ = logFile.Close()
			return
		}
		if err := p.Stop(15 * time.Second); err != nil && !t.Failed() {
			t.Errorf("%s did not stop cleanly: %v", p.Name, err)
		}
		if t.Failed() {
			t.Logf("----- log of %s (%s) -----\n%s\n----- end of log of %s -----", p.Name, strings.Join(cmd.Args, " "), p.Log(), p.Name)
		}
		_ = logFile.Close()
	})
	return p
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Log returns everything the process has written so far.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.logPath, err)
	}
	return string(b)
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends SIGTERM and waits up to grace for the process to exit, then kills it. It
// returns an error when the process had to be killed or exited with a non-zero status.
// Stop is idempotent: later calls return the first result.
func (p *Process) Stop(grace time.Duration) error {
	p.stopOnce.Do(func() { p.stopErr = p.stop(grace) })
	return p.stopErr
}

func (p *Process) stop(grace time.Duration) error {
	if p.Exited() {
		return exitError(p.waitErr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("sending SIGTERM: %w", err)
	}
	select {
	case <-p.done:
		return exitError(p.waitErr)
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("still running %s after SIGTERM: killed", grace)
	}
}

// Kill ends the process with SIGKILL at once, as a crash would, and waits for it.
func (p *Process) Kill() {
	p.stopOnce.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
}

func exitError(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("exited: %w", err)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago. Anything else on
// the machine may take it before the process it is meant for binds it, which is why it is
// only handed out through Retry's Ports.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("releasing port %d: %v", port, err)
	}
	return port
}

// Ports hands out free loopback ports to one attempt of a Retry.
type Ports struct{ t testing.TB }

// Port is a TCP port on 127.0.0.1 that was free a moment ago.
func (p *Ports) Port() int { return freePort(p.t) }

// Addr is Port as "127.0.0.1:port".
func (p *Ports) Addr() string { return fmt.Sprintf("127.0.0.1:%d", p.Port()) }

// ClosedAddr is a loopback address nothing listened on a moment ago, for a client that must
// fail to connect (a store a test does not run), never for a server to bind.
func ClosedAddr(t testing.TB) string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }

// retries bounds Retry: losing five races in a row means something holds ports on purpose.
const retries = 5

// Retry runs start, which picks its ports from ports, starts a server and waits until it is
// ready, until the server does not lose a port race: when start fails because the process
// exited saying "address already in use", that attempt is abandoned and start runs again
// with new ports. Any other failure fails the test at once. It is the one place where the
// tests handle the window between finding a free port and the bind.
func Retry(t testing.TB, start func(ports *Ports) (*Process, error)) *Process {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p, err := start(&Ports{t: t})
		if err == nil {
			return p
		}
		if p == nil || !p.lostPortRace() || attempt == retries {
			t.Fatalf("%v", err)
		}
		t.Logf("%s lost a port race (attempt %d of %d), starting it again on new ports: %v", p.Name, attempt, retries, err)
		p.abandoned = true
		_ = p.Stop(5 * time.Second)
	}
}

// lostPortRace reports whether the process exited because a port it was given was taken.
func (p *Process) lostPortRace() bool {
	return p.Exited() && strings.Contains(p.Log(), "address already in use")
}

// WaitHTTP polls url until it answers 200 or the timeout passes, failing the test then. It
// fails at once if p (optional) exits first.
func WaitHTTP(t testing.TB, p *Process, url string, timeout time.Duration) {
	t.Helper()
	if err := WaitHTTPErr(p, url, timeout); err != nil {
		t.Fatalf("%v", err)
	}
}

// WaitHTTPErr is WaitHTTP returning its failure, for Retry.
func WaitHTTPErr(p *Process, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited before %s answered: %v", p.Name, url, p.waitErr)
		}
		resp, err := client.Get(url)
		if err == nil {
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, body.String())
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 within %s: %s", url, timeout, last)
}

// LookPath finds a command the tests need. When it is missing the test is skipped on a
// developer's machine and fails under CI (CI=true), where `make test` installs it.
func LookPath(t testing.TB, name, installHint string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (%s); make test installs it", name, installHint)
	}
	t.Skipf("%s is not installed (%s); make test installs it", name, installHint)
	return ""
}

// RepoRoot is the repository's top directory: the first directory above the working
// directory (a test's package directory) that holds a go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Tool is a program `make .tools/NAME` builds into .tools/ from its tools module (sloth,
// the stores, helm, versitygw). A test that needs a missing one is skipped on a developer's
// machine and fails under CI, where `make test` builds it first.
func Tool(t testing.TB, name string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("finding the repository: %v", err)
	}
	p := filepath.Join(root, ".tools", name)
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("%s is not built (make .tools/%s): %v", p, name, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}
