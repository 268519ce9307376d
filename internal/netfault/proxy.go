// Package netfault is a loopback TCP proxy that stands for the network between an edge and
// its gateway, and breaks it the ways a field network breaks: an egress that is blocked
// (connections accepted and held without an answer, as behind a firewall that drops
// packets), connections dropped in the middle of a request, and a flaky link that delays,
// truncates and resets at random. Tests put it between a client and a server they start.
package netfault // import "github.com/fieldcol/fieldcol/internal/netfault"

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is what the proxy does with the bytes it carries.
type Mode int32

const (
	// Pass forwards both ways.
	Pass Mode = iota
	// Hold accepts connections and reads what the client sends, but forwards nothing and
	// answers nothing: every request hangs until the client gives up. Connections open
	// when Hold starts go silent the same way.
	Hold
	// Drop reads the start of what the client sends, then resets the connection: a request
	// cut in the middle. Connections open when Drop starts are reset at their next bytes.
	Drop
	// Flaky forwards, but delays chunks (up to 200 ms), and resets (about one chunk in 30)
	// or truncates (forwards half a chunk, then resets; about one in 30) at random.
	Flaky
)

func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Hold:
		return "hold"
	case Drop:
		return "drop"
	case Flaky:
		return "flaky"
	}
	return "unknown"
}

// Stats counts what the proxy did.
type Stats struct {
	Accepted, Held, Dropped, Truncated, Delayed int64
}

// Proxy is one listening proxy. Close stops it and every connection.
type Proxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	rng    *rand.Rand
	stats  Stats
	closed bool
	wg     sync.WaitGroup
}

// Listen starts a proxy on a free loopback port that forwards to target (host:port).
func Listen(target string, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, rng: rand.New(rand.NewPCG(seed, 19))} //nolint:gosec // fault timing, not security
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the host:port clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Mode is the current mode.
func (p *Proxy) Mode() Mode { return Mode(p.mode.Load()) }

// SetMode switches the mode. Going back to Pass resets every open connection, as a route
// that returns after the client's connections timed out: clients reconnect.
func (p *Proxy) SetMode(m Mode) {
	old := Mode(p.mode.Swap(int32(m)))
	if m == Pass && old != Pass {
		p.mu.Lock()
		for c := range p.conns {
			reset(c)
		}
		p.mu.Unlock()
	}
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) count(f func(*Stats)) {
	p.mu.Lock()
	f(&p.stats)
	p.mu.Unlock()
}

// chance draws from the proxy's seeded source.
func (p *Proxy) chance(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.IntN(n)
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			continue
		}
		p.count(func(s *Stats) { s.Accepted++ })
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve handles one client connection: held or dropped without dialing in Hold and Drop,
// forwarded otherwise.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	switch p.Mode() {
	case Hold:
		p.count(func(s *Stats) { s.Held++ })
		_, _ = io.Copy(io.Discard, client) // until the client gives up or SetMode resets it
		return
	case Drop:
		p.dropAfterSome(client)
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		reset(client)
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	go func() { p.pump(server, client); done <- struct{}{} }()
	go func() { p.pump(client, server); done <- struct{}{} }()
	<-done
	// One direction ended: end both, so the other pump returns too.
	_ = client.Close()
	_ = server.Close()
	<-done
}

// dropAfterSome reads the start of a request (what the first read brings, at most a few
// hundred bytes), then resets the connection.
func (p *Proxy) dropAfterSome(c net.Conn) {
	buf := make([]byte, 1+p.chance(512))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Read(buf)
	p.count(func(s *Stats) { s.Dropped++ })
	reset(c)
}

// pump copies src to dst chunk by chunk, applying the mode to each chunk.
func (p *Proxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.forward(dst, src, buf[:n]) {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
			}
			return
		}
	}
}

// forward writes one chunk as the current mode says; false ends the connection.
func (p *Proxy) forward(dst, src net.Conn, chunk []byte) bool {
	switch p.Mode() {
	case Hold:
		// Silence: what the client sends is swallowed, nothing comes back.
		return true
	case Drop:
		p.count(func(s *Stats) { s.Dropped++ })
		reset(src)
		reset(dst)
		return false
	case Flaky:
		if d := p.chance(200); d > 0 && p.chance(4) == 0 {
			p.count(func(s *Stats) { s.Delayed++ })
			time.Sleep(time.Duration(d) * time.Millisecond)
		}
		switch p.chance(30) {
		case 0:
			p.count(func(s *Stats) { s.Dropped++ })
			reset(src)
			reset(dst)
			return false
		case 1:
			p.count(func(s *Stats) { s.Truncated++ })
			_, _ = dst.Write(chunk[:len(chunk)/2])
			reset(src)
			reset(dst)
			return false
		}
	}
	_, err := dst.Write(chunk)
	return err == nil
}

// reset closes c with an RST rather than a FIN, as a middlebox that drops a flow does.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
