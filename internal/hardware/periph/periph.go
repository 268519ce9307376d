package periph

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/devices/v3/ads1x15"
	"periph.io/x/devices/v3/mcp9808"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/periph/mcp3008"
)

// Backend is the periph backend of one registry: what it opened on this host, each bus
// once, each chip once, each pin once, and what only one device may own over every session.
type Backend struct {
	mu      sync.Mutex
	i2c     map[string]*i2cBus
	spi     map[string]*spiBus
	ads     map[string]*ads1x15.Dev
	pins    map[string]*periphPin
	gpio    *gpioHost
	closers []func() error
	// drivers is what host.Init did, attached to every open error: a pin or a bus that is
	// missing is most often a driver that failed (permissions, a bus not enabled).
	drivers DriverState
	// pinOwners and spiRefs are the claims (see Claim): a GPIO pin's device, an SPI port's
	// MCP3008 reference voltage.
	pinOwners map[string]string
	spiRefs   map[string]float64
}

var _ hardware.Backend = (*Backend)(nil)

type i2cBus struct {
	*serialBus
	bus i2c.BusCloser
}

type spiBus struct {
	*serialBus
	port spi.PortCloser
	conn spi.Conn
	adc  *mcp3008.Dev
	vref float64
}

// Options configure the periph backend.
type Options struct {
	// GPIO are the host files the backend's GPIO depends on; the zero value means a
	// Raspberry Pi's (DefaultGPIOPaths). Tests, or a probe of a temporary root, point them
	// elsewhere.
	GPIO GPIOPaths
}

// New returns the factory of the periph backend: it runs periph's host.Init and logs what
// it found, periph's drivers and how GPIO is driven.
func New(o Options) hardware.BackendFactory {
	return func(env hardware.BackendEnv) (hardware.Backend, error) {
		gpio := periphGPIO
		if o.GPIO != (GPIOPaths{}) {
			gpio.GPIOPaths = o.GPIO
		}
		drivers, err := initHost()
		if err != nil {
			return nil, fmt.Errorf("backend: periph host.Init failed (is this a Raspberry Pi with I2C/SPI/1-wire enabled?): %w", err)
		}
		b := &Backend{
			i2c: map[string]*i2cBus{}, spi: map[string]*spiBus{},
			ads: map[string]*ads1x15.Dev{}, pins: map[string]*periphPin{}, drivers: drivers,
			gpio: newGPIOHost(gpio), pinOwners: map[string]string{}, spiRefs: map[string]float64{},
		}
		if len(drivers.Failed) > 0 {
			env.Log.Warn("periph host initialised with failed drivers", zap.String("drivers", drivers.Summary()))
		} else {
			env.Log.Info("periph host initialised", zap.String("drivers", drivers.Summary()))
		}
		if b.gpio.kernelLines() {
			env.Log.Info(b.gpio.describe())
		} else {
			env.Log.Warn(b.gpio.describe())
		}
		return b, nil
	}
}

// Join accepts every session: the periph backend has no configuration of its own.
func (b *Backend) Join(*hardware.Config, *zap.Logger, bool) ([]hardware.FaultSpec, error) {
	return nil, nil
}

// Claim claims what only one device may own: a GPIO pin, and the reference voltage of the
// MCP3008 on an SPI port. A second claim, in devices or against an open session, is a
// configuration error that no retry could fix, so it fails Open before any device opens.
func (b *Backend) Claim(devices []hardware.DeviceConfig) error {
	pins := map[string]string{}
	spiRefs := map[string]float64{}
	var errs []error
	for i := range devices {
		d := &devices[i]
		key := fmt.Sprintf("devices[%d] (%s)", i, d.Name)
		switch {
		case d.Kind.BusType() == hardware.BusGPIO:
			owner, taken := b.pinOwners[d.Pin]
			if !taken {
				owner, taken = pins[d.Pin]
			}
			if taken {
				errs = append(errs, fmt.Errorf("%s.pin: pin %s is already used by another device (%q)", key, d.Pin, owner))
				continue
			}
			pins[d.Pin] = d.Name
		case d.Kind == hardware.KindMCP3008:
			port, vref := d.SPIPort(), mcp3008Vref(d)
			have, taken := b.spiRefs[port]
			if !taken {
				have, taken = spiRefs[port]
			}
			if taken && have != vref {
				errs = append(errs, fmt.Errorf("%s.full_scale: SPI port %q already has an MCP3008 with full_scale %g", key, port, have))
				continue
			}
			spiRefs[port] = vref
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for pin, name := range pins {
		b.pinOwners[pin] = name
	}
	for port, vref := range spiRefs {
		b.spiRefs[port] = vref
	}
	return nil
}

// Release gives back the pins of devices. A reference voltage stays: the SPI port may
// already be open with it.
func (b *Backend) Release(devices []hardware.DeviceConfig) {
	for i := range devices {
		if d := &devices[i]; d.Kind.BusType() == hardware.BusGPIO && b.pinOwners[d.Pin] == d.Name {
			delete(b.pinOwners, d.Pin)
		}
	}
}

// mcp3008Vref is an mcp3008 device's reference voltage: full_scale, 3.3 V when unset.
func mcp3008Vref(dc *hardware.DeviceConfig) float64 {
	if dc.FullScale == 0 {
		return 3.3
	}
	return dc.FullScale
}

// Close releases everything, pins first so that outputs go safe before the buses go away.
func (b *Backend) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.closers) - 1; i >= 0; i-- {
		_ = b.closers[i]()
	}
	b.closers = nil
}

