package detect

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestWrittenFormats covers the formats the README promises, one line per format as people
// write them across countries and tools; each must be found whole by its detector.
func TestWrittenFormats(t *testing.T) {
	for kind, list := range map[Kind][]string{
		Email: {"Mary-Jane.O'Neil@health.example.net", "ops@robots.example.com", "UPPER@EXAMPLE.ORG", "x_y.z-1@a1.b2.info", "test.user%2Bx%40example.com"},
		Phone: {
			"+1-202-555-0143", "+1.202.555.0143", "1 (202) 555-0143", "(202)555-0143", "202 555 0143", "+44 7700 900123",
			"07700 900 123", "+49 (0) 30 1234567", "0151 12345678", "+33 (0)1 23 45 67 89", "01 23 45 67 89",
			"+91-98765-43210", "+61 412 345 678", "0412 345 678", "(02) 9876 5432", "+55 11 91234-5678", "090-1234-5678",
			"+86 138 0013 8000", "+353 1 234 5678", "+7 (495) 123-45-67", "+34 612 34 56 78", "+39 06 1234 5678",
			"+31 20 123 4567", "+46 8 123 456 78", "0800 123 4567", "(+44) 20 7946 0958", "+44(0)20 7946 0958",
			"(+1) 202-555-0143",
		},
		IPv4: {"203.0.113.195", "192.168.001.010", "0.0.0.0"},
		IPv6: {"2001:db8:3333:4444:5555:6666:7777:8888", "2001:db8::", "2001:DB8:0:0:8:800:200C:417A", "::ffff:10.0.0.1", "2a02:1234:abcd::42"},
		CreditCard: {
			"4242424242424242", "4000 0566 5566 5556", "5555-5555-5555-4444", "2223 0031 2200 3222", "378282246310005",
			"3714 496353 98431", "6011 0009 9013 9424", "3566002020360505", "30569309025904", "6200000000000005",
		},
		IBAN: {
			"GB29 NWBK 6016 1331 9268 19", "FR76 3000 6000 0112 3456 7890 189", "ES91 2100 0418 4502 0005 1332",
			"IT60 X054 2811 1010 0000 0123 456", "CH93 0076 2011 6238 5295 7", "BE68539007547034", "AT611904300234573201",
			"NO9386011117947", "PL61109010140000071219812874", "SE4550000000058398257466",
			"DE89-3704-0044-0532-0130-00", "de89 3704 0044 0532 0130 00",
		},
		SSN:         {"078-05-1120", "219-09-9999", "457 55 5462", "987-65-4321"},
		BearerToken: {"glpat-xxxxxxxxxxxxxxxxxxxx", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"},
	} {
		for _, v := range list {
			for _, ctx := range writtenContexts {
				s := fmtCtx(ctx, v)
				assert.Equal(t, []string{v}, found(s, kind), "%s in %q", kind, s)
			}
		}
	}
}

func fmtCtx(ctx, v string) string {
	out := make([]byte, 0, len(ctx)+len(v))
	for i := 0; i < len(ctx); i++ {
		if ctx[i] == '%' && i+1 < len(ctx) && ctx[i+1] == 's' {
			out = append(out, v...)
			i++
			continue
		}
		out = append(out, ctx[i])
	}
	return string(out)
}

// writtenContexts are the places a value sits in real records: prose, logfmt, JSON, CSV,
// brackets, quotes, end of sentence, tabs and new lines.
var writtenContexts = []string{
	"%s", "x %s y", "v=%s;", "(%s)", `"%s"`, `{"k":"%s"}`, "a,%s,b", "see %s.", "<%s>", "[%s]",
	"k: %s\n", "\t%s\t", "?q=%s&r=1", "'%s'", "id %s, next",
}
