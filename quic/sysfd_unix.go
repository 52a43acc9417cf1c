//go:build unix

package quic

// sysfd is a RawConn's descriptor as package syscall's socket calls take
// it here.
func sysfd(fd uintptr) int { return int(fd) }
