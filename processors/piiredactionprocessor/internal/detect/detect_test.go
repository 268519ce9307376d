package detect

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// found returns the matched texts of kind k in s, with every detector on.
func found(s string, k Kind) []string {
	var out []string
	for _, m := range Scan(s, All, nil) {
		if m.Kind == k {
			out = append(out, s[m.Start:m.End])
		}
	}
	return out
}

type detectorCase struct {
	in   string
	want []string // the matches of the detector under test; nil for a near miss
}

func runCases(t *testing.T, k Kind, cases []detectorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			assert.Equal(t, tc.want, found(tc.in, k))
			if tc.want == nil {
				assert.Empty(t, Scan(tc.in, All, nil), "a near miss must not be matched by any detector")
			}
		})
	}
}

func TestEmail(t *testing.T) {
	runCases(t, Email, []detectorCase{
		{"user john.doe@example.com logged in", []string{"john.doe@example.com"}},
		{"to=Jane.Roe+alerts@Mail.Example.CO.UK;", []string{"Jane.Roe+alerts@Mail.Example.CO.UK"}},
		{"<o'brien@example.ie>", []string{"o'brien@example.ie"}},
		{"'quoted@example.org'", []string{"quoted@example.org"}},
		{"josé.garcía@correo.es", []string{"josé.garcía@correo.es"}},
		{"a_b-c%d@sub-domain.example.travel.", []string{"a_b-c%d@sub-domain.example.travel"}},
		{"two: a@x.io,b@y.io", []string{"a@x.io", "b@y.io"}},
		{"/cb?email=jane.roe%40example.com&x=1", []string{"jane.roe%40example.com"}},
		{"literal admin@[192.168.1.10]", []string{"admin@[192.168.1.10]"}},
		{"punycode u@xn--bcher-kva.xn--p1ai", []string{"u@xn--bcher-kva.xn--p1ai"}},
		{"decorator @Override and user@localhost", nil},
		{"git@github", nil},
		{"price 5@3.50", nil},
		{"handle @robot_fleet", nil},
		{"a@b.c", nil},
	})
}

func TestPhone(t *testing.T) {
	runCases(t, Phone, []detectorCase{
		{"call +1 (555) 123-4567 now", []string{"+1 (555) 123-4567"}},
		{"tel:+15551234567", []string{"+15551234567"}},
		{"+44 20 7946 0958", []string{"+44 20 7946 0958"}},
		{"+44 (0)20 7946 0958", []string{"+44 (0)20 7946 0958"}},
		{"+49-30-901820", []string{"+49-30-901820"}},
		{"+33 6 12 34 56 78", []string{"+33 6 12 34 56 78"}},
		{"+81.3.1234.5678", []string{"+81.3.1234.5678"}},
		{"0049 30 901820", []string{"0049 30 901820"}},
		{"00687 20.12.34", []string{"00687 20.12.34"}},
		{"(555) 123-4567", []string{"(555) 123-4567"}},
		{"555-123-4567", []string{"555-123-4567"}},
		{"123-456-7890", []string{"123-456-7890"}},
		{"phone 1234567890", []string{"1234567890"}},
		{"555.123.4567", []string{"555.123.4567"}},
		{"1-555-123-4567", []string{"1-555-123-4567"}},
		{"phone=5551234567", []string{"5551234567"}},
		{"020 7946 0958", []string{"020 7946 0958"}},
		{"06 12 34 56 78", []string{"06 12 34 56 78"}},
		{"03-1234-5678", []string{"03-1234-5678"}},
		{"0171/1234567", []string{"0171/1234567"}},
		{"(030) 12345678", []string{"(030) 12345678"}},
		{"(11) 91234-5678", []string{"(11) 91234-5678"}},
		{"138 0013 8000", []string{"138 0013 8000"}},
		{"98765 43210", []string{"98765 43210"}},
		{"Tel. 612 34 56 78", []string{"612 34 56 78"}},
		{"mobile 2025-12-17 0612345678", []string{"0612345678"}},
		{"tel 07700900123", []string{"07700900123"}},
		{"ref 064068139095", nil},
		{"invoice 0012345678", nil},
		{"a 555-123-4567 555-987-6543 b", []string{"555-123-4567", "555-987-6543"}},
		{"list 555-123-4567,555-987-6543", []string{"555-123-4567", "555-987-6543"}},
		{"ts 2025-12-17T10:30:00Z", nil},
		{"date 17.12.2025 10:30", nil},
		{"01.12.2025", nil},
		{"epoch 1766000000 seconds", nil},
		{"bytes=2147483648", nil},
		{"ratio 0.123456789", nil},
		{"took 1234567890ns", nil},
		{"total 1,234,567,890", nil},
		{"range 1000-2000-3000", nil},
		{"id 0000012345", nil},
		{"pid 12345 port 8080", nil},
	})
}

