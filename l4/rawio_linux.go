package l4

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RawIO reads and writes a TCP socket with raw system calls, through its
// syscall.RawConn: the same descriptor lock, deadlines and poller waits as
// net.TCPConn's Read and Write, without the scheduler's bookkeeping around
// a system call that may block (entersyscall, exitsyscall). The socket is
// non-blocking, so these calls never block. That bookkeeping wakes the
// runtime's monitor thread (sysmon) at the first system call after the
// process went idle, and sysmon then polls every 20 µs for a while: under
// GOMAXPROCS=1 and bursty load, a few per cent of a proxy's CPU and a
// thread wake-up per burst, on cores the proxy shares with its peers.
//
// The calls are recvfrom and sendto (as nginx's recv and send), not read
// and write: on a socket those go through the file layer first (the file
// position lock, rw_verify_area, the security and fsnotify hooks), about
// 4 % of a proxied keep-alive request's CPU in perf. sendto's
// MSG_NOSIGNAL spares the runtime a SIGPIPE to ignore when the peer has
// gone; the write fails with EPIPE either way.
//
// Reads (and writes) from several goroutines take turns, as on the
// descriptor's own lock.
type RawIO struct {
	rc   syscall.RawConn
	conn net.Conn // for errors' addresses

	rmu     sync.Mutex // rp, rn, rerr
	rp      []byte
	rn      int
	rerr    syscall.Errno
	readFn  func(fd uintptr) bool
	wmu     sync.Mutex // wp, wn, werr
	wp      []byte
	wn      int
	werr    syscall.Errno
	writeFn func(fd uintptr) bool
}

// NewRawIO returns c's RawIO, or nil when c has no descriptor.
func NewRawIO(c *net.TCPConn) *RawIO {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	r := &RawIO{rc: rc, conn: c}
	r.readFn = r.read
	r.writeFn = r.write
	return r
}

func (r *RawIO) read(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.rp))), uintptr(len(r.rp)), 0, 0, 0)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.rn, r.rerr = int(n), e
		return true
	}
}

func (r *RawIO) write(fd uintptr) bool {
	for r.wn < len(r.wp) {
		p := r.wp[r.wn:]
		n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			r.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.werr = e
			return true
		}
	}
	return true
}

// maxRW is the most one call reads or writes (as internal/poll's).
const maxRW = 1 << 30

// Read is net.TCPConn's Read: io.EOF at the end of the stream.
func (r *RawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > maxRW {
		p = p[:maxRW]
	}
	r.rmu.Lock()
	r.rp, r.rn, r.rerr = p, 0, 0
	err := r.rc.Read(r.readFn)
	n, errno := r.rn, r.rerr
	r.rp = nil
	r.rmu.Unlock()
	switch {
	case err != nil:
		return 0, r.opError("read", err)
	case errno != 0:
		return 0, r.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write is net.TCPConn's Write: all of p, or an error.
func (r *RawIO) Write(p []byte) (int, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	var total int
	for len(p) > 0 {
		chunk := p
		if len(chunk) > maxRW {
			chunk = chunk[:maxRW]
		}
		r.wp, r.wn, r.werr = chunk, 0, 0
		err := r.rc.Write(r.writeFn)
		n, errno := r.wn, r.werr
		r.wp = nil
		total += n
		switch {
		case err != nil:
			return total, r.opError("write", err)
		case errno != 0:
			return total, r.opError("write", os.NewSyscallError("write", errno))
		}
		p = p[len(chunk):]
	}
	return total, nil
}

// opError is err as net.TCPConn reports it; the poller's own errors
// (deadline, closed) come from RawConn already wrapped, and are unwrapped
// first so that they read as a plain Read's or Write's.
func (r *RawIO) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: r.conn.LocalAddr(), Addr: r.conn.RemoteAddr(), Err: err}
}
