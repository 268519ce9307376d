// Package hardwaretest holds test doubles for internal/hardware, as periph's conn/v3 has
// gpiotest and i2ctest beside its interfaces: devices that record every write and serve
// scripted reads, and a clock that moves only when told.
package hardwaretest
