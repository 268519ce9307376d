package drills

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/netfault"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
)

// Drill 1, sensor/ADC failure: NaN and out-of-range readings of the oven's sensor and a NaN
// of the conveyor's tachometer (an ADS1115 channel) force that loop's actuator safe within
// about one period and latch sensor_fault; ControlLoopAlarmLatched fires; after the fault
// is gone the loop stays safe until ACK_ALARM.
func TestDrillSensorFailure(t *testing.T) {
	edge := startDrillEdge(t, nil)
	prom := startDrillProm(t, edge.Metrics)
	alerts := watchAlerts(t, prom)
	for _, loop := range []string{"oven", "conveyor"} {
		waitLoop(t, edge, loop, 60*time.Second, loopView.running)
	}
	begin := time.Now()

	fig := drillFigures{name: "sensor-failure"}
	cases := []struct{ loop, device, kind string }{
		{"oven", "oven_temp", "nan"},
		{"oven", "oven_temp", "out_of_range"},
		{"conveyor", "motor_tach", "nan"},
	}
	periods := map[string]time.Duration{"oven": 100 * time.Millisecond, "conveyor": 50 * time.Millisecond}
	var maxCycles uint64
	for _, c := range cases {
		before := getLoop(t, edge, c.loop)
		require.True(t, before.running(), "%s must run before the fault: %+v", c.loop, before)
		injected := time.Now()
		simFault(t, edge, fmt.Sprintf(`{"device":%q,"kind":%q}`, c.device, c.kind))
		safe := waitLoop(t, edge, c.loop, 5*time.Second, func(v loopView) bool { return v.safe })
		detect := time.Since(injected)
		// The API's cycle counter at the first safe status, against the one just before the
		// injection: the read that saw the fault forced the safe state in its own cycle, so
		// at most the cycle in progress and the next one pass (plus one for the status the
		// loop publishes after the cycle).
		cycles := safe.cycle - before.cycle
		maxCycles = max(maxCycles, cycles)
		assert.LessOrEqual(t, cycles, uint64(3), "%s/%s: %d cycles to go safe", c.loop, c.kind, cycles)
		assert.Zero(t, safe.output, "%s/%s: the actuator must be at its safe value 0", c.loop, c.kind)
		fig.detect = max(fig.detect, detect)
		t.Logf("%s %s on %s: safe after %s (%d cycles of %s), state %s", c.kind, c.device, c.loop, detect, cycles, periods[c.loop], safe.state)

		waitLoop(t, edge, c.loop, 5*time.Second, func(v loopView) bool { return v.isLatched("sensor_fault") })
		// The alert of a loop fires once: the next fault of the same loop may find it still
		// firing (the exporter keeps the latched series for a while after ACK).
		firing := alerts.waitFiring(t, "ControlLoopAlarmLatched{"+c.loop+",sensor_fault}", 60*time.Second)
		t.Logf("ControlLoopAlarmLatched for %s firing %s after the injection", c.loop, firing.Sub(injected).Round(time.Millisecond))

		cleared := time.Now()
		simFault(t, edge, fmt.Sprintf(`{"device":%q,"clear":true}`, c.device))
		// Ten periods after the fault is gone the latch must still hold the loop safe.
		time.Sleep(10 * periods[c.loop])
		held := getLoop(t, edge, c.loop)
		assert.True(t, held.safe && held.isLatched("sensor_fault"), "%s: the latch must hold until ACK: %+v", c.loop, held)
		ackUntilAccepted(t, edge, c.loop, 10*time.Second)
		waitLoop(t, edge, c.loop, 10*time.Second, loopView.running)
		fig.recover = max(fig.recover, time.Since(cleared))
	}
	fig.alerts = alerts.firedSinceAll(begin)
	fig.note = fmt.Sprintf("3 faults; worst %d cycles to safe", maxCycles)
	fig.report(t)
	edge.Stop(t)
}

