package l4

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkTCPConnectionObserved is BenchmarkTCPConnection's proxied
// connection without and with the metrics (entrypoint and route
// children): the per-connection cost of counting.
func BenchmarkTCPConnectionObserved(b *testing.B) {
	run := func(b *testing.B, s *TCPServer) {
		addr := startTCP(b, s)
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
	b.Run("off", func(b *testing.B) {
		run(b, &TCPServer{Handler: &Proxy{Pool: pool(b, backend(b, echo)), Idle: time.Minute}})
	})
	b.Run("metrics", func(b *testing.B) {
		m := NewMetrics(prometheus.NewRegistry())
		run(b, &TCPServer{Metrics: m.Entrypoint("e"),
			Handler: &Proxy{Pool: pool(b, backend(b, echo)), Idle: time.Minute, Metrics: m.Route("e", "r", "s")}})
	})
}

// BenchmarkUDPEchoObserved round-trips 64-byte datagrams through a
// UDPServer without and with its metrics.
func BenchmarkUDPEchoObserved(b *testing.B) {
	run := func(b *testing.B, s *UDPServer) {
		c := udpClient(b, startUDP(b, s))
		msg, buf := make([]byte, 64), make([]byte, 2048)
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
	}
	b.Run("off", func(b *testing.B) { run(b, &UDPServer{Pool: pool(b, udpEcho(b, same))}) })
	b.Run("metrics", func(b *testing.B) {
		m := NewMetrics(prometheus.NewRegistry())
		run(b, &UDPServer{Pool: pool(b, udpEcho(b, same)), Metrics: m.UDP("e", "r", "s")})
	})
}
