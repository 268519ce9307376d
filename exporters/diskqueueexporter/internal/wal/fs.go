package wal // import "github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal"

import "github.com/fieldcol/fieldcol/internal/durable"

// File and FS are the file operations the WAL uses, internal/durable's: keeping them this
// small lets a test put a fault-injecting layer (ENOSPC, EIO, short writes, power cuts)
// under the WAL without privileges.
type (
	File = durable.File
	FS   = durable.FS
)

// OSFS is the real file system.
type OSFS = durable.OS