// Drill 2, bus contention: the oven's I2C sensor times out on every read. Each read is given
// up after the bus timeout (20 ms), the loop keeps cycling on its period and retries the
// sensor every cycle, goes safe and latches; once the bus answers again the alarm keeps the
// loop from re-arming (even when asked to go to auto) until ACK_ALARM.
func TestDrillBusContention(t *testing.T) {
	edge := startDrillEdge(t, nil)
	prom := startDrillProm(t, edge.Metrics)
	alerts := watchAlerts(t, prom)
	waitLoop(t, edge, "oven", 60*time.Second, loopView.running)
	begin := time.Now()
	fig := drillFigures{name: "bus-contention"}

	injected := time.Now()
	simFault(t, edge, `{"device":"oven_temp","kind":"bus_timeout"}`)
	safe := waitLoop(t, edge, "oven", 5*time.Second, func(v loopView) bool { return v.safe && v.isLatched("sensor_fault") })
	fig.detect = time.Since(injected)

	// The retries are bounded: a timed-out read costs at most the 20 ms bus timeout of a
	// 100 ms period, so the loop keeps its rate. Over the window at least half the nominal
	// cycles must run (the margin is for this shared 2-core machine).
	window := 3 * time.Second
	if drillFull() {
		window = 20 * time.Second
	}
	time.Sleep(window)
	during := getLoop(t, edge, "oven")
	ran := during.cycle - safe.cycle
	nominal := uint64(window / (100 * time.Millisecond))
	assert.GreaterOrEqual(t, ran, nominal/2, "the loop stalled on the timing-out bus: %d cycles in %s", ran, window)
	assert.True(t, during.safe, "the oven must stay safe while its sensor times out: %+v", during)
	prom.WaitFor(t, fmt.Sprintf(`controlloop_alarms_active{device_id=%q,loop="oven",alarm="sensor_fault",latched="true"} == 1`, drillDevice), 30*time.Second)
	alerts.waitFiring(t, "ControlLoopAlarmLatched{oven,sensor_fault}", 60*time.Second)

	cleared := time.Now()
	simFault(t, edge, `{"device":"oven_temp","clear":true}`)
	// The bus answers again; an operator (or a script) asks for auto without acknowledging:
	// the latch must keep the heater off.
	status, answer := edge.Call(t, http.MethodPost, "/api/v1/commands", harness.APIToken, `{"command":"SET_MODE","loop":"oven","mode":"auto"}`)
	t.Logf("SET_MODE auto while latched: %d %v", status, answer)
	time.Sleep(time.Second) // ten periods in which a re-armed loop would have shown it
	held := getLoop(t, edge, "oven")
	assert.True(t, held.safe && held.isLatched("sensor_fault") && held.output == 0, "the loop re-armed without ACK_ALARM: %+v", held)

	ackUntilAccepted(t, edge, "oven", 10*time.Second)
	waitLoop(t, edge, "oven", 10*time.Second, loopView.running)
	fig.recover = time.Since(cleared)
	// Measured, not asserted (it is the control loop's exporter behaviour, not this drill's
	// subject): how long ControlLoopAlarmLatched keeps firing after the ACK.
	settle := 5 * time.Second
	if drillFull() {
		settle = 60 * time.Second
	}
	resolved := fmt.Sprintf("alert still firing %s after ACK", settle)
	latchedExpr := fmt.Sprintf(`ALERTS{alertname="ControlLoopAlarmLatched",alertstate="firing",device_id=%q,loop="oven"}`, drillDevice)
	for deadline := time.Now().Add(settle); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if len(harness.QueryNow(t, prom, latchedExpr)) == 0 {
			resolved = "alert resolved " + time.Since(cleared).Round(100*time.Millisecond).String() + " after the fault cleared"
			break
		}
	}
	fig.alerts = alerts.firedSinceAll(begin)
	fig.note = fmt.Sprintf("%d cycles in %s of timeouts (nominal %d); %s", ran, window, nominal, resolved)
	fig.report(t)
	edge.Stop(t)
}

