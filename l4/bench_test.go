package l4

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// sink discards everything it receives, in large reads so that the sink is
// not what the benchmark measures (io.Discard reads 8 KiB at a time).
func sink(c net.Conn) {
	buf := make([]byte, 1<<20)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// BenchmarkTCPBulk moves 1 MiB per op from a client to a sink, directly and
// through a Proxy; compare the MB/s of the two. Through the proxy the bytes
// cross loopback twice, so about 0.5x direct is the physical ceiling.
func BenchmarkTCPBulk(b *testing.B) {
	chunk := make([]byte, 1<<20)
	run := func(b *testing.B, addr string) {
		c := dial(b, addr)
		b.SetBytes(int64(len(chunk)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, backend(b, sink)) })
	b.Run("proxy", func(b *testing.B) {
		run(b, startTCP(b, &TCPServer{Handler: &Proxy{Pool: pool(b, backend(b, sink)), Idle: time.Minute}}))
	})
}

// BenchmarkTCPConnection opens a connection, round-trips one byte and
// closes it: allocations per accepted connection through the proxy are the
// difference between the two.
func BenchmarkTCPConnection(b *testing.B) {
	run := func(b *testing.B, addr string) {
		buf := make([]byte, 1)
		b.ReportAllocs()
		for b.Loop() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			c.Write(buf)
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, backend(b, echo)) })
	b.Run("proxy", func(b *testing.B) {
		run(b, startTCP(b, &TCPServer{Handler: &Proxy{Pool: pool(b, backend(b, echo)), Idle: time.Minute}}))
	})
}

// BenchmarkUDPEcho round-trips one datagram per op to an echo backend,
// directly and through a UDPServer, at two payload sizes.
func BenchmarkUDPEcho(b *testing.B) {
	for _, size := range []int{64, 1200} {
		run := func(b *testing.B, addr string) {
			c := udpClient(b, addr)
			msg := make([]byte, size)
			buf := make([]byte, 2048)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			c.SetReadDeadline(time.Now().Add(time.Minute))
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkt/s")
		}
		b.Run("direct/"+itoa(size), func(b *testing.B) { run(b, udpEcho(b, same)) })
		b.Run("proxy/"+itoa(size), func(b *testing.B) {
			run(b, startUDP(b, &UDPServer{Pool: pool(b, udpEcho(b, same))}))
		})
	}
}

func itoa(n int) string {
	if n == 64 {
		return "64B"
	}
	return "1200B"
}

// BenchmarkUDPWindow keeps 16 datagrams in flight from each of 4 clients to
// an echo backend, directly and through a UDPServer; one op is one
// datagram echoed. Unlike BenchmarkUDPEcho's ping-pong, datagrams queue up,
// so the relay's batched reads and writes (and GSO) come into play; the
// allocs/op of the proxy run are the relay's per datagram.
func BenchmarkUDPWindow(b *testing.B) {
	const clients, window = 4, 16
	for _, size := range []int{64, 1200} {
		run := func(b *testing.B, addr string) {
			cs := make([]*net.UDPConn, clients)
			for i := range cs {
				cs[i] = udpClient(b, addr)
				cs[i].SetReadBuffer(1 << 20)
			}
			msg := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			per := b.N/clients + 1
			var wg sync.WaitGroup
			b.ResetTimer()
			for _, c := range cs {
				wg.Go(func() {
					buf := make([]byte, 2048)
					inflight := 0
					for done := 0; done < per; {
						for ; inflight < window && done+inflight < per; inflight++ {
							c.Write(msg)
						}
						c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
						if _, err := c.Read(buf); err != nil {
							inflight = 0 // lost: send the window again
							continue
						}
						inflight--
						done++
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(per*clients)/b.Elapsed().Seconds(), "pkt/s")
		}
		b.Run("direct/"+itoa(size), func(b *testing.B) { run(b, udpEcho(b, same)) })
		b.Run("proxy/"+itoa(size), func(b *testing.B) {
			run(b, startUDP(b, &UDPServer{Pool: pool(b, udpEcho(b, same))}))
		})
	}
}
