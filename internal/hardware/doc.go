// Package hardware is the device layer shared by the hardware receiver and the controlloop
// extension. It gives one small set of interfaces (AnalogInput, TemperatureInput,
// DigitalInput, DigitalOutput, DutyOutput) over a Backend:
//
//   - internal/hardware/periph: real Raspberry Pi hardware through periph.io (ADS1115/ADS1015
//     and MCP9808 on I2C, MCP3008 on SPI, DS18B20 through the kernel's w1_therm, GPIO pins
//     through kernel line requests, the SoC thermal zone in sysfs);
//   - internal/hardware/sim: a seeded, deterministic plant (heater with first-order
//     dynamics and dead time, motor with a first-order speed response, a door switch and a
//     flow meter) whose actuators drive what its sensors read, so closed-loop control works
//     without hardware.
//
// This package holds what is the same on every backend: the configuration and its
// validation, the front every device goes through (faults, timeouts, scaling, valid range,
// stuck detection, the retried open of an absent device), error classes, health, and the
// Registry that starts a backend and shares it between sessions. It imports no backend;
// internal/hardware/backends makes a registry with both.
//
// A Registry belongs to a component instance. Every session opened on it shares its
// backend, so the receiver and the control loop that share a registry see one plant and
// never talk on a bus at the same time. Faults (stuck, nan, out_of_range, bus_timeout,
// slow_read, disconnected) are scripted in the sim configuration or injected at run time
// through Faults, on either backend.
package hardware
