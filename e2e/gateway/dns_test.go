package gateway

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/promtest"
	"github.com/fieldcol/fieldcol/internal/testproc"
)

// samplersName is what the load balancers' dns resolver looks up: one A record per sampler.
const samplersName = "samplers.fieldcol.test"

// dnsServer is dnsmasq answering for samplersName from a hosts file the test rewrites.
type dnsServer struct {
	proc  *testproc.Process
	ip    string // it listens on ip:53, the only port a resolv.conf can name
	hosts string
}

// startDNS runs dnsmasq on port 53 of a loopback address of its own (127.53.x.y), so that
// it takes no port from anyone; a taken address costs a new pick.
func startDNS(t *testing.T, ips []string) *dnsServer {
	t.Helper()
	bin := testproc.LookPath(t, "dnsmasq", "Debian package dnsmasq-base; scripts/ensure-debs.sh installs it")
	d := &dnsServer{hosts: filepath.Join(t.TempDir(), "samplers.hosts")}
	d.set(t, ips)
	for attempt := 0; ; attempt++ {
		d.ip = fmt.Sprintf("127.53.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
		d.proc = testproc.Start(t, bin, []string{
			"--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null", "--pid-file=",
			"--user=root", "--port=53", "--listen-address=" + d.ip, "--bind-interfaces",
			"--no-resolv", "--no-hosts", "--addn-hosts=" + d.hosts, "--local=/fieldcol.test/",
			"--local-ttl=0", "--no-negcache",
		})
		// Until it answers, or exits (its address taken).
		var got []string
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !d.proc.Exited(); time.Sleep(100 * time.Millisecond) {
			if got, err = d.lookup(time.Second); err == nil && len(got) == len(ips) {
				return d
			}
		}
		require.Less(t, attempt, 4, "dnsmasq on %s did not answer: %v\n%s", d.ip, err, d.proc.Log())
		_ = d.proc.Stop(5 * time.Second)
	}
}

// set writes the hosts file: samplersName resolves to ips.
func (d *dnsServer) set(t *testing.T, ips []string) {
	t.Helper()
	var b strings.Builder
	for _, ip := range ips {
		fmt.Fprintf(&b, "%s %s\n", ip, samplersName)
	}
	require.NoError(t, os.WriteFile(d.hosts, []byte(b.String()), 0o644))
}

// change rewrites the hosts file and makes dnsmasq read it again (SIGHUP), as a DNS
// operator or Kubernetes' DNS does when a sampler leaves or joins.
func (d *dnsServer) change(t *testing.T, ips []string) {
	t.Helper()
	d.set(t, ips)
	require.NoError(t, d.proc.Signal(syscall.SIGHUP))
	harness.WaitUntil(t, 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		got, err := d.lookup(time.Second)
		return err == nil && strings.Join(got, ",") == strings.Join(sorted(ips), ","), fmt.Sprintf("%s resolves to %v (%v), want %v", samplersName, got, err, ips)
	})
}

func (d *dnsServer) lookup(timeout time.Duration) ([]string, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(d.ip, "53"))
	}}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got, err := r.LookupHost(ctx, samplersName)
	return sorted(got), err
}

func sorted(l []string) []string {
	out := append([]string(nil), l...)
	sort.Strings(out)
	return out
}

// dnsRouting is the overlay that makes the load balancers resolve the samplers by DNS.
func dnsRouting(t *testing.T, port string) string {
	var b strings.Builder
	b.WriteString("exporters:\n")
	for _, e := range []string{"load_balancing/traces", "load_balancing/metrics", "load_balancing/logs"} {
		fmt.Fprintf(&b, "  %s:\n    resolver:\n      static: null\n      dns:\n        hostname: %s\n        port: %q\n        interval: 1s\n        timeout: 1s\n",
			e, samplersName, port)
	}
	return harness.Overlay(t, b.String())
}

// withResolvConf writes a script that runs the gateway in a mount namespace of its own
// whose /etc/resolv.conf names only the test's DNS server: the load balancer's dns
// resolver (Go's, through /etc/resolv.conf) then asks dnsmasq, and nothing else on the
// machine sees the change.
func withResolvConf(t *testing.T, dnsIP string) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	require.NoError(t, os.WriteFile(conf, []byte("nameserver "+dnsIP+"\noptions timeout:1 attempts:2\n"), 0o644))
	script := filepath.Join(dir, "with-resolv-conf")
	require.NoError(t, os.WriteFile(script, []byte(fmt.Sprintf(
		"#!/bin/sh\nexec unshare --mount --propagation private sh -c 'mount --bind %s /etc/resolv.conf && exec %s \"$@\"' with-resolv-conf \"$@\"\n",
		conf, harness.Binary(t, "fieldcol-gateway"))), 0o755))
	return script
}

