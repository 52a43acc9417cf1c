//go:build unix && !linux

package l4

import "syscall"

// readFD reads one datagram from the non-blocking connected socket fd (Go
// makes its sockets non-blocking on Unix): EAGAIN when none is queued.
func readFD(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }

// recvfromFD reads one datagram and its source from the non-blocking
// socket fd: EAGAIN when none is queued.
func recvfromFD(fd uintptr, p []byte) (int, syscall.Sockaddr, error) {
	return syscall.Recvfrom(int(fd), p, 0)
}
