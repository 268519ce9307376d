package piiredaction

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
)

const (
	worstCaseSize = 1 << 20
	valueSep      = " | "
)

// fill joins distinct values made by next with valueSep up to size bytes, and returns the body
// with its values.
func fill(size int, next func(i int) string) body {
	var b strings.Builder
	var vals []string
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteString(valueSep)
		}
		v := next(i)
		vals = append(vals, v)
		b.WriteString(v)
	}
	return body{text: b.String(), values: vals}
}

type body struct {
	text   string
	values []string
}

// worstCaseBodies are 1 MiB log bodies that are nothing but matches of one kind (each value
// distinct, so no cache or repeat shortcut helps), next to 1 MiB of text without any.
func worstCaseBodies() map[string]body {
	r := rand.New(rand.NewPCG(1, 2))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		return string(b)
	}
	card := func(int) string {
		p := "4" + digits(14)
		return p + string(luhnDigit(p))
	}
	jwt := func(i int) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"alg":"HS256","kid":"%d"}`, i)))
		p := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"%d"}`, i)))
		return h + "." + p + "." + base64.RawURLEncoding.EncodeToString([]byte(digits(32)))
	}
	bodies := map[string]body{
		"clean": fill(worstCaseSize, func(i int) string {
			return fmt.Sprintf("cycle %d took 3.2ms setpoint=65.0 pv=64.8 state ok", i)
		}),
		"cards":  fill(worstCaseSize, card),
		"ipv4":   fill(worstCaseSize, func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }),
		"emails": fill(worstCaseSize, func(i int) string { return fmt.Sprintf("user%d@example.com", i) }),
		"phones": fill(worstCaseSize, func(int) string { return "+44 20 7946 " + digits(4) }),
		"jwts":   fill(worstCaseSize, jwt),
	}
	mixed := []func(int) string{
		card,
		func(i int) string { return fmt.Sprintf("user%d@example.com", i) },
		func(i int) string { return fmt.Sprintf("192.168.%d.%d", i>>8&255, i&255) },
		func(int) string { return "+49 30 " + digits(7) },
		jwt,
	}
	bodies["mixed"] = fill(worstCaseSize, func(i int) string { return mixed[i%len(mixed)](i) })
	return bodies
}

func oneBody(body string) plog.Logs {
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr(body)
	return ld
}

// consumeTime is the time p takes for one fresh copy of the body.
func consumeTime(tb testing.TB, p processor.Logs, body string) time.Duration {
	ld := oneBody(body)
	t0 := time.Now()
	if err := p.ConsumeLogs(context.Background(), ld); err != nil {
		tb.Fatal(err)
	}
	return time.Since(t0)
}

// BenchmarkWorstCaseBody pushes each 1 MiB all-match body through piiredaction and reports its
// time as a ratio to the 1 MiB clean body, measured alternately in the same run (issue 20:
// within 10x). Contrib's time on the same body is reported beside it.
func BenchmarkWorstCaseBody(b *testing.B) {
	bodies := worstCaseBodies()
	pii := newPII(b, consumertest.NewNop())
	contrib := newContrib(b, consumertest.NewNop())
	for _, name := range []string{"cards", "ipv4", "emails", "phones", "jwts", "mixed"} {
		b.Run(name, func(b *testing.B) {
			var clean, match, theirs time.Duration
			for b.Loop() {
				clean += consumeTime(b, pii, bodies["clean"].text)
				match += consumeTime(b, pii, bodies[name].text)
				theirs += consumeTime(b, contrib, bodies[name].text)
			}
			n := float64(b.N)
			b.ReportMetric(float64(clean.Milliseconds())/n, "clean-ms")
			b.ReportMetric(float64(match.Milliseconds())/n, "allmatch-ms")
			b.ReportMetric(float64(match)/float64(clean), "allmatch/clean-x")
			b.ReportMetric(float64(theirs.Milliseconds())/n, "contrib-allmatch-ms")
		})
	}
}

// TestWorstCaseBodiesAreAllMatches checks that each all-match body is what its name says:
// piiredaction changes it, and no value of it survives. (Time is only measured by
// BenchmarkWorstCaseBody.)
func TestWorstCaseBodiesAreAllMatches(t *testing.T) {
	sink := new(consumertest.LogsSink)
	pii := newPII(t, sink)
	for name, b := range worstCaseBodies() {
		sink.Reset()
		if err := pii.ConsumeLogs(context.Background(), oneBody(b.text)); err != nil {
			t.Fatal(err)
		}
		out := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Str()
		if name == "clean" {
			if out != b.text {
				t.Errorf("clean body changed")
			}
			continue
		}
		vals := map[string]bool{}
		for _, v := range b.values {
			vals[v] = true
		}
		left := 0
		for _, v := range strings.Split(out, valueSep) {
			if vals[v] {
				left++
			}
		}
		if left > 0 {
			t.Errorf("%s: %d of %d values survived", name, left, len(b.values))
		}
	}
}
