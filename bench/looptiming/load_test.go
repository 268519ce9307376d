package looptiming

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fieldcol/fieldcol/internal/otlpsink"
)

// The load of issue 25: 20,000 spans/s over OTLP/gRPC and 5,000 logs/s over OTLP/HTTP,
// from several paced senders each, as applications on the device would send them.
const (
	spanSenders, spansPerBatch, spanBatchesPerSecond = 4, 200, 25
	logSenders, logsPerBatch, logBatchesPerSecond    = 2, 100, 25
)

// load runs the senders until stop.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time
	client *otlpsink.Client
	http   *http.Client

	spans, logs             atomic.Int64 // accepted by the edge
	spanErrors, logErrors   atomic.Int64 // refused or failed requests
	firstSpanErr, firstLogE atomic.Value // string
}

// loadStats is what the senders achieved.
type loadStats struct {
	elapsed                  time.Duration
	spansPerSec, logsPerSec  float64
	spanErrors, logErrors    int64
	firstSpanErr, firstLogEr string
}

func (s loadStats) String() string {
	out := fmt.Sprintf("%.0f spans/s (gRPC), %.0f logs/s (HTTP) accepted over %s", s.spansPerSec, s.logsPerSec, s.elapsed.Round(time.Second))
	if s.spanErrors+s.logErrors > 0 {
		out += fmt.Sprintf("; %d span and %d log requests failed (first: %q, %q)", s.spanErrors, s.logErrors, s.firstSpanErr, s.firstLogEr)
	}
	return out
}

func spanBatch(sender int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "looptiming-app")
	ss := rs.ScopeSpans().AppendEmpty()
	now := pcommon.NewTimestampFromTime(time.Now())
	for i := range spansPerBatch {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("GET /api/orders")
		sp.SetTraceID([16]byte{byte(sender), byte(i), 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
		sp.SetSpanID([8]byte{byte(sender), byte(i), 2, 3, 4, 5, 6, 7})
		sp.SetStartTimestamp(now)
		sp.SetEndTimestamp(now + 1_200_000)
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutStr("url.path", "/api/orders/12345")
		sp.Attributes().PutInt("http.response.status_code", 200)
	}
	return td
}

func logBatch() ([]byte, error) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "looptiming-app")
	sl := rl.ScopeLogs().AppendEmpty()
	now := pcommon.NewTimestampFromTime(time.Now())
	for i := range logsPerBatch {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(now)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.Body().SetStr(fmt.Sprintf("order %d shipped from line 3, conveyor at 1500 rpm", 10000+i))
		lr.Attributes().PutStr("order.state", "shipped")
	}
	return plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
}

// startLoad sends to the edge's OTLP listeners until stop. Each sender paces itself with a
// ticker; a request slower than its tick makes the rate fall, which stop reports.
func startLoad(e *edge) (*load, error) {
	client, err := otlpsink.Dial(e.otlpGRPC)
	if err != nil {
		return nil, err
	}
	body, err := logBatch()
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("encoding the log batch: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, start: time.Now(), client: client, http: &http.Client{Timeout: 10 * time.Second}}
	paced := func(perSecond int, send func()) {
		defer l.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				send()
			}
		}
	}
	for i := range spanSenders {
		td := spanBatch(i)
		l.wg.Add(1)
		go paced(spanBatchesPerSecond, func() {
			if err := client.SendTraces(ctx, td); err != nil {
				if ctx.Err() == nil {
					l.spanErrors.Add(1)
					l.firstSpanErr.CompareAndSwap(nil, err.Error())
				}
				return
			}
			l.spans.Add(spansPerBatch)
		})
	}
	url := "http://" + e.otlpHTTP + "/v1/logs"
	for range logSenders {
		l.wg.Add(1)
		go paced(logBatchesPerSecond, func() {
			if err := postLogs(ctx, l.http, url, body); err != nil {
				if ctx.Err() == nil {
					l.logErrors.Add(1)
					l.firstLogE.CompareAndSwap(nil, err.Error())
				}
				return
			}
			l.logs.Add(logsPerBatch)
		})
	}
	return l, nil
}

func postLogs(ctx context.Context, c *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %.200s", url, resp.Status, msg)
	}
	return nil
}

// stop ends the load and reports what it achieved.
func (l *load) stop() loadStats {
	l.cancel()
	l.wg.Wait()
	el := time.Since(l.start)
	_ = l.client.Close()
	l.http.CloseIdleConnections()
	s := loadStats{
		elapsed:     el,
		spansPerSec: float64(l.spans.Load()) / el.Seconds(),
		logsPerSec:  float64(l.logs.Load()) / el.Seconds(),
		spanErrors:  l.spanErrors.Load(),
		logErrors:   l.logErrors.Load(),
	}
	if v, ok := l.firstSpanErr.Load().(string); ok {
		s.firstSpanErr = v
	}
	if v, ok := l.firstLogE.Load().(string); ok {
		s.firstLogEr = v
	}
	return s
}