func TestIPv4(t *testing.T) {
	runCases(t, IPv4, []detectorCase{
		{"client 192.168.1.20 connected", []string{"192.168.1.20"}},
		{"addr=10.0.0.1:8080", []string{"10.0.0.1"}},
		{"net 10.0.0.0/8", []string{"10.0.0.0"}},
		{"[172.16.254.1]", []string{"172.16.254.1"}},
		{"(198.51.100.7)", []string{"198.51.100.7"}},
		{"from 8.8.8.8, 1.1.1.1", []string{"8.8.8.8", "1.1.1.1"}},
		{"pool 10.0.0.1-10.0.0.9", []string{"10.0.0.1", "10.0.0.9"}},
		{"hosts=10.0.0.1,192.168.0.1", []string{"10.0.0.1", "192.168.0.1"}},
		{"version 1.2.3.4", nil},
		{"fw=10.0.0.1", nil},
		{"v1.2.3.4", nil},
		{"ver 1.2.3.4", nil},
		{"app 1.2.3.4.5", nil},
		{"out of range 256.1.1.1", nil},
		{"oid 1.3.6.1.4.1.2021", nil},
		{"semver 2.14.0", nil},
	})
}

func TestIPv6(t *testing.T) {
	runCases(t, IPv6, []detectorCase{
		{"peer 2001:db8::8a2e:370:7334 up", []string{"2001:db8::8a2e:370:7334"}},
		{"2001:0db8:85a3:0000:0000:8a2e:0370:7334", []string{"2001:0db8:85a3:0000:0000:8a2e:0370:7334"}},
		{"link fe80::1%eth0", []string{"fe80::1"}},
		{"[2001:db8::1]:443", []string{"2001:db8::1"}},
		{"mapped ::ffff:192.0.2.128", []string{"::ffff:192.0.2.128"}},
		{"lo ::1.", []string{"::1"}},
		{"FE80::ABCD:1", []string{"FE80::ABCD:1"}},
		{"at 10:30:00", nil},
		{"mac 00:1a:2b:3c:4d:5e", nil},
		{"std::vector and Foo::Bar", nil},
		{"a :: b", nil},
		{"1:2:3:4:5:6:7:8:9", nil},
	})
}

func TestCreditCard(t *testing.T) {
	runCases(t, CreditCard, []detectorCase{
		{"card 4111111111111111 ok", []string{"4111111111111111"}},
		{"4111 1111 1111 1111", []string{"4111 1111 1111 1111"}},
		{"5500-0000-0000-0004", []string{"5500-0000-0000-0004"}},
		{"4111-1111 1111-1111", []string{"4111-1111 1111-1111"}},
		{"amex 3782 822463 10005", []string{"3782 822463 10005"}},
		{"6011111111111117", []string{"6011111111111117"}},
		{"2223000048400011", []string{"2223000048400011"}},
		{"luhn fails 4111111111111112", nil},
		{"4111 1111 1111 1112", nil},
		{"order 4280 0679 5805 0233", nil},
		{"order 1234567812345670", nil},
		{"span 3115712189765056", nil},
		{"uuid 07556481-8041-40c3-afd8-74609b252650", nil},
		{"uuid 07556481-8041-c0c3-afd8-74609b252650", nil},
		{"trace 4bf92f3577b34da6a3ce929d0e0e4736", nil},
		{"uuid 12345678-1234-1234-1234-123456789012", nil},
	})
}

