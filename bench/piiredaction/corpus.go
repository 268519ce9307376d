// Package piiredaction compares the piiredaction processor with contrib's redaction processor
// on one deterministic, labelled corpus of robot-fleet and PLC log records.
package piiredaction // import "github.com/fieldcol/fieldcol/bench/piiredaction"

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"

	"go.opentelemetry.io/collector/pdata/plog"
)

// Record is one generated log record and what a redactor must do with it.
type Record struct {
	Body  string
	Attrs map[string]string
	// PII are the personal values in the record: none may survive redaction.
	PII []string
	// Keep are near misses (dates, UUIDs, trace ids, versions, numbers failing Luhn ...):
	// each must survive unchanged.
	Keep []string
}

// Corpus generates n records from seed; the same arguments always give the same records.
func Corpus(n int, seed uint64) []Record {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	out := make([]Record, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, g.record(i))
	}
	return out
}

// Logs packs records into plog.Logs batches of batchSize records, as a pipeline would see them.
func Logs(records []Record, batchSize int) []plog.Logs {
	var out []plog.Logs
	for start := 0; start < len(records); start += batchSize {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", "fleet-tvm")
		rl.Resource().Attributes().PutStr("device.id", "pi-07")
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		for _, rec := range records[start:min(start+batchSize, len(records))] {
			lr := lrs.AppendEmpty()
			lr.Body().SetStr(rec.Body)
			for k, v := range rec.Attrs {
				lr.Attributes().PutStr(k, v)
			}
		}
		out = append(out, ld)
	}
	return out
}

type gen struct {
	r *rand.Rand
}

func (g *gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g *gen) digits(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteByte(byte('0' + g.r.IntN(10)))
	}
	return b.String()
}

var (
	firstNames = []string{"hanako", "taro", "maria", "john", "li", "fatima", "olivier", "sven", "aiko", "carlos", "noura", "peter"}
	lastNames  = []string{"yamada", "suzuki", "garcia", "smith", "wang", "khan", "dubois", "larsen", "tanaka", "silva", "haddad", "novak"}
	domains    = []string{"example.com", "mail.example.org", "care-home.jp", "fleet.example.co.uk", "kliniken.example.de", "example.travel"}
)

func (g *gen) email() string {
	f, l := g.pick(firstNames...), g.pick(lastNames...)
	switch g.r.IntN(4) {
	case 0:
		return f + "." + l + "@" + g.pick(domains...)
	case 1:
		return strings.ToUpper(f[:1]) + f[1:] + "." + strings.ToUpper(l[:1]) + l[1:] + "@" + g.pick(domains...)
	case 2:
		return f + "+" + g.pick("alerts", "robot", "night") + "@" + g.pick(domains...)
	default:
		return f[:1] + l + g.digits(2) + "@" + g.pick(domains...)
	}
}

func (g *gen) phone() string {
	switch g.r.IntN(8) {
	case 0:
		return "+1 (555) 01" + g.digits(1) + "-" + g.digits(4)
	case 1:
		return "+44 20 7946 " + g.digits(4)
	case 2:
		return "+49 30 " + g.digits(7)
	case 3:
		return "020 7946 " + g.digits(4)
	case 4:
		return "(555) 01" + g.digits(1) + "-" + g.digits(4)
	case 5:
		return "555-01" + g.digits(1) + "-" + g.digits(4)
	case 6:
		return "+81 3-" + g.digits(4) + "-" + g.digits(4)
	default:
		return "06 " + g.digits(2) + " " + g.digits(2) + " " + g.digits(2) + " " + g.digits(2)
	}
}

