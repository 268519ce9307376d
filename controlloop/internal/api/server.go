package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/fieldcol/fieldcol/controlloop/internal/telemetry"
)

// Results of a command, the `result` attribute of controlloop.commands.
const (
	ResultAccepted     = "accepted"
	ResultInvalid      = "invalid"
	ResultUnauthorized = "unauthorized"
	ResultFailed       = "failed"
	ResultRateLimited  = "rate_limited"
)

// Backend is what the API drives.
type Backend interface {
	// Loops lists the loops for validation.
	Loops() map[string]LoopInfo
	// Statuses returns every loop's status, in configuration order.
	Statuses() []any
	// Status returns one loop's status.
	Status(name string) (any, bool)
	// Execute applies a validated command. A *StatusError says which HTTP status to use.
	Execute(ctx context.Context, req *Request) error
	// Fault injects or clears a sim plant fault; nil when the backend is not sim.
	Fault(req *FaultRequest) error
	// SimEnabled reports whether /api/v1/sim/faults is served.
	SimEnabled() bool
	// RecordCommand takes the audit record of every command.
	RecordCommand(rec telemetry.CommandRecord)
}

// StatusError carries the HTTP status for a backend error.
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// Handler serves the API.
type Handler struct {
	backend  Backend
	limiter  *Limiter
	throttle *AuthThrottle
	mux      *http.ServeMux
	now      func() time.Time
}

// NewHandler builds the routes. throttle, when not nil, is told of every failed
// authentication (see ErrorHandler) and Wrap puts it in front of the authenticator.
func NewHandler(b Backend, limiter *Limiter, throttle *AuthThrottle) *Handler {
	h := &Handler{backend: b, limiter: limiter, throttle: throttle, mux: http.NewServeMux(), now: time.Now}
	h.mux.HandleFunc("GET /api/v1/loops", h.listLoops)
	h.mux.HandleFunc("GET /api/v1/loops/{name}", h.getLoop)
	h.mux.HandleFunc("POST /api/v1/commands", h.command)
	h.mux.HandleFunc("POST /api/v1/sim/faults", h.fault)
	return h
}

// ServeHTTP implements http.Handler: every response carries the request id.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = withRequestID(r)
	w.Header().Set("X-Request-Id", RequestID(r))
	h.mux.ServeHTTP(w, r)
}

// withRequestID fixes the request's id in its context so that the response header, the
// audit record and the error body all carry the same one.
func withRequestID(r *http.Request) *http.Request {
	if _, ok := r.Context().Value(requestIDKey{}).(string); ok {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, RequestID(r)))
}

type requestIDKey struct{}