// Drill 4, process crash: fieldcol-edge is killed with SIGKILL while it forwards an
// application's records and while the oven holds a latched alarm whose condition is gone.
// It is restarted at once on the same state, as systemd's Restart= does: the oven comes back
// safe with its latch, and every record the edge had acknowledged reaches the gateway.
func TestDrillProcessCrash(t *testing.T) {
	sink := otlpsink.Start(t)
	gateway := sink.ServeHTTP(t)
	state := t.TempDir()
	spec := drillEdge(t, nil,
		harness.GatewayAt(gateway),
		"FIELDCOL_DISKQUEUE_DIR="+filepath.Join(state, "diskqueue"),
		"FIELDCOL_LATCH_FILE="+filepath.Join(state, "latches.json"))
	edge := spec.Start(t)
	prom := startDrillProm(t, edge.Metrics)
	alerts := watchAlerts(t, prom)
	begin := time.Now()
	waitLoop(t, edge, "oven", 60*time.Second, loopView.running)

	simFault(t, edge, `{"device":"oven_temp","kind":"nan"}`)
	waitLoop(t, edge, "oven", 5*time.Second, func(v loopView) bool { return v.isLatched("sensor_fault") })
	simFault(t, edge, `{"device":"oven_temp","clear":true}`)
	alerts.waitFiring(t, "ControlLoopAlarmLatched{oven,sensor_fault}", 60*time.Second)

	records := startRecords(t, edge.OTLPGRPC, t.Name(), 10*time.Millisecond, 100000)
	harness.WaitUntil(t, 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		return records.ackedCount() >= 100, fmt.Sprintf("%d records acknowledged", records.ackedCount())
	})

	killed := time.Now()
	edge.Proc.Kill()
	// What the supervisor (systemd) sees: the process is gone.
	select {
	case <-edge.Proc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the edge did not die of SIGKILL")
	}
	detect := time.Since(killed)

	// The restarted edge keeps the state and the addresses its clients and Prometheus know.
	spec.At = harness.Listeners{Metrics: edge.Metrics, OTLPGRPC: edge.OTLPGRPC}
	restarted := spec.Start(t)
	// The very first answer of the restarted loop: safe, with the latch restored from disk.
	first := getLoop(t, restarted, "oven")
	recover := time.Since(killed)
	assert.True(t, first.safe, "the oven must start safe: %+v", first)
	assert.Zero(t, first.output, "the heater must start at its safe value: %+v", first)
	assert.True(t, first.isLatched("sensor_fault"), "the latch was not restored: %+v", first)
	time.Sleep(time.Second) // ten periods: a latch that did not hold would show by now
	held := getLoop(t, restarted, "oven")
	assert.True(t, held.safe && held.isLatched("sensor_fault"), "the restored latch must hold until ACK: %+v", held)
	ackUntilAccepted(t, restarted, "oven", 10*time.Second)
	waitLoop(t, restarted, "oven", 10*time.Second, loopView.running)

	// Records keep coming to the restarted edge for a moment, then the stream stops and
	// everything acknowledged, before and after the crash, must arrive in order.
	after := records.ackedCount()
	harness.WaitUntil(t, 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		return records.ackedCount() >= after+100, fmt.Sprintf("%d records acknowledged after the restart", records.ackedCount()-after)
	})
	records.stop()
	_, d := waitDelivered(t, sink, records, 60*time.Second)
	assert.Zero(t, d.lost, "acknowledged records lost across the crash")
	assert.Zero(t, d.outOfOrder, "records arrived out of order")

	fig := drillFigures{name: "process-crash", detect: detect, recover: recover, lost: d.lost, duplicated: d.duplicated, acked: d.acked,
		alerts: alerts.firedSinceAll(begin),
		note:   fmt.Sprintf("restart to first API answer; oven restored latched and safe (state %s)", first.state)}
	fig.report(t)
	restarted.Stop(t)
}

// Drill 5, gateway outage: the real fieldcol-gateway (its logs forwarded to a sink standing
// for the log store) is stopped for several minutes under `make drills` (15 s in make test)
// while an application sends records through the edge: the edge keeps them on disk, the
// control loop is unaffected, and once the gateway is back everything arrives, in order.
func TestDrillGatewayOutage(t *testing.T) {
	outageDrill(t, "gateway-outage", routeGatewayStopped)
}

// Drill 7, egress blocked: the outage as a field network has it, not a stopped gateway. A
// TCP proxy on loopback between the edge and the gateway (internal/netfault) accepts every
// connection during the outage and holds it without an answer (hold: each request hangs
// until the exporter's own timeout, 30 s shipped, 5 s in make test), or resets it in the
// middle of the request (drop). Nothing acknowledged may be lost, the loops keep their
// cycles, and the queue drains once the route is back.
func TestDrillEgressBlocked(t *testing.T) {
	for _, route := range []outageRoute{routeHeld, routeDropped} {
		t.Run(route.String(), func(t *testing.T) { outageDrill(t, "egress-"+route.String(), route) })
	}
}

// outageRoute is how an outage drill takes the route to the gateway away.
type outageRoute int

const (
	routeGatewayStopped outageRoute = iota // the gateway process stops: connections refused
	routeHeld                              // the proxy holds connections silently
	routeDropped                           // the proxy resets connections mid-request
)

func (r outageRoute) String() string {
	return [...]string{"gateway-stopped", "held", "dropped"}[r]
}

