package detect

// group is one run of digits inside a number token such as "+44 (0)20 7946-0958".
type group struct {
	start, end int  // the digits are s[start:end]
	sep        byte // separator before the group: 0 for the first, ')' right after a parenthesis
	paren      bool // the digits were written inside parentheses
}

const maxGroups = 12

// scanNumber reads the number token whose first digit is at the word start i, classifies the
// longest runs of its groups as IPv4, card, SSN or phone, and returns the end of the token so
// the caller skips it. A token is split only at spaces and slashes (and at dashes for IPv4
// ranges): a run joined by '-' or '.' (a UUID, a date, a version) is one identifier and is
// judged as a whole.
func scanNumber(s string, i int, set Set, dst []Match) ([]Match, int) {
	n := len(s)
	p := i
	if i > 0 && s[i-1] == '+' {
		p = i - 1
		if p > 0 && s[p-1] == '(' {
			// "(+44) 20 7946 0958": the country code in parentheses.
			e := i
			for e < n && isDigit(s[e]) {
				e++
			}
			if e < n && s[e] == ')' {
				p--
			}
		}
	}
	if i > 0 && s[i-1] == '(' {
		// "(555) 123-4567" opens a parenthesized group; "(198.51.100.7)" only a bracket.
		e := i
		for e < n && isDigit(s[e]) {
			e++
		}
		if e < n && s[e] == ')' {
			p = i - 1
		}
	}
	if p > 0 {
		prev := s[p-1]
		if isWord(prev) {
			return dst, skipNumberish(s, i)
		}
		// "v1.10.0.0.1", "ABC-555-123-4567" and "1,234,567" continue an identifier or a number
		// that started before this word.
		if (prev == '.' || prev == '-') && p >= 2 && isWord(s[p-2]) {
			return dst, skipNumberish(s, i)
		}
		if prev == ',' && p >= 2 && isDigit(s[p-2]) && thousandsGroup(s, i) {
			return dst, skipNumberish(s, i)
		}
	}

	var gs [maxGroups]group
	ng := 0
	pos := p
	plus := false
	if s[pos] == '+' {
		plus = true
		pos++
	}
	var sep byte
	for ng < maxGroups {
		q := pos
		open := false
		if q < n && s[q] == '(' {
			open = true
			q++
			if ng == 0 && q < n && s[q] == '+' {
				plus = true
				q++
			}
		}
		ds := q
		for q < n && isDigit(s[q]) {
			q++
		}
		if q == ds {
			break
		}
		g := group{start: ds, end: q, sep: sep, paren: open}
		if open {
			if q >= n || s[q] != ')' {
				break
			}
			q++
		}
		gs[ng] = g
		ng++
		pos = q
		if pos >= n {
			break
		}
		c := s[pos]
		if (c == ' ' || c == '-' || c == '.' || c == '/') && pos+1 < n && (isDigit(s[pos+1]) || s[pos+1] == '(') {
			sep = c
			pos++
			continue
		}
		if (open && isDigit(c)) || (c == '(' && pos+1 < n && (isDigit(s[pos+1]) || s[pos+1] == '+')) {
			// "(0)20", "+44(0)20": a parenthesized group starts or ends without a separator.
			sep = ')'
			continue
		}
		break
	}
	if ng == 0 {
		return dst, skipNumberish(s, i)
	}
	if ng == 1 && gs[0].paren && !plus {
		// "(4242424242424242)": parentheses around a lone number are brackets, not an area code.
		gs[0].paren = false
		p = gs[0].start
	}
	end := gs[ng-1].end
	if gs[ng-1].paren {
		end++
	}
	tokenEnd := end
	if end < n {
		c := s[end]
		switch {
		case isWord(c) && ng >= 2 && (gs[ng-1].sep == '-' || gs[ng-1].sep == '.'):
			// "07556481-8041-40c3-...": a UUID or another identifier, not a number.
			return dst, skipNumberish(s, end)
		case (c == '-' || c == '.' || c == '_') && end+1 < n && isLetter(s[end+1]):
			// "07556481-8041-c0c3-...": the identifier goes on with letters.
			return dst, skipNumberish(s, end)
		case (c == '+' || c == '~') && end+1 < n && isWord(s[end+1]):
			// "1.2.3.4+build.7", "10.0.0.1~rc1": a version with build metadata.
			return dst, skipNumberish(s, end+1)
		case isWord(c):
			// "35ms", "555 123 4567 5x": the last group belongs to a word.
			ng--
		case c == ':' && end+1 < n && isDigit(s[end+1]) && ng >= 2 && gs[ng-1].sep == ' ':
			// "01.12.2025 10:30": the last group is an hour.
			ng--
		case c == '@':
			// The local part of an email; the email detector owns it.
			return dst, tokenEnd
		}
	}

	// A run of groups is judged on its own when it starts and ends at a space or a slash, or,
	// for an IPv4 address only, at a dash ("10.0.0.1-10.0.0.9").
	for a := 0; a < ng; {
		startDash := a > 0 && gs[a].sep == '-'
		if a > 0 && gs[a].sep != ' ' && gs[a].sep != '/' && !startDash {
			a++
			continue
		}
		found := false
		for b := ng - 1; b >= a; b-- {
			endDash := b < ng-1 && gs[b+1].sep == '-'
			if b < ng-1 && gs[b+1].sep != ' ' && gs[b+1].sep != '/' && !endDash {
				continue
			}
			start := gs[a].start
			if gs[a].paren {
				start--
			}
			if a == 0 && plus {
				start = p
			}
			k, v := classifyNumber(s, gs[a:b+1], a == 0 && plus, start, set)
			if v == veto && !startDash && !endDash {
				// "4280 0679 5805 0233" fails Luhn: none of its groups may become a phone.
				a = b + 1
				found = true
				break
			}
			if v != match || ((startDash || endDash) && (k != IPv4 || !dottedQuadAt(gs[:ng], a, b, startDash, endDash))) {
				continue
			}
			mend := gs[b].end
			if gs[b].paren {
				mend++
			}
			dst = add(dst, start, mend, k)
			a = b + 1
			found = true
			break
		}
		if !found {
			a++
		}
	}
	return dst, tokenEnd
}

