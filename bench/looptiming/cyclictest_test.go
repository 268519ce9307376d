package looptiming

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// cyclictestArgs runs one measuring thread for d/period cycles (at least one) of period,
// printing every wake-up's lateness in ns (-v -N). priority > 0 is SCHED_FIFO at that
// priority with memory locked, as `realtime: true` does for the loop; 0 is SCHED_OTHER.
//
// Why -v and not -h/--histfile: with a histogram, cyclictest 2.4 raises a SCHED_OTHER
// thread to SCHED_FIFO priority 2 ("defaulting realtime priority to 2"), which would
// measure the wrong policy; -v gives every sample of either policy. -l and not -D: a run
// that -D ends leaves its last samples unprinted (3 of 1,140 on this loaded machine).
// --default-system leaves /dev/cpu_dma_latency alone: the loop runs on the system as
// shipped, and a setting that cyclictest made would change it for the loop too. -d 0: the
// default 500 µs "distance" lengthens even a single thread's interval.
func cyclictestArgs(period, d time.Duration, priority int) []string {
	args := []string{"-q", "--default-system", "-t1", "-d0", "-v", "-N",
		"-i", strconv.FormatInt(period.Microseconds(), 10), "-l", strconv.FormatInt(cycles(period, d), 10)}
	if priority > 0 {
		return append(args, "--policy=fifo", "-p", strconv.Itoa(priority), "-m")
	}
	return append(args, "--policy=other")
}

// cycles is how many periods fit in d, at least one.
func cycles(period, d time.Duration) int64 { return max(1, int64(d/period)) }

// runCyclictest runs cyclictest with args and returns its figures.
func runCyclictest(ctx context.Context, path string, args []string) (figures, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return figures{}, fmt.Errorf("cyclictest %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	f, err := parseVerbose(stdout.Bytes())
	if err != nil {
		return figures{}, fmt.Errorf("cyclictest %s: %w", strings.Join(args, " "), err)
	}
	return f, nil
}

var (
	// "       0:     117:   52318": thread, cycle, lateness (ns with -N).
	verboseLine = regexp.MustCompile(`^\s*(\d+):\s*(\d+):\s*(\d+)\s*$`)
	// "T: 0 (15721) P: 0 I:50000 C:      5 Min:  92482 Act:  107305 Avg:  101974 Max:  107305"
	summaryLine = regexp.MustCompile(`^T:\s*\d+\s.*\sC:\s*(\d+)\s.*\sMax:\s*(\d+)\s*$`)
)

// parseVerbose reads the output of cyclictest -q -v -N: p50 and p99 from the printed
// samples, the count and max from its summary line. One sample may be counted in the
// summary but not printed (the last, when the run ends under load); more missing, or a
// printed one above the summary's max, mean the output is not what this parser knows, an
// error rather than a wrong figure.
func parseVerbose(out []byte) (figures, error) {
	var samples []int64
	count, maxNs := int64(-1), int64(-1)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := verboseLine.FindStringSubmatch(line); m != nil {
			v, err := strconv.ParseInt(m[3], 10, 64)
			if err != nil {
				return figures{}, fmt.Errorf("sample %q: %w", line, err)
			}
			samples = append(samples, v)
			continue
		}
		if m := summaryLine.FindStringSubmatch(line); m != nil {
			count, _ = strconv.ParseInt(m[1], 10, 64)
			maxNs, _ = strconv.ParseInt(m[2], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return figures{}, err
	}
	if count < 0 {
		return figures{}, fmt.Errorf("no summary line (T: ... C: ... Max: ...) in %d bytes of output", len(out))
	}
	if n := int64(len(samples)); n != count && n != count-1 {
		return figures{}, fmt.Errorf("%d samples printed, the summary counts %d", n, count)
	}
	if len(samples) == 0 {
		return figures{}, fmt.Errorf("no sample printed (the summary counts %d)", count)
	}
	f := stats(samples)
	if f.max > maxNs {
		return figures{}, fmt.Errorf("a sample of %d ns, the summary's max is %d ns", f.max, maxNs)
	}
	f.n, f.max = count, maxNs
	return f, nil
}
