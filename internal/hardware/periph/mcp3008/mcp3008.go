// Package mcp3008 is a small driver for the MCP3008 8-channel 10-bit ADC over SPI, which
// periph.io/x/devices does not have. It takes an spi.Conn, so spitest drives it in tests.
package mcp3008

import (
	"errors"
	"fmt"

	"periph.io/x/conn/v3/spi"
)

// Channels is the number of single-ended channels.
const Channels = 8

// MaxCode is the highest conversion result (10 bits).
const MaxCode = 1<<10 - 1

// ErrNullBit is returned when the null bit that precedes every result is not 0: nothing
// drives MISO, so it floats or reads its pull-up. With a pull-down on MISO (the Pi's
// default on GPIO9) a missing chip reads as all zeros, which no check on the data can
// tell from 0 V: the README asks for a pull-up there.
var ErrNullBit = errors.New("the null bit before the result is 1: no MCP3008 drives MISO on this chip select")

// Dev is an MCP3008 on one SPI chip select.
type Dev struct {
	c    spi.Conn
	vref float64
	w, r [3]byte
}

// New returns a driver for the MCP3008 on c whose reference voltage is vref volts. The SPI
// connection must be mode 0 with 8-bit words, at most 1.35 MHz at 3.3 V.
func New(c spi.Conn, vref float64) *Dev {
	return &Dev{c: c, vref: vref}
}

// ReadRaw converts a single-ended channel (0..7) and returns the 10-bit code. Dev is not
// safe for concurrent use: the caller serializes the bus.
func (d *Dev) ReadRaw(channel int) (uint16, error) {
	if channel < 0 || channel >= Channels {
		return 0, fmt.Errorf("mcp3008: channel %d out of 0..7", channel)
	}
	// Start bit, then single-ended mode and the channel in the next byte's high nibble; the
	// chip answers in byte 1 with the null bit (bit 2, always 0) and B9..B8, then B7..B0
	// in byte 2 (datasheet figure 6-1).
	d.w = [3]byte{0x01, 0x80 | byte(channel)<<4, 0x00}
	if err := d.c.Tx(d.w[:], d.r[:]); err != nil {
		return 0, fmt.Errorf("mcp3008: channel %d: %w", channel, err)
	}
	if d.r[1]&0x04 != 0 {
		return 0, fmt.Errorf("mcp3008: channel %d: %w", channel, ErrNullBit)
	}
	return uint16(d.r[1]&0x03)<<8 | uint16(d.r[2]), nil
}

// ReadVoltage converts a channel and returns volts.
func (d *Dev) ReadVoltage(channel int) (float64, error) {
	code, err := d.ReadRaw(channel)
	if err != nil {
		return 0, err
	}
	return float64(code) * d.vref / (MaxCode + 1), nil
}