// dottedQuadAt reports whether the runs beside the dotted quad gs[a:b+1] across a dash are
// dotted quads too: "10.0.0.1-10.0.0.9" is a range of addresses, "1.2.3.4-20250101" a version
// with a build number.
func dottedQuadAt(gs []group, a, b int, startDash, endDash bool) bool {
	quad := func(from int) bool {
		if from < 0 || from+3 >= len(gs) {
			return false
		}
		for j := from + 1; j <= from+3; j++ {
			if gs[j].sep != '.' {
				return false
			}
		}
		return from+4 == len(gs) || gs[from+4].sep != '.'
	}
	if startDash && !quad(a-4) {
		return false
	}
	return !endDash || quad(b+1)
}

// thousandsGroup reports whether the digits at i are a three-digit group of a number written
// with thousands separators ("1,234,567"), not the start of a new value ("a,10.0.0.2").
func thousandsGroup(s string, i int) bool {
	e := i
	for e < len(s) && isDigit(s[e]) {
		e++
	}
	if e-i != 3 {
		return false
	}
	if e == len(s) {
		return true
	}
	switch s[e] {
	case '.', '-', '/', ' ', '(':
		return false
	}
	return true
}

// skipNumberish returns the end of the digit-and-dot run at i so the word loop does not start
// again in its middle.
func skipNumberish(s string, i int) int {
	for i < len(s) && (isWord(s[i]) || ((s[i] == '.' || s[i] == '-') && i+1 < len(s) && isWord(s[i+1]))) {
		i++
	}
	return i
}

type verdict uint8

const (
	noMatch verdict = iota
	match
	veto // the groups form something that is known not to be personal data
)

