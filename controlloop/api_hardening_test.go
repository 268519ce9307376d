package controlloop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fieldcol/fieldcol/internal/hardware/backends"
)

// bearerLike behaves as contrib's bearertokenauth does: its server side accepts
// "Bearer <token>", its client side sets that header on outgoing requests. It counts the
// server-side calls so that a test can see whether the authenticator was asked at all.
type bearerLike struct {
	extensionauth.Server
	token string
	calls atomic.Int64
}

func (a *bearerLike) Start(context.Context, component.Host) error { return nil }
func (a *bearerLike) Shutdown(context.Context) error              { return nil }
func (a *bearerLike) Authenticate(ctx context.Context, h map[string][]string) (context.Context, error) {
	a.calls.Add(1)
	if v := h["Authorization"]; len(v) == 1 && v[0] == "Bearer "+a.token {
		return ctx, nil
	}
	return ctx, errors.New("provided authorization does not match expected scheme or token")
}

func (a *bearerLike) RoundTripper(base http.RoundTripper) (http.RoundTripper, error) {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+a.token)
		return base.RoundTrip(r)
	}), nil
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

const longToken = "0123456789abcdef0123456789abcdef"

// startWithAuth starts the plant config with auth by the extension id, served by auth.
func startWithAuth(t *testing.T, id component.ID, auth component.Component, log *zap.Logger, mutate func(*Config)) (*controlLoop, error) {
	t.Helper()
	cfg := plantConfig(t, latchPath(t))
	cfg.API.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: id}})
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	set := settings()
	if log != nil {
		set.Logger = log
	}
	e := newExtension(cfg, set)
	e.registry = backends.NewRegistry(nil)
	err := e.Start(context.Background(), &host{exts: map[component.ID]component.Component{id: auth}})
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e, err
}

func TestAPIUnauthorizedCountedForEveryMethodAndPath(t *testing.T) {
	s, c := apiSetup(t, func(cfg *Config) { cfg.API.AuthThrottle.MaxFailures = 100 })
	anon := &apiClient{t: t, base: c.base, token: "wrong"}
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/loops"},
		{http.MethodGet, "/api/v1/loops/oven"},
		{http.MethodGet, "/no/such/path"},
		{http.MethodDelete, "/api/v1/commands"},
		{http.MethodPut, "/api/v1/loops/oven"},
		{http.MethodPost, "/api/v1/commands"},
		{http.MethodPost, "/api/v1/sim/faults"},
	} {
		code, _, hdr := anon.do(r.method, r.path, "", nil)
		assert.Equal(t, http.StatusUnauthorized, code, "%s %s", r.method, r.path)
		assert.NotEmpty(t, hdr.Get("X-Request-Id"))
	}
	assert.Equal(t, int64(6), commandCount(t, s, "UNKNOWN", "unauthorized"))
	assert.Equal(t, int64(1), commandCount(t, s, "SIM_FAULT", "unauthorized"))
}

