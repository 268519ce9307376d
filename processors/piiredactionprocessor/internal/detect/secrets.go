package detect

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// scanJWT matches a JSON Web Token or another JOSE compact serialization at i (RFC 7515 JWS:
// three parts, RFC 7516 JWE: five) by its structure: base64url parts joined by dots, whose first
// part decodes to a JSON object header (any members, order and whitespace). The prefix "eyJ" is
// only the most common case of that. It returns the end of the match, or -1.
func scanJWT(s string, i int, dst []Match) ([]Match, int) {
	// A header starts at the start of a base64url run: any other start would read the same run
	// again. '{' and the JSON whitespace before it encode to 'e', 'I', 'C' or 'D'.
	if i > 0 && isB64URL(s[i-1]) {
		return dst, -1
	}
	switch s[i] {
	case 'e', 'I', 'C', 'D':
	default:
		return dst, -1
	}
	n := len(s)
	h := b64urlRun(s, i)
	if h-i < 4 || h >= n || s[h] != '.' {
		return dst, -1
	}
	// The other parts may be empty: a detached payload, an unsigned token, a JWE without an
	// encrypted key.
	var ends [5]int
	parts, e := 1, h
	for parts < 5 && e < n && s[e] == '.' {
		e = b64urlRun(s, e+1)
		ends[parts] = e
		parts++
	}
	if parts < 3 {
		return dst, -1
	}
	jwe, ok := joseHeader(s[i:h])
	if !ok {
		return dst, -1
	}
	end := ends[2]
	if jwe {
		if parts < 5 {
			return dst, -1
		}
		end = ends[4]
	}
	if end == ends[1]+1 && ends[1] == h+1 {
		return dst, -1 // "hdr.." is not a token
	}
	return add(dst, i, end, JWT), end
}

// maxJOSEHeader bounds the header that is decoded (x5c certificate chains make large ones).
const maxJOSEHeader = 16 << 10

// joseHeader reports whether b64 is the base64url (unpadded) encoding of a JSON object with at
// least one member, and whether that header names a content encryption ("enc": a JWE).
func joseHeader(b64 string) (jwe, ok bool) {
	if len(b64) > maxJOSEHeader || len(b64)%4 == 1 {
		return false, false
	}
	var buf [768]byte
	dec := buf[:]
	if n := base64.RawURLEncoding.DecodedLen(len(b64)); n > len(dec) {
		dec = make([]byte, n)
	}
	var sbuf [1024]byte // a copy on the stack: []byte(b64) would allocate for every candidate
	src := sbuf[:0]
	if len(b64) <= len(sbuf) {
		src = append(src, b64...)
	} else {
		src = []byte(b64)
	}
	n, err := base64.RawURLEncoding.Decode(dec, src)
	if err != nil {
		return false, false
	}
	hdr := bytes.TrimSpace(dec[:n])
	if len(hdr) < 7 || hdr[0] != '{' || hdr[len(hdr)-1] != '}' || bytes.IndexByte(hdr, ':') < 0 || !json.Valid(hdr) {
		return false, false // the shortest header with a member is {"a":1}
	}
	return bytes.Contains(hdr, []byte(`"enc"`)), true
}

func b64urlRun(s string, i int) int {
	for i < len(s) && isB64URL(s[i]) {
		i++
	}
	return i
}

// tokenPrefix is a vendor API token format recognizable by its fixed prefix.
type tokenPrefix struct {
	prefix  string
	minBody int  // characters after the prefix
	exact   int  // if non-zero, the body has exactly this many characters
	upper   bool // the body is [A-Z0-9] only (AWS key ids)
}

var tokenPrefixes = []tokenPrefix{
	{prefix: "ghp_", minBody: 20}, {prefix: "gho_", minBody: 20}, {prefix: "ghu_", minBody: 20},
	{prefix: "ghs_", minBody: 20}, {prefix: "ghr_", minBody: 20}, {prefix: "github_pat_", minBody: 20},
	{prefix: "glpat-", minBody: 16},
	{prefix: "xoxb-", minBody: 10}, {prefix: "xoxp-", minBody: 10}, {prefix: "xoxa-", minBody: 10},
	{prefix: "xoxr-", minBody: 10}, {prefix: "xoxs-", minBody: 10},
	{prefix: "AKIA", exact: 16, upper: true}, {prefix: "ASIA", exact: 16, upper: true},
	{prefix: "AIza", exact: 35},
	{prefix: "sk_live_", minBody: 10}, {prefix: "sk_test_", minBody: 10}, {prefix: "rk_live_", minBody: 10},
	{prefix: "npm_", minBody: 30},
}