func classifyNumber(s string, gs []group, plus bool, start int, set Set) (Kind, verdict) {
	digits := 0
	anyParen := false
	var seps uint8 // bit set of separators used
	for j, g := range gs {
		digits += g.end - g.start
		if g.paren {
			anyParen = true
		}
		if j > 0 {
			seps |= sepBit(g.sep)
		}
	}
	ng := len(gs)

	if ng == 4 && !plus && !anyParen && seps == sepBit('.') {
		if set.Has(IPv4) && isOctets(s, gs) && !versionContext(s, start) {
			return IPv4, match
		}
		return 0, noMatch
	}
	if ng == 2 && seps == sepBit('.') {
		return 0, noMatch // a decimal number
	}
	// A card-shaped number is judged by the card rules alone, so that 16 digits failing Luhn
	// are never reported as anything else.
	if !plus && !anyParen && digits >= 13 && digits <= 19 && s[gs[0].start] != '0' && seps&^(sepBit(' ')|sepBit('-')) == 0 && ng <= 5 && cardGroups(gs) {
		if set.Has(CreditCard) && issuerPrefix(s, gs, digits) && luhn(s, gs) {
			return CreditCard, match
		}
		return 0, veto
	}
	if set.Has(SSN) && !plus && !anyParen {
		if ng == 3 && (seps == sepBit('-') || seps == sepBit(' ')) &&
			gs[0].end-gs[0].start == 3 && gs[1].end-gs[1].start == 2 && gs[2].end-gs[2].start == 4 &&
			!allZero(s[gs[0].start:gs[0].end]) && !allZero(s[gs[1].start:gs[1].end]) && !allZero(s[gs[2].start:gs[2].end]) {
			return SSN, match
		}
		if ng == 1 && digits == 9 && ssnContext(s, start) {
			return SSN, match
		}
	}
	if set.Has(Phone) && isPhone(s, gs, plus, digits, seps, start) {
		return Phone, match
	}
	return 0, noMatch
}

// international reports whether the digits of gs, after skip digits of international
// prefix ("00"), are a country calling code followed by a national number of a length that
// libphonenumber's metadata allows for that code (callingCodes, generated). A trunk "(0)"
// written after the code ("+44 (0)20 ...") is not part of the national number.
func international(s string, gs []group, skip int) bool {
	var d [20]byte
	n := 0
	for _, g := range gs {
		if g.paren && g.end-g.start == 1 && s[g.start] == '0' {
			continue
		}
		for k := g.start; k < g.end; k++ {
			if skip > 0 {
				skip--
				continue
			}
			if n == len(d) {
				return false
			}
			d[n] = s[k]
			n++
		}
	}
	cc := 0
	for l := 1; l <= 3 && l < n; l++ {
		cc = cc*10 + int(d[l-1]-'0')
		if mask := callingCodes[cc]; mask != 0 {
			return n-l < 32 && mask&(1<<(n-l)) != 0
		}
	}
	return false
}

func allPairs(gs []group) bool {
	for _, g := range gs {
		if g.end-g.start != 2 {
			return false
		}
	}
	return true
}

func isPhone(s string, gs []group, plus bool, digits int, seps uint8, start int) bool {
	g0 := s[gs[0].start:gs[0].end]
	intl := plus || len(g0) >= 3 && g0[0] == '0' && g0[1] == '0' && g0[2] != '0'
	if !intl && seps&sepBit('.') != 0 && seps != sepBit('.') && seps != sepBit('.')|sepBit(')') {
		return false // dots mixed with other separators: a date and time, a version list
	}
	ng := len(gs)
	if ng == 6 && digits == 12 && (seps == sepBit('-') || seps == sepBit('.')) && allPairs(gs) {
		return false // "01-23-45-67-89-10": a MAC address written with decimal digits only
	}
	if plus {
		return international(s, gs, 0)
	}
	// Unseparated runs with a leading zero are zero-padded references as often as phone
	// numbers: like bare NANP runs, they need a phone word just before them.
	bare := ng == 1 && !gs[0].paren
	if len(g0) >= 3 && g0[0] == '0' && g0[1] == '0' && g0[2] != '0' {
		return international(s, gs, 2) && (!bare || phoneContext(s, gs[0].start)) // "00" international prefix
	}
	if gs[0].paren && len(g0) >= 2 && len(g0) <= 4 && digits >= 9 && digits <= 12 {
		return true // "(555) 123-4567", "(030) 1234567", "(11) 91234-5678"
	}
	if g0[0] == '0' && (len(g0) >= 2 && g0[1] != '0' || len(g0) == 1 && ng >= 3) && ng <= 6 {
		// national trunk prefix: "020 7946 0958", "06 12 34 56 78", "03-1234-5678",
		// "0 801 23 45 67", "02 123 456"; a bare run needs a phone word.
		if bare {
			return digits >= 9 && digits <= 12 && phoneContext(s, gs[0].start)
		}
		return digits >= 8 && digits <= 13 && !dateGroups(gs)
	}
	if nationalGroups(s, gs, seps, digits) {
		// "612 34 56 78", "21 234 5678", "2 22 12 34 56": a national number without trunk
		// prefix, written in the groups of two to four digits phone numbers are printed in.
		return true
	}
	// North American Numbering Plan.
	lens := [4]int{}
	if ng <= 4 {
		for j, g := range gs {
			lens[j] = g.end - g.start
		}
	}
	// Bare ten- and eleven-digit runs are byte counts and ids as often as phone numbers: like
	// any other grouping they need a word such as "phone" or "tel" just before them (below).
	switch {
	case ng == 3 && lens[0] == 3 && lens[1] == 3 && lens[2] == 4:
		return true // "202-555-0143", and the "123-456-7890" of forms and examples
	case ng == 4 && lens[0] == 1 && g0[0] == '1' && lens[1] == 3 && lens[2] == 3 && lens[3] == 4:
		return true
	case ng == 3 && lens[0] == 3 && lens[1] == 4 && lens[2] == 4 && g0[0] == '1' && g0[1] >= '3' && seps != sepBit('.'):
		return true // mainland China mobile: "138 0013 8000"
	case ng == 2 && lens[0] == 5 && lens[1] == 5 && g0[0] >= '6' && seps != sepBit('.'):
		return true // India mobile: "98765 43210"
	}
	// After a phone word any grouping of 7 to 15 digits is a number ("tel. 612 34 56 78").
	dateShape := ng == 3 && ((lens[0] == 4 && lens[1] <= 2 && lens[2] <= 2) || (lens[0] <= 2 && lens[1] <= 2 && lens[2] == 4))
	return digits >= 7 && digits <= 15 && seps != sepBit('.') && !dateShape && phoneContext(s, start)
}

