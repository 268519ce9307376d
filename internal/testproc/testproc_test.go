package testproc

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// With TESTPROC_LISTEN set, the test binary is a tiny server on that address, failing as a
// collector does when the address is taken.
func TestMain(m *testing.M) {
	if addr := os.Getenv("TESTPROC_LISTEN"); addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error: cannot start pipelines: listen tcp %s: %v\n", addr, err)
			os.Exit(1)
		}
		go func() { _ = http.Serve(l, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})) }()
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM)
		<-stop
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The first start is given a port that something else holds: Retry starts it again on a
// new port, and the abandoned attempt does not fail the test.
func TestRetryAfterAPortRace(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	attempts := 0
	p := Retry(t, func(ports *Ports) (*Process, error) {
		attempts++
		addr := ports.Addr()
		if attempts == 1 {
			addr = taken.Addr().String() // another program took it after it was found free
		}
		p := Start(t, os.Args[0], nil, "TESTPROC_LISTEN="+addr)
		return p, WaitHTTPErr(p, "http://"+addr+"/", 10*time.Second)
	})
	assert.Equal(t, 2, attempts)
	assert.False(t, p.Exited())
}

// Any other failure is not retried.
func TestRetryDoesNotRetryOtherFailures(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	attempts := 0
	func() {
		defer func() { _ = recover() }()
		Retry(ft, func(*Ports) (*Process, error) {
			attempts++
			return nil, fmt.Errorf("the config is wrong")
		})
	}()
	assert.Equal(t, 1, attempts)
	assert.Equal(t, "the config is wrong", ft.fatal)
}

// fatalRecorder records Fatalf instead of ending the test, which panics out of Retry.
type fatalRecorder struct {
	testing.TB
	fatal string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	panic("fatal")
}

func (f *fatalRecorder) Helper() {}
