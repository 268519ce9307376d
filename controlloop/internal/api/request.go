// Package api is the control loop's HTTP command API: strict JSON decoding, range checks
// whose errors name the field, request ids and W3C trace context, a rate limit and an audit
// record for every command. It knows nothing of the loops' internals: the extension gives it
// a Backend.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Command names of the API.
const (
	CmdSetTempSettings = "SET_TEMP_SETTINGS"
	CmdSetMotor        = "SET_MOTOR"
	CmdAckAlarm        = "ACK_ALARM"
	CmdSetMode         = "SET_MODE"
	// CmdClearDryRun ends dry run on every loop (they go to mode off); it names no loop.
	CmdClearDryRun = "CLEAR_DRY_RUN"
	// CmdSimFault is how fault injection appears in the audit trail and metrics.
	CmdSimFault = "SIM_FAULT"
	// CmdUnknown labels a request refused before its command was known (bad token, bad JSON).
	CmdUnknown = "UNKNOWN"
)

// Request is the body of POST /api/v1/commands. Optional fields are pointers so that
// "absent" and "zero" differ.
type Request struct {
	Command   string   `json:"command"`
	Loop      string   `json:"loop"`
	Setpoint  *float64 `json:"setpoint,omitempty"`
	MaxRate   *float64 `json:"max_rate,omitempty"`
	OutputMax *float64 `json:"output_max,omitempty"`
	On        *bool    `json:"on,omitempty"`
	Speed     *float64 `json:"speed,omitempty"`
	Alarm     *string  `json:"alarm,omitempty"`
	Mode      *string  `json:"mode,omitempty"`
	Output    *float64 `json:"output,omitempty"`
}

// FieldError is a validation error about one field of a request.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// maxBody bounds a command body; the largest valid one is a few hundred bytes.
const maxBody = 4096

// decodeStrict decodes exactly one JSON object into v: unknown fields, duplicate fields,
// fields spelt in another case, trailing data, wrongly typed values and oversized bodies are
// refused.
func decodeStrict(r io.Reader, v any) error {
	body, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if len(body) > maxBody {
		return fmt.Errorf("body is larger than %d bytes", maxBody)
	}
	if err := checkKeys(body, jsonFields(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return fieldErr(ute.Field, "must be a JSON %s", ute.Type.Kind())
		}
		if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fieldErr(strings.Trim(field, `"`), "unknown field")
		}
		return fmt.Errorf("body is not a valid JSON object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("body must hold exactly one JSON object")
	}
	return nil
}

