package piiredactionprocessor // import "github.com/fieldcol/fieldcol/processors/piiredactionprocessor"

import (
	"errors"
	"fmt"
	"regexp"

	"go.opentelemetry.io/collector/config/configopaque"
)

// Action says what happens to a value that a rule matched.
type Action string

// The actions of a rule.
const (
	// ActionMask replaces the match with the mask, optionally keeping its first or last characters.
	ActionMask Action = "mask"
	// ActionHash replaces the match with a keyed pseudonym: hash_prefix + hex(HMAC-SHA256(key, value)).
	ActionHash Action = "hash"
	// ActionDropAttribute removes the attribute (or map entry) that holds the match.
	ActionDropAttribute Action = "drop_attribute"
	// ActionDropRecord drops the span, log record or data point that holds the match.
	ActionDropRecord Action = "drop_record"
)

var actions = [...]Action{ActionMask, ActionHash, ActionDropAttribute, ActionDropRecord}

func (a Action) index() int {
	for i, x := range actions {
		if x == a {
			return i
		}
	}
	return -1
}

// UnmarshalText rejects unknown actions while the configuration is decoded, so the error
// carries the key.
func (a *Action) UnmarshalText(text []byte) error {
	v := Action(text)
	if v.index() < 0 {
		return fmt.Errorf("unknown action %q: use mask, hash, drop_attribute or drop_record", string(text))
	}
	*a = v
	return nil
}

// RuleConfig is the action of one built-in detector.
type RuleConfig struct {
	// Enabled turns the detector on.
	Enabled bool `mapstructure:"enabled"`
	// Action is mask, hash, drop_attribute or drop_record.
	Action Action `mapstructure:"action"`
	// KeepFirst and KeepLast keep that many characters of the match visible, e.g.
	// keep_last: 4 turns a card number into ****1111. Other actions ignore them, so that
	// switching credit_card to hash does not trip over its default keep_last.
	KeepFirst int `mapstructure:"keep_first"`
	KeepLast  int `mapstructure:"keep_last"`
}

// DetectorsConfig holds one RuleConfig per built-in detector.
type DetectorsConfig struct {
	Email       RuleConfig `mapstructure:"email"`
	Phone       RuleConfig `mapstructure:"phone"`
	IPv4        RuleConfig `mapstructure:"ipv4"`
	IPv6        RuleConfig `mapstructure:"ipv6"`
	CreditCard  RuleConfig `mapstructure:"credit_card"`
	IBAN        RuleConfig `mapstructure:"iban"`
	SSN         RuleConfig `mapstructure:"us_ssn"`
	JWT         RuleConfig `mapstructure:"jwt"`
	BearerToken RuleConfig `mapstructure:"bearer_token"`
	Credentials RuleConfig `mapstructure:"credentials"`
	Geo         RuleConfig `mapstructure:"geo"`
	Person      RuleConfig `mapstructure:"person"`
}

// KeyRule treats the whole value of the named keys as personal data.
type KeyRule struct {
	// Name labels the rule in telemetry and the summary attribute.
	Name string `mapstructure:"name"`
	// Keys are attribute and map keys, compared without regard to ASCII case.
	Keys      []string `mapstructure:"keys"`
	Action    Action   `mapstructure:"action"`
	KeepFirst int      `mapstructure:"keep_first"`
	KeepLast  int      `mapstructure:"keep_last"`
}

// PatternRule is a custom regular expression (RE2 syntax) searched in every string value.
type PatternRule struct {
	// Name labels the rule in telemetry and the summary attribute.
	Name      string `mapstructure:"name"`
	Regex     string `mapstructure:"regex"`
	Action    Action `mapstructure:"action"`
	KeepFirst int    `mapstructure:"keep_first"`
	KeepLast  int    `mapstructure:"keep_last"`
}

// AllowRule exempts keys from inspection in the records it selects, and only there: the
// records of named instrumentation scopes, of resources with given attribute values, of
// given signals (every condition that is set must hold).
type AllowRule struct {
	// Keys are top-level attribute keys left as they are in the selected records.
	Keys []string `mapstructure:"keys"`
	// Scopes are instrumentation scope names (e.g. github.com/fieldcol/fieldcol/controlloop).
	Scopes []string `mapstructure:"scopes"`
	// ResourceAttributes are resource attribute values that must all match exactly.
	ResourceAttributes map[string]string `mapstructure:"resource_attributes"`
	// Signals are traces, metrics and/or logs.
	Signals []string `mapstructure:"signals"`
}

// Config is the configuration of the piiredaction processor.
type Config struct {
	// Detectors are the built-in detectors, each on or off with its action.
	Detectors DetectorsConfig `mapstructure:"detectors"`
	// Keys are rules on key names (e.g. resident_name, user.email, patient_id).
	Keys []KeyRule `mapstructure:"keys"`
	// Patterns are custom regular expressions.
	Patterns []PatternRule `mapstructure:"patterns"`
	// AllowKeys are top-level attribute keys that are never inspected or changed, in any
	// record (trace ids, service.name ...): identifiers that hold no personal data.
	AllowKeys []string `mapstructure:"allow_keys"`
	// Allow are allow-lists that apply only to the records they select (a component's own
	// audit records, say), never to every application's data.
	Allow []AllowRule `mapstructure:"allow"`
	// HMACKey is the secret of the hash action; required (at least 32 bytes) when a rule hashes.
	HMACKey configopaque.String `mapstructure:"hmac_key"`
	// HashPrefix starts every pseudonym, so readers and later passes recognise it.
	HashPrefix string `mapstructure:"hash_prefix"`
	// HashLength is the number of hex characters of the HMAC kept in a pseudonym (8 to 64).
	HashLength int `mapstructure:"hash_length"`
	// Mask replaces masked text.
	Mask string `mapstructure:"mask"`
	// Summary adds the attribute piiredaction.summary (rule=count,...) to every span, log
	// record or data point that was changed. Off by default: even counts can tell a reader
	// something about a record.
	Summary bool `mapstructure:"summary"`
}

