package detect

import "strings"

// scanJWT matches a JSON Web Token (JWS with three parts, JWE with five) at the word start i.
func scanJWT(s string, i int, dst []Match) ([]Match, int) {
	n := len(s)
	if !strings.HasPrefix(s[i:], "eyJ") {
		return dst, -1
	}
	j := b64urlRun(s, i)
	if j-i < 10 || j >= n || s[j] != '.' {
		return dst, -1
	}
	k := b64urlRun(s, j+1)
	if k-(j+1) < 2 || k >= n || s[k] != '.' {
		return dst, -1
	}
	m := b64urlRun(s, k+1)
	for parts := 3; parts < 5 && m+1 < n && s[m] == '.' && isB64URL(s[m+1]); parts++ {
		m = b64urlRun(s, m+1)
	}
	return add(dst, i, m, JWT), m
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
	if !ok || (kind != Credentials && kind != Geo) || !set.Has(kind) {
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
		if ve > v && !masked(s[v:ve]) {
			return add(dst, v, ve, kind), ve
		}
		return dst, -1
	}
	ve := v
	if kind == Credentials && equalFoldASCII(s[ks:ke], "authorization") {
		// "Authorization: Bearer x" carries its scheme and credential separated by a space.
		for ve < n && s[ve] != '\n' && s[ve] != '\r' && s[ve] != '"' && s[ve] != ',' && s[ve] != ';' && s[ve] != '&' {
			ve++
		}
		for ve > v && isSpace(s[ve-1]) {
			ve--
		}
	} else {
		for ve < n && !isTokenEnd(s[ve]) {
			ve++
		}
	}
	if ve > v && !masked(s[v:ve]) {
		return add(dst, v, ve, kind), ve
	}
	return dst, -1
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
	n := len(key)
	if n < 3 {
		return 0, false
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
		return 0, false
	}
	for _, w := range cands {
		switch {
		case w.exact && equalFoldASCII(key, w.word):
			return w.kind, true
		case w.suffix && hasSuffixFold(key, w.word):
			return w.kind, true
		case w.segment && hasSuffixFold(key, w.word):
			// A whole segment: "geo.lat", "gps_lon", "homeLng", but not "flat" or "salon".
			if n == len(w.word) {
				return w.kind, true
			}
			b := key[n-len(w.word)-1]
			if b == '.' || b == '_' || b == '-' || b == '/' || (class[b]&cLower != 0 && class[key[n-len(w.word)]]&cUpper != 0) {
				return w.kind, true
			}
		}
	}
	return 0, false
}

type keyWord struct {
	word                   string
	kind                   Kind
	exact, suffix, segment bool
}

func suffix(w string) keyWord { return keyWord{word: w, kind: Credentials, suffix: true} }
func exact(w string) keyWord  { return keyWord{word: w, kind: Credentials, exact: true} }
func geoSuf(w string) keyWord { return keyWord{word: w, kind: Geo, suffix: true} }
func geoSeg(w string) keyWord { return keyWord{word: w, kind: Geo, segment: true} }

var (
	keyWordsD = []keyWord{suffix("password"), suffix("passwd"), exact("pwd"), suffix("sessionid"), suffix("session_id"), suffix("sessid")}
	keyWordsE = []keyWord{
		suffix("passphrase"), suffix("passcode"), suffix("signature"), suffix("cookie"), geoSuf("latitude"), geoSuf("longitude"),
		named("phone", Phone), named("telephone", Phone), named("mobile", Phone),
	}
	keyWordsT = []keyWord{suffix("secret"), geoSeg("lat")}
	keyWordsN = []keyWord{
		suffix("token"), suffix("authorization"), geoSeg("lon"), exact("session"),
		named("ssn", SSN), named("iban", IBAN), named("msisdn", Phone),
	}
	keyWordsY = []keyWord{
		suffix("apikey"), suffix("api_key"), suffix("api-key"), suffix("access_key"), suffix("private_key"),
		suffix("secret_key"), suffix("secretkey"), suffix("signing_key"), suffix("encryption_key"), suffix("master_key"),
	}
	keyWordsH = []keyWord{exact("auth")}
	keyWordsL = []keyWord{suffix("credential"), named("email", Email), named("e-mail", Email), named("mail", Email), named("tel", Phone)}
	keyWordsS = []keyWord{suffix("credentials"), named("email_address", Email), named("emailaddress", Email), exact("pass")}
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