func outageDrill(t *testing.T, name string, route outageRoute) {
	outage := 15 * time.Second
	if route != routeGatewayStopped {
		outage = 20 * time.Second // four of the shortened 5 s timeouts
	}
	if drillFull() {
		outage = 3 * time.Minute
	}
	store := otlpsink.Start(t)
	toStore := harness.Overlay(t, fmt.Sprintf(`
exporters:
  otlp_grpc/drill:
    endpoint: %s
    tls: {insecure: true}
service:
  pipelines:
    logs:
      exporters: [debug, otlp_grpc/drill]
`, store.Addr))
	gateway := harness.CollectorSpec{
		Bin:     harness.Binary(t, "fieldcol-gateway"),
		Configs: []string{harness.Shipped("distributions/gateway/config.yaml"), toStore},
	}
	gw := gateway.Start(t)
	endpoint := "http://" + gw.OTLPHTTP
	var edgeConfigs []string
	var proxy *netfault.Proxy
	if route != routeGatewayStopped {
		var err error
		proxy, err = netfault.Listen(gw.OTLPHTTP, 7)
		require.NoError(t, err)
		t.Cleanup(func() { _ = proxy.Close() })
		endpoint = "http://" + proxy.Addr()
		if !drillFull() {
			// A held request lasts the exporter's timeout: shortened so that make test
			// sees several of them.
			edgeConfigs = append(edgeConfigs, harness.Overlay(t, "exporters:\n  diskqueue:\n    timeout: 5s\n"))
		}
	}
	edge := startDrillEdge(t, edgeConfigs, harness.GatewayAt(endpoint))
	prom := startDrillProm(t, edge.Metrics)
	alerts := watchAlerts(t, prom)
	begin := time.Now()
	waitLoop(t, edge, "oven", 60*time.Second, loopView.running)

	records := startRecords(t, edge.OTLPGRPC, t.Name(), 50*time.Millisecond, 100000)
	harness.WaitUntil(t, 60*time.Second, 100*time.Millisecond, func() (bool, string) {
		n := len(harness.RecordArrivals(t, store, records.run))
		return n >= 20, fmt.Sprintf("%d records reached the store through the gateway", n)
	})

	backlog := func() float64 {
		v, err := edge.ScrapeSum("otelcol_exporter_diskqueue_records", `signal="logs"`)
		if err != nil {
			return -1
		}
		return v
	}
	before := getLoop(t, edge, "oven")
	down := time.Now()
	switch route {
	case routeGatewayStopped:
		gw.Stop(t)
	case routeHeld:
		proxy.SetMode(netfault.Hold)
	case routeDropped:
		proxy.SetMode(netfault.Drop)
	}
	// Detected when the edge's own telemetry shows a backlog of more than a second of records.
	harness.WaitUntil(t, 60*time.Second, 100*time.Millisecond, func() (bool, string) {
		return backlog() > 20, fmt.Sprintf("disk queue backlog %v", backlog())
	})
	detect := time.Since(down)
	time.Sleep(outage - time.Since(down))
	during := getLoop(t, edge, "oven")
	queued := backlog()
	ran := during.cycle - before.cycle
	nominal := uint64(time.Since(down) / (100 * time.Millisecond))
	assert.True(t, during.running(), "the control loop must be unaffected by the outage: %+v", during)
	assert.GreaterOrEqual(t, ran, nominal/2, "the loop slowed during the outage: %d cycles, nominal %d", ran, nominal)
	var proxied string
	if proxy != nil {
		st := proxy.Stats()
		proxied = fmt.Sprintf("; proxy: %d connections accepted, %d held, %d reset", st.Accepted, st.Held, st.Dropped)
	}

	// Back where the edge sends.
	switch route {
	case routeGatewayStopped:
		gateway.At = harness.Listeners{OTLPHTTP: gw.OTLPHTTP}
		gw = gateway.Start(t)
	default:
		proxy.SetMode(netfault.Pass)
	}
	up := time.Now()
	harness.WaitUntil(t, 180*time.Second, 100*time.Millisecond, func() (bool, string) {
		b := backlog()
		return b >= 0 && b < 5, fmt.Sprintf("disk queue backlog %v after the route returned", b)
	})
	recover := time.Since(up)
	records.stop()
	_, d := waitDelivered(t, store, records, 60*time.Second)
	assert.Zero(t, d.lost, "acknowledged records lost in the outage")
	assert.Zero(t, d.outOfOrder, "records arrived out of order")

	fig := drillFigures{name: name, detect: detect, recover: recover, lost: d.lost, duplicated: d.duplicated, acked: d.acked,
		alerts: alerts.firedSinceAll(begin),
		note:   fmt.Sprintf("%s outage, %.0f records queued at its end; loop ran %d of %d cycles%s", outage, queued, ran, nominal, proxied)}
	fig.report(t)
	edge.Stop(t)
	gw.Stop(t)
}
