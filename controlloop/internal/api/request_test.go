package api

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testLoops = map[string]LoopInfo{
	"oven":     {Name: "oven", SetpointMin: 0, SetpointMax: 250, Alarms: []string{"sensor_fault", "high_limit"}, OutputMax: 1},
	"conveyor": {Name: "conveyor", SetpointMin: 0, SetpointMax: 3000, HasMotor: true, Alarms: []string{"sensor_fault"}, OutputMax: 1},
	// A heater limited to half power with a 0.5/s ramp in its configuration.
	"limited": {Name: "limited", SetpointMin: 0, SetpointMax: 75, Alarms: []string{"sensor_fault"}, OutputMin: 0.1, OutputMax: 0.5, MaxRate: 0.5},
}

func TestDecodeAndValidate(t *testing.T) {
	tests := []struct {
		body      string
		wantField string
		wantErr   string
	}{
		{`{"command":"SET_TEMP_SETTINGS","loop":"oven","setpoint":180,"max_rate":0.5,"output_max":0.9}`, "", ""},
		{`{"command":"SET_MOTOR","loop":"conveyor","on":true,"speed":0.5}`, "", ""},
		{`{"command":"ACK_ALARM","loop":"oven"}`, "", ""},
		{`{"command":"ACK_ALARM","loop":"oven","alarm":"high_limit"}`, "", ""},
		{`{"command":"SET_MODE","loop":"oven","mode":"manual","output":0.2}`, "", ""},
		{`{"command":"SET_MODE","loop":"oven","mode":"auto","output":0.2}`, "output", "only with mode manual"},
		{`{"command":"SET_MODE","loop":"oven"}`, "mode", "required"},
		{`{"command":"SET_TEMP_SETTINGS","loop":"oven"}`, "setpoint", "needs at least one"},
		{`{"command":"SET_TEMP_SETTINGS","loop":"oven","output_max":1.5}`, "output_max", "out of range [0, 1]"},
		{`{"command":"SET_TEMP_SETTINGS","loop":"oven","max_rate":-1}`, "max_rate", "out of range"},
		// A command may only narrow the configured limits (issue 18: output_max 0.5 in the
		// config, then output 1 in manual, or a ramp of 1e308).
		{`{"command":"SET_TEMP_SETTINGS","loop":"limited","output_max":0.6}`, "output_max", "out of range [0.1, 0.5]"},
		{`{"command":"SET_TEMP_SETTINGS","loop":"limited","output_max":0.05}`, "output_max", "out of range [0.1, 0.5]"},
		{`{"command":"SET_TEMP_SETTINGS","loop":"limited","output_max":0.4}`, "", ""},
		{`{"command":"SET_MODE","loop":"limited","mode":"manual","output":1}`, "output", "out of range [0.1, 0.5]"},
		{`{"command":"SET_TEMP_SETTINGS","loop":"limited","max_rate":1e308}`, "max_rate", "may only slow it"},
		{`{"command":"SET_TEMP_SETTINGS","loop":"limited","max_rate":0}`, "max_rate", "0 would be a step"},
		{`{"command":"SET_TEMP_SETTINGS","loop":"limited","max_rate":0.25}`, "", ""},
		{`{"command":"SET_TEMP_SETTINGS","loop":"oven","max_rate":1e308}`, "", ""},
		{`{"command":"SET_MOTOR","loop":"conveyor"}`, "on", "needs at least one"},
		{`{"command":"SET_MOTOR","loop":"conveyor","on":"yes"}`, "on", "must be a JSON bool"},
		{`{"command":"SET_MODE","loop":"","mode":"off"}`, "loop", "required"},
		{`{"command":"SET_MODE","loop":"oven","mode":"off","extra":1}`, "extra", "unknown field"},
		// encoding/json would take these as "command" and "setpoint": refused, naming the key.
		{`{"Command":"SET_MODE","loop":"oven","mode":"off"}`, "Command", `case-sensitive: use "command"`},
		{`{"command":"SET_TEMP_SETTINGS","loop":"oven","setpoint":1,"SETPOINT":200}`, "SETPOINT", `use "setpoint"`},
		{`{"command":"SET_TEMP_SETTINGS","loop":"oven","ſetpoint":200}`, "ſetpoint", `use "setpoint"`},
		// The last duplicate would win in encoding/json; a reviewer reads the first.
		{`{"command":"SET_TEMP_SETTINGS","loop":"oven","setpoint":1,"setpoint":200}`, "setpoint", "appears more than once"},
		{`{"command":"SET_MODE","loop":"oven","mode":"off","loop":"conveyor"}`, "loop", "appears more than once"},
		{`{"comm\u0061nd":"SET_MODE","command":"SET_MODE","loop":"oven","mode":"off"}`, "command", "appears more than once"},
		{`{"command":"SET_MODE","loop":"oven","mode":"manual","output":{"output":1,"output":2}}`, "output", "must be a JSON float64"},
		{`[1,2]`, "", "not a valid JSON object"},
		{`{"command":"SET_MODE","loop":"oven","mode":"off"} x`, "", "exactly one JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			req, err := DecodeRequest(strings.NewReader(tt.body))
			if err == nil {
				err = req.Validate(testLoops)
			}
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			if tt.wantField != "" {
				var fe *FieldError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, tt.wantField, fe.Field)
			}
		})
	}
}

