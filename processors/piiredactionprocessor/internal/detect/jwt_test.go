package detect

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"pgregory.net/rapid"
)

var b64 = base64.RawURLEncoding.EncodeToString

// TestJWTByStructure: any JSON object header, in any member order and with any JSON
// whitespace, makes a compact JWS (three parts) or JWE (five parts) a token, whatever its first
// characters are; the whole token is matched in every written context.
func TestJWTByStructure(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		members := rapid.SliceOfN(rapid.SampledFrom([]string{
			`"alg":"HS256"`, `"alg":"RS512"`, `"typ":"JWT"`, `"kid":"k-1"`, `"cty":"JWT"`, `"x":1`,
			`"crit":["b64"]`, `"b64":false`, `"jku":"https://example.com/k"`,
		}), 1, 5).Draw(t, "members")
		ws := rapid.SampledFrom([]string{"", " ", "\n", "\t", "\r\n", "  "}).Draw(t, "ws")
		jwe := rapid.Bool().Draw(t, "jwe")
		if jwe {
			members = append(members, `"enc":"A256GCM"`)
		}
		idx := rapid.Permutation(members).Draw(t, "order")
		hdr := ws + "{" + ws + strings.Join(idx, ws+","+ws) + ws + "}" + ws
		if !json.Valid([]byte(hdr)) {
			t.Fatalf("bad test header %q", hdr)
		}
		part := func(name string) string {
			return b64(rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, name))
		}
		parts := []string{b64([]byte(hdr)), part("p1"), part("p2")}
		if jwe {
			parts = append(parts, part("p3"), part("p4"))
		}
		if parts[1] == "" && parts[2] == "" && !jwe {
			parts[2] = "sig"
		}
		tok := strings.Join(parts, ".")
		ctx := rapid.SampledFrom(writtenContexts).Draw(t, "ctx")
		s := fmtCtx(ctx, tok)
		assert.Equal(t, []string{tok}, found(s, JWT), "%q (header %q)", s, hdr)
	})
}

func TestJWTNearMisses(t *testing.T) {
	runCases(t, JWT, []detectorCase{
		{"Cluster.node.ready", nil},
		{"Deploy.eu-west.prod done", nil},
		{"e30.e30.e30", nil}, // {} has no member
		{b64([]byte("not json at all")) + ".abc.def", nil},
		{b64([]byte(`["alg","HS256"]`)) + ".abc.def", nil},
		{b64([]byte(`{"alg":"HS256"}`)) + ".onlytwo", nil},
		{"eyJ is a prefix", nil},
	})
	// A JWE header with only three parts is not a token; the same header with five is.
	h := b64([]byte(`{"alg":"dir","enc":"A128GCM"}`))
	runCases(t, JWT, []detectorCase{
		{h + "..iv.ct.tag", []string{h + "..iv.ct.tag"}},
	})
}

// TestKeyValueJudgementsNeverPanic: the value judgements run on arbitrary attribute values
// (a fuzzer found one reading before the string: "token=000000000000000A").
func TestKeyValueJudgementsNeverPanic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := rapid.StringMatching(`[0-9A-Za-z .:/+,TZ-]{0,40}`).Draw(t, "v")
		key := rapid.SampledFrom([]string{"session", "token", "password", "user.phone", "gps.lat", "full_name", "user.email", "iban", "ssn", "card_number"}).Draw(t, "key")
		k, ok := KeyKind(key)
		if !ok {
			t.Fatalf("%s is not a classified key", key)
		}
		_ = ValueFitsKey(key, k, v)
		_ = Scan(key+"="+v, All, nil)
	})
}
