package detect

import "testing"

var benchLines = map[string]string{
	"clean":  "2025-12-17T10:30:00.123Z INFO controlloop heater-1 cycle 48213 took 3.2ms setpoint=65.0 pv=64.8 duty=0.41 trace 4bf92f3577b34da6a3ce929d0e0e4736 version 1.4.2.0",
	"email":  "2025-12-17T10:30:00.123Z WARN login failed for hanako.yamada@care-home.jp from 203.0.113.7 attempt 3",
	"phone":  "2025-12-17T10:30:00.123Z INFO resident contact +44 20 7946 0958, escalation to (555) 010-4477",
	"card":   "2025-12-17T10:30:00.123Z INFO payment card 4111 1111 1111 1111 charged, order 4111 1111 1111 1112",
	"secret": "2025-12-17T10:30:00.123Z DEBUG GET /api?access_token=abcDEF123&page=2 Authorization: Bearer abcdef123456",
}

func BenchmarkScan(b *testing.B) {
	for name, line := range benchLines {
		b.Run(name, func(b *testing.B) {
			dst := make([]Match, 0, 8)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				dst = Scan(line, All, dst[:0])
			}
		})
	}
}
