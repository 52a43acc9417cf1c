//go:build windows

package quic

import "syscall"

// sysfd is a RawConn's descriptor as package syscall's socket calls take
// it here: a handle.
func sysfd(fd uintptr) syscall.Handle { return syscall.Handle(fd) }
