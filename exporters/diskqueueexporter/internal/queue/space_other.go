//go:build !unix

package queue

import "errors"

// FreeBytes is not known where statfs does not exist; fieldcol ships for Linux.
func FreeBytes(string) (int64, error) { return 0, errors.ErrUnsupported }
