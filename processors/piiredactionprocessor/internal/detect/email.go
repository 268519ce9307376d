package detect

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// scanEmails finds addresses around each '@': a local part of letters, digits and ._%+-'
// (UTF-8 letters included) and a domain of at least two labels whose last one is alphabetic
// (or an IDN), or a bracketed address literal.
func scanEmails(s string, dst []Match) []Match {
	n := len(s)
	from := 0
	for from < n {
		k := strings.IndexByte(s[from:], '@')
		if k < 0 {
			break
		}
		at := from + k
		dst, from = emailAt(s, from, at, at+1, dst)
	}
	// URL-encoded addresses ("?email=jane%40example.com").
	for from = 0; from < n; {
		k := strings.Index(s[from:], "%40")
		if k < 0 {
			break
		}
		at := from + k
		dst, from = emailAt(s, from, at, at+3, dst)
	}
	return dst
}

// emailAt checks for an address whose '@' (or "%40") spans s[at:dom]; from bounds the local
// part. It returns where the next search starts.
func emailAt(s string, from, at, dom int, dst []Match) ([]Match, int) {
	n := len(s)
	{
		l := at
		for l > from && isLocal(s[l-1]) {
			l--
		}
		l = trimLocalStart(s, l, at)
		if inURLAuthority(s, l) {
			// "scheme://user:pass@host": the credentials detector owns the userinfo, and the host
			// is kept for debugging.
			return dst, at + 1
		}
		r := dom
		if r < n && s[r] == '[' {
			e := strings.IndexByte(s[r:], ']')
			if e > 1 && l < at && addressLiteral(s[r+1:r+e]) {
				return add(dst, l, r+e+1, Email), r + e + 1
			}
			return dst, at + 1
		}
		for r < n && isDomain(s[r]) {
			r++
		}
		r = trimDomainEnd(s, dom, r)
		if l < at && validDomain(s[dom:r]) {
			return add(dst, l, r, Email), r
		}
		return dst, at + 1
	}
}

// trimLocalStart drops leading dots, quotes and non-letter UTF-8 (arrows, bullets) that the
// byte classes let in, so that the same address always yields the same match.
func trimLocalStart(s string, l, at int) int {
	for l < at {
		c := s[l]
		if c == '.' || c == '\'' || c == '%' || c == '+' || c == '-' {
			l++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[l:at])
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				l += size
				continue
			}
		}
		break
	}
	return l
}

func trimDomainEnd(s string, start, r int) int {
	for r > start {
		c := s[r-1]
		if c == '.' || c == '-' {
			r--
			continue
		}
		if c >= utf8.RuneSelf {
			ru, size := utf8.DecodeLastRuneInString(s[start:r])
			if !unicode.IsLetter(ru) && !unicode.IsDigit(ru) {
				r -= size
				continue
			}
		}
		break
	}
	return r
}

func validDomain(d string) bool {
	dot := strings.LastIndexByte(d, '.')
	if dot <= 0 || dot == len(d)-1 {
		return false
	}
	// Every label is non-empty.
	prev := -1
	for k := 0; k < len(d); k++ {
		if d[k] == '.' {
			if k == prev+1 {
				return false
			}
			prev = k
		}
	}
	tld := d[dot+1:]
	if len(tld) < 2 {
		return false
	}
	if hasPrefixFold(tld, "xn--") {
		return true
	}
	for k := 0; k < len(tld); k++ {
		if !isLetter(tld[k]) && tld[k] < utf8.RuneSelf {
			return false
		}
	}
	return true
}

func addressLiteral(a string) bool {
	if validIPv4(a) {
		return true
	}
	return hasPrefixFold(a, "ipv6:") && validIPv6(a[5:])
}

// inURLAuthority reports whether position l is inside the authority of a URL ("://" before it
// in the same word, with no path separator in between).
func inURLAuthority(s string, l int) bool {
	for j := l - 1; j >= 2 && l-j < 256; j-- {
		switch s[j] {
		case ' ', '\t', '\n', '"', '\'', '<', '(':
			return false
		case '/':
			return s[j-1] == '/' && s[j-2] == ':'
		}
	}
	return false
}