func TestIBAN(t *testing.T) {
	runCases(t, IBAN, []detectorCase{
		{"iban DE89370400440532013000", []string{"DE89370400440532013000"}},
		{"DE89 3704 0044 0532 0130 00 paid", []string{"DE89 3704 0044 0532 0130 00"}},
		{"GB82 WEST 1234 5698 7654 32", []string{"GB82 WEST 1234 5698 7654 32"}},
		{"fr1420041010050500013m02606", []string{"fr1420041010050500013m02606"}},
		{"NL91ABNA0417164300", []string{"NL91ABNA0417164300"}},
		{"check DE89370400440532013001", nil},
		{"AB12CDEF34567890123", nil},
		{"de12345678901234567890123456789012", nil},
	})
}

func TestSSN(t *testing.T) {
	runCases(t, SSN, []detectorCase{
		{"ssn 123-45-6789", []string{"123-45-6789"}},
		{"078 05 1120", []string{"078 05 1120"}},
		{"SSN: 123456789", []string{"123456789"}},
		{"000-12-3456", nil},
		{"123-00-4567", nil},
		{"bytes=123456789", nil},
		{"2025-12-17", nil},
	})
}

func TestTokens(t *testing.T) {
	jwt := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	runCases(t, JWT, []detectorCase{
		{"token " + jwt + " end", []string{jwt}},
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", []string{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}},
		{"eyJ is a prefix", nil},
	})
	runCases(t, BearerToken, []detectorCase{
		{"Authorization Bearer abc123def456", []string{"abc123def456"}},
		{"basic dXNlcjpwYXNzd29yZA==", []string{"dXNlcjpwYXNzd29yZA=="}},
		{"ghp_0123456789abcdefghijABCDEFGHIJ012345", []string{"ghp_0123456789abcdefghijABCDEFGHIJ012345"}},
		{"key AKIAIOSFODNN7EXAMPLE", []string{"AKIAIOSFODNN7EXAMPLE"}},
		{"xoxb-123456789012-abcdefABCDEF", []string{"xoxb-123456789012-abcdefABCDEF"}},
		{"api Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", []string{"9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"}},
		{"basic configuration loaded", nil},
		{"token refresh failed", nil},
		{"bearer of news", nil},
	})
}

func TestCredentials(t *testing.T) {
	runCases(t, Credentials, []detectorCase{
		{"postgres://app:s3cret@db.internal:5432/x", []string{"app:s3cret"}},
		{"GET /cb?code=1&access_token=abc.def&x=1", []string{"abc.def"}},
		{"password=hunter2 user=bob", []string{"hunter2"}},
		{`{"password":"hunter 2","user":"bob"}`, []string{"hunter 2"}},
		{`{\"client_secret\":\"s3\"}`, []string{"s3"}},
		{"api_key: AbC123", []string{"AbC123"}},
		{"X-Api-Key=zzz", []string{"zzz"}},
		{"max_tokens=100 tokenizer=bpe password=****", nil},
		{"summary email=2,phone=1", nil},
		{"https://example.com/path?q=1", nil},
	})
}

func TestGeo(t *testing.T) {
	runCases(t, Geo, []detectorCase{
		{"lat=35.6895 lon=139.6917", []string{"35.6895", "139.6917"}},
		{`{"latitude": -33.86, "longitude": 151.21}`, []string{"-33.86", "151.21"}},
		{"gps.lng=2.35", []string{"2.35"}},
		{"flat=3 salon=1 format=json", nil},
	})
}

