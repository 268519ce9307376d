package controlloop

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fieldcol/fieldcol/controlloop/schedule"
)

// Load: loadSenders clients each send batches of spansPerBatch spans; the server decodes
// every request and walks its spans, like a receiver would. By default each client paces
// itself to batchesPerSecond (20 000 spans/s in all, a busy edge device); with
// FIELDCOL_BENCH_LOAD=saturate they send as fast as the server answers, which keeps both
// cores of a small machine busy.
const (
	loadSenders      = 4
	spansPerBatch    = 200
	batchesPerSecond = 25
)

func saturate() bool { return os.Getenv("FIELDCOL_BENCH_LOAD") == "saturate" }

func duration() time.Duration {
	if v := os.Getenv("FIELDCOL_BENCH_DURATION"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d
		}
	}
	return 60 * time.Second
}

type traceServer struct {
	ptraceotlp.UnimplementedGRPCServer
	spans atomic.Int64
}

func (s *traceServer) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	td := req.Traces()
	n := 0
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		ss := td.ResourceSpans().At(i).ScopeSpans()
		for j := 0; j < ss.Len(); j++ {
			for k := 0; k < ss.At(j).Spans().Len(); k++ {
				n += ss.At(j).Spans().At(k).Attributes().Len()
			}
		}
	}
	s.spans.Add(int64(td.SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

func batch() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "bench-app")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range spansPerBatch {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("GET /api/orders")
		sp.SetTraceID([16]byte{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
		sp.SetSpanID([8]byte{byte(i), 1, 2, 3, 4, 5, 6, 7})
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutStr("url.path", "/api/orders/12345")
		sp.Attributes().PutInt("http.response.status_code", 200)
	}
	return td
}

// startLoad runs an OTLP/gRPC server and its clients until stop is closed.
func startLoad(b *testing.B, stop <-chan struct{}) (*traceServer, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	ts := &traceServer{}
	ptraceotlp.RegisterGRPCServer(srv, ts)
	go func() { _ = srv.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	client := ptraceotlp.NewGRPCClient(conn)
	var wg sync.WaitGroup
	paced := !saturate()
	for range loadSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second / batchesPerSecond)
			defer tick.Stop()
			for {
				if paced {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
				} else {
					select {
					case <-stop:
						return
					default:
					}
				}
				// Each request builds fresh pdata: the allocation and GC pressure is part of the load.
				_, _ = client.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(batch()))
			}
		}()
	}
	return ts, func() {
		wg.Wait()
		_ = conn.Close()
		srv.Stop()
	}
}

// controller is the same small computation in both loops (a PI update), so that each
// cycle does some work after waking, as a real one would.
type controller struct{ integral, out float64 }

func (c *controller) work(i int) {
	e := 0.5 - float64(i%100)/100
	c.integral = min(1, max(0, c.integral+e*0.001))
	c.out = min(1, max(0, e+c.integral))
}

// absoluteLoop is the controlloop scheduler: a locked OS thread sleeping with
// clock_nanosleep(TIMER_ABSTIME) to each deadline, with SCHED_FIFO when fifo is set (as
// `realtime: true` does; memory is not locked here, the benchmark allocates gigabytes).
func absoluteLoop(period time.Duration, n int, out []int64, fifo bool) []int64 {
	runtime.LockOSThread()
	// Not unlocked: a SCHED_FIFO thread must not go back to the runtime's pool; it exits
	// with the goroutine.
	if fifo {
		if err := schedule.FIFO(50); err != nil {
			panic(err)
		}
	}
	var c controller
	tk, err := schedule.NewTicker(period)
	if err != nil {
		panic(err)
	}
	for i := range n {
		t := tk.Wait()
		out = append(out, t.Woke-t.Deadline)
		c.work(i)
	}
	return out
}

// tickerLoop is the naive loop: a goroutine receiving from time.Ticker. A tick's deadline
// is the ticker's nominal instant (start + k·period) at or before the time the runtime sent
// it; lateness runs from there to when the goroutine got to run.
func tickerLoop(period time.Duration, n int, out []int64) []int64 {
	var c controller
	start := time.Now()
	tk := time.NewTicker(period)
	defer tk.Stop()
	for i := range n {
		sent := <-tk.C
		woke := time.Now()
		k := sent.Sub(start) / period
		out = append(out, int64(woke.Sub(start.Add(k*period))))
		c.work(i)
	}
	return out
}

type stats struct{ p50, p99, max time.Duration }

func percentiles(v []int64) stats {
	s := slices.Clone(v)
	slices.Sort(s)
	at := func(q float64) time.Duration { return time.Duration(s[min(len(s)-1, int(q*float64(len(s))))]) }
	return stats{at(0.50), at(0.99), time.Duration(s[len(s)-1])}
}

// fifoPermitted reports whether this process may use SCHED_FIFO (root or CAP_SYS_NICE).
func fifoPermitted() bool {
	ok := make(chan bool)
	go func() {
		runtime.LockOSThread() // the thread exits with the goroutine, priority and all
		ok <- schedule.FIFO(1) == nil
	}()
	return <-ok
}

type variant struct {
	name string
	run  func(period time.Duration, n int, out []int64) []int64
}

func BenchmarkLatenessUnderOTLPLoad(b *testing.B) {
	d := duration()
	variants := []variant{
		{"clock_nanosleep", func(p time.Duration, n int, out []int64) []int64 { return absoluteLoop(p, n, out, false) }},
		{"time.Ticker", tickerLoop},
	}
	if fifoPermitted() {
		variants = append(variants, variant{"clock_nanosleep+SCHED_FIFO", func(p time.Duration, n int, out []int64) []int64 {
			return absoluteLoop(p, n, out, true)
		}})
	}
	for _, hz := range []int{100, 1000} {
		b.Run(fmt.Sprintf("%dHz", hz), func(b *testing.B) {
			period := time.Second / time.Duration(hz)
			n := int(d / period)
			results := make([]stats, len(variants))
			var spans int64
			for b.Loop() {
				stop := make(chan struct{})
				ts, wait := startLoad(b, stop)
				time.Sleep(200 * time.Millisecond) // let the load reach steady state
				var wg sync.WaitGroup
				for i, v := range variants {
					wg.Add(1)
					go func() {
						defer wg.Done()
						results[i] = percentiles(v.run(period, n, make([]int64, 0, n)))
					}()
				}
				wg.Wait()
				close(stop)
				wait()
				spans = ts.spans.Load()
			}
			us := func(d time.Duration) float64 { return float64(d) / 1e3 }
			short := map[string]string{"clock_nanosleep": "abs", "time.Ticker": "ticker", "clock_nanosleep+SCHED_FIFO": "abs-fifo"}
			for i, v := range variants {
				r := results[i]
				b.ReportMetric(us(r.p50), short[v.name]+"-p50-µs")
				b.ReportMetric(us(r.p99), short[v.name]+"-p99-µs")
				b.ReportMetric(us(r.max), short[v.name]+"-max-µs")
				b.Logf("| %d Hz | %s | %.0f | %.0f | %.0f |", hz, v.name, us(r.p50), us(r.p99), us(r.max))
			}
			b.ReportMetric(float64(spans)/d.Seconds(), "otlp-spans/s")
		})
	}
}