// clientFrom is an API client whose connections come from the loopback address local.
func clientFrom(t *testing.T, base, token, local string) *apiClient {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &apiClient{t: t, base: base, token: token, client: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

func TestAPIAuthThrottleBlocksOneAddress(t *testing.T) {
	auth := &bearerLike{token: longToken}
	id := component.MustNewIDWithName("bearertokenauth", "api")
	e, err := startWithAuth(t, id, auth, nil, func(cfg *Config) {
		cfg.API.AuthThrottle = AuthThrottleConfig{MaxFailures: 3, Window: time.Minute, Block: time.Minute, MaxClients: 8}
	})
	require.NoError(t, err)
	s := &started{ext: e, session: e.session}
	base := "http://" + e.apiAddr
	attacker := clientFrom(t, base, "guess", "127.0.0.1")
	operator := clientFrom(t, base, longToken, "127.0.0.2")
	sameHostOperator := clientFrom(t, base, longToken, "127.0.0.1")

	for i := range 3 {
		code, _, _ := attacker.do(http.MethodGet, "/api/v1/loops", "", nil)
		require.Equal(t, http.StatusUnauthorized, code, "failure %d", i+1)
	}
	require.Equal(t, int64(3), auth.calls.Load())

	// Blocked: even the right token from that address is refused without asking the
	// authenticator.
	for _, c := range []*apiClient{attacker, sameHostOperator} {
		code, out, hdr := c.do(http.MethodPost, "/api/v1/commands", `{"command":"SET_MODE","loop":"oven","mode":"off"}`, nil)
		assert.Equal(t, http.StatusTooManyRequests, code)
		assert.Contains(t, out["error"], "too many failed authentications")
		assert.NotEmpty(t, out["request_id"])
		retry := hdr.Get("Retry-After")
		assert.True(t, retry == "60" || retry == "59", "Retry-After %q is the rest of the block", retry)
	}
	assert.Equal(t, int64(3), auth.calls.Load(), "a blocked address never reaches the authenticator")
	assert.Equal(t, "auto", e.byName["oven"].Mode().String())

	// Another address works, and its failures are its own.
	code, out, _ := operator.do(http.MethodPost, "/api/v1/commands", `{"command":"SET_MODE","loop":"oven","mode":"off"}`, nil)
	require.Equal(t, http.StatusOK, code, "%v", out)
	code, _, _ = clientFrom(t, base, "typo", "127.0.0.2").do(http.MethodGet, "/api/v1/loops", "", nil)
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _, _ = operator.do(http.MethodGet, "/api/v1/loops/oven", "", nil)
	assert.Equal(t, http.StatusOK, code)

	assert.Equal(t, int64(4), commandCount(t, s, "UNKNOWN", "unauthorized"))
	assert.Equal(t, int64(2), commandCount(t, s, "UNKNOWN", "rate_limited"))
	assert.Equal(t, int64(1), commandCount(t, s, "SET_MODE", "accepted"))
}

func TestAPIMinTokenLength(t *testing.T) {
	id := component.MustNewIDWithName("bearertokenauth", "controlloop_api")
	tests := []struct {
		name    string
		auth    component.Component
		min     int
		wantErr string
	}{
		{"short token refused", &bearerLike{token: "s3cret"}, 16, "api.min_token_length: the token of bearertokenauth/controlloop_api is 6 bytes, at least 16 are required"},
		{"empty token refused", &bearerLike{token: ""}, 16, "is 0 bytes"},
		{"one byte short", &bearerLike{token: longToken[:15]}, 16, "is 15 bytes"},
		{"long enough", &bearerLike{token: longToken[:16]}, 16, ""},
		{"a higher minimum", &bearerLike{token: longToken[:16]}, 32, "at least 32 are required"},
		{"check off", &bearerLike{token: "s3cret"}, 0, ""},
		// The helpers' tokenAuth has no client side: nothing to probe, it starts with a warning.
		{"no client side", &tokenAuth{token: "s3cret"}, 16, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := startWithAuth(t, id, tt.auth, nil, func(cfg *Config) { cfg.API.MinTokenLength = tt.min })
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.NotEmpty(t, e.apiAddr)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			assert.ErrorContains(t, err, "openssl rand", "the error says what to do")
			assert.NotContains(t, err.Error(), "s3cret", "the error never shows the token")
			assert.Nil(t, e.server, "the API did not start")
		})
	}
	t.Run("warning names the key", func(t *testing.T) {
		core, logs := observer.New(zap.WarnLevel)
		_, err := startWithAuth(t, id, &tokenAuth{token: "s3cret"}, zap.New(core), nil)
		require.NoError(t, err)
		assert.Equal(t, 1, logs.FilterMessageSnippet("api.min_token_length: cannot check").Len())
	})
	t.Run("other authenticators are not probed", func(t *testing.T) {
		_, err := startWithAuth(t, component.MustNewID("basicauth"), &bearerLike{token: "short"}, nil, nil)
		require.NoError(t, err)
	})
}

// rawConn opens a TCP connection to the API and writes s.
func rawConn(t *testing.T, addr, s string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	if s != "" {
		_, err = io.WriteString(c, s)
		require.NoError(t, err)
	}
	return c
}

// waitClosedOrAnswered reads until the server answers or closes the connection, and
// returns how long that took and what it sent.
func waitClosedOrAnswered(t *testing.T, c net.Conn, limit time.Duration) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	require.NoError(t, c.SetReadDeadline(start.Add(limit)))
	b, err := io.ReadAll(c)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server still holds the connection after %s", limit)
	return time.Since(start), string(b)
}

func TestAPISlowClientsAreCutOff(t *testing.T) {
	s, _ := apiSetup(t, func(cfg *Config) {
		cfg.API.ReadHeaderTimeout = 200 * time.Millisecond
		cfg.API.ReadTimeout = 400 * time.Millisecond
	})
	addr := s.ext.apiAddr

	t.Run("headers", func(t *testing.T) {
		c := rawConn(t, addr, "POST /api/v1/commands HTTP/1.1\r\nHost: x\r\n")
		took, _ := waitClosedOrAnswered(t, c, 3*time.Second)
		assert.GreaterOrEqual(t, took, 150*time.Millisecond)
	})
	t.Run("body", func(t *testing.T) {
		body := `{"command":"SET_MODE","loop":"oven","mode":"off"}`
		c := rawConn(t, addr, "POST /api/v1/commands HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"+
			fmt.Sprintf("Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))+body[:10])
		// One more byte now and then keeps a naive server waiting forever.
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 10; i < len(body)-1; i++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := io.WriteString(c, body[i:i+1]); err != nil {
					return
				}
			}
		}()
		took, answer := waitClosedOrAnswered(t, c, 3*time.Second)
		close(stop)
		<-done
		assert.GreaterOrEqual(t, took, 300*time.Millisecond)
		assert.NotContains(t, answer, "200 OK")
		assert.Equal(t, "auto", s.ext.byName["oven"].Mode().String(), "the trickled command was not applied")
	})
}

