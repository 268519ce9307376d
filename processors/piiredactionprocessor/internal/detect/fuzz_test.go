package detect

import (
	"strings"
	"testing"
)

// FuzzScanAll runs every detector together: matches stay in bounds, sorted and disjoint, and
// masking them leaves nothing that the detectors find again.
func FuzzScanAll(f *testing.F) {
	for _, s := range []string{
		"user jane@example.com +1 (555) 123-4567 10.0.0.1 fe80::1 4111 1111 1111 1111",
		"DE89 3704 0044 0532 0130 00 ssn 123-45-6789 eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"Bearer abcdef123456 https://u:p@h/x?token=t lat=1.5 (+44) 20 7946 0958",
		"2025-12-17T10:30:00Z 07556481-8041-40c3-afd8-74609b252650 version 1.2.3.4",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms := Scan(s, All, nil)
		found := map[string]bool{}
		var b strings.Builder
		last := 0
		for _, m := range ms {
			if m.Start < last || m.End <= m.Start || m.End > len(s) {
				t.Fatalf("bad match %+v after %d in %q", m, last, s)
			}
			b.WriteString(s[last:m.Start])
			b.WriteString("****")
			last = m.End
			found[s[m.Start:m.End]] = true
		}
		b.WriteString(s[last:])
		out := b.String()
		for _, m := range Scan(out, All, nil) {
			if v := out[m.Start:m.End]; found[v] && strings.Count(s, v) == 1 {
				t.Fatalf("%q found again in %q (input %q)", v, out, s)
			}
		}
	})
}
