//go:build !unix

package sdcard

import "errors"

// DeviceOf is not known where stat has no device numbers; fieldcol ships for Linux.
func DeviceOf(string) (major, minor uint32, err error) { return 0, 0, errors.ErrUnsupported }
