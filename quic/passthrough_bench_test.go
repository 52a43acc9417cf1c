package quic

import (
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/proxynow/proxynow/l4"
)

// ptEcho echoes every datagram until the benchmark ends.
func ptEcho(b *testing.B) *net.UDPConn {
	c := ptUDP(b)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	b.Cleanup(func() { c.Close(); wg.Wait() })
	return c
}

// BenchmarkDemuxRelay measures a passthrough flow's round trip (client ->
// Demux -> echo backend -> Demux -> client), 16 datagrams of 1200 bytes in
// flight, beside l4.UDPServer's plain UDP relay on the same harness. One op
// is one datagram there and back.
func BenchmarkDemuxRelay(b *testing.B) {
	for _, kind := range []string{"l4-udp", "demux"} {
		b.Run(kind, func(b *testing.B) {
			echo := ptEcho(b)
			pool := ptPool(b, echo.LocalAddr().String())
			var addr string
			if kind == "l4-udp" {
				pc := ptUDP(b)
				srv := &l4.UDPServer{Pool: pool}
				done := make(chan struct{})
				go func() { defer close(done); _ = srv.Serve(pc) }()
				b.Cleanup(func() { srv.Close(); <-done })
				addr = pc.LocalAddr().String()
			} else {
				_, addr = ptDemux(b, []PassRoute{{Name: "qg", SNI: []string{"quic-go.test"}, Pool: pool}}, DemuxOptions{})
			}
			to, _ := net.ResolveUDPAddr("udp", addr)
			client, err := net.DialUDP("udp", nil, to)
			if err != nil {
				b.Fatal(err)
			}
			defer client.Close()
			_ = client.SetReadBuffer(4 << 20)
			buf := make([]byte, 65535)
			warm := [][]byte{{0x40, 1}}
			if kind == "demux" {
				warm = ptFlight(b) // opens the flow
			}
			for _, w := range warm {
				if _, err := client.Write(w); err != nil {
					b.Fatal(err)
				}
			}
			for range warm {
				_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := client.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
			payload := make([]byte, 1200)
			payload[0] = 0x41 // a short header
			const window = 16
			_ = client.SetReadDeadline(time.Now().Add(time.Hour))
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			b.ResetTimer()
			for sent := 0; sent < b.N; {
				n := min(window, b.N-sent)
				for range n {
					if _, err := client.Write(payload); err != nil {
						b.Fatal(err)
					}
				}
				for range n {
					if _, err := client.Read(buf); err != nil {
						b.Fatal(err)
					}
				}
				sent += n
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "datagrams/s")
		})
	}
}

// BenchmarkDemuxToLocal measures the local server's path without sockets:
// one datagram of a known local client through the Demux's lookup and
// queue to a ReadFrom on Local.
func BenchmarkDemuxToLocal(b *testing.B) {
	d, err := NewDemux(ptUDP(b), nil, DemuxOptions{LocalQueue: 4096})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	local := d.Local()
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	dg := make([]byte, 1200)
	dg[0] = 0x41
	d.handle(dg, from) // remembered as a local client
	buf := make([]byte, 1500)
	if _, _, err := local.ReadFrom(buf); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range b.N {
			if _, _, err := local.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	b.ReportAllocs()
	b.SetBytes(int64(len(dg)))
	b.ResetTimer()
	for range b.N {
		for d.local.enabled.Load() && len(d.local.q) == cap(d.local.q) {
			runtime.Gosched() // the reader is behind: wait, don't drop
		}
		d.handle(dg, from)
	}
	<-done
}