func (b *Backend) i2cBus(name string) (*i2cBus, error) {
	if bus, ok := b.i2c[name]; ok {
		return bus, nil
	}
	bc, err := i2creg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening I2C bus %q: %w%s", name, err, accessHint(err, "/dev/i2c-*", "i2c"))
	}
	bus := &i2cBus{serialBus: newSerialBus("i2c" + name), bus: bc}
	b.i2c[name] = bus
	b.closers = append(b.closers, bc.Close, bus.close)
	return bus, nil
}

func (b *Backend) spiPort(name string, vref float64) (*spiBus, error) {
	if p, ok := b.spi[name]; ok {
		if p.vref != vref {
			return nil, fmt.Errorf("SPI port %q already has an MCP3008 with full_scale %g", name, p.vref)
		}
		return p, nil
	}
	pc, err := spireg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening SPI port %q: %w%s", name, err, accessHint(err, "/dev/spidev*", "spi"))
	}
	// 1 MHz is within the MCP3008's 1.35 MHz limit at 3.3 V.
	c, err := pc.Connect(physic.MegaHertz, spi.Mode0, 8)
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("connecting to SPI port %q: %w", name, err)
	}
	p := &spiBus{serialBus: newSerialBus(strings.ToLower(name)), port: pc, conn: c, adc: mcp3008.New(c, vref), vref: vref}
	b.spi[name] = p
	b.closers = append(b.closers, pc.Close, p.close)
	return p, nil
}

// Open opens one device and returns its raw implementation and, for outputs, the closer
// that drives it safe. The error names the device, its hw.id and periph's drivers.
func (b *Backend) Open(spec *hardware.Spec) (any, func() error, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	impl, closer, err := b.openLocked(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("device %q (%s at %s): %w (%s)", spec.Name, spec.Kind, spec.Info.ID, err, b.drivers.Summary())
	}
	return impl, closer, nil
}

func (b *Backend) openLocked(spec *hardware.Spec) (any, func() error, error) {
	dc := &spec.DeviceConfig
	switch dc.Kind {
	case hardware.KindADS1115, hardware.KindADS1015:
		return b.openADS(dc)
	case hardware.KindMCP3008:
		p, err := b.spiPort(dc.SPIPort(), mcp3008Vref(dc))
		if err != nil {
			return nil, nil, err
		}
		return newMCPChannel(p, dc.Channel), nil, nil
	case hardware.KindMCP9808:
		bus, err := b.i2cBus(dc.I2CBus())
		if err != nil {
			return nil, nil, err
		}
		var d *mcp9808.Dev
		addr := uint16(dc.I2CAddress())
		err = bus.once(hardware.DefaultTimeout, func() error {
			if err := checkMCP9808(&i2c.Dev{Bus: bus.bus, Addr: addr}); err != nil {
				return err
			}
			var err error
			d, err = mcp9808.New(bus.bus, mcp9808Opts(dc, addr))
			return err
		})
		if err != nil {
			return nil, nil, fmt.Errorf("no MCP9808 answering: %w", err)
		}
		return newSenseTemp(bus.serialBus, d.Sense), nil, nil
	case hardware.KindDS18B20:
		// Through the kernel's w1_therm driver (w1therm.go), which gives a parasite-powered
		// sensor its strong pull-up and checks the CRC, on a worker of the sensor's own.
		t, err := openW1Therm(dc)
		if err != nil {
			return nil, nil, err
		}
		b.closers = append(b.closers, t.close)
		return t, nil, nil
	case hardware.KindSoCThermal:
		// A sysfs file read has no bus to share: each zone gets its own worker, so a stuck
		// read is still bounded by the timeout.
		zone := newSerialBus("sysfs")
		t, err := openSoCThermal(dc.Channel, zone)
		if err != nil {
			_ = zone.close()
			return nil, nil, err
		}
		b.closers = append(b.closers, zone.close)
		return t, nil, nil
	default:
		return b.openPin(spec)
	}
}

