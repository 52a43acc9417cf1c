package l7

import (
	"syscall"
	"unsafe"
)

// peekIdle reports whether an idle keep-alive connection may carry the next
// request: the backend has neither closed it nor sent anything unasked
// (bytes that would be read as the next response: a desync). One
// non-blocking MSG_PEEK recv; net/http learns the same from the read
// goroutine it keeps on every idle connection. The raw connection and the
// callback are made once per connection, so a check allocates nothing.
func peekIdle(c *h1Conn) bool {
	if c.raw == nil {
		sc, ok := c.nc.(syscall.Conn)
		if !ok {
			return true
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		c.raw = raw
		c.peekFn = func(fd uintptr) {
			n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			// EAGAIN: nothing to read, the usual idle state. n > 0: bytes
			// nobody asked for; n == 0 without error: the backend closed.
			c.peekOK = errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK
			_ = n
		}
	}
	c.peekOK = false
	if err := c.raw.Control(c.peekFn); err != nil {
		return false
	}
	return c.peekOK
}
