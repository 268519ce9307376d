package api

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// CLEAR_DRY_RUN clears dry run for the whole extension: it is accepted only bare, and every
// refusal names the field that gives it a scope or an argument it does not have.
func TestValidateClearDryRun(t *testing.T) {
	tests := []struct {
		body      string
		wantField string
	}{
		{`{"command":"CLEAR_DRY_RUN"}`, ""},
		{`{"command":"CLEAR_DRY_RUN","loop":"oven"}`, "loop"},
		{`{"command":"CLEAR_DRY_RUN","mode":"auto"}`, "mode"},
		{`{"command":"CLEAR_DRY_RUN","on":true}`, "on"},
		{`{"command":"CLEAR_DRY_RUN","dry_run":false}`, "dry_run"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			req, err := DecodeRequest(strings.NewReader(tt.body))
			if err == nil {
				err = req.Validate(testLoops)
			}
			if tt.wantField == "" {
				require.NoError(t, err)
				assert.Empty(t, req.Args(), "nothing to audit but the command")
				return
			}
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.wantField, fe.Field)
		})
	}
}
