package detect

import "strings"

// personKey reports whether an attribute or field key names a person's name or postal
// address: "full_name", "lastName", "customer.name", "user_name", "billing_address",
// "home.street". A bare "name" (service.name, span name, hw.name) does not, nor do the network
// addresses of OpenTelemetry's conventions (client.address, server.address, net.peer.address).
func personKey(key string) bool {
	n := len(key)
	if n < 4 || n > 64 {
		return false
	}
	var lb, pb [64]byte
	last, prev := splitKey(key, &lb, &pb)
	switch string(last) {
	case "fullname", "firstname", "lastname", "givenname", "familyname", "surname", "middlename",
		"maidenname", "username", "cardholder", "cardholdername", "accountholder", "nickname",
		"street", "streetaddress", "homeaddress", "billingaddress", "shippingaddress", "postaladdress",
		"mailingaddress", "deliveryaddress", "residentialaddress":
		return true
	case "name":
		return personWords[string(prev)]
	case "address", "addr":
		return len(prev) > 0 && !networkWords[string(prev)] && (personWords[string(prev)] || postalWords[string(prev)])
	}
	// "customername", "patientname" (from "customer_name", "patientName").
	if l := len(last); l > 4 && string(last[l-4:]) == "name" {
		return personWords[string(last[:l-4])]
	}
	return false
}

var (
	personWords = map[string]bool{
		"user": true, "customer": true, "client": true, "contact": true, "person": true, "patient": true,
		"resident": true, "owner": true, "driver": true, "operator": true, "employee": true, "recipient": true,
		"sender": true, "holder": true, "member": true, "guest": true, "passenger": true, "buyer": true,
		"seller": true, "payer": true, "payee": true, "account": true, "billing": true, "shipping": true,
		"home": true, "emergency": true, "caregiver": true, "visitor": true, "enduser": true, "full": true,
		"first": true, "last": true, "given": true, "family": true, "legal": true, "real": true,
	}
	postalWords = map[string]bool{"postal": true, "mailing": true, "delivery": true, "street": true, "residential": true, "physical": true}
	// Network keys of OpenTelemetry's semantic conventions, whose address is a host or an IP
	// (left to the IP detectors).
	networkWords = map[string]bool{"client": true, "server": true, "source": true, "destination": true, "peer": true, "host": true, "net": true, "network": true, "local": true, "remote": true, "sock": true, "ip": true, "mac": true, "email": true, "mail": true, "url": true}
)

// splitKey writes into lb the last segment of a key (after the last '.' or '/'), lower-cased
// and without '_' and '-', so "last_name", "lastName" and "LAST-NAME" are one word; and into
// pb the segment before it in the same form. For "customer_name" the previous segment is
// "customer".
func splitKey(key string, lb, pb *[64]byte) (last, prev []byte) {
	i := strings.LastIndexAny(key, "./")
	l, rest := key[i+1:], ""
	if i >= 0 {
		rest = key[:i]
	}
	p := rest[strings.LastIndexAny(rest, "./")+1:]
	if j := strings.LastIndexAny(l, "_-"); j > 0 && strings.EqualFold(l[j+1:], "name") {
		p = l[:j]
		p = p[strings.LastIndexAny(p, "_-")+1:]
	}
	return squash(lb[:0], l), squash(pb[:0], p)
}

func squash(dst []byte, s string) []byte {
	for i := 0; i < len(s) && len(dst) < cap(dst); i++ {
		if c := s[i]; c != '_' && c != '-' {
			dst = append(dst, toLower(c))
		}
	}
	return dst
}