// prefixesByFirst indexes tokenPrefixes by first byte: scanBearer runs at every word start.
var prefixesByFirst = func() (t [256][]tokenPrefix) {
	for _, tp := range tokenPrefixes {
		t[tp.prefix[0]] = append(t[tp.prefix[0]], tp)
	}
	return t
}()

// scanBearer matches the credential after "Bearer" or "Basic", and vendor API tokens, at the
// word start i.
func scanBearer(s string, i int, dst []Match) ([]Match, int) {
	n := len(s)
	c := s[i]
	if c == 'b' || c == 'B' || c == 't' || c == 'T' {
		for _, scheme := range [...]string{"bearer", "basic", "token"} {
			e := i + len(scheme)
			if !hasPrefixFold(s[i:], scheme) || e >= n || isWord(s[e]) {
				continue
			}
			t := e
			for t < n && isSpace(s[t]) {
				t++
			}
			if t == e || (scheme == "token" && strings.HasPrefix(s[t:], "eyJ")) {
				continue // "token eyJ...": the JWT detector names it
			}
			v := t
			var digit, upper, lower, pad bool
			for v < n && (isB64URL(s[v]) || s[v] == '.' || s[v] == '~' || s[v] == '+' || s[v] == '/') {
				switch cl := class[s[v]]; {
				case cl&cDigit != 0:
					digit = true
				case cl&cUpper != 0:
					upper = true
				case cl&cLower != 0:
					lower = true
				}
				v++
			}
			for v < n && s[v] == '=' {
				pad = true
				v++
			}
			l := v - t
			ok := false
			if scheme == "bearer" {
				ok = l >= 8 || (l >= 4 && digit)
			} else {
				ok = l >= 8 && (digit || pad || (upper && lower))
			}
			if ok {
				return add(dst, t, v, BearerToken), v
			}
		}
	}
	for _, tp := range prefixesByFirst[c] {
		if !strings.HasPrefix(s[i:], tp.prefix) {
			continue
		}
		b := i + len(tp.prefix)
		e := b
		// An exact-length body is read one byte past its length at most: "AIza-AIza-..." must
		// not make every word start read to the end of the string.
		for e < n && (tp.exact == 0 || e-b <= tp.exact) && isB64URL(s[e]) && (!tp.upper || class[s[e]]&(cUpper|cDigit) != 0) {
			e++
		}
		body := e - b
		if (tp.exact != 0 && body != tp.exact) || body < tp.minBody {
			continue
		}
		return add(dst, i, e, BearerToken), e
	}
	return dst, -1
}

// scanKeyValues finds URL userinfo ("scheme://user:pass@host") and the values of sensitive
// keys written as key=value, key: value or "key":"value" (query strings, logfmt, JSON in a
// log line): credentials (password, token, api_key ...) and coordinates (lat, lon ...).
func scanKeyValues(s string, set Set, dst []Match) []Match {
	n := len(s)
	if set.Has(Credentials) {
		from := 0
		for from < n {
			k := strings.Index(s[from:], "://")
			if k < 0 {
				break
			}
			u := from + k + 3
			j := u
			for j < n && !isUserinfoEnd(s[j]) {
				j++
			}
			if j < n && s[j] == '@' && j > u {
				dst = add(dst, u, j, Credentials)
			}
			from = u
		}
	}
	for _, sep := range [...]byte{'=', ':'} {
		from := 0
		for from < n {
			k := strings.IndexByte(s[from:], sep)
			if k < 0 {
				break
			}
			e := from + k
			var end int
			dst, end = keyValueAt(s, e, set, dst)
			from = e + 1
			if end > from {
				from = end
			}
		}
	}
	return dst
}

func isUserinfoEnd(c byte) bool {
	switch c {
	case '/', '?', '#', '@', ' ', '\t', '\n', '"', '\'', '<', '>', '\\':
		return true
	}
	return false
}