// RequestID returns the request's X-Request-Id, or a new random one when it is absent or
// unusable (too long, or with characters that would corrupt a log line).
func RequestID(r *http.Request) string {
	if v, ok := r.Context().Value(requestIDKey{}).(string); ok {
		return v
	}
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	return id
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// ParseTraceparent reads a W3C traceparent header (version 00); ok is false when absent or
// malformed, in which case the command starts a new trace.
func ParseTraceparent(v string) (pcommon.TraceID, pcommon.SpanID, bool) {
	var tid pcommon.TraceID
	var sid pcommon.SpanID
	parts := strings.Split(strings.TrimSpace(v), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return tid, sid, false
	}
	if parts[0] == "00" && len(parts) != 4 {
		return tid, sid, false
	}
	if _, err := hex.Decode(tid[:], []byte(parts[1])); err != nil || tid.IsEmpty() {
		return pcommon.TraceID{}, sid, false
	}
	if _, err := hex.Decode(sid[:], []byte(parts[2])); err != nil || sid.IsEmpty() {
		return pcommon.TraceID{}, pcommon.SpanID{}, false
	}
	return tid, sid, true
}

// Who names the caller for the audit trail without revealing a secret: the authenticator's
// subject when it gives one, else a short hash of the Authorization header.
func Who(r *http.Request) string {
	info := client.FromContext(r.Context())
	if info.Auth != nil {
		for _, k := range []string{"subject", "sub", "username"} {
			if v, ok := info.Auth.GetAttribute(k).(string); ok && v != "" {
				return v
			}
		}
	}
	if a := r.Header.Get("Authorization"); a != "" {
		sum := sha256.Sum256([]byte(a))
		return "token:" + hex.EncodeToString(sum[:4])
	}
	return "anonymous"
}

func (h *Handler) record(r *http.Request, start time.Time, cmd, loop, result string, err error, args map[string]any) {
	rec := telemetry.CommandRecord{
		Command: cmd, Loop: loop, Result: result, RequestID: RequestID(r), Who: Who(r),
		RemoteAddr: r.RemoteAddr, Args: args, Start: start, End: h.now(),
	}
	if err != nil {
		rec.Error = err.Error()
	}
	if tid, sid, ok := ParseTraceparent(r.Header.Get("Traceparent")); ok {
		rec.TraceID, rec.ParentSpanID = tid, sid
	}
	h.backend.RecordCommand(rec)
}

type errorBody struct {
	Error     string `json:"error"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, r *http.Request, code int, err error) {
	body := errorBody{Error: err.Error(), RequestID: RequestID(r)}
	var fe *FieldError
	if errors.As(err, &fe) {
		body.Field = fe.Field
	}
	writeJSON(w, code, body)
}

func (h *Handler) listLoops(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"loops": h.backend.Statuses()})
}

func (h *Handler) getLoop(w http.ResponseWriter, r *http.Request) {
	st, ok := h.backend.Status(r.PathValue("name"))
	if !ok {
		writeErr(w, r, http.StatusNotFound, errors.New("no loop named "+r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *Handler) rateLimited(w http.ResponseWriter, r *http.Request, start time.Time, cmd string) bool {
	if wait, ok := h.limiter.Allow(); !ok {
		w.Header().Set("Retry-After", retryAfter(wait))
		err := errors.New("rate limit exceeded; retry later")
		h.record(r, start, cmd, "", ResultRateLimited, err, nil)
		writeErr(w, r, http.StatusTooManyRequests, err)
		return true
	}
	return false
}

func (h *Handler) command(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	if h.rateLimited(w, r, start, CmdUnknown) {
		return
	}
	req, err := DecodeRequest(r.Body)
	if err != nil {
		h.record(r, start, CmdUnknown, "", ResultInvalid, err, nil)
		writeErr(w, r, http.StatusBadRequest, err)
		return
	}
	cmd := req.Command
	if err := req.Validate(h.backend.Loops()); err != nil {
		if fe := (*FieldError)(nil); errors.As(err, &fe) && fe.Field == "command" {
			cmd = CmdUnknown // keep the metric's cardinality bounded
		}
		h.record(r, start, cmd, req.Loop, ResultInvalid, err, req.Args())
		writeErr(w, r, http.StatusBadRequest, err)
		return
	}
	if err := h.backend.Execute(r.Context(), req); err != nil {
		code := http.StatusInternalServerError
		var se *StatusError
		if errors.As(err, &se) {
			code = se.Code
		}
		h.record(r, start, cmd, req.Loop, ResultFailed, err, req.Args())
		writeErr(w, r, code, err)
		return
	}
	h.record(r, start, cmd, req.Loop, ResultAccepted, nil, req.Args())
	if req.Command == CmdClearDryRun {
		writeJSON(w, http.StatusOK, map[string]any{"result": ResultAccepted, "request_id": RequestID(r), "loops": h.backend.Statuses()})
		return
	}
	st, _ := h.backend.Status(req.Loop)
	writeJSON(w, http.StatusOK, map[string]any{"result": ResultAccepted, "request_id": RequestID(r), "loop": st})
}

func (h *Handler) fault(w http.ResponseWriter, r *http.Request) {
	if !h.backend.SimEnabled() {
		writeErr(w, r, http.StatusNotFound, errors.New("fault injection is only served with hardware.backend sim"))
		return
	}
	start := h.now()
	if h.rateLimited(w, r, start, CmdSimFault) {
		return
	}
	f, err := DecodeFault(r.Body)
	if err != nil {
		h.record(r, start, CmdSimFault, "", ResultInvalid, err, nil)
		writeErr(w, r, http.StatusBadRequest, err)
		return
	}
	args := map[string]any{"device": f.Device, "kind": f.Kind, "clear": f.Clear, "duration": time.Duration(f.Duration).String()}
	if err := h.backend.Fault(f); err != nil {
		h.record(r, start, CmdSimFault, "", ResultInvalid, err, args)
		writeErr(w, r, http.StatusBadRequest, err)
		return
	}
	h.record(r, start, CmdSimFault, "", ResultAccepted, nil, args)
	writeJSON(w, http.StatusOK, map[string]any{"result": ResultAccepted, "request_id": RequestID(r)})
}

// ErrorHandler is given to confighttp's ToServer: it answers the authenticator's refusals
// (and the server's own errors) in the API's JSON shape. A refusal is counted and audited as
// unauthorized whatever the method and path (a scan with GETs is as telling as a forged
// command), and reported to the throttle.
func (h *Handler) ErrorHandler(w http.ResponseWriter, r *http.Request, msg string, code int) {
	r = withRequestID(r)
	if code == http.StatusUnauthorized {
		h.record(r, h.now(), commandOf(r), "", ResultUnauthorized, errors.New(msg), nil)
		if h.throttle != nil {
			h.throttle.Failed(ClientKey(r))
		}
	}
	w.Header().Set("X-Request-Id", RequestID(r))
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fieldcol-controlloop"`)
		msg = "unauthorized: " + msg
	}
	writeErr(w, r, code, errors.New(msg))
}

// commandOf labels a request refused before its body was read; the label set stays bounded
// whatever path a client tries.
func commandOf(r *http.Request) string {
	if r.Method == http.MethodPost && r.URL.Path == "/api/v1/sim/faults" {
		return CmdSimFault
	}
	return CmdUnknown
}

func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// Limiter is a token bucket shared by every client: the API is for a handful of operators
// and an HMI, so a global bound protects the loops from a runaway script.
type Limiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

// NewLimiter allows rate requests per second with bursts of burst.
func NewLimiter(rate float64, burst int) *Limiter {
	return &Limiter{rate: rate, burst: float64(burst), tokens: float64(burst), now: time.Now}
}

// Allow takes a token, or says how long until one is available.
func (l *Limiter) Allow() (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return 0, true
	}
	return time.Duration((1 - l.tokens) / l.rate * float64(time.Second)), false
}
