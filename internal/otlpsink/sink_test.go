package otlpsink

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestSinkRecordsAndRefuses(t *testing.T) {
	sink := Start(t)
	c, err := Dial(sink.Addr)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("op")
	require.NoError(t, c.SendTraces(ctx, td))
	md := pmetric.NewMetrics()
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(7)
	require.NoError(t, c.SendMetrics(ctx, md))
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("hello")
	require.NoError(t, c.SendLogs(ctx, ld))

	assert.Equal(t, 1, sink.SpanCount())
	assert.Equal(t, 1, sink.DataPointCount())
	assert.Equal(t, 1, sink.LogRecordCount())
	assert.Equal(t, "op", sink.Traces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name())

	sink.Refuse(codes.InvalidArgument)
	err = c.SendLogs(ctx, ld)
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Equal(t, 1, sink.LogRecordCount())

	sink.Refuse(codes.OK)
	require.NoError(t, c.SendLogs(ctx, ld))
	assert.Equal(t, 2, sink.LogRecordCount())
}

func TestSinkOverHTTP(t *testing.T) {
	sink := Start(t)
	base := sink.ServeHTTP(t)
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("over http")
	body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	require.NoError(t, err)

	post := func() int {
		resp, err := http.Post(base+"/v1/logs", "application/x-protobuf", bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, post())
	assert.Equal(t, 1, sink.LogRecordCount())
	sink.Refuse(codes.Unavailable)
	assert.Equal(t, http.StatusServiceUnavailable, post())
	sink.Refuse(codes.InvalidArgument)
	assert.Equal(t, http.StatusBadRequest, post())
	assert.Equal(t, 1, sink.LogRecordCount())
}

// A flaky sink refuses about the share it was given, over both transports, and records
// exactly the requests it accepted.
func TestSinkRefuseShare(t *testing.T) {
	sink := Start(t)
	base := sink.ServeHTTP(t)
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("flaky")
	body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	require.NoError(t, err)
	sink.RefuseShare(300)
	accepted, refused := 0, 0
	for range 1000 {
		resp, err := http.Post(base+"/v1/logs", "application/x-protobuf", bytes.NewReader(body))
		require.NoError(t, err)
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			accepted++
		case http.StatusServiceUnavailable:
			refused++
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	assert.Equal(t, accepted, sink.LogRecordCount())
	assert.InDelta(t, 300, refused, 60, "refused %d of 1000 at 30%%", refused)
	sink.RefuseShare(0)
	c, err := Dial(sink.Addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SendLogs(context.Background(), ld))
	assert.Equal(t, accepted+1, sink.LogRecordCount())
}
