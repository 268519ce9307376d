package api

import (
	"container/list"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// ThrottleSettings configure an AuthThrottle.
type ThrottleSettings struct {
	// MaxFailures failed authentications from one client address within Window block it.
	MaxFailures int
	Window      time.Duration
	// Block is how long a blocked address gets 429 without its credentials being checked.
	Block time.Duration
	// MaxClients bounds the addresses remembered; beyond it the least recently seen is
	// forgotten.
	MaxClients int
}

// AuthThrottle blocks a client address after repeated failed authentications. It sits in
// front of the authenticator, so that a blocked client costs neither a token comparison nor
// an authenticator call, and remembers a bounded number of addresses.
type AuthThrottle struct {
	set ThrottleSettings
	now func() time.Time

	mu      sync.Mutex
	clients map[string]*list.Element // of *throttleEntry
	lru     *list.List               // front: least recently seen
}

type throttleEntry struct {
	key          string
	first        time.Time // of the failures being counted
	failures     int
	blockedUntil time.Time
}

// NewAuthThrottle builds a throttle; settings must be positive (Config.Validate checks).
func NewAuthThrottle(set ThrottleSettings) *AuthThrottle {
	return &AuthThrottle{set: set, now: time.Now, clients: map[string]*list.Element{}, lru: list.New()}
}

// ClientKey is the address a request is throttled by: the peer's IP. Forwarded-for headers
// are ignored on purpose: any client can write them.
func ClientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return host
}

// Blocked says whether key is blocked and for how much longer.
func (t *AuthThrottle) Blocked(key string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.clients[key]
	if !ok {
		return 0, false
	}
	e := el.Value.(*throttleEntry)
	now := t.now()
	if !now.Before(e.blockedUntil) {
		return 0, false
	}
	// A client that keeps knocking stays remembered: evicting it first would end its block.
	t.lru.MoveToBack(el)
	return e.blockedUntil.Sub(now), true
}

// Failed records a failed authentication from key and reports whether it starts a block.
func (t *AuthThrottle) Failed(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var e *throttleEntry
	if el, ok := t.clients[key]; ok {
		e = el.Value.(*throttleEntry)
		t.lru.MoveToBack(el)
	} else {
		for t.lru.Len() >= t.set.MaxClients {
			oldest := t.lru.Front()
			delete(t.clients, oldest.Value.(*throttleEntry).key)
			t.lru.Remove(oldest)
		}
		e = &throttleEntry{key: key}
		t.clients[key] = t.lru.PushBack(e)
	}
	if e.failures == 0 || now.Sub(e.first) >= t.set.Window {
		e.first, e.failures = now, 0
	}
	e.failures++
	if e.failures < t.set.MaxFailures {
		return false
	}
	e.failures = 0
	e.blockedUntil = now.Add(t.set.Block)
	return true
}

// Len is the number of addresses remembered.
func (t *AuthThrottle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

// Wrap puts the throttle in front of next (the server's handler chain, authenticator
// included): a blocked address gets 429 with Retry-After, audited as rate_limited, and next
// never sees the request. The Handler's ErrorHandler reports the failures.
func (h *Handler) Wrap(next http.Handler) http.Handler {
	if h.throttle == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait, blocked := h.throttle.Blocked(ClientKey(r))
		if !blocked {
			next.ServeHTTP(w, r)
			return
		}
		r = withRequestID(r)
		w.Header().Set("X-Request-Id", RequestID(r))
		w.Header().Set("Retry-After", retryAfter(wait))
		err := errors.New("too many failed authentications from this address; retry later")
		h.record(r, h.now(), commandOf(r), "", ResultRateLimited, err, nil)
		writeErr(w, r, http.StatusTooManyRequests, err)
	})
}
