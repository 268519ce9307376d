// Package hardware is the device layer shared by the hardware receiver and the controlloop
// extension. It gives one small set of interfaces (AnalogInput, TemperatureInput,
// DigitalInput, DigitalOutput, DutyOutput) over two backends:
//
//   - "periph": real Raspberry Pi hardware through periph.io (ADS1115/ADS1015 and MCP9808 on
//     I2C, MCP3008 on SPI, DS18B20 on 1-wire, GPIO pins, the SoC thermal zone in sysfs);
//   - "sim": a seeded, deterministic plant (heater with first-order dynamics and dead time,
//     motor with a first-order speed response, a door switch and a flow meter) whose
//     actuators drive what its sensors read, so closed-loop control works without hardware.
//
// Buses and the sim plant are process-wide: a Registry opens each bus once and serializes
// every transfer on it, however many sessions (receiver, control loop) use it. Faults
// (stuck, nan, out_of_range, bus_timeout, slow_read, disconnected) are scripted in the sim
// configuration or injected at run time through Faults, on either backend.
package hardware
