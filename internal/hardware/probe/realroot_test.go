package probe

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProbeThisMachine runs the probe as `fieldcol-edge hardware-probe` does, on whatever
// runs the test (a container without a Pi in CI): it must name every section, and each one
// must either have found something or say why not. It runs periph's real host.Init, which
// registers the machine's own I2C buses; the tests with fake buses come first in this
// package (files run in name order) and unregister theirs.
func TestProbeThisMachine(t *testing.T) {
	r := Run(context.Background(), Options{})
	var out bytes.Buffer
	require.NoError(t, r.WriteText(&out))
	text := out.String()
	t.Log("\n" + text)
	assertSections(t, text)
	found := map[string]bool{
		TitleBoard:   r.Board.Model != "",
		TitlePeriph:  len(r.Periph.Loaded) > 0 && len(r.Periph.Failed) == 0,
		TitleGPIO:    len(r.GPIO.Chips) > 0,
		TitleI2C:     len(r.I2C.Buses) > 0,
		TitleSPI:     len(r.SPI.Ports) > 0,
		TitleOneWire: len(r.OneWire.Devices) > 0,
		TitleThermal: len(r.Thermal.Zones) > 0,
		TitleAccess:  len(r.Access.Files) > 0,
		TitleModules: r.Modules.find("i2c-dev").State != moduleUnknown,
	}
	notes := map[string]string{
		TitleBoard: r.Board.Note, TitlePeriph: r.Periph.Note, TitleGPIO: r.GPIO.Note, TitleI2C: r.I2C.Note,
		TitleSPI: r.SPI.Note, TitleOneWire: r.OneWire.Note, TitleThermal: r.Thermal.Note,
		TitleAccess: r.Access.Note, TitleModules: r.Modules.Note,
	}
	for title, ok := range found {
		assert.True(t, ok || notes[title] != "", "section %q found nothing and does not say why", title)
	}
	for _, trace := range []string{"panic", "goroutine ", ".go:"} {
		assert.NotContains(t, text, trace)
	}
	parseSuggested(t, r.Suggested)
	assert.True(t, strings.HasPrefix(r.Suggested, "hardware:\n  backend: periph\n"))
}
