package controlloop

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

type apiClient struct {
	t     *testing.T
	base  string
	token string
	// client is http.DefaultClient when nil.
	client *http.Client
}

func (c *apiClient) do(method, path, body string, hdr map[string]string) (int, map[string]any, http.Header) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	require.NoError(c.t, err)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	cl := c.client
	if cl == nil {
		cl = http.DefaultClient
	}
	resp, err := cl.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	var out map[string]any
	if len(b) > 0 {
		require.NoError(c.t, json.Unmarshal(b, &out), "body %s", b)
	}
	return resp.StatusCode, out, resp.Header
}

func apiSetup(t *testing.T, mutate func(*Config)) (*started, *apiClient) {
	t.Helper()
	cfg := plantConfig(t, latchPath(t))
	withAuth(cfg)
	if mutate != nil {
		mutate(cfg)
	}
	s := start(t, cfg, nil)
	return s, &apiClient{t: t, base: "http://" + s.ext.apiAddr, token: "s3cret"}
}

// commandCount reads controlloop.commands{command, result} from the extension.
func commandCount(t *testing.T, s *started, command, result string) int64 {
	t.Helper()
	ms := pmetric.NewMetrics()
	require.NoError(t, s.ext.CollectMetrics(ms))
	var n int64
	sms := ms.ResourceMetrics().At(0).ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		for j := 0; j < sms.At(i).Metrics().Len(); j++ {
			m := sms.At(i).Metrics().At(j)
			if m.Name() != "controlloop.commands" {
				continue
			}
			for k := 0; k < m.Sum().DataPoints().Len(); k++ {
				dp := m.Sum().DataPoints().At(k)
				c, _ := dp.Attributes().Get("command")
				r, _ := dp.Attributes().Get("result")
				if c.Str() == command && r.Str() == result {
					n += dp.IntValue()
				}
			}
		}
	}
	return n
}

func gauge(t *testing.T, s *started, name, loopName string) (float64, bool) {
	t.Helper()
	ms := pmetric.NewMetrics()
	require.NoError(t, s.ext.CollectMetrics(ms))
	sms := ms.ResourceMetrics().At(0).ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		for j := 0; j < sms.At(i).Metrics().Len(); j++ {
			m := sms.At(i).Metrics().At(j)
			if m.Name() != name {
				continue
			}
			for k := 0; k < m.Gauge().DataPoints().Len(); k++ {
				dp := m.Gauge().DataPoints().At(k)
				if l, _ := dp.Attributes().Get("loop"); l.Str() == loopName {
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						return float64(dp.IntValue()), true
					}
					return dp.DoubleValue(), true
				}
			}
		}
	}
	return 0, false
}

func TestAPIAuth(t *testing.T) {
	s, c := apiSetup(t, nil)
	body := `{"command":"SET_MODE","loop":"oven","mode":"off"}`
	for _, token := range []string{"", "wrong"} {
		anon := &apiClient{t: t, base: c.base, token: token}
		code, out, hdr := anon.do(http.MethodPost, "/api/v1/commands", body, map[string]string{"X-Request-Id": "req-1"})
		assert.Equal(t, http.StatusUnauthorized, code, "token %q", token)
		assert.Contains(t, out["error"], "unauthorized")
		assert.Equal(t, "req-1", hdr.Get("X-Request-Id"))
		code, _, _ = anon.do(http.MethodGet, "/api/v1/loops", "", nil)
		assert.Equal(t, http.StatusUnauthorized, code, "reads need the token too")
	}
	assert.Equal(t, int64(4), commandCount(t, s, "UNKNOWN", "unauthorized"), "refused reads count too")
	assert.Equal(t, "auto", s.ext.byName["oven"].Mode().String(), "nothing was applied")

	code, out, _ := c.do(http.MethodPost, "/api/v1/commands", body, nil)
	require.Equal(t, http.StatusOK, code, "%v", out)
	assert.Equal(t, "accepted", out["result"])
	assert.Equal(t, "off", s.ext.byName["oven"].Mode().String())
	assert.Equal(t, int64(1), commandCount(t, s, "SET_MODE", "accepted"))
}

