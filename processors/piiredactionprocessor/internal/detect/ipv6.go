package detect

import "strings"

// scanIPv6 expands each ':' into the surrounding run of hex digits, colons and dots and keeps
// the run when it parses as an IPv6 address and stands alone as a word ("Foo::Bar" and
// timestamps do not).
func scanIPv6(s string, dst []Match) []Match {
	n := len(s)
	from := 0
	for from < n {
		k := strings.IndexByte(s[from:], ':')
		if k < 0 {
			break
		}
		c := from + k
		l := c
		for l > from && (isHex(s[l-1]) || s[l-1] == ':' || s[l-1] == '.') {
			l--
		}
		r := c
		for r < n && (isHex(s[r]) || s[r] == ':' || s[r] == '.') {
			r++
		}
		next := r
		if next <= c {
			next = c + 1
		}
		for r > l && s[r-1] == '.' {
			r--
		}
		if r-l >= 2 && s[r-1] == ':' && s[r-2] != ':' {
			r--
		}
		for l < r && s[l] == '.' {
			l++
		}
		if r-l >= 2 && s[l] == ':' && s[l+1] != ':' {
			l++
		}
		if r-l >= 3 && (l == 0 || !isWord(s[l-1])) && (r == n || !isWord(s[r])) && validIPv6(s[l:r]) {
			dst = add(dst, l, r, IPv6)
		}
		from = next
	}
	return dst
}

// validIPv6 parses the textual forms of RFC 4291 section 2.2 without allocating (net/netip
// allocates its error on the common failure path, which here is every timestamp).
func validIPv6(t string) bool {
	if len(t) < 3 {
		return false
	}
	groups := 0
	double := false
	i := 0
	if t[0] == ':' {
		if t[1] != ':' || len(t) == 2 {
			return false
		}
		double = true
		i = 2
	}
	for i < len(t) {
		j := i
		for j < len(t) && isHex(t[j]) {
			j++
		}
		if j < len(t) && t[j] == '.' {
			if !validIPv4(t[i:]) {
				return false
			}
			groups += 2
			break
		}
		if j == i || j-i > 4 {
			return false
		}
		groups++
		i = j
		if i == len(t) {
			break
		}
		if t[i] != ':' {
			return false
		}
		i++
		if i < len(t) && t[i] == ':' {
			if double {
				return false
			}
			double = true
			i++
			continue
		}
		if i == len(t) {
			return false
		}
	}
	if groups > 8 {
		return false
	}
	if double {
		return groups >= 1 && groups <= 7
	}
	return groups == 8
}

func validIPv4(t string) bool {
	parts := 0
	v, digits := 0, 0
	for i := 0; i <= len(t); i++ {
		if i == len(t) || t[i] == '.' {
			if digits == 0 || v > 255 {
				return false
			}
			parts++
			v, digits = 0, 0
			continue
		}
		if !isDigit(t[i]) || digits == 3 {
			return false
		}
		v = v*10 + int(t[i]-'0')
		digits++
	}
	return parts == 4
}
