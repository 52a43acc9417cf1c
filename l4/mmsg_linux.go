package l4

import (
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// mmsgConn is the batchWriter of a UDP socket on Linux: sendmmsg by hand,
// issued as a raw system call. The socket is non-blocking, so the call
// never blocks, and the scheduler's bookkeeping around a system call that
// might (entersyscall) only costs: under GOMAXPROCS=1 with bursts of
// datagrams, each burst's first such call woke the runtime's monitor
// thread from its idle sleep, about a seventh of the relay's CPU. A write
// that must wait for room (flags without MSG_DONTWAIT) waits in the
// poller, as x/net's WriteBatch does.
type mmsgConn struct {
	rc syscall.RawConn
	v6 bool // an AF_INET6 socket: every address goes as a sockaddr_in6
}

func newBatchWriter(c *net.UDPConn, v6 bool) (batchWriter, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &mmsgConn{rc: rc, v6: v6}, nil
}

// mmsgScratch holds one write's headers. Taken from a pool: the listening
// socket's writer serves every flow's goroutine at once.
type mmsgScratch struct {
	hdrs  [batchSize]unix.Mmsghdr
	iovs  [batchSize]unix.Iovec
	names [batchSize]unix.RawSockaddrInet6
	// The call, bound once so that rc.Write allocates nothing.
	n, count int
	flags    int
	errno    syscall.Errno
	call     func(fd uintptr) bool
}

var mmsgScratches = sync.Pool{New: func() any {
	s := &mmsgScratch{}
	s.call = s.send
	return s
}}

func (s *mmsgScratch) send(fd uintptr) bool {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(s.count),
			uintptr(s.flags), 0, 0)
		if e == syscall.EINTR {
			continue
		}
		s.n, s.errno = int(r), e
		return e != syscall.EAGAIN || s.flags&unix.MSG_DONTWAIT != 0
	}
}

// WriteBatch sends as many of ms as one sendmmsg takes (at most batchSize
// messages of batchSize buffers in all) and returns how many it sent, or
// -1 and the error of the first.
func (c *mmsgConn) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	s := mmsgScratches.Get().(*mmsgScratch)
	defer mmsgScratches.Put(s)
	iov, count := 0, 0
	for _, m := range ms {
		if count == batchSize || iov+len(m.Buffers) > batchSize {
			break
		}
		h := &s.hdrs[count]
		*h = unix.Mmsghdr{}
		if m.Addr != nil {
			n, err := c.sockaddr(m.Addr, &s.names[count])
			if err != nil {
				if count == 0 {
					return -1, err
				}
				break // the messages before it go; it fails first in the next call
			}
			h.Hdr.Name = (*byte)(unsafe.Pointer(&s.names[count]))
			h.Hdr.Namelen = n
		}
		if len(m.Buffers) > 0 {
			for i, b := range m.Buffers {
				s.iovs[iov+i] = unix.Iovec{}
				if len(b) > 0 {
					s.iovs[iov+i].Base = &b[0]
				}
				s.iovs[iov+i].SetLen(len(b))
			}
			h.Hdr.Iov = &s.iovs[iov]
			h.Hdr.SetIovlen(len(m.Buffers))
			iov += len(m.Buffers)
		}
		if len(m.OOB) > 0 {
			h.Hdr.Control = &m.OOB[0]
			h.Hdr.SetControllen(len(m.OOB))
		}
		count++
	}
	if count == 0 {
		return 0, nil
	}
	s.count, s.flags, s.n, s.errno = count, flags, 0, 0
	err := c.rc.Write(s.call)
	// The pooled headers must not keep the caller's buffers reachable.
	clear(s.iovs[:iov])
	clear(s.hdrs[:count])
	if err != nil {
		return -1, err
	}
	if s.errno != 0 {
		return -1, os.NewSyscallError("sendmmsg", s.errno)
	}
	return s.n, nil
}

// zoneNames: mmsgConn takes numeric zones (see replyAddr).
const zoneNames = false

var errAddrFamily = errors.New("udp: address of the wrong family for the socket")

// sockaddr encodes a, a *net.UDPAddr, into sa for the socket's family and
// returns its length.
func (c *mmsgConn) sockaddr(a net.Addr, sa *unix.RawSockaddrInet6) (uint32, error) {
	u, ok := a.(*net.UDPAddr)
	if !ok {
		return 0, errAddrFamily
	}
	port := [2]byte{byte(u.Port >> 8), byte(u.Port)}
	if !c.v6 {
		ip4 := u.IP.To4()
		if ip4 == nil {
			return 0, errAddrFamily
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET}
		*(*[2]byte)(unsafe.Pointer(&sa4.Port)) = port
		copy(sa4.Addr[:], ip4)
		return unix.SizeofSockaddrInet4, nil
	}
	ip16 := u.IP.To16()
	if ip16 == nil {
		return 0, errAddrFamily
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6}
	*(*[2]byte)(unsafe.Pointer(&sa.Port)) = port
	copy(sa.Addr[:], ip16)
	if u.Zone != "" {
		sa.Scope_id = zoneIndex(u.Zone)
	}
	return unix.SizeofSockaddrInet6, nil
}

// zoneIndex is the interface index of zone: a number, as recvBatch reports
// a scope and replyAddr keeps it here, or a name (looked up each time).
func zoneIndex(zone string) uint32 {
	if i, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(i)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}