// DecodeRequest decodes a command body strictly.
func DecodeRequest(r io.Reader) (*Request, error) {
	var req Request
	if err := decodeStrict(r, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// LoopInfo is what validation needs to know about a loop.
type LoopInfo struct {
	Name                     string
	SetpointMin, SetpointMax float64
	HasMotor                 bool
	Alarms                   []string
	// OutputMin and OutputMax are the configured output limits, MaxRate the configured
	// ramp (0 = step): a command may only narrow them.
	OutputMin, OutputMax float64
	MaxRate              float64
}

// Validate checks req against the loop it names; every error names the field.
func (req *Request) Validate(loops map[string]LoopInfo) error {
	allowed := map[string][]string{
		CmdSetTempSettings: {"setpoint", "max_rate", "output_max"},
		CmdSetMotor:        {"on", "speed", "setpoint"},
		CmdAckAlarm:        {"alarm"},
		CmdSetMode:         {"mode", "output"},
	}
	if req.Command == CmdClearDryRun {
		return req.validateClearDryRun()
	}
	fields, ok := allowed[req.Command]
	if !ok {
		return fieldErr("command", "%q is not one of SET_TEMP_SETTINGS, SET_MOTOR, ACK_ALARM, SET_MODE, CLEAR_DRY_RUN", req.Command)
	}
	info, ok := loops[req.Loop]
	if !ok {
		if req.Loop == "" {
			return fieldErr("loop", "required")
		}
		return fieldErr("loop", "no loop named %q", req.Loop)
	}
	for name, set := range map[string]bool{
		"setpoint": req.Setpoint != nil, "max_rate": req.MaxRate != nil, "output_max": req.OutputMax != nil,
		"on": req.On != nil, "speed": req.Speed != nil, "alarm": req.Alarm != nil,
		"mode": req.Mode != nil, "output": req.Output != nil,
	} {
		if set && !slices.Contains(fields, name) {
			return fieldErr(name, "not allowed with %s (allowed: %s)", req.Command, strings.Join(fields, ", "))
		}
	}
	inRange := func(field string, v *float64, lo, hi float64) error {
		if v == nil {
			return nil
		}
		if math.IsNaN(*v) || *v < lo || *v > hi {
			return fieldErr(field, "%g is out of range [%g, %g]", *v, lo, hi)
		}
		return nil
	}
	switch req.Command {
	case CmdSetTempSettings:
		if req.Setpoint == nil && req.MaxRate == nil && req.OutputMax == nil {
			return fieldErr("setpoint", "SET_TEMP_SETTINGS needs at least one of setpoint, max_rate, output_max")
		}
		if err := inRange("setpoint", req.Setpoint, info.SetpointMin, info.SetpointMax); err != nil {
			return err
		}
		if err := checkMaxRate(req.MaxRate, info.MaxRate); err != nil {
			return err
		}
		return inRange("output_max", req.OutputMax, info.OutputMin, info.OutputMax)
	case CmdSetMotor:
		if !info.HasMotor {
			return fieldErr("loop", "loop %q has no motor (output.enable)", req.Loop)
		}
		if req.On == nil && req.Speed == nil && req.Setpoint == nil {
			return fieldErr("on", "SET_MOTOR needs at least one of on, speed, setpoint")
		}
		if err := inRange("speed", req.Speed, 0, 1); err != nil {
			return err
		}
		return inRange("setpoint", req.Setpoint, info.SetpointMin, info.SetpointMax)
	case CmdAckAlarm:
		if req.Alarm != nil && !slices.Contains(info.Alarms, *req.Alarm) {
			return fieldErr("alarm", "loop %q has no alarm %q (has: %s)", req.Loop, *req.Alarm, strings.Join(info.Alarms, ", "))
		}
	case CmdSetMode:
		if req.Mode == nil {
			return fieldErr("mode", "required")
		}
		switch *req.Mode {
		case "auto", "off":
			if req.Output != nil {
				return fieldErr("output", "only with mode manual")
			}
		case "manual":
			return inRange("output", req.Output, info.OutputMin, info.OutputMax)
		default:
			return fieldErr("mode", "%q is not one of auto, manual, off", *req.Mode)
		}
	}
	return nil
}

// checkMaxRate allows a ramp no faster than the configured one (configured 0 is a step,
// which any rate narrows).
func checkMaxRate(v *float64, configured float64) error {
	if v == nil {
		return nil
	}
	hi := math.MaxFloat64
	if configured > 0 {
		hi = configured
	}
	if math.IsNaN(*v) || *v < 0 || *v > hi || (*v == 0 && configured > 0) {
		return fieldErr("max_rate", "%g is out of range: the configured ramp is %g/s (0 would be a step); a command may only slow it, to a value in (0, %g]", *v, configured, hi)
	}
	return nil
}

// validateClearDryRun accepts CLEAR_DRY_RUN only bare: dry run belongs to the whole
// extension, so a loop or an argument would suggest a scope the command does not have.
func (req *Request) validateClearDryRun() error {
	if req.Loop != "" {
		return fieldErr("loop", "not allowed with %s: it clears dry run on every loop", CmdClearDryRun)
	}
	for name, set := range map[string]bool{
		"setpoint": req.Setpoint != nil, "max_rate": req.MaxRate != nil, "output_max": req.OutputMax != nil,
		"on": req.On != nil, "speed": req.Speed != nil, "alarm": req.Alarm != nil,
		"mode": req.Mode != nil, "output": req.Output != nil,
	} {
		if set {
			return fieldErr(name, "not allowed with %s (it takes no arguments)", CmdClearDryRun)
		}
	}
	return nil
}

// Args returns the request's arguments for the audit record.
func (req *Request) Args() map[string]any {
	out := map[string]any{}
	put := func(k string, v *float64) {
		if v != nil {
			out[k] = *v
		}
	}
	put("setpoint", req.Setpoint)
	put("max_rate", req.MaxRate)
	put("output_max", req.OutputMax)
	put("speed", req.Speed)
	put("output", req.Output)
	if req.On != nil {
		out["on"] = *req.On
	}
	if req.Alarm != nil {
		out["alarm"] = *req.Alarm
	}
	if req.Mode != nil {
		out["mode"] = *req.Mode
	}
	return out
}

// FaultRequest is the body of POST /api/v1/sim/faults.
type FaultRequest struct {
	Device   string   `json:"device"`
	Kind     string   `json:"kind,omitempty"`
	Duration Duration `json:"duration,omitempty"`
	Delay    Duration `json:"delay,omitempty"`
	Value    *float64 `json:"value,omitempty"`
	// Clear ends the faults in effect on Device instead of starting one.
	Clear bool `json:"clear,omitempty"`
}

// Duration is a JSON duration string ("30s").
type Duration time.Duration

// UnmarshalJSON parses "1m30s" style strings.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`must be a duration string such as "30s"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("must be a duration string such as \"30s\": %w", err)
	}
	if v < 0 {
		return errors.New("must not be negative")
	}
	*d = Duration(v)
	return nil
}

