//go:build !unix

package queue

import "os"

// lockDir is a no-op where flock does not exist; fieldcol ships for Linux.
func lockDir(string) (*os.File, error) { return nil, nil }