// keyValueAt handles the '=' or ':' at e; it returns the end of a matched value or -1.
func keyValueAt(s string, e int, set Set, dst []Match) ([]Match, int) {
	n := len(s)
	if s[e] == ':' && e+2 < n && s[e+1] == '/' && s[e+2] == '/' {
		return dst, -1
	}
	ke := e
	for ke > 0 && e-ke < 2 && isSpace(s[ke-1]) {
		ke--
	}
	if ke > 0 && (s[ke-1] == '"' || s[ke-1] == '\'') {
		ke--
		if ke > 0 && s[ke-1] == '\\' {
			ke--
		}
	}
	ks := ke
	for ks > 0 && ke-ks < 64 && (isWord(s[ks-1]) || s[ks-1] == '-' || s[ks-1] == '.') {
		ks--
	}
	if ks == ke {
		return dst, -1
	}
	kind, ok := KeyKind(s[ks:ke])
	if !ok || (kind != Credentials && kind != Geo && kind != Person) || !set.Has(kind) {
		// Keys naming an e-mail or a phone number are left to the value detectors in text:
		// "email=2" in a count is not an address.
		return dst, -1
	}
	v := e + 1
	for v < n && isSpace(s[v]) {
		v++
	}
	if v+1 < n && s[v] == '\\' && (s[v+1] == '"' || s[v+1] == '\'') {
		v++
	}
	if v < n && (s[v] == '"' || s[v] == '\'') {
		q := s[v]
		v++
		ve := v
		for ve < n && s[ve] != q && s[ve] != '\\' {
			ve++
		}
		end := ve
		if kind == Credentials && hasSuffixFold(s[ks:ke], "authorization") {
			end = authorizationEnd(s, v, ve)
		}
		if end > v && ValueFitsKey(s[ks:ke], kind, s[v:end]) {
			return add(dst, v, end, kind), ve
		}
		return dst, -1
	}
	ve := v
	if kind == Credentials && hasSuffixFold(s[ks:ke], "authorization") {
		limit := v
		for limit < n && s[limit] != '\n' && s[limit] != '\r' && s[limit] != '&' {
			limit++
		}
		ve = authorizationEnd(s, v, limit)
	} else if inQuery := ks > 0 && (s[ks-1] == '?' || s[ks-1] == '&' || s[ks-1] == ';'); kind == Credentials && !inQuery {
		ve = secretEnd(s, v)
	} else {
		for ve < n && !isTokenEnd(s[ve]) {
			ve++
		}
	}
	if ve > v && ValueFitsKey(s[ks:ke], kind, s[v:ve]) {
		return add(dst, v, ve, kind), ve
	}
	return dst, -1
}

// secretEnd returns the end of an unquoted secret outside a query string (logfmt, prose):
// passwords hold & , ; # ) and the like, so the value runs to white space, a quote or a
// backslash, or a ',' or ';' that a space or the end follows ("password=a&b;c, user=x").
func secretEnd(s string, v int) int {
	n := len(s)
	e := v
	for e < n {
		c := s[e]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' || c == '\\' {
			break
		}
		if (c == ',' || c == ';') && (e+1 == n || isSpace(s[e+1])) {
			break
		}
		e++
	}
	return e
}

// authorizationEnd returns the end of an HTTP Authorization value that starts at v and cannot
// go past limit (RFC 9110 section 11.4): a scheme and a token68 credential ("Bearer abc.def=")
// end with the credential, so the text after it is kept; a scheme with auth-params (Digest
// username="x", realm="y") runs to limit.
func authorizationEnd(s string, v, limit int) int {
	// A scheme is a word of letters (Bearer, Basic, Digest, Negotiate) or a dashed name
	// (AWS4-HMAC-SHA256); "abc123 x" starts with a credential.
	se, digits, dash := v, false, false
	for se < limit && (isWord(s[se]) || s[se] == '-') {
		digits = digits || isDigit(s[se])
		dash = dash || s[se] == '-'
		se++
	}
	if digits && !dash {
		se = v
	}
	t := se
	for t < limit && isSpace(s[t]) {
		t++
	}
	if se == v || t == se || t == limit {
		// One credential without a scheme.
		for se < limit && !isTokenEnd(s[se]) {
			se++
		}
		return se
	}
	if te := token68End(s[:limit], t); te > t && (te == limit || s[te] != '=') {
		return te
	}
	for limit > t && isSpace(s[limit-1]) {
		limit--
	}
	return limit
}

// token68End returns the end of the RFC 9110 token68 at t: [A-Za-z0-9-._~+/]+ then '=' padding.
func token68End(s string, t int) int {
	n := len(s)
	for t < n && (isB64URL(s[t]) || s[t] == '.' || s[t] == '~' || s[t] == '+' || s[t] == '/') {
		t++
	}
	p := t
	for p < n && s[p] == '=' {
		p++
	}
	if p > t && (p == n || !isWord(s[p]) && s[p] != '"') {
		return p
	}
	return t
}

// masked reports whether a value is already a mask (so a second pass changes nothing).
func masked(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] != '*' {
			return false
		}
	}
	return true
}

