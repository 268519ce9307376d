package detect

const (
	cDigit = 1 << iota
	cUpper
	cLower
	cHex
	cWord     // [A-Za-z0-9_]
	cB64URL   // [A-Za-z0-9_-]
	cLocal    // email local part: [A-Za-z0-9._%+'-] and UTF-8 bytes
	cDomain   // email domain: [A-Za-z0-9.-] and UTF-8 bytes
	cTokenEnd // ends an unquoted key=value value
)

var class = func() (t [256]uint16) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		var f uint16
		switch {
		case b >= '0' && b <= '9':
			f |= cDigit | cHex | cWord | cB64URL | cLocal | cDomain
		case b >= 'A' && b <= 'Z':
			f |= cUpper | cWord | cB64URL | cLocal | cDomain
			if b <= 'F' {
				f |= cHex
			}
		case b >= 'a' && b <= 'z':
			f |= cLower | cWord | cB64URL | cLocal | cDomain
			if b <= 'f' {
				f |= cHex
			}
		case b >= 0x80:
			f |= cLocal | cDomain
		}
		switch b {
		case '_':
			f |= cWord | cB64URL | cLocal
		case '-':
			f |= cB64URL | cLocal | cDomain
		case '.':
			f |= cLocal | cDomain
		case '%', '+':
			f |= cLocal
		case '\'':
			f |= cLocal | cTokenEnd
		case ' ', '\t', '\n', '\r', '&', ',', ';', '"', '#', ')', ']', '}', '<', '>', '|', '\\':
			f |= cTokenEnd
		}
		t[c] = f
	}
	return t
}()

func isDigit(c byte) bool    { return c-'0' < 10 }
func isLetter(c byte) bool   { return class[c]&(cUpper|cLower) != 0 }
func isWord(c byte) bool     { return class[c]&cWord != 0 }
func isHex(c byte) bool      { return class[c]&cHex != 0 }
func isB64URL(c byte) bool   { return class[c]&cB64URL != 0 }
func isLocal(c byte) bool    { return class[c]&cLocal != 0 }
func isDomain(c byte) bool   { return class[c]&cDomain != 0 }
func isTokenEnd(c byte) bool { return class[c]&cTokenEnd != 0 }
func isSpace(c byte) bool    { return c == ' ' || c == '\t' }

func toLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func toUpper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}