// accessHint is the fix for a permission error on a device node. periph's own hint names
// group plugdev, which owns nothing on Raspberry Pi OS.
func accessHint(err error, nodes, group string) string {
	if !errors.Is(err, os.ErrPermission) && !strings.Contains(err.Error(), "permission denied") {
		return ""
	}
	return fmt.Sprintf(" (on Raspberry Pi OS %s belong to group %s: sudo adduser fieldcol %s, or ls -l %s to see the owner; ignore periph's hint about plugdev)", nodes, group, group, nodes)
}

func (b *Backend) openADS(dc *hardware.DeviceConfig) (any, func() error, error) {
	bus, err := b.i2cBus(dc.I2CBus())
	if err != nil {
		return nil, nil, err
	}
	addr := dc.I2CAddress()
	key := fmt.Sprintf("%s/%#x", dc.I2CBus(), addr)
	adc, ok := b.ads[key]
	if !ok {
		opts := &ads1x15.Opts{I2cAddress: uint16(addr)}
		if dc.Kind == hardware.KindADS1015 {
			adc, err = ads1x15.NewADS1015(bus.bus, opts)
		} else {
			adc, err = ads1x15.NewADS1115(bus.bus, opts)
		}
		if err != nil {
			return nil, nil, err
		}
		b.ads[key] = adc
	}
	full := dc.FullScale
	if full == 0 {
		full = 4.096
	}
	rate := dc.DataRate
	if rate == 0 {
		rate = 860
		if dc.Kind == hardware.KindADS1015 {
			rate = 3300
		}
	}
	// BestQuality picks the slowest data rate at or above the requested one (SaveEnergy
	// would always pick the fastest), so data_rate is what the conversion takes.
	pin, err := adc.PinForChannel(ads1x15.Channel0+ads1x15.Channel(dc.Channel),
		physic.ElectricPotential(full*float64(physic.Volt)), physic.Frequency(rate)*physic.Hertz, ads1x15.BestQuality)
	if err != nil {
		return nil, nil, fmt.Errorf("full_scale %g V / data_rate %d: %w", full, rate, err)
	}
	a := &adsChannel{pin: pin}
	a.op = newBusOp(bus.serialBus, a.transfer)
	return a, nil, nil
}

// adsChannel is one ADS1x15 channel.
type adsChannel struct {
	pin ads1x15.PinADC
	op  *busOp
	v   float64
}

func (a *adsChannel) transfer() error {
	s, err := a.pin.Read()
	a.v = float64(s.V) / float64(physic.Volt)
	return err
}

func (a *adsChannel) ReadRaw(ctx context.Context, timeout time.Duration) (float64, error) {
	if err := a.op.do(ctx, timeout); err != nil {
		return 0, err
	}
	return a.v, nil
}

// mcpChannel is one MCP3008 channel.
type mcpChannel struct {
	port    *spiBus
	channel int
	op      *busOp
	v       float64
}

func newMCPChannel(p *spiBus, channel int) *mcpChannel {
	m := &mcpChannel{port: p, channel: channel}
	m.op = newBusOp(p.serialBus, m.transfer)
	return m
}

func (m *mcpChannel) transfer() error {
	var err error
	m.v, err = m.port.adc.ReadVoltage(m.channel)
	if errors.Is(err, mcp3008.ErrNullBit) {
		// Nothing answers on the chip select: a nack, as an absent I2C chip is.
		return fmt.Errorf("%w (%w)", err, syscall.ENXIO)
	}
	return err
}

func (m *mcpChannel) ReadRaw(ctx context.Context, timeout time.Duration) (float64, error) {
	if err := m.op.do(ctx, timeout); err != nil {
		return 0, err
	}
	return m.v, nil
}

// senseTemp is a temperature sensor read through physic.Env.
type senseTemp struct {
	sense func(*physic.Env) error
	op    *busOp
	env   physic.Env
}

func newSenseTemp(b *serialBus, sense func(*physic.Env) error) *senseTemp {
	s := &senseTemp{sense: sense}
	s.op = newBusOp(b, s.transfer)
	return s
}

func (s *senseTemp) transfer() error {
	s.env = physic.Env{}
	return s.sense(&s.env)
}

func (s *senseTemp) ReadRaw(ctx context.Context, timeout time.Duration) (float64, error) {
	if err := s.op.do(ctx, timeout); err != nil {
		return 0, err
	}
	return s.env.Temperature.Celsius(), nil
}
