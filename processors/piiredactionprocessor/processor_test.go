package piiredactionprocessor

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/fieldcol/fieldcol/processors/piiredactionprocessor/internal/metadatatest"
)

const (
	testKey   = "0123456789abcdef0123456789abcdef"
	email     = "jane.roe@example.com"
	phone     = "+1 (555) 123-4567"
	card      = "4111 1111 1111 1111"
	traceIDv  = "4bf92f3577b34da6a3ce929d0e0e4736"
	mask      = "****"
	emailText = "mail to " + email + " please"
)

func hashConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.HMACKey = testKey
	cfg.Detectors.Email.Action = ActionHash
	cfg.Detectors.Phone.Action = ActionHash
	cfg.Keys = []KeyRule{{Name: "resident", Keys: []string{"resident_name", "Patient_ID"}, Action: ActionHash}}
	return cfg
}

type harness struct {
	tel     *componenttest.Telemetry
	traces  *consumertest.TracesSink
	logs    *consumertest.LogsSink
	metrics *consumertest.MetricsSink
	tp      processor.Traces
	lp      processor.Logs
	mp      processor.Metrics
}

func newHarness(t *testing.T, cfg *Config) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	h := &harness{
		tel:     componenttest.NewTelemetry(),
		traces:  new(consumertest.TracesSink),
		logs:    new(consumertest.LogsSink),
		metrics: new(consumertest.MetricsSink),
	}
	f := NewFactory()
	set := metadatatest.NewSettings(h.tel)
	var err error
	h.tp, err = f.CreateTraces(context.Background(), set, cfg, h.traces)
	require.NoError(t, err)
	h.lp, err = f.CreateLogs(context.Background(), set, cfg, h.logs)
	require.NoError(t, err)
	h.mp, err = f.CreateMetrics(context.Background(), set, cfg, h.metrics)
	require.NoError(t, err)
	host := componenttest.NewNopHost()
	require.NoError(t, h.tp.Start(context.Background(), host))
	require.NoError(t, h.lp.Start(context.Background(), host))
	require.NoError(t, h.mp.Start(context.Background(), host))
	t.Cleanup(func() {
		require.NoError(t, h.tp.Shutdown(context.Background()))
		require.NoError(t, h.lp.Shutdown(context.Background()))
		require.NoError(t, h.mp.Shutdown(context.Background()))
		require.NoError(t, h.tel.Shutdown(context.Background()))
	})
	return h
}

func tracesJSON(t *testing.T, td ptrace.Traces) string {
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return string(b)
}

func logsJSON(t *testing.T, ld plog.Logs) string {
	b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	require.NoError(t, err)
	return string(b)
}

func metricsJSON(t *testing.T, md pmetric.Metrics) string {
	b, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(md)
	require.NoError(t, err)
	return string(b)
}

func TestTracesEveryLocation(t *testing.T) {
	h := newHarness(t, createDefaultConfig().(*Config))
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("owner", email)
	rs.Resource().Attributes().PutStr("service.name", "fleet-api")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().Attributes().PutStr("operator.phone", phone)
	span := ss.Spans().AppendEmpty()
	var tid pcommon.TraceID
	copy(tid[:], "0123456789abcdef")
	span.SetTraceID(tid)
	span.SetName("GET /users/" + email)
	span.Status().SetMessage("card " + card + " declined")
	span.Attributes().PutStr("client", "addr 192.168.7.20")
	span.Attributes().PutStr("trace_id", traceIDv)
	span.Attributes().PutEmptySlice("peers").AppendEmpty().SetStr("2001:db8::7")
	ev := span.Events().AppendEmpty()
	ev.SetName("notify " + email)
	ev.Attributes().PutStr("to", phone)
	link := span.Links().AppendEmpty()
	link.Attributes().PutStr("token", "Bearer abcdef123456")

	require.NoError(t, h.tp.ConsumeTraces(context.Background(), td))
	require.Len(t, h.traces.AllTraces(), 1)
	out := h.traces.AllTraces()[0]
	js := tracesJSON(t, out)
	for _, v := range []string{email, "555", "4111 1111 1111 1111", "192.168.7.20", "2001:db8::7", "abcdef123456"} {
		assert.NotContains(t, js, v)
	}
	gotSpan := out.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	assert.Equal(t, "GET /users/"+mask, gotSpan.Name())
	assert.Equal(t, "card ****1111 declined", gotSpan.Status().Message())
	assert.Equal(t, tid, gotSpan.TraceID())
	v, _ := gotSpan.Attributes().Get("trace_id")
	assert.Equal(t, traceIDv, v.Str(), "allow-listed keys are untouched")
	v, _ = out.ResourceSpans().At(0).Resource().Attributes().Get("service.name")
	assert.Equal(t, "fleet-api", v.Str())
	v, _ = gotSpan.Attributes().Get("client")
	assert.Equal(t, "addr "+mask, v.Str())
}

