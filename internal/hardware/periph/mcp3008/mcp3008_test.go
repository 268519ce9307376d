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
		// Channel 5: code 0x200; the high-impedance bits above the null bit are ignored.
		{W: []byte{0x01, 0xd0, 0x00}, R: []byte{0x55, 0xfa, 0x00}},
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

// A chip select with no MCP3008 behind it and a pull-up on MISO reads all ones: the null
// bit gives it away instead of a full-scale reading.
func TestReadNoChip(t *testing.T) {
	port := &spitest.Playback{Playback: conntest.Playback{Ops: []conntest.IO{
		{W: []byte{0x01, 0x80, 0x00}, R: []byte{0xff, 0xff, 0xff}},
		{W: []byte{0x01, 0x90, 0x00}, R: []byte{0xff, 0xfe, 0xff}},
	}}}
	c, err := port.Connect(physic.MegaHertz, spi.Mode0, 8)
	require.NoError(t, err)
	d := New(c, 3.3)
	for ch := 0; ch < 2; ch++ {
		_, err = d.ReadVoltage(ch)
		require.ErrorIs(t, err, ErrNullBit)
	}
}

// Every reply either fails the null-bit check or decodes to a code within 10 bits, and the
// decoded code ignores the bits the chip does not drive.
func FuzzReadRaw(f *testing.F) {
	f.Add(byte(0x00), byte(0xfb), byte(0xff))
	f.Add(byte(0xff), byte(0xff), byte(0xff))
	f.Fuzz(func(t *testing.T, r0, r1, r2 byte) {
		port := &spitest.Playback{Playback: conntest.Playback{Ops: []conntest.IO{
			{W: []byte{0x01, 0x80, 0x00}, R: []byte{r0, r1, r2}},
		}}}
		c, err := port.Connect(physic.MegaHertz, spi.Mode0, 8)
		require.NoError(t, err)
		code, err := New(c, 3.3).ReadRaw(0)
		if r1&0x04 != 0 {
			require.ErrorIs(t, err, ErrNullBit)
			return
		}
		require.NoError(t, err)
		assert.LessOrEqual(t, code, uint16(MaxCode))
		assert.Equal(t, uint16(r1&0x03)<<8|uint16(r2), code)
	})
}