func TestKeyKind(t *testing.T) {
	for key, want := range map[string]Kind{
		"password": Credentials, "db.password": Credentials, "X-Auth-Token": Credentials,
		"http.request.header.authorization": Credentials, "apiKey": Credentials,
		"latitude": Geo, "vehicle_longitude": Geo, "geo.lat": Geo, "homeLng": Geo, "position.long": Geo,
		"user.email": Email, "contactEmail": Email, "phone": Phone, "user.phone_number": Phone, "ssn": SSN,
		"payment.card_number": CreditCard, "iban": IBAN, "aws_secret_key": Credentials, "user.mobile": Phone,
		"tel": Phone, "userEmail": Email,
	} {
		k, ok := KeyKind(key)
		assert.True(t, ok, key)
		assert.Equal(t, want, k, key)
	}
	for _, key := range []string{"flat", "salon", "format", "max_tokens", "user", "tokens", "service.name", "pin", "belong", "gmail", "microphone", "headphone_level", "hotel", "cache_key", "automobile"} {
		_, ok := KeyKind(key)
		assert.False(t, ok, key)
	}
}

func TestNearMissesStayUntouched(t *testing.T) {
	for _, s := range []string{
		"2025-12-17T10:30:00.123Z", "17/12/2025", "12/17/2025 10:30:00",
		"550e8400-e29b-41d4-a716-446655440000", "00000000-0000-0000-0000-000000000000",
		"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"version 10.0.19041.1", "go1.26.8", "Chrome/120.0.6099.109", "sha256:9f86d081884c7d659a2feaa0c55ad015",
		"temperature 21.5 setpoint 22.0", "duration_ms=1234", "bytes=734003200", "cycle 987654 overrun",
		"GPIO17 pin=17 level=1", "loop heater-1 duty 0.375", "4111111111111112",
	} {
		assert.Empty(t, Scan(s, All, nil), s)
	}
}

func TestVersionKey(t *testing.T) {
	for _, k := range []string{"service.version", "app_version", "fw_ver", "FirmwareVersion", "ver"} {
		assert.True(t, VersionKey(k), k)
	}
	for _, k := range []string{"client.address", "server", "driver"} {
		assert.False(t, VersionKey(k), k)
	}
}

func TestNormalizeMergesOverlaps(t *testing.T) {
	ms := []Match{{Start: 5, End: 9, Kind: Phone}, {Start: 0, End: 6, Kind: Email}, {Start: 20, End: 22, Kind: IPv4}, {Start: 8, End: 12, Kind: JWT}}
	got := Normalize(ms, 0)
	require.Len(t, got, 2)
	assert.Equal(t, Match{Start: 0, End: 12, Kind: Email}, got[0])
	assert.Equal(t, Match{Start: 20, End: 22, Kind: IPv4}, got[1])
}

func TestScanDoesNotAllocateWithoutMatches(t *testing.T) {
	s := "2025-12-17T10:30:00Z INFO controlloop heater-1 cycle 48213 took 3.2ms setpoint=65.0 pv=64.8 duty=0.41 status=ok host=pi-07 version 1.4.2"
	dst := make([]Match, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		dst = Scan(s, All, dst[:0])
	})
	assert.Zero(t, allocs)
	assert.Empty(t, dst)
}

func TestCanonical(t *testing.T) {
	assert.Equal(t, "john.doe@example.com", string(Canonical(nil, Email, "John.Doe@Example.COM")))
	assert.Equal(t, "+15551234567", string(Canonical(nil, Phone, "+1 (555) 123-4567")))
	assert.Equal(t, "+493090182", string(Canonical(nil, Phone, "0049 30 90182")))
	assert.Equal(t, "4111111111111111", string(Canonical(nil, CreditCard, "4111-1111-1111-1111")))
	assert.Equal(t, "DE89370400440532013000", string(Canonical(nil, IBAN, "de89 3704 0044 0532 0130 00")))
	assert.Equal(t, "2001:db8::1", string(Canonical(nil, IPv6, "2001:0DB8:0:0::1")))
	assert.Equal(t, "a@b.io", string(Canonical(nil, NumKinds, " A@B.io ")))
}

func TestKindNames(t *testing.T) {
	seen := map[string]bool{}
	for k := Kind(0); k < NumKinds; k++ {
		assert.NotEqual(t, "unknown", k.String())
		assert.False(t, seen[k.String()], k.String())
		seen[k.String()] = true
	}
	assert.Equal(t, "unknown", NumKinds.String())
}