func TestAPIMaxConnectionsWait(t *testing.T) {
	s, c := apiSetup(t, func(cfg *Config) {
		cfg.API.MaxConnections = 2
		cfg.API.ReadHeaderTimeout = 30 * time.Second
	})
	addr := s.ext.apiAddr
	get := func(timeout time.Duration) (int, error) {
		cl := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		req, err := http.NewRequest(http.MethodGet, c.base+"/api/v1/loops/oven", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := cl.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	code, err := get(5 * time.Second)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)

	// Two idle connections take both slots: a third client waits.
	first := rawConn(t, addr, "")
	second := rawConn(t, addr, "")
	_, err = get(500 * time.Millisecond)
	require.Error(t, err, "a connection beyond api.max_connections must wait")

	// The waiting connection is served once a slot frees.
	require.NoError(t, first.Close())
	code, err = get(5 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)

	// The slot of a complete request/response on a live connection stays taken by it.
	_, err = io.WriteString(second, "GET /api/v1/loops/oven HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(second), nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestAPIHardeningConfig(t *testing.T) {
	def := createDefaultConfig()
	assert.Equal(t, 5*time.Second, def.API.ReadHeaderTimeout)
	assert.Equal(t, 10*time.Second, def.API.ReadTimeout)
	assert.Equal(t, 30*time.Second, def.API.WriteTimeout)
	assert.Equal(t, 30*time.Second, def.API.IdleTimeout)
	assert.Equal(t, 16, def.API.MaxConnections)
	assert.Equal(t, 16, def.API.MinTokenLength)
	assert.Equal(t, AuthThrottleConfig{MaxFailures: 5, Window: time.Minute, Block: time.Minute, MaxClients: 1024}, def.API.AuthThrottle)

	// The keys load by their snake_case names.
	cfg := createDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{"api": map[string]any{
		"auth_throttle":    map[string]any{"max_failures": 3, "window": "10s", "block": "5m", "max_clients": 64},
		"min_token_length": 32, "max_connections": 4, "read_timeout": "2s", "read_header_timeout": "1s",
	}}).Unmarshal(cfg))
	assert.Equal(t, AuthThrottleConfig{MaxFailures: 3, Window: 10 * time.Second, Block: 5 * time.Minute, MaxClients: 64}, cfg.API.AuthThrottle)
	assert.Equal(t, 32, cfg.API.MinTokenLength)
	assert.Equal(t, 4, cfg.API.MaxConnections)
	assert.Equal(t, 2*time.Second, cfg.API.ReadTimeout)
	assert.Equal(t, time.Second, cfg.API.ReadHeaderTimeout)

	tests := []struct {
		name    string
		mutate  func(*APIConfig)
		wantErr string
	}{
		{"no header timeout", func(a *APIConfig) { a.ReadHeaderTimeout = 0 }, "api.read_header_timeout: must be positive"},
		{"no read timeout", func(a *APIConfig) { a.ReadTimeout = 0 }, "api.read_timeout: must be positive"},
		{"negative read timeout", func(a *APIConfig) { a.ReadTimeout = -time.Second }, "api.read_timeout: must be positive"},
		{"write shorter than a command", func(a *APIConfig) { a.WriteTimeout = 5 * time.Second }, "api.write_timeout: must be longer than api.command_timeout (5s)"},
		{"negative idle timeout", func(a *APIConfig) { a.IdleTimeout = -1 }, "api.idle_timeout: must not be negative"},
		{"no connections", func(a *APIConfig) { a.MaxConnections = 0 }, "api.max_connections: must be at least 1, got 0"},
		{"negative token length", func(a *APIConfig) { a.MinTokenLength = -1 }, "api.min_token_length: must not be negative"},
		{"no failures allowed", func(a *APIConfig) { a.AuthThrottle.MaxFailures = 0 }, "api.auth_throttle.max_failures: must be at least 1"},
		{"no window", func(a *APIConfig) { a.AuthThrottle.Window = 0 }, "api.auth_throttle.window: must be positive"},
		{"no block", func(a *APIConfig) { a.AuthThrottle.Block = 0 }, "api.auth_throttle.block: must be positive"},
		{"no clients", func(a *APIConfig) { a.AuthThrottle.MaxClients = 0 }, "api.auth_throttle.max_clients: must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := plantConfig(t, latchPath(t))
			require.NoError(t, cfg.Validate())
			tt.mutate(&cfg.API)
			assert.ErrorContains(t, cfg.Validate(), tt.wantErr)
		})
	}
	t.Run("write timeout 0 is no timeout", func(t *testing.T) {
		cfg := plantConfig(t, latchPath(t))
		cfg.API.WriteTimeout = 0
		assert.NoError(t, cfg.Validate())
	})
	assert.True(t, strings.HasPrefix(defaultAPIConfig().NetAddr.Endpoint, "localhost:"))
}
