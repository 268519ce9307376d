package netfault

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startProxy(t *testing.T) (*Proxy, *http.Client) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok " + r.URL.Path))
	}))
	t.Cleanup(srv.Close)
	p, err := Listen(strings.TrimPrefix(srv.URL, "http://"), 1)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return p, &http.Client{Transport: tr, Timeout: 300 * time.Millisecond}
}

func get(c *http.Client, p *Proxy, path string) (string, error) {
	resp, err := c.Get("http://" + p.Addr() + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return line, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestModes(t *testing.T) {
	p, c := startProxy(t)
	got, err := get(c, p, "/a")
	require.NoError(t, err)
	assert.Equal(t, "ok /a", got)

	// Hold: the kept-alive connection and a new one both go silent until the timeout.
	p.SetMode(Hold)
	_, err = get(c, p, "/held")
	assert.True(t, isTimeout(err), "a held request hangs until the client's timeout: %v", err)
	_, err = get(c, p, "/held-again")
	assert.True(t, isTimeout(err), "a new connection is held too: %v", err)
	assert.Positive(t, p.Stats().Held, "new connections are accepted and held")

	// Drop: the request is cut and the connection reset, at once.
	p.SetMode(Drop)
	c.Timeout = 5 * time.Second
	_, err = get(c, p, "/dropped")
	require.Error(t, err)
	assert.False(t, isTimeout(err), "a dropped request fails at once, not by the client's timeout: %v", err)
	assert.Positive(t, p.Stats().Dropped)

	p.SetMode(Pass)
	require.Eventually(t, func() bool {
		got, err := get(c, p, "/back")
		return err == nil && got == "ok /back"
	}, 2*time.Second, 10*time.Millisecond, "the route is back")
}

func TestFlakyBreaksSomeRequestsAndPassesOthers(t *testing.T) {
	p, c := startProxy(t)
	c.Timeout = 2 * time.Second
	p.SetMode(Flaky)
	ok, failed := 0, 0
	for range 120 {
		if _, err := get(c, p, "/x"); err != nil {
			failed++
		} else {
			ok++
		}
	}
	assert.Positive(t, ok)
	assert.Positive(t, failed)
	st := p.Stats()
	assert.Positive(t, st.Dropped+st.Truncated)
}

func TestCloseEndsHeldConnections(t *testing.T) {
	p, err := Listen("127.0.0.1:1", 1)
	require.NoError(t, err)
	p.SetMode(Hold)
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return p.Stats().Held == 1 }, time.Second, 5*time.Millisecond)
	require.NoError(t, p.Close())
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, err = c.Read(make([]byte, 1))
	assert.Error(t, err, "the held connection is closed with the proxy")
}
