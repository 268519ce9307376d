package piiredactionprocessor

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/fieldcol/fieldcol/processors/piiredactionprocessor/internal/detect"
	"github.com/fieldcol/fieldcol/processors/piiredactionprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	fleet := createDefaultConfig().(*Config)
	fleet.HMACKey = "0123456789abcdef0123456789abcdef-fleet"
	fleet.Detectors.Email.Action = ActionHash
	fleet.Detectors.Phone.Action = ActionHash
	fleet.Detectors.IPv4.Action = ActionHash
	fleet.Detectors.IPv6.Action = ActionHash
	fleet.Detectors.SSN.Action = ActionDropAttribute
	fleet.Detectors.Geo = RuleConfig{Enabled: false, Action: ActionMask}
	fleet.Keys = []KeyRule{
		{Name: "resident", Keys: []string{"resident_name", "resident.name", "patient_id", "user.id"}, Action: ActionHash},
		{Name: "medical", Keys: []string{"diagnosis", "medication"}, Action: ActionDropRecord},
	}
	fleet.Patterns = []PatternRule{{Name: "badge_id", Regex: "BADGE-[0-9]{6}", Action: ActionHash}}
	fleet.AllowKeys = []string{"trace_id", "span_id", "service.name", "device.id", "vehicle.id"}
	fleet.Summary = true

	// Switching cards to hash keeps the default keep_last: 4 in the struct; it is ignored.
	cardHash := createDefaultConfig().(*Config)
	cardHash.HMACKey = "0123456789abcdef0123456789abcdef"
	cardHash.Detectors.CreditCard.Action = ActionHash

	scoped := createDefaultConfig().(*Config)
	scoped.Allow = []AllowRule{{
		Keys: []string{"error.message", "args"}, Scopes: []string{"github.com/fieldcol/fieldcol/controlloop"},
		ResourceAttributes: map[string]string{"service.name": "fieldcol-edge"}, Signals: []string{"logs", "traces"},
	}}

	tests := []struct {
		id      string
		want    *Config
		wantErr string
	}{
		{id: "", want: createDefaultConfig().(*Config)},
		{id: "fleet", want: fleet},
		{id: "bad_regex", wantErr: "patterns[0]::regex: error parsing regexp"},
		{id: "unknown_detector", wantErr: "'detectors' has invalid keys: passport"},
		{id: "hash_without_key", wantErr: `hmac_key must be set when detectors::email::action is "hash"`},
		{id: "short_key", wantErr: "hmac_key must be at least 32 bytes long, got 9 bytes"},
		{id: "card_hash", want: cardHash},
		{id: "negative_keep", wantErr: "detectors::phone: keep_first and keep_last must not be negative"},
		{id: "unknown_action", wantErr: `unknown action "scramble"`},
		{id: "unnamed_pattern", wantErr: "patterns[0]::name must not be empty"},
		{id: "duplicate_name", wantErr: `keys[0]: rule name "email" is already used by detectors::email`},
		{id: "empty_keys", wantErr: "keys[0]::keys must list at least one key"},
		{id: "hash_length", wantErr: "hash_length must be between 8 and 64 hex characters, got 100"},
		{id: "allow_scoped", want: scoped},
		{id: "allow_unscoped", wantErr: "allow[0] must select records by scopes, resource_attributes or signals"},
		{id: "allow_bad_signal", wantErr: `allow[0]::signals[0]: unknown signal "events"`},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(component.NewIDWithName(metadata.Type, tt.id).String())
			require.NoError(t, err)
			err = sub.Unmarshal(cfg)
			if err == nil {
				err = confmap.Validate(cfg)
			}
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	require.NoError(t, confmap.Validate(createDefaultConfig()))
}

func TestDetectorListFollowsKinds(t *testing.T) {
	list := createDefaultConfig().(*Config).detectorList()
	require.Len(t, list, int(detect.NumKinds))
	for i, d := range list {
		assert.Equal(t, detect.Kind(i).String(), d.name)
	}
}

func TestHMACKeyIsOpaque(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.HMACKey = "0123456789abcdef0123456789abcdef"
	assert.Equal(t, "[REDACTED]", cfg.HMACKey.String())
}

// TestReadmeConfig keeps the README's robot fleet example loadable, valid and working.
func TestReadmeConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, "readme").String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, ActionHash, cfg.Detectors.Email.Action)
	assert.Len(t, cfg.Keys, 2)
	assert.Contains(t, cfg.AllowKeys, "vehicle.id")
	_, err = compileRules(cfg)
	require.NoError(t, err)
}
