package looptiming

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// gcSummary is what GODEBUG=gctrace=1 printed about the collections in a window.
type gcSummary struct {
	n              int
	stwMax, stwSum time.Duration // both stop-the-world phases of each collection
	liveMax        int           // MB of heap live after a collection, the largest
}

func (g gcSummary) String() string {
	if g.n == 0 {
		return "no GC in the window"
	}
	return fmt.Sprintf("%d GCs in the window, stop-the-world max %v, total %v, live heap up to %d MB", g.n, g.stwMax, g.stwSum, g.liveMax)
}

// "gc 12 @3.456s 2%: 0.030+1.2+0.021 ms clock, ...": the first and last clock figures are
// the sweep-termination and mark-termination pauses.
var gcLine = regexp.MustCompile(`\bgc \d+ @([0-9.]+)s \d+%: ([0-9.]+)\+[0-9.]+\+([0-9.]+) ms clock.*, \d+->\d+->(\d+) MB`)

// parseGCTrace sums the collections that began between from and to after process start.
func parseGCTrace(log string, from, to time.Duration) (gcSummary, error) {
	var g gcSummary
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		m := gcLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		at, err1 := strconv.ParseFloat(m[1], 64)
		sweep, err2 := strconv.ParseFloat(m[2], 64)
		mark, err3 := strconv.ParseFloat(m[3], 64)
		live, err4 := strconv.Atoi(m[4])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return gcSummary{}, fmt.Errorf("gctrace line %q", sc.Text())
		}
		if t := time.Duration(at * float64(time.Second)); t < from || t > to {
			continue
		}
		g.n++
		g.liveMax = max(g.liveMax, live)
		for _, ms := range []float64{sweep, mark} {
			d := time.Duration(ms * float64(time.Millisecond))
			g.stwSum += d
			g.stwMax = max(g.stwMax, d)
		}
	}
	return g, sc.Err()
}