const minHMACKeyLength = 32

// Validate checks the configuration; every error names the key at fault.
func (cfg *Config) Validate() error {
	var errs []error
	hashing := ""
	names := map[string]string{}
	claim := func(name, key string) {
		if prev, ok := names[name]; ok {
			errs = append(errs, fmt.Errorf("%s: rule name %q is already used by %s", key, name, prev))
			return
		}
		names[name] = key
	}
	checkRule := func(key string, a Action, keepFirst, keepLast int) {
		if a.index() < 0 {
			errs = append(errs, fmt.Errorf("%s::action: unknown action %q: use mask, hash, drop_attribute or drop_record", key, string(a)))
		}
		if keepFirst < 0 || keepLast < 0 {
			errs = append(errs, fmt.Errorf("%s: keep_first and keep_last must not be negative", key))
		}
		if a == ActionHash && hashing == "" {
			hashing = key + "::action"
		}
	}
	for _, d := range cfg.detectorList() {
		claim(d.name, "detectors::"+d.name)
		if d.rc.Enabled {
			checkRule("detectors::"+d.name, d.rc.Action, d.rc.KeepFirst, d.rc.KeepLast)
		}
	}
	for i, k := range cfg.Keys {
		key := fmt.Sprintf("keys[%d]", i)
		if k.Name == "" {
			errs = append(errs, fmt.Errorf("%s::name must not be empty", key))
		} else {
			claim(k.Name, key)
		}
		if len(k.Keys) == 0 {
			errs = append(errs, fmt.Errorf("%s::keys must list at least one key", key))
		}
		checkRule(key, k.Action, k.KeepFirst, k.KeepLast)
	}
	for i, p := range cfg.Patterns {
		key := fmt.Sprintf("patterns[%d]", i)
		if p.Name == "" {
			errs = append(errs, fmt.Errorf("%s::name must not be empty", key))
		} else {
			claim(p.Name, key)
		}
		if p.Regex == "" {
			errs = append(errs, fmt.Errorf("%s::regex must not be empty", key))
		} else if _, err := regexp.Compile(p.Regex); err != nil {
			errs = append(errs, fmt.Errorf("%s::regex: %w", key, err))
		}
		checkRule(key, p.Action, p.KeepFirst, p.KeepLast)
	}
	for i, a := range cfg.Allow {
		key := fmt.Sprintf("allow[%d]", i)
		if len(a.Keys) == 0 {
			errs = append(errs, fmt.Errorf("%s::keys must list at least one key", key))
		}
		if len(a.Scopes) == 0 && len(a.ResourceAttributes) == 0 && len(a.Signals) == 0 {
			errs = append(errs, fmt.Errorf("%s must select records by scopes, resource_attributes or signals; keys allowed in every record belong in allow_keys", key))
		}
		for j, sig := range a.Signals {
			if signalIndex(sig) < 0 {
				errs = append(errs, fmt.Errorf("%s::signals[%d]: unknown signal %q: use traces, metrics or logs", key, j, sig))
			}
		}
	}
	if hashing != "" {
		switch l := len(cfg.HMACKey); {
		case l == 0:
			errs = append(errs, fmt.Errorf("hmac_key must be set when %s is \"hash\" (e.g. hmac_key: ${env:FIELDCOL_PII_HMAC_KEY}); without a key a pseudonym of a phone number can be reversed by trying every number", hashing))
		case l < minHMACKeyLength:
			errs = append(errs, fmt.Errorf("hmac_key must be at least %d bytes long, got %d bytes", minHMACKeyLength, l))
		}
	}
	if cfg.HashLength < 8 || cfg.HashLength > 64 {
		errs = append(errs, fmt.Errorf("hash_length must be between 8 and 64 hex characters, got %d", cfg.HashLength))
	}
	if cfg.Mask == "" {
		errs = append(errs, errors.New("mask must not be empty"))
	}
	return errors.Join(errs...)
}

type namedRule struct {
	name string
	rc   RuleConfig
}

// detectorList pairs each detector's configuration with its name, in detect.Kind order.
func (cfg *Config) detectorList() []namedRule {
	d := cfg.Detectors
	return []namedRule{
		{"email", d.Email}, {"phone", d.Phone}, {"ipv4", d.IPv4}, {"ipv6", d.IPv6},
		{"credit_card", d.CreditCard}, {"iban", d.IBAN}, {"us_ssn", d.SSN}, {"jwt", d.JWT},
		{"bearer_token", d.BearerToken}, {"credentials", d.Credentials}, {"geo", d.Geo},
		{"person", d.Person},
	}
}
