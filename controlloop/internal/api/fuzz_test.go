package api

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeFault: the fault body is untrusted too; whatever decodes has a device, a kind
// unless it clears, and no negative duration.
func FuzzDecodeFault(f *testing.F) {
	for _, seed := range []string{
		`{"device":"oven_temp","kind":"nan"}`,
		`{"device":"oven_temp","kind":"slow_read","delay":"2s","duration":"1m"}`,
		`{"device":"oven_temp","clear":true}`,
		`{"device":"x","kind":"out_of_range","value":1e308}`,
		`{"device":"x","kind":"nan","duration":"-5s"}`,
		`{"device":"","kind":""}`, `{"duration":"9999999h"}`, `{`,
	} {
		f.Add([]byte(seed))
	}
	f.Add([]byte(`{"device":"x","kind":"nan","Kind":"stuck"}`))
	f.Add([]byte(`{"device":"x","device":"y","kind":"nan"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fr, err := DecodeFault(bytes.NewReader(body))
		checkKeysStrict(t, body, jsonFields(&FaultRequest{}), err == nil)
		if err != nil {
			return
		}
		if fr.Device == "" || (!fr.Clear && fr.Kind == "") {
			t.Fatalf("accepted %+v", fr)
		}
		if time.Duration(fr.Duration) < 0 || time.Duration(fr.Delay) < 0 {
			t.Fatalf("negative duration accepted: %+v", fr)
		}
	})
}

// FuzzTraceparent: the header is untrusted; an accepted one has non-zero ids that print
// back as the hex the header carried.
func FuzzTraceparent(f *testing.F) {
	for _, seed := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-00",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00--", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tid, sid, ok := ParseTraceparent(v)
		if !ok {
			return
		}
		if tid.IsEmpty() || sid.IsEmpty() {
			t.Fatalf("zero id accepted from %q", v)
		}
		parts := strings.Split(strings.TrimSpace(v), "-")
		if !strings.EqualFold(hex.EncodeToString(tid[:]), parts[1]) || !strings.EqualFold(hex.EncodeToString(sid[:]), parts[2]) {
			t.Fatalf("ids of %q decoded as %s/%s", v, tid, sid)
		}
	})
}

// checkKeysStrict holds for every body: the key scan costs at most a constant times the
// body's length (so a crafted body cannot make decoding quadratic), and a body the decoder
// accepted has each top-level key once and spelt exactly as a field. The oracle below is the
// naive quadratic comparison the scan must agree with.
func checkKeysStrict(t *testing.T, body []byte, fields []string, accepted bool) {
	t.Helper()
	cost, _ := scanKeys(body, fields)
	if limit := (2*len(fields)+2)*len(body) + 2; cost > limit {
		t.Fatalf("key scan cost %d for %d bytes (limit %d)", cost, len(body), limit)
	}
	if !accepted {
		return
	}
	keys := topLevelKeys(body)
	for i, k := range keys {
		if !slices.Contains(fields, k) {
			t.Fatalf("accepted key %q that is not exactly a field of %v", k, fields)
		}
		for _, other := range keys[:i] {
			if strings.EqualFold(k, other) {
				t.Fatalf("accepted %q after %q", k, other)
			}
		}
	}
}

// topLevelKeys is a slow, obvious reading of an object's keys, for the oracle.
func topLevelKeys(body []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return keys
		}
		keys = append(keys, tok.(string))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return keys
		}
	}
	return keys
}
