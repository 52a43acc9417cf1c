package l4

import (
	"bytes"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestRecvBatchConnected: a connected socket's batch (newConnBatch, as the
// flows' reads use) takes each queued datagram whole and in order, and
// on Linux reports no sender: its read asks the kernel for none (recvfrom,
// elsewhere, reports it all the same).
func TestRecvBatchConnected(t *testing.T) {
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tx := udpClient(t, rx.LocalAddr().String())
	la := rx.LocalAddr().(*net.UDPAddr)
	rx.Close()
	conn, err := net.DialUDP("udp", la, tx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const sent = batchSize + 3
	for i := range sent {
		if _, err := tx.Write(bytes.Repeat([]byte{byte(i)}, 100*i)); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	b := newConnBatch()
	got := 0
	for got < sent {
		var rerr error
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		err := rc.Read(func(fd uintptr) bool {
			rerr = recvBatch(fd, b)
			return rerr != syscall.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			t.Fatalf("after %d datagrams: %v", got, err)
		}
		for i := range b.n {
			if p := b.payload(i); !bytes.Equal(p, bytes.Repeat([]byte{byte(got)}, 100*got)) {
				t.Fatalf("datagram %d: got %d bytes", got, len(p))
			}
			if runtime.GOOS == "linux" && b.from[i] != (netip.AddrPort{}) {
				t.Fatalf("from %v: the read asked for the sender", b.from[i])
			}
			got++
		}
	}
}