// nationalGroups reports whether three or more groups separated by spaces or dashes read as a
// phone number printed the national way: 8 to 11 digits, groups of 2 to 4 digits (the first
// of 1 to 4), neither thousands ("12 345 678") nor a date.
func nationalGroups(s string, gs []group, seps uint8, digits int) bool {
	ng := len(gs)
	if ng < 3 || ng > 6 || digits < 8 || digits > 11 || seps&^(sepBit(' ')|sepBit('-')) != 0 || s[gs[0].start] == '0' {
		return false
	}
	thousands := true
	for j, g := range gs {
		l := g.end - g.start
		if l > 4 || (l < 2 && j > 0) {
			return false
		}
		if j > 0 && l != 3 {
			thousands = false
		}
	}
	if thousands && gs[0].end-gs[0].start <= 3 {
		return false
	}
	l0, l1, l2 := gs[0].end-gs[0].start, gs[1].end-gs[1].start, gs[2].end-gs[2].start
	if ng == 3 && l0 == 3 && l1 == 2 && l2 == 4 {
		return false // the shape of a US SSN, which the us_ssn detector judges
	}
	return !dateGroups(gs)
}

// dateGroups reports three groups shaped like a date: 2025 12 17 or 17 12 2025.
func dateGroups(gs []group) bool {
	if len(gs) != 3 {
		return false
	}
	l0, l1, l2 := gs[0].end-gs[0].start, gs[1].end-gs[1].start, gs[2].end-gs[2].start
	return l0 == 4 && l1 <= 2 && l2 <= 2 || l0 <= 2 && l1 <= 2 && l2 == 4
}

func sepBit(c byte) uint8 {
	switch c {
	case ' ':
		return 1
	case '-':
		return 2
	case '.':
		return 4
	case '/':
		return 8
	case ')':
		return 16
	}
	return 0
}

func isOctets(s string, gs []group) bool {
	for _, g := range gs {
		l := g.end - g.start
		if l > 3 {
			return false
		}
		v := 0
		for k := g.start; k < g.end; k++ {
			v = v*10 + int(s[k]-'0')
		}
		if v > 255 {
			return false
		}
	}
	return true
}

// issuerPrefix checks the first digits and the length against the card networks' issuer
// ranges (Visa, Mastercard, Amex, Diners, JCB with the old 2131 and 1800, Discover, UnionPay,
// Maestro, UnionPay 62 and 8100-8171, and Elo and Hipercard inside those), which keeps
// all-digit hex ids that happen to pass Luhn out.
func issuerPrefix(s string, gs []group, length int) bool {
	var p [4]int
	k := 0
	for _, g := range gs {
		for j := g.start; j < g.end && k < 4; j++ {
			p[k] = int(s[j] - '0')
			k++
		}
	}
	two := p[0]*10 + p[1]
	four := two*100 + p[2]*10 + p[3]
	switch {
	case p[0] == 4:
		return length == 13 || length == 16 || length == 19
	case two >= 51 && two <= 55, four >= 2221 && four <= 2720:
		return length == 16
	case two == 34 || two == 37:
		return length == 15
	case two == 36 || two == 38 || two == 39 || (four >= 3000 && four <= 3059) || (four >= 3090 && four <= 3099):
		return length >= 14 && length <= 19
	case four >= 3528 && four <= 3589, four == 2131, four == 1800:
		return length >= 15 && length <= 19
	case two == 50 || (two >= 56 && two <= 69):
		// Maestro: 50 and 56 to 69 (the 6 range also holds Discover, UnionPay and others).
		return length >= 12 && length <= 19
	case p[0] == 6:
		return length >= 13 && length <= 19
	case four >= 8100 && four <= 8171:
		return length >= 16 && length <= 19 // UnionPay's 81 range
	}
	return false
}