// DecodeFault decodes a fault body strictly.
func DecodeFault(r io.Reader) (*FaultRequest, error) {
	var f FaultRequest
	if err := decodeStrict(r, &f); err != nil {
		return nil, err
	}
	if f.Device == "" {
		return nil, fieldErr("device", "required")
	}
	if !f.Clear && f.Kind == "" {
		return nil, fieldErr("kind", "required unless clear is true")
	}
	return &f, nil
}

// jsonFields lists the JSON names of v's struct fields (v is a pointer to a struct).
func jsonFields(v any) []string {
	t := reflect.TypeOf(v).Elem()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// checkKeys refuses a top-level key that appears twice, or that matches a field only when
// case is ignored: encoding/json keeps the last of duplicates and matches names
// case-insensitively, so `{"setpoint":1,"SETPOINT":90}` would otherwise apply 90 although a
// proxy, a log or a reviewer reads 1. Bodies that are not a JSON object, and syntax errors,
// are left to the decoder, which reports them. It reads each byte a bounded number of times.
func checkKeys(body []byte, fields []string) error {
	_, err := scanKeys(body, fields)
	return err
}

// scanKeys does checkKeys's work and also returns its cost: the tokens read plus the bytes
// of keys compared, which the fuzz test bounds by the body's length.
func scanKeys(body []byte, fields []string) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	cost := 1
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return cost, nil
	}
	seen := make([]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		cost++
		if err != nil {
			return cost, nil
		}
		key, ok := tok.(string)
		if !ok {
			return cost, nil
		}
		for i, f := range fields {
			cost += min(len(key), len(f)) + 1
			switch {
			case key == f && seen[i]:
				return cost, fieldErr(f, "appears more than once")
			case key == f:
				seen[i] = true
			case strings.EqualFold(key, f):
				return cost, fieldErr(key, "unknown field; field names are case-sensitive: use %q", f)
			}
		}
		// Skip the value, however deep, one token at a time.
		depth := 0
		for {
			tok, err := dec.Token()
			cost++
			if err != nil {
				return cost, nil
			}
			if d, ok := tok.(json.Delim); ok {
				if d == '{' || d == '[' {
					depth++
				} else {
					depth--
				}
			}
			if depth == 0 {
				break
			}
		}
	}
	return cost, nil
}