func TestLogsEveryLocation(t *testing.T) {
	h := newHarness(t, hashConfig())
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("contact", email)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().Attributes().PutStr("support", "call "+phone)
	lr := sl.LogRecords().AppendEmpty()
	lr.Attributes().PutStr("Resident_Name", "Hanako Yamada")
	lr.Attributes().PutInt("patient_id", 4711)
	lr.Attributes().PutStr("url", "https://robot:s3cr3t@fleet.example.com/api?api_key=K3Y")
	lr.Attributes().PutDouble("gps.lat", 35.6895)
	lr.Body().SetStr("resident " + email + " paid with DE89 3704 0044 0532 0130 00")

	lr2 := sl.LogRecords().AppendEmpty()
	body := lr2.Body().SetEmptyMap()
	inner := body.PutEmptyMap("user")
	inner.PutStr("resident_name", "Taro Yamada")
	inner.PutStr("note", "ssn 123-45-6789")
	list := body.PutEmptySlice("contacts")
	list.AppendEmpty().SetStr(email)
	list.AppendEmpty().SetEmptyMap().PutStr("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl")

	lr3 := sl.LogRecords().AppendEmpty()
	lr3.Body().SetEmptySlice().AppendEmpty().SetStr("ip 10.20.30.40")

	require.NoError(t, h.lp.ConsumeLogs(context.Background(), ld))
	require.Len(t, h.logs.AllLogs(), 1)
	js := logsJSON(t, h.logs.AllLogs()[0])
	for _, v := range []string{email, "555", "Hanako", "Taro", "4711", "s3cr3t", "K3Y", "35.6895", "DE89", "123-45-6789", "eyJ", "10.20.30.40"} {
		assert.NotContains(t, js, v)
	}
	got := h.logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	name, _ := got.At(0).Attributes().Get("Resident_Name")
	assert.Regexp(t, `^pii_[0-9a-f]{16}$`, name.Str(), "key rules match without regard to case")
	url, _ := got.At(0).Attributes().Get("url")
	assert.Equal(t, "https://****@fleet.example.com/api?api_key=****", url.Str())
	assert.Regexp(t, `^resident pii_[0-9a-f]{16} paid with \*\*\*\*$`, got.At(0).Body().Str())
}

func TestMetricsEveryLocation(t *testing.T) {
	h := newHarness(t, createDefaultConfig().(*Config))
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("owner", email)
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().Attributes().PutStr("admin", email)

	g := sm.Metrics().AppendEmpty()
	g.SetName("vehicle.battery")
	gdp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gdp.Attributes().PutStr("user", email)
	gdp.Exemplars().AppendEmpty().FilteredAttributes().PutStr("client.address", "10.1.2.3")

	s := sm.Metrics().AppendEmpty()
	s.SetName("missions")
	sdp := s.SetEmptySum().DataPoints().AppendEmpty()
	sdp.Attributes().PutStr("phone", "555 1234")

	hi := sm.Metrics().AppendEmpty()
	hi.SetName("latency")
	hdp := hi.SetEmptyHistogram().DataPoints().AppendEmpty()
	hdp.Attributes().PutStr("peer", "fe80::1")
	hdp.Exemplars().AppendEmpty().FilteredAttributes().PutStr("user", email)

	eh := sm.Metrics().AppendEmpty()
	eh.SetName("latency.exp")
	edp := eh.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
	edp.Attributes().PutStr("card", card)
	edp.Exemplars().AppendEmpty().FilteredAttributes().PutStr("iban", "GB82WEST12345698765432")

	su := sm.Metrics().AppendEmpty()
	su.SetName("summary")
	su.SetEmptySummary().DataPoints().AppendEmpty().Attributes().PutDouble("vehicle_latitude", 35.6)

	require.NoError(t, h.mp.ConsumeMetrics(context.Background(), md))
	require.Len(t, h.metrics.AllMetrics(), 1)
	js := metricsJSON(t, h.metrics.AllMetrics()[0])
	for _, v := range []string{email, "555 1234", "10.1.2.3", "fe80::1", "4111", "GB82", "35.6"} {
		assert.NotContains(t, js, v)
	}
	assert.Equal(t, 5, h.metrics.AllMetrics()[0].MetricCount())
}

