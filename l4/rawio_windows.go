//go:build windows

package l4

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// The datagram reads (dgram_other.go) run inside RawConn.Read, which on
// Windows calls its function first and, while that reports EAGAIN, waits
// for a zero-byte peek to complete: the function must not block. Go's
// sockets here are blocking (overlapped) ones, so each read first puts
// the socket in non-blocking mode (FIONBIO), which leaves Go's own
// overlapped calls on it as they were (as libuv's UDP does), and reads
// without an overlapped structure: WSAEWOULDBLOCK is EAGAIN.

// fionbio is _IOW('f', 126, u_long): a socket's non-blocking mode.
const fionbio = windows.IOC_IN | 4<<16 | 'f'<<8 | 126

func nonblock(s syscall.Handle) error {
	on := uint32(1)
	var ret uint32
	return syscall.WSAIoctl(s, fionbio, (*byte)(unsafe.Pointer(&on)), uint32(unsafe.Sizeof(on)), nil, 0, &ret, nil, 0)
}

// wsaResult maps a non-blocking receive's error to the Unix one's: EAGAIN
// when nothing is queued; a datagram larger than p is cut to p, without
// an error, as recvfrom does on Unix.
func wsaResult(n uint32, p []byte, err error) (int, error) {
	switch err {
	case nil:
		return int(n), nil
	case windows.WSAEWOULDBLOCK:
		return 0, syscall.EAGAIN
	case windows.WSAEMSGSIZE:
		return len(p), nil
	}
	return 0, err
}

// readFD reads one datagram from the connected socket fd without waiting.
func readFD(fd uintptr, p []byte) (int, error) {
	s := syscall.Handle(fd)
	if err := nonblock(s); err != nil {
		return 0, err
	}
	buf := syscall.WSABuf{Len: uint32(len(p)), Buf: unsafe.SliceData(p)}
	var n, flags uint32
	return wsaResult(n, p, syscall.WSARecv(s, &buf, 1, &n, &flags, nil, nil))
}

// recvfromFD reads one datagram and its source from the socket fd without
// waiting.
func recvfromFD(fd uintptr, p []byte) (int, syscall.Sockaddr, error) {
	s := syscall.Handle(fd)
	if err := nonblock(s); err != nil {
		return 0, nil, err
	}
	buf := syscall.WSABuf{Len: uint32(len(p)), Buf: unsafe.SliceData(p)}
	var n, flags uint32
	var rsa syscall.RawSockaddrAny
	l := int32(unsafe.Sizeof(rsa))
	got, err := wsaResult(n, p, syscall.WSARecvFrom(s, &buf, 1, &n, &flags, &rsa, &l, nil, nil))
	if err != nil {
		return 0, nil, err
	}
	sa, err := rsa.Sockaddr()
	if err != nil {
		return 0, nil, err
	}
	return got, sa, nil
}
