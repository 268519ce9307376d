package mcp3008

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"
)

func TestReadChannels(t *testing.T) {
	port := &spitest.Playback{Playback: conntest.Playback{Ops: []conntest.IO{
		// Channel 0: code 0x3ff (full scale).
		{W: []byte{0x01, 0x80, 0x00}, R: []byte{0xff, 0xfb, 0xff}},
		// Channel 5: code 0x200; the don't-care bits above the code are ignored.
		{W: []byte{0x01, 0xd0, 0x00}, R: []byte{0x55, 0xfe, 0x00}},
	}}}
	c, err := port.Connect(physic.MegaHertz, spi.Mode0, 8)
	require.NoError(t, err)
	d := New(c, 3.3)
	code, err := d.ReadRaw(0)
	require.NoError(t, err)
	assert.Equal(t, uint16(0x3ff), code)
	v, err := d.ReadVoltage(5)
	require.NoError(t, err)
	assert.InDelta(t, 1.65, v, 1e-9)
	require.NoError(t, port.Close(), "every expected transfer happened")

	_, err = d.ReadRaw(8)
	require.ErrorContains(t, err, "channel 8 out of 0..7")
}

func TestReadError(t *testing.T) {
	port := &spitest.Playback{Playback: conntest.Playback{DontPanic: true}}
	c, err := port.Connect(physic.MegaHertz, spi.Mode0, 8)
	require.NoError(t, err)
	_, err = New(c, 3.3).ReadVoltage(1)
	require.ErrorContains(t, err, "mcp3008: channel 1")
}
