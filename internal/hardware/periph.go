package hardware

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/devices/v3/ads1x15"
	"periph.io/x/devices/v3/mcp9808"

	"github.com/fieldcol/fieldcol/internal/hardware/mcp3008"
)

// periphHost holds what the periph backend opened in this process: each bus once, each
// chip once, each pin once.
type periphHost struct {
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
}

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

func newPeriphHost(gpio gpioEnv) (*periphHost, error) {
	drivers, err := initHost()
	if err != nil {
		return nil, fmt.Errorf("backend: periph host.Init failed (is this a Raspberry Pi with I2C/SPI/1-wire enabled?): %w", err)
	}
	return &periphHost{
		i2c: map[string]*i2cBus{}, spi: map[string]*spiBus{},
		ads: map[string]*ads1x15.Dev{}, pins: map[string]*periphPin{}, drivers: drivers,
		gpio: newGPIOHost(gpio),
	}, nil
}

// close releases everything, pins first so that outputs go low before the buses go away.
func (h *periphHost) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.closers) - 1; i >= 0; i-- {
		_ = h.closers[i]()
	}
	h.closers = nil
}

func (h *periphHost) i2cBus(name string) (*i2cBus, error) {
	name = busOr(name, "1")
	if b, ok := h.i2c[name]; ok {
		return b, nil
	}
	bc, err := i2creg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening I2C bus %q: %w%s", name, err, accessHint(err, "/dev/i2c-*", "i2c"))
	}
	b := &i2cBus{serialBus: newSerialBus("i2c" + name), bus: bc}
	h.i2c[name] = b
	h.closers = append(h.closers, bc.Close, b.close)
	return b, nil
}

func (h *periphHost) spiPort(name string, vref float64) (*spiBus, error) {
	name = busOr(name, "SPI0.0")
	if p, ok := h.spi[name]; ok {
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
	p := &spiBus{serialBus: newSerialBus(spiPortID(name)), port: pc, conn: c, adc: mcp3008.New(c, vref), vref: vref}
	h.spi[name] = p
	h.closers = append(h.closers, pc.Close, p.close)
	return p, nil
}

// open opens one device and returns its raw implementation and, for outputs, the closer
// that drives it safe.
func (h *periphHost) open(dc *DeviceConfig, info Info) (any, func() error, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	impl, closer, err := h.openLocked(dc)
	if err != nil {
		return nil, nil, fmt.Errorf("device %q (%s at %s): %w (%s)", dc.Name, dc.Kind, info.ID, err, h.drivers.Summary())
	}
	return impl, closer, nil
}

func (h *periphHost) openLocked(dc *DeviceConfig) (any, func() error, error) {
	switch dc.Kind {
	case KindADS1115, KindADS1015:
		return h.openADS(dc)
	case KindMCP3008:
		vref := dc.FullScale
		if vref == 0 {
			vref = 3.3
		}
		p, err := h.spiPort(dc.Bus, vref)
		if err != nil {
			return nil, nil, err
		}
		return newMCPChannel(p, dc.Channel), nil, nil
	case KindMCP9808:
		b, err := h.i2cBus(dc.Bus)
		if err != nil {
			return nil, nil, err
		}
		var d *mcp9808.Dev
		addr := uint16(addrOr(dc.Address, 0x18))
		err = b.once(DefaultTimeout, func() error {
			if err := checkMCP9808(&i2c.Dev{Bus: b.bus, Addr: addr}); err != nil {
				return err
			}
			var err error
			d, err = mcp9808.New(b.bus, mcp9808Opts(dc, addr))
			return err
		})
		if err != nil {
			return nil, nil, fmt.Errorf("no MCP9808 answering: %w", err)
		}
		return newSenseTemp(b.serialBus, d.Sense), nil, nil
	case KindDS18B20:
		// Through the kernel's w1_therm driver (w1therm.go), which gives a parasite-powered
		// sensor its strong pull-up and checks the CRC, on a worker of the sensor's own.
		t, err := openW1Therm(dc)
		if err != nil {
			return nil, nil, err
		}
		h.closers = append(h.closers, t.close)
		return t, nil, nil
	case KindSoCThermal:
		// A sysfs file read has no bus to share: each zone gets its own worker, so a stuck
		// read is still bounded by the timeout.
		zone := newSerialBus("sysfs")
		t, err := openSoCThermal(dc.Channel, zone)
		if err != nil {
			_ = zone.close()
			return nil, nil, err
		}
		h.closers = append(h.closers, zone.close)
		return t, nil, nil
	default:
		return h.openPin(dc)
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

func (h *periphHost) openADS(dc *DeviceConfig) (any, func() error, error) {
	b, err := h.i2cBus(dc.Bus)
	if err != nil {
		return nil, nil, err
	}
	addr := addrOr(dc.Address, uint64(ads1x15.I2CAddr))
	key := fmt.Sprintf("%s/%#x", busOr(dc.Bus, "1"), addr)
	adc, ok := h.ads[key]
	if !ok {
		opts := &ads1x15.Opts{I2cAddress: uint16(addr)}
		if dc.Kind == KindADS1015 {
			adc, err = ads1x15.NewADS1015(b.bus, opts)
		} else {
			adc, err = ads1x15.NewADS1115(b.bus, opts)
		}
		if err != nil {
			return nil, nil, err
		}
		h.ads[key] = adc
	}
	full := dc.FullScale
	if full == 0 {
		full = 4.096
	}
	rate := dc.DataRate
	if rate == 0 {
		rate = 860
		if dc.Kind == KindADS1015 {
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
	a.op = newBusOp(b.serialBus, a.transfer)
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

func (a *adsChannel) read(ctx context.Context, timeout time.Duration) (float64, error) {
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

func (m *mcpChannel) read(ctx context.Context, timeout time.Duration) (float64, error) {
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

func (s *senseTemp) read(ctx context.Context, timeout time.Duration) (float64, error) {
	if err := s.op.do(ctx, timeout); err != nil {
		return 0, err
	}
	return s.env.Temperature.Celsius(), nil
}
