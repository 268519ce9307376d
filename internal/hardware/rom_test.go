package hardware

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A DS18B20 the kernel lists as 28-0000075b4a2f has the ROM code 0xee0000075b4a2f28 that
// periph's 1-wire search reports: family in the low byte, CRC in the top one.
func TestParseROM(t *testing.T) {
	addr, err := ParseROM("28-0000075b4a2f")
	require.NoError(t, err)
	assert.Equal(t, uint64(0xee0000075b4a2f28), addr)
	assert.Equal(t, uint64(0x0000075b4a2f), (addr>>8)&0xffffffffffff)
	assert.Equal(t, byte(addr>>56), romCRC(addr), "the CRC byte covers the other seven")
	assert.Equal(t, "28-0000075b4a2f", FormatROM(addr))

	// Maxim application note 27 example: ROM 02 1C B8 01 00 00 00 has CRC A2.
	assert.Equal(t, byte(0xa2), romCRC(0x000000_01b81c02))

	for _, bad := range []string{"", "28", "28_0000075b4a2f", "zz-0000075b4a2f", "28-00000g5b4a2f", "28-0000075b4a2f0"} {
		_, err := ParseROM(bad)
		assert.Error(t, err, bad)
	}
}

func FuzzParseROM(f *testing.F) {
	for _, s := range []string{"28-0000075b4a2f", "10-000801b59fbc", "28-FFFFFFFFFFFF", "", "28-", "-0-000000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, err := ParseROM(s)
		if err != nil {
			return
		}
		assert.Equal(t, strings.ToLower(s), FormatROM(addr), "a parsed name formats back to itself")
		assert.Equal(t, byte(addr>>56), romCRC(addr))
	})
}