func TestHashIsStableAndJoinableAcrossSignals(t *testing.T) {
	h := newHarness(t, hashConfig())
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().Attributes().PutStr("note", "by "+email)
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Attributes().PutStr("user.email", "Jane.Roe@Example.COM")
	md := pmetric.NewMetrics()
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty().Attributes().PutStr("who", email)

	require.NoError(t, h.tp.ConsumeTraces(context.Background(), td))
	require.NoError(t, h.lp.ConsumeLogs(context.Background(), ld))
	require.NoError(t, h.mp.ConsumeMetrics(context.Background(), md))

	sv, _ := h.traces.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Get("note")
	lv, _ := h.logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get("user.email")
	mv, _ := h.metrics.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).Attributes().Get("who")
	pseudonym := strings.TrimPrefix(sv.Str(), "by ")
	assert.Regexp(t, `^pii_[0-9a-f]{16}$`, pseudonym)
	assert.Equal(t, pseudonym, lv.Str())
	assert.Equal(t, pseudonym, mv.Str())

	// Another key gives another pseudonym: without the key nobody can recompute it.
	other := hashConfig()
	other.HMACKey = "another-key-another-key-another-key"
	h2 := newHarness(t, other)
	md2 := pmetric.NewMetrics()
	md2.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty().Attributes().PutStr("who", email)
	require.NoError(t, h2.mp.ConsumeMetrics(context.Background(), md2))
	v2, _ := h2.metrics.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).Attributes().Get("who")
	assert.NotEqual(t, pseudonym, v2.Str())
}

func TestDropActions(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Detectors.SSN.Action = ActionDropAttribute
	cfg.Keys = []KeyRule{{Name: "medical", Keys: []string{"diagnosis"}, Action: ActionDropRecord}}
	cfg.Patterns = []PatternRule{{Name: "badge", Regex: `BADGE-[0-9]{6}`, Action: ActionDropRecord}}
	h := newHarness(t, cfg)

	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	keep := sl.LogRecords().AppendEmpty()
	keep.Body().SetStr("kept")
	keep.Attributes().PutStr("note", "ssn 123-45-6789")
	keep.Attributes().PutStr("other", "fine")
	sl.LogRecords().AppendEmpty().Attributes().PutStr("diagnosis", "flu")
	sl.LogRecords().AppendEmpty().Body().SetStr("scan BADGE-123456 at door")
	require.NoError(t, h.lp.ConsumeLogs(context.Background(), ld))
	got := h.logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	require.Equal(t, 1, got.Len())
	assert.Equal(t, "kept", got.At(0).Body().Str())
	_, ok := got.At(0).Attributes().Get("note")
	assert.False(t, ok, "drop_attribute removes the attribute")
	_, ok = got.At(0).Attributes().Get("other")
	assert.True(t, ok)

	// A drop_record match on the resource drops everything under it; nothing is left to send.
	ld2 := plog.NewLogs()
	rl := ld2.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("diagnosis", "x")
	rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("hello")
	require.NoError(t, h.lp.ConsumeLogs(context.Background(), ld2))
	assert.Len(t, h.logs.AllLogs(), 1, "an emptied batch is not passed on")

	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	spans.AppendEmpty().SetName("ok")
	spans.AppendEmpty().Events().AppendEmpty().Attributes().PutStr("badge", "BADGE-654321")
	require.NoError(t, h.tp.ConsumeTraces(context.Background(), td))
	assert.Equal(t, 1, h.traces.AllTraces()[0].SpanCount())

	md := pmetric.NewMetrics()
	dps := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptySum().DataPoints()
	dps.AppendEmpty().Attributes().PutStr("k", "v")
	dps.AppendEmpty().Attributes().PutStr("diagnosis", "flu")
	require.NoError(t, h.mp.ConsumeMetrics(context.Background(), md))
	assert.Equal(t, 1, h.metrics.AllMetrics()[0].DataPointCount())
}

