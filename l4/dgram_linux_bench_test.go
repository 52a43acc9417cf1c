package l4

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// BenchmarkRecvBatch measures the relay's batch read alone: each op has a
// client queue a full batch of datagrams on the relay's socket with one
// sendmmsg, then reads them with recvBatch; read-ns/dgram is the read's
// time alone (the send's share of ns/op is the same in every case).
// "peers" is the listener's read, which asks for the senders' addresses;
// "conn" a flow's read of its connected backend socket, which asks for
// none; "conn-named" that read asking all the same, as it did before.
func BenchmarkRecvBatch(b *testing.B) {
	for _, size := range []int{64, 1200} {
		for _, kind := range []string{"peers", "conn", "conn-named"} {
			b.Run(fmt.Sprintf("%s/%dB", kind, size), func(b *testing.B) {
				rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					b.Fatal(err)
				}
				defer rx.Close()
				_ = rx.SetReadBuffer(4 << 20)
				tx, err := net.DialUDP("udp", nil, rx.LocalAddr().(*net.UDPAddr))
				if err != nil {
					b.Fatal(err)
				}
				defer tx.Close()
				peers := kind != "conn"
				if kind != "peers" {
					// The reading socket connected, as a flow's is.
					if rx, err = connectedTo(rx, tx); err != nil {
						b.Fatal(err)
					}
					defer rx.Close()
				}
				batch := makeBatch(peers)
				w, err := newBatchWriter(tx, false)
				if err != nil {
					b.Fatal(err)
				}
				msg := make([]byte, size)
				ms := make([]ipv4.Message, batchSize)
				for i := range ms {
					ms[i].Buffers = [][]byte{msg}
				}
				rc, err := rx.SyscallConn()
				if err != nil {
					b.Fatal(err)
				}
				var rerr error
				got := 0
				read := func(fd uintptr) bool {
					rerr = recvBatch(fd, batch)
					got += batch.n
					return rerr != syscall.EAGAIN
				}
				b.ReportAllocs()
				var reading time.Duration
				for b.Loop() {
					if n, err := w.WriteBatch(ms, 0); err != nil || n != batchSize {
						b.Fatalf("sent %d: %v", n, err)
					}
					t0 := time.Now()
					for got = 0; got < batchSize; {
						if err := rc.Read(read); err != nil || rerr != nil {
							b.Fatal(err, rerr)
						}
					}
					reading += time.Since(t0)
				}
				b.ReportMetric(float64(reading.Nanoseconds())/float64(b.N*batchSize), "read-ns/dgram")
			})
		}
	}
}

// connectedTo replaces rx with a socket on the same address connected to
// tx, as a flow's socket is connected to its backend.
func connectedTo(rx, tx *net.UDPConn) (*net.UDPConn, error) {
	la := rx.LocalAddr().(*net.UDPAddr)
	rx.Close()
	c, err := net.DialUDP("udp", la, tx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(4 << 20)
	return c, nil
}
