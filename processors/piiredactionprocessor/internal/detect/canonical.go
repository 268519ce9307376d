package detect

import (
	"net/netip"
	"strings"
)

// Canonical appends to dst the form of a matched value that is hashed, so that one person's
// address or number yields one pseudonym however it was written: e-mail addresses in lower
// case, numbers as their digits (with '+' for international phone numbers), IPv6 in RFC 5952
// form. Values of key rules and custom patterns (kind NumKinds) are trimmed, and lower-cased
// when they look like an e-mail address.
func Canonical(dst []byte, k Kind, v string) []byte {
	switch k {
	case Phone, CreditCard, SSN, IBAN, IPv4:
		v = FoldDigits(v)
	}
	switch k {
	case Email:
		return appendLower(dst, v)
	case Phone:
		digits := 0
		if strings.HasPrefix(v, "+") {
			dst = append(dst, '+')
		}
		for i := 0; i < len(v); i++ {
			if isDigit(v[i]) {
				if digits == 0 && strings.HasPrefix(v[i:], "00") && !strings.HasPrefix(v, "+") {
					dst = append(dst, '+')
					i++
					continue
				}
				dst = append(dst, v[i])
				digits++
			}
		}
		return dst
	case CreditCard, SSN, IBAN:
		for i := 0; i < len(v); i++ {
			if isDigit(v[i]) || isLetter(v[i]) {
				dst = append(dst, toUpper(v[i]))
			}
		}
		return dst
	case IPv6:
		if a, err := netip.ParseAddr(v); err == nil {
			return a.AppendTo(dst)
		}
		return appendLower(dst, v)
	case IPv4, JWT, BearerToken, Credentials, Geo, Person:
		return append(dst, v...)
	}
	v = strings.TrimSpace(v)
	if strings.IndexByte(v, '@') > 0 && strings.IndexByte(v, ' ') < 0 {
		return appendLower(dst, v)
	}
	return append(dst, v...)
}

func appendLower(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		dst = append(dst, toLower(v[i]))
	}
	return dst
}