func TestSecondPassChangesNothing(t *testing.T) {
	cfg := hashConfig()
	h := newHarness(t, cfg)
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr("user " + email + " from 10.0.0.7 card " + card + " phone " + phone + " password=hunter22")
	lr.Attributes().PutStr("resident_name", "Hanako Yamada")
	lr.Attributes().PutStr("user.email", email)
	require.NoError(t, h.lp.ConsumeLogs(context.Background(), ld))
	first := logsJSON(t, h.logs.AllLogs()[0])

	h2 := newHarness(t, cfg)
	require.NoError(t, h2.lp.ConsumeLogs(context.Background(), h.logs.AllLogs()[0]))
	assert.JSONEq(t, first, logsJSON(t, h2.logs.AllLogs()[0]), "the gateway's pass must keep the edge's pseudonyms")
}

func TestSummaryAttribute(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg := createDefaultConfig().(*Config)
		cfg.Summary = on
		h := newHarness(t, cfg)
		ld := plog.NewLogs()
		sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
		lr := sl.LogRecords().AppendEmpty()
		lr.Body().SetStr(email + " " + email + " " + phone)
		clean := sl.LogRecords().AppendEmpty()
		clean.Body().SetStr("nothing here")
		require.NoError(t, h.lp.ConsumeLogs(context.Background(), ld))
		got := h.logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		v, ok := got.At(0).Attributes().Get(summaryAttribute)
		assert.Equal(t, on, ok)
		if on {
			assert.Equal(t, "email=2,phone=1", v.Str())
		}
		_, ok = got.At(1).Attributes().Get(summaryAttribute)
		assert.False(t, ok)
		if on {
			// A second pass keeps the summary as it is.
			h2 := newHarness(t, cfg)
			require.NoError(t, h2.lp.ConsumeLogs(context.Background(), h.logs.AllLogs()[0]))
			v2, _ := h2.logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get(summaryAttribute)
			assert.Equal(t, "email=2,phone=1", v2.Str())
		}
	}
}

