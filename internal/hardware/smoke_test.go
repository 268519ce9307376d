package hardware

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSmokeSim(t *testing.T) {
	r := NewRegistry(nil)
	s, err := r.Open(Config{Devices: []DeviceConfig{{Name: "t", Kind: KindDS18B20}, {Name: "h", Kind: KindDutyOutput}}}, Settings{})
	require.NoError(t, err)
	ti, err := s.TemperatureInput("t")
	require.NoError(t, err)
	v, err := ti.ReadTemperature(context.Background())
	require.NoError(t, err)
	require.InDelta(t, 22, v, 1)
	require.NoError(t, s.Close())
}
