package piiredaction

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/almerlucke/go-iban/iban"
	"github.com/brianvoe/gofakeit/v7"
	"github.com/brianvoe/gofakeit/v7/data"
	"github.com/nyaruka/phonenumbers"
)

// The independent corpus holds values that no one here wrote: libphonenumber's example
// numbers of every region and number type in each written form, card numbers gofakeit makes
// for every brand it knows, the IBAN examples of go-iban's registry table, and gofakeit's
// e-mail addresses, names and postal addresses (under keys that name them, and names in prose),
// passwords, SSNs and IP addresses; and, as hard
// negatives, what the same libraries make that is not personal data (UUIDs, versions, dates,
// epochs, MAC addresses, trace ids, order numbers, ISINs). Each record holds one labelled
// value in one of several written contexts.

// Labelled is one value of the independent corpus.
type Labelled struct {
	// Kind is the detector that should find a personal value ("phone", "iban" ...), or the
	// kind of a hard negative ("uuid", "version" ...).
	Kind  string
	Value string
	// PII says whether the value must not survive redaction (otherwise it must survive).
	PII bool
}

// IRecord is a record of the independent corpus: the value under a key or inside a body.
type IRecord struct {
	Body  string
	Attrs map[string]string
	Value Labelled
}

// Contexts a value is written in: alone, in prose, in logfmt, in JSON, in a CSV row.
var bodyContexts = []string{
	"%s",
	"lookup for %s done",
	"event=update detail=%s status=ok",
	`{"msg":"record stored","data":"%s","n":3}`,
	"2025-12-17T10:30:00Z WARN contact %s, retry 2",
	"a,%s,b",
	"(%s)",
}

// phoneForms writes a number in each form libphonenumber formats it in, plus the 00 prefix and
// other separators people use.
func phoneForms(n *phonenumbers.PhoneNumber) []string {
	intl := phonenumbers.Format(n, phonenumbers.INTERNATIONAL)
	return []string{
		phonenumbers.Format(n, phonenumbers.E164),
		intl,
		phonenumbers.Format(n, phonenumbers.NATIONAL),
		phonenumbers.Format(n, phonenumbers.RFC3966),
		"00" + strings.TrimPrefix(intl, "+"),
		strings.ReplaceAll(intl, " ", "-"),
		strings.ReplaceAll(intl, " ", "."),
	}
}

var phoneTypes = []phonenumbers.PhoneNumberType{
	phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE, phonenumbers.PREMIUM_RATE,
	phonenumbers.SHARED_COST, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER, phonenumbers.PAGER,
	phonenumbers.UAN, phonenumbers.VOICEMAIL,
}

// PhoneExamples are libphonenumber's example numbers of every supported region and number
// type, each in every form of phoneForms, labelled by form ("phone/e164" ...).
func PhoneExamples() []Labelled {
	forms := []string{"e164", "international", "national", "rfc3966", "00", "international-dashes", "international-dots"}
	regions := make([]string, 0, 256)
	for r := range phonenumbers.GetSupportedRegions() {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	seen := map[string]bool{}
	var out []Labelled
	for _, r := range regions {
		for _, typ := range phoneTypes {
			n := phonenumbers.GetExampleNumberForType(r, typ)
			if n == nil {
				continue
			}
			for i, v := range phoneForms(n) {
				if seen[v] {
					continue
				}
				seen[v] = true
				out = append(out, Labelled{Kind: "phone/" + forms[i], Value: v, PII: true})
			}
		}
	}
	return out
}

// IBANExamples are the registry examples of go-iban's country table (countries.csv, one per
// country) and its example files that go-iban itself validates, each compact and in the
// printed groups of four.
func IBANExamples() ([]Labelled, error) {
	dir, err := moduleDir("github.com/almerlucke/go-iban")
	if err != nil {
		return nil, err
	}
	var codes []string
	f, err := os.Open(filepath.Join(dir, "iban", "countries.csv"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	cr := csv.NewReader(f)
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("countries.csv: %w", err)
		}
		if len(rec) > 3 {
			codes = append(codes, strings.TrimSpace(rec[3]))
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "iban", "example-ibans", "*"))
	if err != nil {
		return nil, err
	}
	for _, p := range files {
		fh, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if v := strings.ReplaceAll(strings.TrimSpace(sc.Text()), " ", ""); v != "" {
				codes = append(codes, v)
			}
		}
		_ = fh.Close()
	}
	seen := map[string]bool{}
	var out []Labelled
	for _, c := range codes {
		if seen[c] || len(c) < 15 {
			continue
		}
		if _, err := iban.NewIBAN(c); err != nil {
			continue // go-iban's own check: its examples of changed registry entries fail it
		}
		seen[c] = true
		out = append(out, Labelled{Kind: "iban/compact", Value: c, PII: true}, Labelled{Kind: "iban/print", Value: printIBAN(c), PII: true})
	}
	return out, nil
}

func printIBAN(c string) string {
	var b strings.Builder
	for i := 0; i < len(c); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c[i:min(i+4, len(c))])
	}
	return b.String()
}