func TestAPIRejectsBadRequests(t *testing.T) {
	s, c := apiSetup(t, func(cfg *Config) { cfg.API.RateLimit.Burst = 100 })
	tests := []struct {
		name, body string
		wantCode   int
		wantField  string
		wantErr    string
	}{
		{"unknown field", `{"command":"SET_MODE","loop":"oven","mode":"off","force":true}`, 400, "force", "unknown field"},
		{"setpoint above max", `{"command":"SET_TEMP_SETTINGS","loop":"oven","setpoint":500}`, 400, "setpoint", "500 is out of range [0, 75]"},
		{"negative speed", `{"command":"SET_MOTOR","loop":"conveyor","speed":-0.1}`, 400, "speed", "out of range [0, 1]"},
		{"wrong type", `{"command":"SET_TEMP_SETTINGS","loop":"oven","setpoint":"hot"}`, 400, "setpoint", "must be a JSON float64"},
		{"field of another command", `{"command":"ACK_ALARM","loop":"oven","setpoint":50}`, 400, "setpoint", "not allowed with ACK_ALARM"},
		{"unknown command", `{"command":"REBOOT","loop":"oven"}`, 400, "command", "not one of"},
		{"unknown loop", `{"command":"SET_MODE","loop":"kiln","mode":"off"}`, 400, "loop", `no loop named "kiln"`},
		{"motor on oven", `{"command":"SET_MOTOR","loop":"oven","on":true}`, 400, "loop", "has no motor"},
		{"bad mode", `{"command":"SET_MODE","loop":"oven","mode":"turbo"}`, 400, "mode", "not one of auto, manual, off"},
		{"unknown alarm", `{"command":"ACK_ALARM","loop":"oven","alarm":"fire"}`, 400, "alarm", `has no alarm "fire"`},
		{"two objects", `{"command":"SET_MODE","loop":"oven","mode":"off"}{}`, 400, "", "exactly one JSON object"},
		{"not json", `mode=off`, 400, "", "not a valid JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := c.do(http.MethodPost, "/api/v1/commands", tt.body, nil)
			assert.Equal(t, tt.wantCode, code)
			assert.Contains(t, out["error"], tt.wantErr)
			if tt.wantField != "" {
				assert.Equal(t, tt.wantField, out["field"])
			}
			assert.NotEmpty(t, out["request_id"])
		})
	}
	assert.Positive(t, commandCount(t, s, "UNKNOWN", "invalid"))
	assert.Positive(t, commandCount(t, s, "SET_TEMP_SETTINGS", "invalid"))
	assert.Equal(t, "auto", s.ext.byName["oven"].Mode().String())
	assert.Equal(t, 60.0, s.ext.byName["oven"].Setpoint())
}

func TestAPIRateLimit(t *testing.T) {
	s, c := apiSetup(t, func(cfg *Config) {
		cfg.API.RateLimit = RateLimitConfig{RequestsPerSecond: 0.01, Burst: 3}
	})
	body := `{"command":"SET_TEMP_SETTINGS","loop":"oven","setpoint":55}`
	for range 3 {
		code, out, _ := c.do(http.MethodPost, "/api/v1/commands", body, nil)
		require.Equal(t, http.StatusOK, code, "%v", out)
	}
	code, out, hdr := c.do(http.MethodPost, "/api/v1/commands", body, nil)
	assert.Equal(t, http.StatusTooManyRequests, code)
	assert.Contains(t, out["error"], "rate limit")
	assert.NotEmpty(t, hdr.Get("Retry-After"))
	assert.Equal(t, int64(1), commandCount(t, s, "UNKNOWN", "rate_limited"))
	code, _, _ = c.do(http.MethodGet, "/api/v1/loops/oven", "", nil)
	assert.Equal(t, http.StatusOK, code, "reads are not rate limited")
}

