package detect

// scanWords visits every word start once: digit words go to the number classifier, letter words
// are checked for IBANs, JWTs, Bearer/Basic credentials and well-known API token prefixes. The
// rest of a word is skipped without a look, which keeps the loop at about one compare per byte.
func scanWords(s string, set Set, dst []Match) []Match {
	n := len(s)
	i := 0
	for i < n {
		c := s[i]
		if !isWord(c) {
			i++
			continue
		}
		if i > 0 && (isWord(s[i-1])) {
			i++
			continue
		}
		// i is a word start.
		if isDigit(c) {
			if set&(1<<Phone|1<<IPv4|1<<CreditCard|1<<SSN) != 0 {
				var end int
				dst, end = scanNumber(s, i, set, dst)
				if end > i {
					i = end
					continue
				}
			}
		} else {
			end := -1
			if set.Has(IBAN) {
				dst, end = scanIBAN(s, i, dst)
			}
			if end < 0 && set.Has(JWT) {
				dst, end = scanJWT(s, i, dst)
			}
			if end < 0 && set.Has(BearerToken) {
				dst, end = scanBearer(s, i, dst)
			}
			if end > i {
				i = end
				continue
			}
		}
		for i < n && isWord(s[i]) {
			i++
		}
	}
	return dst
}