// moduleDir is where the go command keeps a module of the build list.
func moduleDir(path string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// fakeValues makes n labelled values of each gofakeit kind from seed.
func fakeValues(seed uint64, n int) []Labelled {
	f := gofakeit.New(seed)
	var out []Labelled
	add := func(kind string, pii bool, v string) { out = append(out, Labelled{Kind: kind, Value: v, PII: pii}) }
	for i := 0; i < n; i++ {
		add("email", true, f.Email())
		brand := data.CreditCardTypes[i%len(data.CreditCardTypes)]
		add("credit_card/"+brand, true, f.CreditCardNumber(&gofakeit.CreditCardOptions{Types: []string{brand}, Gaps: i%2 == 1}))
		ssn := f.SSN()
		add("us_ssn", true, ssn[:3]+"-"+ssn[3:5]+"-"+ssn[5:])
		add("ipv4", true, f.IPv4Address())
		add("ipv6", true, f.IPv6Address())
		add("jwt", true, fakeJWT(f))
		add("password", true, f.Password(true, true, true, i%2 == 0, false, 8+i%12))
		add("person/name-under-key", true, f.Name())
		add("person/address-under-key", true, f.Address().Address)
		add("person/name-in-prose", true, f.Name())

		// Hard negatives.
		add("uuid", false, f.UUID())
		add("version", false, f.AppVersion())
		add("version/build", false, fmt.Sprintf("%d.%d.%d.%d-%s", f.Number(1, 20), f.Number(0, 20), f.Number(0, 99), f.Number(0, 250), f.RandomString([]string{"beta", "rc1", "build7", "20250101", "dev"})))
		d := f.DateRange(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		for _, layout := range []string{time.RFC3339, time.RFC3339Nano, "2006-01-02", "02.01.2006 15:04", "01/02/2006", "2006-01-02 15:04:05.000", time.RFC1123} {
			add("date", false, d.Format(layout))
		}
		add("epoch", false, fmt.Sprint(d.Unix()))
		add("epoch", false, fmt.Sprint(d.UnixMilli()))
		add("mac", false, f.MacAddress())
		add("mac/decimal", false, fmt.Sprintf("%02d-%02d-%02d-%02d-%02d-%02d", f.IntN(100), f.IntN(100), f.IntN(100), f.IntN(100), f.IntN(100), f.IntN(100)))
		add("trace_id", false, strings.TrimPrefix(f.HexUint(128), "0x"))
		add("order", false, f.Numerify("ORD-########"))
		add("order", false, f.Numerify("#########"))
		add("isin", false, f.Isin())
	}
	return out
}

// fakeJWT is a compact JWS whose header has gofakeit's choice of members, order and spacing.
func fakeJWT(f *gofakeit.Faker) string {
	members := []string{
		`"alg":"` + f.RandomString([]string{"HS256", "RS256", "ES384", "PS512", "EdDSA"}) + `"`,
		`"typ":"JWT"`, `"kid":"` + f.UUID() + `"`,
	}
	f.ShuffleAnySlice(members)
	members = members[:1+f.IntN(len(members))]
	sp := f.RandomString([]string{"", " ", "\n"})
	hdr := "{" + sp + strings.Join(members, ","+sp) + sp + "}"
	payload, _ := json.Marshal(map[string]any{"sub": f.UUID(), "name": f.Name(), "email": f.Email(), "iat": f.Number(1.6e9, 1.8e9)})
	sig := make([]byte, 32)
	for i := range sig {
		sig[i] = byte(f.IntN(256))
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(hdr)) + "." + enc(payload) + "." + enc(sig)
}

// IndependentCorpus puts each value into one record: bodies in the contexts above, passwords
// under a password key, and every eighth value of other kinds as an attribute of its own.
func IndependentCorpus(values []Labelled, seed uint64) []IRecord {
	f := gofakeit.New(seed)
	out := make([]IRecord, 0, len(values))
	for i, v := range values {
		rec := IRecord{Value: v, Attrs: map[string]string{"seq": fmt.Sprint(i)}}
		switch {
		case v.Kind == "password":
			rec.Body = fmt.Sprintf("login user=%s password=%s ok", f.Username(), v.Value)
		case v.Kind == "person/name-under-key":
			rec.Body = "profile updated"
			rec.Attrs[f.RandomString([]string{"full_name", "customer.name", "customerName", "last_name", "user.name"})] = v.Value
		case v.Kind == "person/address-under-key":
			rec.Body = fmt.Sprintf(`{"order":%d,"shipping_address":%q}`, i, v.Value)
		case v.Kind == "person/name-in-prose":
			rec.Body = fmt.Sprintf("ticket opened by %s for robot R2", v.Value)
		case i%8 == 7:
			rec.Body = "attribute record"
			rec.Attrs["detail"] = v.Value
		default:
			rec.Body = fmt.Sprintf(bodyContexts[i%len(bodyContexts)], v.Value)
		}
		out = append(out, rec)
	}
	return out
}
