package hardware

import (
	"fmt"
	"time"
)

// deviceID returns the hw.id of a device: its hardware address.
func deviceID(dc *DeviceConfig) string {
	switch dc.Kind {
	case KindADS1115, KindADS1015:
		return fmt.Sprintf("i2c%s/%#02x/ch%d", busOr(dc.Bus, "1"), addrOr(dc.Address, 0x48), dc.Channel)
	case KindMCP9808:
		return fmt.Sprintf("i2c%s/%#02x", busOr(dc.Bus, "1"), addrOr(dc.Address, 0x18))
	case KindMCP3008:
		return fmt.Sprintf("%s/ch%d", spiPortID(dc.Bus), dc.Channel)
	case KindDS18B20:
		addr := dc.oneWireAddress()
		if addr == 0 {
			addr = 0x28 // a sim sensor without an address still reads as a DS18B20
		}
		return fmt.Sprintf("onewire%s/%s", busOr(dc.Bus, "1"), FormatROM(addr))
	case KindSoCThermal:
		return fmt.Sprintf("thermal_zone%d", dc.Channel)
	default:
		if dc.Pin == "" {
			return dc.Name
		}
		return dc.Pin
	}
}

func busOr(bus, def string) string {
	if bus == "" {
		return def
	}
	return bus
}

func addrOr(a, def uint64) uint64 {
	if a == 0 {
		return def
	}
	return a
}

// spiPort returns the periph name of an SPI port, lower-cased for hw.id ("spi0.0").
func spiPortID(bus string) string {
	if bus == "" {
		return "spi0.0"
	}
	out := []byte(bus)
	for i, c := range out {
		if c >= 'A' && c <= 'Z' {
			out[i] = c + 'a' - 'A'
		}
	}
	return string(out)
}

// openDevice opens one device on the registry's backend. Callers hold r.mu.
func (r *Registry) openDevice(dc *DeviceConfig, defTimeout time.Duration, s *Session) (Device, error) {
	f := &front{
		info:    Info{Name: dc.Name, ID: deviceID(dc), Kind: dc.Kind, BusType: dc.Kind.BusType()},
		cfg:     *dc,
		timeout: deviceTimeout(dc, defTimeout),
		slot:    r.slot(dc.Name),
		clock:   r.clock,
	}
	var impl any
	switch r.backend {
	case BackendSim:
		sd := newSimDevice(r.plant, r.clock, &r.simLive, dc)
		if dc.Kind.Role() == RoleDigitalOutput || dc.Kind.Role() == RoleDutyOutput {
			s.closers = append(s.closers, sd.safe)
		}
		impl = sd
	case BackendPeriph:
		pd, closer, err := r.periph.open(dc, f.info)
		if err != nil {
			return nil, err
		}
		if closer != nil {
			s.closers = append(s.closers, closer)
		}
		impl = pd
	}
	dev, err := wrap(f, impl)
	if err != nil {
		return nil, err
	}
	r.opened[dc.Name]++
	return dev, nil
}

// deviceTimeout is the per-read timeout of a device: its own, or the component default
// raised to what a 1-wire read needs (its conversion plus w1ReadMargin).
func deviceTimeout(dc *DeviceConfig, def time.Duration) time.Duration {
	t := dc.timeout(def)
	if dc.Timeout == 0 {
		t = max(t, w1ReadTimeout(dc))
	}
	return t
}

// ReadTimeout is the per-read timeout dc gets in a component whose default timeout is def
// (0 = DefaultTimeout): its own timeout, or def raised to a 1-wire sensor's conversion
// plus 100ms for the bus.
func ReadTimeout(dc DeviceConfig, def time.Duration) time.Duration { return deviceTimeout(&dc, def) }
