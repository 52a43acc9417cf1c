//go:build !linux

package l4

import "net"

// RawIO is Linux's raw-system-call I/O (rawio_linux.go); elsewhere there
// is none and callers use the connection.
type RawIO struct{}

// NewRawIO returns nil here.
func NewRawIO(*net.TCPConn) *RawIO { return nil }

func (*RawIO) Read([]byte) (int, error)  { panic("l4: RawIO off Linux") }
func (*RawIO) Write([]byte) (int, error) { panic("l4: RawIO off Linux") }
