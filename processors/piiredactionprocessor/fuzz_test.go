package piiredactionprocessor

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/processors/piiredactionprocessor/internal/detect"
)

// fuzzDetector checks one detector on its own: no panic, sane match ranges, and the masked
// output neither contains a value the detector found nor lets the detector find it again.
func fuzzDetector(f *testing.F, kind detect.Kind, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	cfg := createDefaultConfig().(*Config)
	cfg.Detectors = DetectorsConfig{}
	list := cfg.detectorList()
	rules := []*RuleConfig{
		&cfg.Detectors.Email, &cfg.Detectors.Phone, &cfg.Detectors.IPv4, &cfg.Detectors.IPv6,
		&cfg.Detectors.CreditCard, &cfg.Detectors.IBAN, &cfg.Detectors.SSN, &cfg.Detectors.JWT,
		&cfg.Detectors.BearerToken, &cfg.Detectors.Credentials, &cfg.Detectors.Geo, &cfg.Detectors.Person,
	}
	require.Equal(f, kind.String(), list[kind].name)
	*rules[kind] = RuleConfig{Enabled: true, Action: ActionMask}
	rs, err := compileRules(cfg)
	require.NoError(f, err)

	f.Fuzz(func(t *testing.T, s string) {
		w := newWalker(rs)
		ms := detect.Scan(s, rs.scan, nil)
		found := map[string]bool{}
		last := 0
		for _, m := range ms {
			require.Equal(t, kind, m.Kind)
			require.LessOrEqual(t, last, m.Start)
			require.Less(t, m.Start, m.End)
			require.LessOrEqual(t, m.End, len(s))
			last = m.End
			found[s[m.Start:m.End]] = true
		}
		out, v := w.text(s)
		if v != verdictChanged {
			require.Empty(t, ms)
			return
		}
		for _, m := range detect.Scan(out, rs.scan, nil) {
			require.False(t, found[out[m.Start:m.End]], "found again after masking: %q", out[m.Start:m.End])
		}
	})
}

func FuzzEmail(f *testing.F) {
	fuzzDetector(f, detect.Email, "mail john.doe@example.com now", "a@b.co,c@d.io", "o'brien@example.ie", "x@[10.0.0.1]", "@@a.b", "git@github")
}

func FuzzPhone(f *testing.F) {
	fuzzDetector(f, detect.Phone, "+1 (555) 123-4567", "+44 (0)20 7946 0958", "020 7946 0958", "tel 5551234567", "2025-12-17 10:30:00", "0.123456789", "((((1")
}

func FuzzIPv4(f *testing.F) {
	fuzzDetector(f, detect.IPv4, "client 10.0.0.1:80", "version 1.2.3.4", "256.1.1.1", "1.2.3.4.5", "10.0.0.0/8")
}

func FuzzIPv6(f *testing.F) {
	fuzzDetector(f, detect.IPv6, "2001:db8::1", "fe80::1%eth0", "::ffff:192.0.2.1", "10:30:00", "std::vector", ":::::")
}

func FuzzCreditCard(f *testing.F) {
	fuzzDetector(f, detect.CreditCard, "4111 1111 1111 1111", "4111111111111112", "3782 822463 10005", "5500-0000-0000-0004")
}

func FuzzIBAN(f *testing.F) {
	fuzzDetector(f, detect.IBAN, "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "de89370400440532013000", "DE89370400440532013001")
}

func FuzzSSN(f *testing.F) {
	fuzzDetector(f, detect.SSN, "ssn 123-45-6789", "SSN: 123456789", "000-12-3456", "2025-12-17")
}

func FuzzJWT(f *testing.F) {
	fuzzDetector(f, detect.JWT, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "eyJ.eyJ.", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
}

func FuzzBearerToken(f *testing.F) {
	fuzzDetector(f, detect.BearerToken, "Bearer abc123def456", "basic dXNlcjpwYXNz", "ghp_0123456789abcdefghijABCDEFGHIJ", "AKIAIOSFODNN7EXAMPLE")
}

func FuzzCredentials(f *testing.F) {
	fuzzDetector(f, detect.Credentials, "postgres://app:pw@db/x", "?access_token=abc&x=1", `{"password":"p w"}`, `{\"secret\":\"s\"}`, "Authorization: Basic xyz")
}

func FuzzGeo(f *testing.F) {
	fuzzDetector(f, detect.Geo, "lat=35.6 lon=139.7", `{"latitude": -33.8}`, "flat=3")
}

func FuzzPerson(f *testing.F) {
	fuzzDetector(f, detect.Person, `{"full_name":"Jane Doe"}`, "customer_name=Jane", `"billing_address": "1 Main St"`, "service.name=x")
}