func TestAPIFaultLatchAckCycle(t *testing.T) {
	s, c := apiSetup(t, nil)
	pl := s.plant()
	require.Eventually(t, func() bool { return pl.HeaterDuty() > 0 }, 5*time.Second, time.Millisecond)

	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	code, out, _ := c.do(http.MethodPost, "/api/v1/sim/faults", `{"device":"oven_temp","kind":"nan"}`, map[string]string{"traceparent": tp})
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Eventually(t, func() bool { v, _ := gauge(t, s, "controlloop.safe_state", "oven"); return v == 1 }, 5*time.Second, time.Millisecond)
	assert.Zero(t, pl.HeaterDuty())

	code, out, _ = c.do(http.MethodPost, "/api/v1/commands", `{"command":"ACK_ALARM","loop":"oven"}`, nil)
	assert.Equal(t, http.StatusConflict, code, "ack while the sensor still fails")
	assert.Contains(t, out["error"], "still present")
	assert.Equal(t, int64(1), commandCount(t, s, "ACK_ALARM", "failed"))

	code, _, _ = c.do(http.MethodPost, "/api/v1/sim/faults", `{"device":"oven_temp","clear":true}`, nil)
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool {
		code, out, _ = c.do(http.MethodGet, "/api/v1/loops/oven", "", nil)
		return code == http.StatusOK && out["process_value"] != nil
	}, 5*time.Second, time.Millisecond, "readings are valid again")
	assert.Equal(t, "tripped", out["state"], "the latch holds after the fault clears")
	assert.Zero(t, pl.HeaterDuty())

	code, out, _ = c.do(http.MethodPost, "/api/v1/commands", `{"command":"ACK_ALARM","loop":"oven","alarm":"sensor_fault"}`, nil)
	require.Equal(t, http.StatusOK, code, "%v", out)
	loopOut := out["loop"].(map[string]any)
	assert.Equal(t, "running", loopOut["state"])
	assert.Equal(t, "auto", loopOut["mode"])
	require.Eventually(t, func() bool { v, _ := gauge(t, s, "controlloop.safe_state", "oven"); return v == 0 }, 5*time.Second, time.Millisecond)

	// The audit trail: one log record per command, the fault's span continues the caller's trace.
	ld := plog.NewLogs()
	s.ext.DrainLogs(ld)
	var audit []string
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i := 0; i < lrs.Len(); i++ {
		if lrs.At(i).EventName() == "controlloop.command" {
			cmd, _ := lrs.At(i).Attributes().Get("command")
			res, _ := lrs.At(i).Attributes().Get("result")
			who, _ := lrs.At(i).Attributes().Get("enduser.id")
			assert.True(t, strings.HasPrefix(who.Str(), "token:"), "who is a token hash, never the token")
			audit = append(audit, cmd.Str()+"="+res.Str())
		}
	}
	assert.Equal(t, []string{"SIM_FAULT=accepted", "ACK_ALARM=failed", "SIM_FAULT=accepted", "ACK_ALARM=accepted"}, audit)
	td := ptrace.NewTraces()
	s.ext.DrainTraces(td)
	found := false
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < spans.Len(); i++ {
		if sp := spans.At(i); sp.Name() == "controlloop.command SIM_FAULT" && sp.TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736" {
			found = sp.ParentSpanID().String() == "00f067aa0ba902b7"
		}
	}
	assert.True(t, found, "the command span joins the trace of the traceparent header")
}

func TestAPIListAndGet(t *testing.T) {
	_, c := apiSetup(t, nil)
	code, out, _ := c.do(http.MethodGet, "/api/v1/loops", "", nil)
	require.Equal(t, http.StatusOK, code)
	loops := out["loops"].([]any)
	require.Len(t, loops, 2)
	oven := loops[0].(map[string]any)
	assert.Equal(t, "oven", oven["name"])
	assert.Equal(t, "Cel", oven["unit"])
	assert.Len(t, oven["alarms"], 4, "sensor_fault, actuator_fault, plausibility, high_limit")
	code, out, _ = c.do(http.MethodGet, "/api/v1/loops/kiln", "", nil)
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, out["error"], "kiln")
	code, out, _ = c.do(http.MethodPost, "/api/v1/commands", `{"command":"SET_MOTOR","loop":"conveyor","on":false}`, nil)
	require.Equal(t, http.StatusOK, code, "%v", out)
	assert.Equal(t, "off", out["loop"].(map[string]any)["state"])
}

func TestAPIRefusesNonLoopbackWithoutAuth(t *testing.T) {
	cfg := plantConfig(t, latchPath(t))
	cfg.API.NetAddr.Endpoint = "0.0.0.0:0"
	require.ErrorContains(t, cfg.Validate(), "api.auth: required when api.endpoint")
	e := newExtension(cfg, settings())
	err := e.Start(context.Background(), &host{})
	require.ErrorContains(t, err, "api.auth: required")
	require.NoError(t, e.Shutdown(context.Background()))
}

func TestAPIBodyTooLarge(t *testing.T) {
	_, c := apiSetup(t, nil)
	big := `{"command":"SET_MODE","loop":"oven","mode":"off","x":"` + string(bytes.Repeat([]byte("a"), 8000)) + `"}`
	code, out, _ := c.do(http.MethodPost, "/api/v1/commands", big, nil)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, out["error"], "larger than")
}
