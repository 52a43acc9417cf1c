//go:build !linux

package l4

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// sysBatch needs nothing where a read takes one datagram.
type sysBatch struct{}

func (*sysBatch) init(*dgramBatch, bool) {}

// sendDontWait is 0: a write waits for room, as a plain Write would.
const sendDontWait = 0

// recvBatch reads one datagram from the non-blocking socket fd into b:
// there is no recvmmsg here. It returns EAGAIN if none is queued.
func recvBatch(fd uintptr, b *dgramBatch) error {
	n, sa, err := recvfromFD(fd, b.bufs[0][headRoom:])
	if err != nil {
		b.n = 0
		return err
	}
	b.n, b.size[0] = 1, n
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		b.from[0] = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *syscall.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.ZoneId), 10))
		}
		b.from[0] = netip.AddrPortFrom(a, uint16(sa.Port))
	default:
		b.from[0] = netip.AddrPort{}
	}
	return nil
}

// newBatchWriter has nothing to add to x/net's writers here.
func newBatchWriter(*net.UDPConn, bool) (batchWriter, error) { return nil, errNoBatchWriter }

var errNoBatchWriter = errors.New("no sendmmsg")

// zoneNames: replies go through package net (see replyAddr).
const zoneNames = true

// readNonblock reads one datagram from the non-blocking socket fd.
func readNonblock(fd uintptr, p []byte) (int, error) { return readFD(fd, p) }

const gsoControlSpace = 0

func gsoSupported(*net.UDPConn) bool { return false }

func gsoControl([]byte, int) []byte { return nil }

func gsoRefused(error) bool { return false }