// The load balancer finds the samplers with the collector's dns resolver, through a real
// DNS server (dnsmasq) on loopback. One of three samplers leaves (its A record removed)
// halfway through a first load and joins again halfway through a second: the load
// balancer follows each change by itself, every span it acknowledged reaches a sampler,
// the leaving sampler gets nothing once the change is seen, the joining one gets its share
// again, and the traces split by each change are counted.
func TestGatewayTierDNSResolverReroutes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a mount namespace for the load balancer's resolv.conf needs root (make test runs as root)")
	}
	prom := promtest.Start(t, promtest.Options{RemoteWriteReceiver: true})
	// The dns resolver gives one port for every address: the samplers listen on the same
	// port of three loopback addresses.
	port := strings.TrimPrefix(harness.ClosedAddr(t), "127.0.0.1:")
	var samplers []sampler
	var ips []string
	for i := range 3 {
		ip := fmt.Sprintf("127.0.0.%d", i+2)
		s := startSamplerWith(t, samplerPlace{grpc: ip + ":" + port}, fmt.Sprintf("sampler-%d", i), prom.URL()+"/api/v1/write", "FIELDCOL_SAMPLE_PERCENTAGE=100")
		samplers = append(samplers, s)
		ips = append(ips, ip)
	}
	dns := startDNS(t, ips)
	lb := startDoorWith(t, withResolvConf(t, dns.ip), dnsRouting(t, port), false)

	run := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	work := makeWorkload(5150, 4000)
	first, second := work[:2000], work[2000:]
	total := 0
	for _, w := range work {
		total += w.spans
	}
	accepted := func(s sampler) float64 {
		v, err := s.ScrapeSum("otelcol_receiver_accepted_spans", `transport="grpc"`)
		require.NoError(t, err)
		return v
	}
	// settled waits until every span acknowledged so far was accepted by a sampler.
	settled := func(want int) {
		harness.WaitUntil(t, 2*time.Minute, 200*time.Millisecond, func() (bool, string) {
			n := acceptedSpans(samplers)
			return n >= float64(want), fmt.Sprintf("spans accepted by the samplers: %v of %d", n, want)
		})
	}

	// backends is what the load balancer's exporters route to, summed over its pipelines.
	backends := func() float64 {
		v, err := lb.ScrapeSum("otelcol_loadbalancer_num_backends")
		require.NoError(t, err)
		return v
	}
	var all float64
	harness.WaitUntil(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		all = backends()
		return all > 0 && int(all)%3 == 0, fmt.Sprintf("backends of the load balancer's exporters: %v", all)
	})

	// Sampler 2 leaves halfway through the first load.
	leaving := samplers[2]
	ackedA := sendAll(t, lb, requests(run, first, scalePerReq), scaleClients, func() { dns.change(t, ips[:2]) })
	settled(int(ackedA))
	// The resolver looks every second; a short load may end before it did. Only once the
	// exporters route to two samplers does "nothing more for the leaving one" mean anything.
	harness.WaitUntil(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		n := backends()
		return n == all*2/3, fmt.Sprintf("backends: %v, want %v after the A record was removed", n, all*2/3)
	})
	settled(int(ackedA))
	gone := accepted(leaving)
	// Spans sent now, with the others receiving, must not reach the sampler that left.
	probe := requests(run+"-probe", makeWorkload(99, 300), scalePerReq)
	sendAll(t, lb, probe, scaleClients, nil)
	probeSpans := 0
	for _, td := range probe {
		probeSpans += td.SpanCount()
	}
	settled(int(ackedA) + probeSpans)
	assert.Equal(t, gone, accepted(leaving), "spans routed to a sampler whose A record was removed")

	// It joins again halfway through the second load.
	ackedB := sendAll(t, lb, requests(run, second, scalePerReq), scaleClients, func() { dns.change(t, ips) })
	settled(int(ackedA) + probeSpans + int(ackedB))
	harness.WaitUntil(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		n := backends()
		return n == all, fmt.Sprintf("backends: %v, want %v after the A record came back", n, all)
	})
	rejoin := requests(run+"-rejoin", makeWorkload(98, 300), scalePerReq)
	sendAll(t, lb, rejoin, scaleClients, nil)
	rejoinSpans := 0
	for _, td := range rejoin {
		rejoinSpans += td.SpanCount()
	}
	settled(int(ackedA) + probeSpans + int(ackedB) + rejoinSpans)
	assert.Greater(t, accepted(leaving), gone, "the sampler that joined again got no spans")
	require.EqualValues(t, total, ackedA+ackedB, "spans acknowledged by the load balancer")

	var vA, vB verdict
	harness.WaitUntil(t, 2*time.Minute, time.Second, func() (bool, string) {
		got := collectArrivals(samplers, run)
		vA, vB = judge(first, got), judge(second, got)
		return vA.absent+vB.absent == 0 && len(vA.incomplete)+len(vB.incomplete) == 0 && vA.splitIncomplete+vB.splitIncomplete == 0,
			fmt.Sprintf("traces lost: %d; incomplete (not split): %d; split and incomplete: %d",
				vA.absent+vB.absent, len(vA.incomplete)+len(vB.incomplete), vA.splitIncomplete+vB.splitIncomplete)
	})
	// Only traces in flight at a change can be split: a few request windows' worth.
	assert.Less(t, vA.split, len(first)/10, "traces split when the sampler left")
	assert.Less(t, vB.split, len(second)/10, "traces split when the sampler joined")
	assert.Zero(t, lb.MustScrape(t, "otelcol_exporter_send_failed_spans", `exporter="load_balancing/traces"`), "spans the load balancer gave up on")
	t.Logf("dns resolver (dnsmasq on %s:53): sampler-2 left, %d of %d traces split; it joined again, %d of %d split; sampler-2 accepted %.0f spans before leaving, %.0f in all",
		dns.ip, vA.split, len(first), vB.split, len(second), gone, accepted(leaving))
	lb.Stop(t)
	for _, s := range samplers {
		s.Stop(t)
	}
}
