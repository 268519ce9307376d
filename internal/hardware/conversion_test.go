package hardware

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// w1ID is a DS18B20 as the kernel names it under /sys/bus/w1/devices.
const w1ID = "28-0000075b4a2f"

func TestConversionTime(t *testing.T) {
	tests := []struct {
		dc      DeviceConfig
		conv    time.Duration
		timeout time.Duration // with a component default of 20ms
		chip    string
	}{
		{DeviceConfig{Kind: KindDS18B20}, 750 * time.Millisecond, 850 * time.Millisecond, "DS18B20 at 12 bits"},
		{DeviceConfig{Kind: KindDS18B20, ROM: w1ID, Resolution: 9}, 93750 * time.Microsecond, 193750 * time.Microsecond, "DS18B20 at 9 bits"},
		{DeviceConfig{Kind: KindDS18B20, ROM: w1ID, Resolution: 10}, 187500 * time.Microsecond, 287500 * time.Microsecond, "DS18B20 at 10 bits"},
		{DeviceConfig{Kind: KindDS18B20, ROM: w1ID, Resolution: 11}, 375 * time.Millisecond, 475 * time.Millisecond, "DS18B20 at 11 bits"},
		{DeviceConfig{Kind: KindDS18B20, ROM: w1ID, Resolution: 12, Timeout: time.Second}, 750 * time.Millisecond, time.Second, "DS18B20 at 12 bits"},
		{DeviceConfig{Kind: KindDS18B20, ROM: "22-000000000001", Resolution: 9}, 93750 * time.Microsecond, 193750 * time.Microsecond, "DS1822 at 9 bits"},
		{DeviceConfig{Kind: KindDS18B20, ROM: "10-000801b59fbc"}, 750 * time.Millisecond, 850 * time.Millisecond, "DS18S20"},
		{DeviceConfig{Kind: KindMCP9808}, 0, 20 * time.Millisecond, ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.conv, ConversionTime(tt.dc), tt.chip)
		assert.Equal(t, tt.timeout, ReadTimeout(tt.dc, 20*time.Millisecond), tt.chip)
		assert.Equal(t, tt.chip, ConversionChip(tt.dc))
	}
	ds := DeviceConfig{Kind: KindDS18B20}
	assert.Equal(t, "set resolution: 9 for 94ms or a longer period", ConversionAdvice(ds, 200*time.Millisecond))
	assert.Equal(t, "set resolution: 11 for 375ms or a longer period", ConversionAdvice(ds, 800*time.Millisecond))
	assert.Equal(t, "even at resolution: 9 a read takes up to 194ms (94ms conversion plus the bus): lengthen the period", ConversionAdvice(ds, 100*time.Millisecond))
	assert.Equal(t, "a DS18S20 always converts in 750ms: lengthen the period", ConversionAdvice(DeviceConfig{Kind: KindDS18B20, ROM: "10-000801b59fbc"}, time.Second))
}

func TestW1ConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name    string
		backend BackendName
		dev     DeviceConfig
		want    string
	}{
		{"resolution range", BackendSim, DeviceConfig{Resolution: 13}, "devices[0] (t).resolution: must be 9..12 bits, got 13"},
		{"negative resolution", BackendSim, DeviceConfig{Resolution: -1}, "devices[0] (t).resolution: must be 9..12 bits, got -1"},
		{"fixed resolution", BackendSim, DeviceConfig{ROM: "10-000801b59fbc", Resolution: 9}, "devices[0] (t).resolution: a DS18S20 (family 10) has a fixed resolution"},
		{"not a thermometer", BackendPeriph, DeviceConfig{ROM: "3a-000000000001"}, "devices[0] (t).rom: family 3a is not a thermometer the kernel's w1_therm driver reads (families 10, 22, 28, 3b, 42)"},
		{"address of no thermometer", BackendPeriph, DeviceConfig{Address: 0x1234}, "devices[0] (t).address: family 34 is not a thermometer"},
		{"timeout inside the conversion", BackendPeriph, DeviceConfig{ROM: w1ID, Timeout: 500 * time.Millisecond},
			"devices[0] (t).timeout: 500ms is not longer than the 750ms conversion of the DS18B20 at 12 bits, so every read would time out"},
		{"resolution of another chip", BackendSim, DeviceConfig{Kind: KindADS1115, Resolution: 9}, "devices[0] (t).resolution: only a ds18b20 or an mcp9808 has one, not a ads1115"},
		{"mcp9808 resolution", BackendSim, DeviceConfig{Kind: KindMCP9808, Resolution: 13}, "devices[0] (t).resolution: must be 9..12 bits, got 13"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.dev
			d.Name = "t"
			if d.Kind == "" {
				d.Kind = KindDS18B20
			}
			require.ErrorContains(t, (&Config{Backend: tt.backend, Devices: []DeviceConfig{d}}).Validate(), tt.want)
		})
	}
	ok := []DeviceConfig{
		{Name: "a", Kind: KindDS18B20, ROM: w1ID, Resolution: 9, Timeout: 100 * time.Millisecond},
		{Name: "b", Kind: KindDS18B20, Address: 0xee0000075b4a2f28, Resolution: 12},
		{Name: "c", Kind: KindDS18B20, ROM: "42-000000000001", Resolution: 10},
	}
	require.NoError(t, (&Config{Backend: BackendPeriph, Devices: ok}).Validate())
	// The sim reads at once: a short timeout is fine there.
	require.NoError(t, (&Config{Devices: []DeviceConfig{{Name: "a", Kind: KindDS18B20, Timeout: 20 * time.Millisecond}}}).Validate())
}