func luhnDigit(payload string) byte {
	sum := 0
	double := true
	for i := len(payload) - 1; i >= 0; i-- {
		d := int(payload[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

// card returns a Luhn-valid number and a Luhn-failing one of the same shape.
func (g *gen) card() (valid, invalid string) {
	var payload string
	var groups []int
	switch g.r.IntN(4) {
	case 0:
		payload, groups = "4"+g.digits(14), []int{4, 4, 4, 4}
	case 1:
		payload, groups = "5"+string(byte('1'+g.r.IntN(5)))+g.digits(13), []int{4, 4, 4, 4}
	case 2:
		payload, groups = "3"+g.pick("4", "7")+g.digits(12), []int{4, 6, 5}
	default:
		payload, groups = "6011"+g.digits(11), []int{4, 4, 4, 4}
	}
	c := luhnDigit(payload)
	valid = payload + string(c)
	invalid = payload + string('0'+(c-'0'+1+byte(g.r.IntN(8)))%10)
	sep := g.pick("", " ", "-")
	return group(valid, groups, sep), group(invalid, groups, sep)
}

func group(s string, groups []int, sep string) string {
	if sep == "" {
		return s
	}
	var parts []string
	for _, n := range groups {
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return strings.Join(parts, sep)
}

func mod97(s string) int {
	r := 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			r = (r*10 + int(c-'0')) % 97
		default:
			r = (r*100 + int(c-'A'+10)) % 97
		}
	}
	return r
}

func (g *gen) iban() string {
	var cc, bban string
	switch g.r.IntN(4) {
	case 0:
		cc, bban = "DE", g.digits(18)
	case 1:
		cc, bban = "GB", g.pick("WEST", "NWBK", "BARC")+g.digits(14)
	case 2:
		cc, bban = "FR", g.digits(23)
	default:
		cc, bban = "NL", g.pick("ABNA", "INGB", "RABO")+g.digits(10)
	}
	check := 98 - mod97(bban+cc+"00")
	iban := fmt.Sprintf("%s%02d%s", cc, check, bban)
	if g.r.IntN(2) == 0 {
		return iban
	}
	var parts []string
	for len(iban) > 4 {
		parts = append(parts, iban[:4])
		iban = iban[4:]
	}
	return strings.Join(append(parts, iban), " ")
}

func (g *gen) ssn() string {
	area := 1 + g.r.IntN(665)
	return fmt.Sprintf("%03d-%02d-%04d", area, 1+g.r.IntN(99), 1+g.r.IntN(9999))
}

func (g *gen) ipv4() string {
	return fmt.Sprintf("%d.%d.%d.%d", g.pick4(), g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
}

func (g *gen) pick4() int { return []int{10, 172, 192, 81, 203, 45}[g.r.IntN(6)] }

func (g *gen) ipv6() string {
	return fmt.Sprintf("2001:db8:%x:%x::%x", g.r.IntN(0xffff), g.r.IntN(0xffff), 1+g.r.IntN(0xfffe))
}

func (g *gen) b64(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.IntN(256))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (g *gen) jwt() string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	p := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"%s","exp":%d}`, g.digits(6), 1766000000+g.r.IntN(100000))))
	return h + "." + p + "." + g.b64(32)
}

func (g *gen) hex(n int) string {
	const h = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = h[g.r.IntN(16)]
	}
	return string(b)
}

func (g *gen) uuid() string {
	x := g.hex(32)
	return x[:8] + "-" + x[8:12] + "-4" + x[13:16] + "-a" + x[17:20] + "-" + x[20:]
}

func (g *gen) isoTime() string {
	return fmt.Sprintf("2025-12-%02dT%02d:%02d:%02d.%03dZ", 1+g.r.IntN(28), g.r.IntN(24), g.r.IntN(60), g.r.IntN(60), g.r.IntN(1000))
}

func (g *gen) version4() string {
	return fmt.Sprintf("%d.%d.%d.%d", 1+g.r.IntN(9), g.r.IntN(20), g.r.IntN(10), g.r.IntN(200))
}

func (g *gen) coord(limit float64) string {
	return fmt.Sprintf("%.5f", (g.r.Float64()*2-1)*limit)
}

func (g *gen) record(i int) Record {
	ts := g.isoTime()
	vehicle := fmt.Sprintf("V%d", 1+g.r.IntN(40))
	mission := fmt.Sprintf("M-2025-%05d", g.r.IntN(100000))
	traceID := g.hex(32)
	rec := Record{Attrs: map[string]string{"trace_id": traceID, "vehicle.id": vehicle}, Keep: []string{ts, traceID}}
	switch i % 16 {
	case 0:
		e := g.email()
		rec.Body = fmt.Sprintf("%s INFO mission %s assigned to vehicle %s for user %s", ts, mission, vehicle, e)
		rec.PII = append(rec.PII, e)
		rec.Keep = append(rec.Keep, mission)
	case 1:
		e, ip := g.email(), g.ipv4()
		n := g.digits(3)
		rec.Body = fmt.Sprintf("%s WARN login failed for %s from %s attempt %s", ts, e, ip, n)
		rec.PII = append(rec.PII, e, ip)
	case 2:
		p, e := g.phone(), g.email()
		rec.Body = fmt.Sprintf("%s INFO resident contact %s, escalation to %s", ts, p, e)
		rec.Attrs["resident_name"] = strings.ToUpper(g.pick(firstNames...)[:1]) + " " + g.pick(lastNames...)
		rec.PII = append(rec.PII, p, e, rec.Attrs["resident_name"])
	case 3:
		valid, invalid := g.card()
		rec.Body = fmt.Sprintf("%s INFO payment card %s charged 12.50 EUR, order %s", ts, valid, invalid)
		rec.PII = append(rec.PII, valid)
		rec.Keep = append(rec.Keep, invalid)
	case 4:
		iban := g.iban()
		ref := g.digits(12)
		rec.Body = fmt.Sprintf("%s INFO refund to IBAN %s ref %s", ts, iban, ref)
		rec.PII = append(rec.PII, iban)
		rec.Keep = append(rec.Keep, ref)
	case 5:
		tok := g.b64(24)
		d := g.digits(3)
		rec.Body = fmt.Sprintf(`%s INFO "GET /api/missions?access_token=%s&page=2 HTTP/1.1" 200 %sms`, ts, tok, d)
		rec.PII = append(rec.PII, tok)
	case 6:
		tok := g.b64(30)
		rec.Body = fmt.Sprintf("%s DEBUG upstream request headers: Authorization: Bearer %s", ts, tok)
		rec.PII = append(rec.PII, tok)
	case 7:
		user, pass := g.pick("fleet", "tvm", "robot"), g.b64(9)
		rec.Body = fmt.Sprintf("%s INFO db connect postgres://%s:%s@db.internal:5432/fleet", ts, user, pass)
		rec.PII = append(rec.PII, pass)
		rec.Keep = append(rec.Keep, "db.internal:5432/fleet")
	case 8:
		lat, lon := g.coord(80), g.coord(170)
		b := g.digits(2)
		rec.Body = fmt.Sprintf("%s INFO vehicle %s at lat=%s lon=%s battery %s%%", ts, vehicle, lat, lon, b)
		rec.PII = append(rec.PII, lat, lon)
	case 9:
		ip6, v := g.ipv6(), g.version4()
		rec.Body = fmt.Sprintf("%s INFO peer %s connected, firmware version %s", ts, ip6, v)
		rec.PII = append(rec.PII, ip6)
		rec.Keep = append(rec.Keep, v)
	case 10:
		s := g.ssn()
		claim := fmt.Sprintf("CLM-%s", g.digits(8))
		rec.Body = fmt.Sprintf("%s INFO ssn %s verified for claim %s", ts, s, claim)
		rec.PII = append(rec.PII, s)
		rec.Keep = append(rec.Keep, claim)
	case 11:
		u, span := g.uuid(), g.hex(16)
		day := ts[:10]
		rec.Body = fmt.Sprintf("%s INFO trace %s span %s request %s on %s", ts, traceID, span, u, day)
		rec.Keep = append(rec.Keep, span, u, day)
	case 12:
		n, d := g.digits(6), fmt.Sprintf("%d.%d", g.r.IntN(10), g.r.IntN(10))
		rec.Body = fmt.Sprintf("%s INFO controlloop heater-1 cycle %s took %sms setpoint=65.0 pv=64.8 duty=0.41", ts, n, d)
		rec.Keep = append(rec.Keep, "cycle "+n)
	case 13:
		j := g.jwt()
		rec.Body = fmt.Sprintf("%s WARN session %s expired for %s", ts, j, vehicle)
		rec.PII = append(rec.PII, j)
	case 14:
		p := g.phone()
		bytes := g.digits(9)
		rec.Body = fmt.Sprintf("%s INFO sms to %s queued; payload %s bytes", ts, p, bytes)
		rec.PII = append(rec.PII, p)
		rec.Keep = append(rec.Keep, bytes)
	default:
		e := g.email()
		rec.Attrs["user.email"] = e
		rec.Attrs["client.address"] = g.ipv4()
		rec.Body = fmt.Sprintf("%s INFO mission %s completed by %s in %ss, software %d.%d.%d", ts, mission, vehicle, g.digits(3), g.r.IntN(5), g.r.IntN(20), g.r.IntN(30))
		rec.PII = append(rec.PII, e, rec.Attrs["client.address"])
		rec.Keep = append(rec.Keep, mission)
	}
	return rec
}
