package hardware

import (
	"fmt"
	"strconv"
)

// ParseROM parses a 1-wire device name as the kernel's w1 driver shows it under
// /sys/bus/w1/devices ("28-0000075b4a2f": family code, dash, 48-bit serial in hex) into
// the 64-bit ROM code periph addresses the device with, CRC byte included. Operators copy
// that name from the Pi; nobody knows the CRC by heart.
func ParseROM(name string) (uint64, error) {
	if len(name) != 15 || name[2] != '-' {
		return 0, fmt.Errorf("%q is not a 1-wire device name like 28-0000075b4a2f", name)
	}
	family, err := strconv.ParseUint(name[:2], 16, 8)
	if err != nil {
		return 0, fmt.Errorf("%q: family code: %w", name, err)
	}
	serial, err := strconv.ParseUint(name[3:], 16, 48)
	if err != nil {
		return 0, fmt.Errorf("%q: serial: %w", name, err)
	}
	addr := serial<<8 | family
	return addr | uint64(romCRC(addr))<<56, nil
}

// FormatROM is the inverse of ParseROM: the kernel's name of a ROM code.
func FormatROM(addr uint64) string {
	return fmt.Sprintf("%02x-%012x", addr&0xff, (addr>>8)&0xffffffffffff)
}

// romCRC is the Dallas/Maxim CRC-8 (x^8 + x^5 + x^4 + 1, reflected) of the ROM code's
// first seven bytes, least significant byte first as they go on the wire.
func romCRC(addr uint64) byte {
	var crc byte
	for i := 0; i < 7; i++ {
		b := byte(addr >> (8 * i))
		for bit := 0; bit < 8; bit++ {
			mix := (crc ^ b) & 1
			crc >>= 1
			if mix != 0 {
				crc ^= 0x8c
			}
			b >>= 1
		}
	}
	return crc
}