func TestAuthorizationEndsWithTheCredential(t *testing.T) {
	runCases(t, Credentials, []detectorCase{
		{"Authorization: Bearer abc123def456 rest of line", []string{"Bearer abc123def456"}},
		{"authorization=Basic dXNlcjpwYXNz== next=1", []string{"Basic dXNlcjpwYXNz=="}},
		{`{"Authorization":"Bearer abc.def.ghi trailing words"}`, []string{"Bearer abc.def.ghi"}},
		{"Authorization: abc123def456 x", []string{"abc123def456"}},
		{`Authorization: Digest username="bob", realm="r", response="6629fae4"`, []string{`Digest username="bob", realm="r", response="6629fae4"`}},
		{"Proxy-Authorization: Bearer tok3n-value, user=x", []string{"Bearer tok3n-value"}},
	})
}

func TestOpaqueCredentialKeys(t *testing.T) {
	runCases(t, Credentials, []detectorCase{
		{"session=42 ok", nil},
		{"session=2025-12-17T10:30:00Z", nil},
		{"session: expired", nil},
		{"token=true", nil},
		{"session_id=1h30m", nil},
		{"session=8f14e45fceea167a5a36dedd4bea2543", []string{"8f14e45fceea167a5a36dedd4bea2543"}},
		{"session_id=550e8400-e29b-41d4-a716-446655440000", []string{"550e8400-e29b-41d4-a716-446655440000"}},
		{"cookie=sid=abc123", []string{"sid=abc123"}},
		{"password=hunter", []string{"hunter"}},
		{"secret: 42", []string{"42"}},
	})
	for _, tc := range []struct {
		key, v string
		kind   Kind
		want   bool
	}{
		{"session", "42", Credentials, false}, {"session", "1765967400", Credentials, false},
		{"session", "17.12.2025 10:30", Credentials, false}, {"session", "Zm9vYmFyYmF6cXV4", Credentials, true},
		{"user.phone", "2", Phone, false}, {"user.phone", "+44 20 7946 0958", Phone, true},
		{"user.email", "true", Email, false}, {"user.email", "jane@example.com", Email, true},
		{"gps.lat", "n/a", Geo, false}, {"gps.lat", "35.68", Geo, true},
		{"db.password", "x", Credentials, true}, {"db.password", "", Credentials, false},
	} {
		assert.Equal(t, tc.want, ValueFitsKey(tc.key, tc.kind, tc.v), "%s=%q", tc.key, tc.v)
	}
}

func TestPersonKeys(t *testing.T) {
	for _, k := range []string{
		"full_name", "lastName", "LAST-NAME", "customer.name", "customer_name", "patientName", "user.name",
		"billing_address", "home.address", "shipping.address", "street", "user.username", "cardholder_name",
	} {
		kind, ok := KeyKind(k)
		assert.True(t, ok, k)
		assert.Equal(t, Person, kind, k)
	}
	for _, k := range []string{
		"service.name", "name", "hw.name", "span.name", "host.name", "file_name", "event.name", "metric_name",
		"client.address", "server.address", "net.peer.address", "email_address", "ip_address", "address",
	} {
		kind, ok := KeyKind(k)
		assert.False(t, ok && kind == Person, k)
	}
	assert.True(t, ValueFitsKey("full_name", Person, "Jane Doe"))
	assert.False(t, ValueFitsKey("full_name", Person, "n/a"))
	assert.False(t, ValueFitsKey("user.name", Person, "42"))
	allocs := testing.AllocsPerRun(100, func() { _, _ = KeyKind("telemetry.sdk.language") })
	assert.Zero(t, allocs)
}

func TestSecretsWithSpecialCharacters(t *testing.T) {
	runCases(t, Credentials, []detectorCase{
		{"login password=a&b#c)d;e ok", []string{"a&b#c)d;e"}},
		{"password=p4ss, user=bob", []string{"p4ss"}},
		{"GET /x?token=abc123&next=1", []string{"abc123"}},
		{`msg="password=x|y<z" done`, []string{"x|y<z"}},
	})
}