// cardGroups reports whether the groups are printed like a card number: groups of 3 to 8
// digits, the last of 1 to 8 ("6304 4541 8505 8", a Maestro number printed in fours).
func cardGroups(gs []group) bool {
	if len(gs) == 1 {
		return true
	}
	for j, g := range gs {
		if l := g.end - g.start; l > 8 || (l < 3 && j < len(gs)-1) {
			return false
		}
	}
	return true
}

// luhn checks the Luhn (mod 10) checksum over the digits of the groups.
func luhn(s string, gs []group) bool {
	sum := 0
	double := false
	for j := len(gs) - 1; j >= 0; j-- {
		for k := gs[j].end - 1; k >= gs[j].start; k-- {
			d := int(s[k] - '0')
			if double {
				d *= 2
				if d > 9 {
					d -= 9
				}
			}
			sum += d
			double = !double
		}
	}
	return sum%10 == 0
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// versionContext reports whether the dotted quad starting at start follows a word that names a
// version ("version 1.2.3.4", "fw=10.0.0.1"), so it is not reported as an IPv4 address.
func versionContext(s string, start int) bool {
	j := start
	for k := 0; k < 3 && j > 0 && (isSpace(s[j-1]) || s[j-1] == '=' || s[j-1] == ':' || s[j-1] == '"' || s[j-1] == '\''); k++ {
		j--
	}
	e := j
	for j > 0 && e-j < 32 && (isWord(s[j-1]) || s[j-1] == '.' || s[j-1] == '-') {
		j--
	}
	w := s[j:e]
	if w == "" {
		return false
	}
	for _, v := range versionWords {
		if hasSuffixFold(w, v) {
			return true
		}
	}
	return equalFoldASCII(w, "fw") || equalFoldASCII(w, "ver")
}

var versionWords = []string{"version", "release", "firmware", "build", "revision", "_ver", ".ver", "_fw", ".fw"}

// phoneContext reports whether a bare digit run follows a word that names a phone number
// within the 24 bytes before it: a whole word ("tel", "phone", "fax", "whatsapp"), also as the
// end of a compound ("cellphone", "userPhone"), but not a word that merely contains one
// ("hotel", "telemetry", "recall").
func phoneContext(s string, start int) bool {
	from := start - 24
	if from < 0 {
		from = 0
	}
	for i := from; i < start; {
		if !isLetter(s[i]) {
			i++
			continue
		}
		j := i
		for j < start && isLetter(s[j]) {
			j++
		}
		if (i > from || i == 0 || !isLetter(s[i-1])) && (j < start || j == len(s) || !isLetter(s[j])) {
			w := s[i:j]
			if hasSuffixFold(w, "phone") {
				return true
			}
			for _, word := range phoneWords {
				if equalFoldASCII(w, word) {
					return true
				}
			}
		}
		i = j
	}
	return false
}

var phoneWords = []string{"phone", "phones", "tel", "telephone", "mobile", "mob", "cell", "fax", "sms", "call", "whatsapp", "msisdn", "telefon", "telefono", "handy"}

// VersionKey reports whether an attribute key names a version ("service.version", "fw_ver"),
// whose dotted quads are not IPv4 addresses.
func VersionKey(key string) bool {
	for _, v := range versionWords {
		if hasSuffixFold(key, v) {
			return true
		}
	}
	return equalFoldASCII(key, "ver") || equalFoldASCII(key, "fw")
}

// ssnContext reports whether a bare nine-digit number follows a word that names an SSN.
func ssnContext(s string, start int) bool {
	from := start - 24
	if from < 0 {
		from = 0
	}
	w := s[from:start]
	return containsFold(w, "ssn") || containsFold(w, "social security") || containsFold(w, "social_security")
}