// TestRedactionsTelemetry is the PII-access audit: per signal, rule, action and key, how many
// values were redacted, and never a value (a key that is itself an address is reported as
// redacted_key).
func TestRedactionsTelemetry(t *testing.T) {
	h := newHarness(t, hashConfig())
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr(email + " and " + email + " from 10.0.0.7")
	lr.Attributes().PutStr("resident_name", "Hanako")
	lr.Attributes().PutEmptyMap("user").PutStr("note", "call "+phone)
	lr.Attributes().PutStr(email, "also "+email)
	require.NoError(t, h.lp.ConsumeLogs(context.Background(), ld))
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("card " + card)
	require.NoError(t, h.tp.ConsumeTraces(context.Background(), td))

	point := func(sig, rule, action, key string, n int64) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Value: n, Attributes: attribute.NewSet(
			attribute.String("signal", sig), attribute.String("rule", rule), attribute.String("action", action),
			attribute.String("key", key))}
	}
	metadatatest.AssertEqualProcessorPiiredactionRedactions(t, h.tel, []metricdata.DataPoint[int64]{
		point("logs", "email", "hash", "log.body", 2),
		point("logs", "ipv4", "mask", "log.body", 1),
		point("logs", "resident", "hash", "resident_name", 1),
		point("logs", "phone", "hash", "note", 1),
		point("logs", "email", "hash", "redacted_key", 1),
		point("traces", "credit_card", "mask", "span.name", 1),
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func TestNonStringAndVersionValues(t *testing.T) {
	h := newHarness(t, createDefaultConfig().(*Config))
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Attributes().PutInt("payment", 4111111111111111)
	lr.Attributes().PutInt("cycle", 48213)
	lr.Attributes().PutInt("ts_ns", 1766000000123456789)
	lr.Attributes().PutStr("app.version", "10.2.0.1")
	lr.Attributes().PutStr("peer", "10.2.0.1")
	require.NoError(t, h.lp.ConsumeLogs(context.Background(), ld))
	attrs := h.logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes()
	v, _ := attrs.Get("payment")
	assert.Equal(t, "****1111", v.Str())
	v, _ = attrs.Get("cycle")
	assert.Equal(t, int64(48213), v.Int())
	v, _ = attrs.Get("ts_ns")
	assert.Equal(t, int64(1766000000123456789), v.Int())
	v, _ = attrs.Get("app.version")
	assert.Equal(t, "10.2.0.1", v.Str())
	v, _ = attrs.Get("peer")
	assert.Equal(t, mask, v.Str())
}

// TestKeysMaskOnlyWhatTheyName: a key named like a credential, a phone or an address decides
// for its whole value only when the value looks like one; other values are still scanned.
func TestKeysMaskOnlyWhatTheyName(t *testing.T) {
	h := newHarness(t, createDefaultConfig().(*Config))
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	a := lr.Attributes()
	a.PutInt("sessid", 42)
	a.PutStr("session.started", "2025-12-17T10:30:00Z")
	a.PutStr("session_id", "2025-12-17")
	a.PutStr("session", "8f14e45fceea167a5a36dedd4bea2543")
	a.PutBool("notify.email", true)
	a.PutStr("user.phone", "n/a")
	a.PutStr("http.request.header.authorization", "Bearer abc123def456 keep-this")
	a.PutStr("token", "expired")
	require.NoError(t, h.lp.ConsumeLogs(context.Background(), ld))
	got := h.logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes()
	want := map[string]string{
		"session": mask, "session.started": "2025-12-17T10:30:00Z", "session_id": "2025-12-17",
		"notify.email": "true", "user.phone": "n/a", "http.request.header.authorization": mask,
		"token": "expired", "sessid": "42",
	}
	for k, w := range want {
		v, ok := got.Get(k)
		require.True(t, ok, k)
		assert.Equal(t, w, v.AsString(), k)
	}
}

// TestAllowRulesApplyOnlyWhereScoped: a scoped allow rule exempts its keys in the records of
// its scope and resource only; allow_keys exempt top-level attributes only, never keys nested
// in a log body or a map value.
func TestAllowRulesApplyOnlyWhereScoped(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.AllowKeys = []string{"trace_id"}
	cfg.Allow = []AllowRule{{
		Keys:               []string{"error.message"},
		Scopes:             []string{"github.com/fieldcol/fieldcol/controlloop"},
		ResourceAttributes: map[string]string{"service.name": "fieldcol-edge"},
		Signals:            []string{"logs"},
	}}
	h := newHarness(t, cfg)
	ld := plog.NewLogs()
	add := func(service, scope string) plog.LogRecord {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", service)
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(scope)
		lr := sl.LogRecords().AppendEmpty()
		lr.Attributes().PutStr("error.message", "mail "+email)
		return lr
	}
	add("fieldcol-edge", "github.com/fieldcol/fieldcol/controlloop")
	add("fieldcol-edge", "app/checkout")
	add("checkout", "github.com/fieldcol/fieldcol/controlloop")
	nested := add("checkout", "app/checkout")
	nested.Attributes().PutStr("trace_id", email)
	nested.Body().SetEmptyMap().PutStr("trace_id", email)
	require.NoError(t, h.lp.ConsumeLogs(context.Background(), ld))

	got := h.logs.AllLogs()[0].ResourceLogs()
	msg := func(i int) string {
		v, _ := got.At(i).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get("error.message")
		return v.Str()
	}
	assert.Equal(t, "mail "+email, msg(0), "the control loop's own record")
	assert.Equal(t, "mail "+mask, msg(1), "another scope of the same service")
	assert.Equal(t, "mail "+mask, msg(2), "another service claiming the scope")
	assert.Equal(t, "mail "+mask, msg(3))
	lr := got.At(3).ScopeLogs().At(0).LogRecords().At(0)
	v, _ := lr.Attributes().Get("trace_id")
	assert.Equal(t, email, v.Str(), "allow_keys hold for top-level attributes")
	v, _ = lr.Body().Map().Get("trace_id")
	assert.Equal(t, mask, v.Str(), "but not for keys nested in a body")

	// Traces are not selected by the rule.
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "fieldcol-edge")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("github.com/fieldcol/fieldcol/controlloop")
	ss.Spans().AppendEmpty().Attributes().PutStr("error.message", email)
	require.NoError(t, h.tp.ConsumeTraces(context.Background(), td))
	sv, _ := h.traces.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Get("error.message")
	assert.Equal(t, mask, sv.Str())
}