func TestDecodeFault(t *testing.T) {
	f, err := DecodeFault(strings.NewReader(`{"device":"oven_temp","kind":"slow_read","duration":"30s","delay":"2s","value":5}`))
	require.NoError(t, err)
	assert.Equal(t, Duration(30*time.Second), f.Duration)
	assert.Equal(t, Duration(2*time.Second), f.Delay)
	_, err = DecodeFault(strings.NewReader(`{"device":"oven_temp"}`))
	require.ErrorContains(t, err, "kind: required unless clear is true")
	_, err = DecodeFault(strings.NewReader(`{"kind":"nan"}`))
	require.ErrorContains(t, err, "device: required")
	_, err = DecodeFault(strings.NewReader(`{"device":"x","kind":"nan","duration":30}`))
	require.ErrorContains(t, err, "duration string")
	_, err = DecodeFault(strings.NewReader(`{"device":"x","kind":"nan","duration":"-1s"}`))
	require.ErrorContains(t, err, "must not be negative")
	_, err = DecodeFault(strings.NewReader(`{"device":"x","kind":"nan","Device":"oven_temp"}`))
	require.ErrorContains(t, err, `Device: unknown field; field names are case-sensitive: use "device"`)
	_, err = DecodeFault(strings.NewReader(`{"device":"x","kind":"nan","\u212aind":"stuck"}`))
	require.ErrorContains(t, err, `use "kind"`, "the Kelvin sign folds to k in encoding/json")
	_, err = DecodeFault(strings.NewReader(`{"device":"x","kind":"nan","clear":false,"clear":true}`))
	require.ErrorContains(t, err, "clear: appears more than once")
	f, err = DecodeFault(strings.NewReader(`{"device":"x","clear":true}`))
	require.NoError(t, err)
	assert.True(t, f.Clear)
}

func TestTraceparent(t *testing.T) {
	tid, sid, ok := ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	require.True(t, ok)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", tid.String())
	assert.Equal(t, "00f067aa0ba902b7", sid.String())
	for _, bad := range []string{"", "00-0000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"} {
		_, _, ok := ParseTraceparent(bad)
		assert.False(t, ok, bad)
	}
	_, _, ok = ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future")
	assert.True(t, ok, "a later version may append fields")
}

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewLimiter(2, 2)
	l.now = func() time.Time { return now }
	_, ok := l.Allow()
	assert.True(t, ok)
	_, ok = l.Allow()
	assert.True(t, ok)
	wait, ok := l.Allow()
	assert.False(t, ok)
	assert.Equal(t, 500*time.Millisecond, wait)
	now = now.Add(500 * time.Millisecond)
	_, ok = l.Allow()
	assert.True(t, ok, "one token back after half a second at 2/s")
	assert.Equal(t, "1", retryAfter(wait))
}

func TestValidRequestID(t *testing.T) {
	assert.True(t, validRequestID("abc-123"))
	assert.False(t, validRequestID("has space"))
	assert.False(t, validRequestID("line\nbreak"))
	assert.False(t, validRequestID(strings.Repeat("a", 129)))
}

// FuzzDecodeRequest feeds the strict decoder and the validation arbitrary bodies: they
// must never panic, and whatever passes must be in range and survive a round trip.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"command":"SET_TEMP_SETTINGS","loop":"oven","setpoint":180}`,
		`{"command":"SET_MOTOR","loop":"conveyor","on":true,"speed":0.5,"setpoint":1200}`,
		`{"command":"ACK_ALARM","loop":"oven","alarm":"high_limit"}`,
		`{"command":"SET_MODE","loop":"oven","mode":"manual","output":1}`,
		`{"command":"SET_MODE","loop":"oven","mode":"manual","output":1e309}`,
		`{"command":"SET_TEMP_SETTINGS","loop":"oven","setpoint":-0}`,
		`{"command":"SET_TEMP_SETTINGS","loop":"oven","setpoint":1,"setpoint":900}`,
		`{"command":"\u0000","loop":"oven"}`,
		`{}`, `null`, `[]`, `{"command":`, "\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	f.Add([]byte(`{"command":"SET_MODE","loop":"oven","mode":"off","MODE":"auto"}`))
	f.Add([]byte(`{"comm\u0061nd":"SET_MODE","command":"SET_MODE","loop":"oven","mode":"off"}`))
	f.Add([]byte(`{"command":"SET_MODE","loop":"oven","mode":"off","x":[[[[[[[[{"a":[]}]]]]]]]]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(bytes.NewReader(body))
		checkKeysStrict(t, body, jsonFields(&Request{}), err == nil)
		if err != nil {
			return
		}
		if err := req.Validate(testLoops); err != nil {
			var fe *FieldError
			if !assertFieldError(err, &fe) {
				t.Fatalf("validation error without a field: %v", err)
			}
			return
		}
		info := testLoops[req.Loop]
		for name, v := range map[string]*float64{"setpoint": req.Setpoint, "speed": req.Speed, "output": req.Output, "output_max": req.OutputMax, "max_rate": req.MaxRate} {
			if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
				t.Fatalf("%s accepted a non-finite value", name)
			}
		}
		if req.Setpoint != nil && (*req.Setpoint < info.SetpointMin || *req.Setpoint > info.SetpointMax) {
			t.Fatalf("setpoint %v accepted outside [%v, %v]", *req.Setpoint, info.SetpointMin, info.SetpointMax)
		}
		for _, v := range []*float64{req.Speed, req.Output, req.OutputMax} {
			if v != nil && (*v < 0 || *v > 1) {
				t.Fatalf("fraction %v accepted outside [0, 1]", *v)
			}
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeRequest(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("a valid request does not decode after re-encoding: %v", err)
		}
		if err := back.Validate(testLoops); err != nil {
			t.Fatalf("a valid request is invalid after a round trip: %v", err)
		}
	})
}

func assertFieldError(err error, fe **FieldError) bool {
	e, ok := err.(*FieldError)
	*fe = e
	return ok && e.Field != ""
}