// KeyKind classifies an attribute or field key whose value is sensitive as a whole:
// Credentials for password, token, api_key and the like, Geo for latitude and longitude, and
// Email, Phone, SSN, IBAN or CreditCard for keys that name them (user.email, phone_number). It runs
// on every attribute key, so it dispatches on the last byte before comparing any word.
func KeyKind(key string) (Kind, bool) {
	if w, ok := keyWordOf(key); ok {
		return w.kind, true
	}
	if personKey(key) {
		return Person, true
	}
	return 0, false
}

func keyWordOf(key string) (keyWord, bool) {
	n := len(key)
	if n < 3 {
		return keyWord{}, false
	}
	var cands []keyWord
	switch toLower(key[n-1]) {
	case 'd':
		cands = keyWordsD
	case 'e':
		cands = keyWordsE
	case 't':
		cands = keyWordsT
	case 'n':
		cands = keyWordsN
	case 'y':
		cands = keyWordsY
	case 'h':
		cands = keyWordsH
	case 'l':
		cands = keyWordsL
	case 's':
		cands = keyWordsS
	case 'g':
		cands = keyWordsG
	case 'r':
		cands = keyWordsR
	case 'x':
		cands = keyWordsX
	case 'w':
		cands = keyWordsW
	default:
		return keyWord{}, false
	}
	for _, w := range cands {
		switch {
		case w.exact && equalFoldASCII(key, w.word):
			return w, true
		case w.suffix && hasSuffixFold(key, w.word):
			return w, true
		case w.segment && hasSuffixFold(key, w.word):
			// A whole segment: "geo.lat", "gps_lon", "homeLng", but not "flat" or "salon".
			if n == len(w.word) {
				return w, true
			}
			b := key[n-len(w.word)-1]
			if b == '.' || b == '_' || b == '-' || b == '/' || (class[b]&cLower != 0 && class[key[n-len(w.word)]]&cUpper != 0) {
				return w, true
			}
		}
	}
	return keyWord{}, false
}

type keyWord struct {
	word                   string
	kind                   Kind
	exact, suffix, segment bool
	// opaque marks credential keys whose values are also counters, dates or states
	// ("session": 42, "token": "expired"): only a value that looks like a secret is one.
	opaque bool
}

func suffix(w string) keyWord  { return keyWord{word: w, kind: Credentials, suffix: true} }
func exact(w string) keyWord   { return keyWord{word: w, kind: Credentials, exact: true} }
func opaque(k keyWord) keyWord { k.opaque = true; return k }
func geoSuf(w string) keyWord  { return keyWord{word: w, kind: Geo, suffix: true} }
func geoSeg(w string) keyWord  { return keyWord{word: w, kind: Geo, segment: true} }

var (
	keyWordsD = []keyWord{suffix("password"), suffix("passwd"), exact("pwd"), opaque(suffix("sessionid")), opaque(suffix("session_id")), opaque(suffix("sessid"))}
	keyWordsE = []keyWord{
		suffix("passphrase"), suffix("passcode"), opaque(suffix("signature")), opaque(suffix("cookie")), geoSuf("latitude"), geoSuf("longitude"),
		named("phone", Phone), named("telephone", Phone), named("mobile", Phone),
	}
	keyWordsT = []keyWord{suffix("secret"), geoSeg("lat")}
	keyWordsN = []keyWord{
		opaque(suffix("token")), opaque(suffix("authorization")), geoSeg("lon"), opaque(exact("session")),
		named("ssn", SSN), named("iban", IBAN), named("msisdn", Phone),
	}
	keyWordsY = []keyWord{
		suffix("apikey"), suffix("api_key"), suffix("api-key"), suffix("access_key"), suffix("private_key"),
		suffix("secret_key"), suffix("secretkey"), suffix("signing_key"), suffix("encryption_key"), suffix("master_key"),
	}
	keyWordsH = []keyWord{opaque(exact("auth"))}
	keyWordsL = []keyWord{opaque(suffix("credential")), named("email", Email), named("e-mail", Email), named("mail", Email), named("tel", Phone)}
	keyWordsS = []keyWord{opaque(suffix("credentials")), named("email_address", Email), named("emailaddress", Email), exact("pass")}
	keyWordsW = []keyWord{exact("pw")}
	keyWordsR = []keyWord{
		named("phone_number", Phone), named("phonenumber", Phone), named("mobile_number", Phone),
		named("card_number", CreditCard), named("cardnumber", CreditCard), named("social_security_number", SSN),
	}
	keyWordsX = []keyWord{named("fax", Phone)}
	keyWordsG = []keyWord{geoSeg("lng"), geoSeg("long")}
)

// named matches a key whose last segment names a kind of personal data ("user.email").
func named(w string, k Kind) keyWord { return keyWord{word: w, kind: k, segment: true} }
