package l4

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysBatch is the recvmmsg vector of a dgramBatch. Its pointers are set
// once, into the batch's own buffers; each read resets only the lengths the
// kernel writes back.
//
// The read is recvmmsg by hand: x/net's ReadBatch allocates a net.Addr per
// datagram and blocks inside its own RawConn.Read, so it cannot take a
// pooled batch only once the socket is readable (see UDPServer.reply).
type sysBatch struct {
	hdrs  [batchSize]unix.Mmsghdr
	iovs  [batchSize]unix.Iovec
	names [batchSize]unix.RawSockaddrInet6
	peers bool // the headers ask for the senders' addresses
}

// init points the headers at b's buffers and, with peers, at names: a
// connected socket's reads leave the address out, which spares the kernel
// filling it in and copying it out for each datagram.
func (s *sysBatch) init(b *dgramBatch, peers bool) {
	s.peers = peers
	for i := range s.hdrs {
		s.iovs[i].Base = &b.bufs[i][headRoom]
		s.iovs[i].SetLen(maxDatagram)
		h := &s.hdrs[i].Hdr
		if peers {
			h.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		}
		h.Iov = &s.iovs[i]
		h.SetIovlen(1)
	}
}

// sendDontWait makes a write toward a backend fail at once (EAGAIN) rather
// than wait for room: the listener's loop must not hold every client's
// datagrams behind one backend socket's full send buffer.
const sendDontWait = unix.MSG_DONTWAIT

// recvBatch reads the datagrams queued on the non-blocking socket fd into
// b, at most batchSize, in one recvmmsg; it returns EAGAIN if none is.
func recvBatch(fd uintptr, b *dgramBatch) error {
	s := &b.sys
	namelen := uint32(0)
	if s.peers {
		namelen = unix.SizeofSockaddrInet6
	}
	for i := range s.hdrs {
		s.hdrs[i].Hdr.Namelen = namelen
		s.hdrs[i].Hdr.Flags = 0
		s.hdrs[i].Len = 0
	}
	for {
		// Raw: a read that cannot block needs none of the scheduler's
		// syscall bookkeeping (see mmsgConn).
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), batchSize,
			unix.MSG_DONTWAIT, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			b.n = 0
			return e
		}
		b.n = int(r)
		break
	}
	for i := range b.n {
		b.size[i] = int(s.hdrs[i].Len)
		if s.peers {
			b.from[i] = sockaddrAddrPort(&s.names[i], s.hdrs[i].Hdr.Namelen)
		}
	}
	return nil
}

// readNonblock reads one datagram from the non-blocking socket fd, as a raw
// system call like recvBatch's.
func readNonblock(fd uintptr, p []byte) (int, error) {
	for {
		r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// sockaddrAddrPort decodes a received source address as ReadFromUDPAddrPort
// would; a scope is kept as a numeric zone, which mmsgConn takes back as
// the scope.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	switch {
	case sa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case sa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, port)
	}
	return netip.AddrPort{}
}

// gsoControlSpace bounds unix.CmsgSpace(2), the UDP_SEGMENT message.
const gsoControlSpace = 24

// gsoSupported reports whether the kernel takes UDP_SEGMENT on c (4.18+).
func gsoSupported(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		_, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	}); err != nil {
		return false
	}
	return gerr == nil
}

// gsoControl writes into buf the control message that has the kernel split
// a message's payload into datagrams of size bytes.
func gsoControl(buf []byte, size int) []byte {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&buf[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(buf[unix.CmsgLen(0):], uint16(size))
	return buf[:unix.CmsgSpace(2)]
}

// gsoRefused reports whether err is the kernel refusing a GSO message as
// such: no checksum offload on the route's device (EIO), or a segment over
// the path MTU (EINVAL, EMSGSIZE). Its datagrams may go one by one.
func gsoRefused(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EMSGSIZE)
}
