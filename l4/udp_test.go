package l4

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// udpEcho answers every datagram with reply(datagram, sender) until the
// test ends.
func udpEcho(t testing.TB, reply func([]byte, netip.AddrPort) []byte) string {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(reply(buf[:n], from), from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

func same(b []byte, _ netip.AddrPort) []byte { return b }

func startUDP(t testing.TB, s *UDPServer) string {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(pc) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve = %v", err)
		}
	})
	return pc.LocalAddr().String()
}

func udpClient(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

func roundTrip(t testing.TB, c *net.UDPConn, msg []byte) []byte {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	return buf[:n]
}

func TestUDPFlows(t *testing.T) {
	be := udpEcho(t, func(b []byte, from netip.AddrPort) []byte { return fmt.Appendf(nil, "%s|%s", b, from) })
	s := &UDPServer{Pool: pool(t, be), IdleTimeout: time.Minute}
	addr := startUDP(t, s)
	const clients = 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		c := udpClient(t, addr)
		wg.Go(func() {
			var port string
			for j := range 20 {
				msg := fmt.Sprintf("c%d-%d", i, j)
				got := string(roundTrip(t, c, []byte(msg)))
				m, from, _ := bytes.Cut([]byte(got), []byte("|"))
				if string(m) != msg {
					errs <- fmt.Errorf("client %d got %q, want %q", i, m, msg)
					return
				}
				if port == "" {
					port = string(from)
				} else if port != string(from) {
					errs <- fmt.Errorf("client %d: backend saw %s then %s: one flow must keep one socket", i, port, from)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.Flows(); n != clients {
		t.Fatalf("Flows = %d, want %d", n, clients)
	}
}

func TestUDPLargeDatagram(t *testing.T) {
	be := udpEcho(t, same)
	addr := startUDP(t, &UDPServer{Pool: pool(t, be)})
	msg := bytes.Repeat([]byte("z"), 60000)
	if got := roundTrip(t, udpClient(t, addr), msg); !bytes.Equal(got, msg) {
		t.Fatalf("got %d bytes back, want %d", len(got), len(msg))
	}
}

func TestUDPFlowExpires(t *testing.T) {
	be := udpEcho(t, func(_ []byte, from netip.AddrPort) []byte { return []byte(from.String()) })
	s := &UDPServer{Pool: pool(t, be), IdleTimeout: 150 * time.Millisecond}
	c := udpClient(t, startUDP(t, s))
	first := string(roundTrip(t, c, []byte("a")))
	if got := string(roundTrip(t, c, []byte("b"))); got != first {
		t.Fatalf("active flow changed socket: %s then %s", first, got)
	}
	deadline := time.Now().Add(2 * time.Second)
	for s.Flows() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("flow not expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := string(roundTrip(t, c, []byte("c"))); got == first {
		t.Fatalf("expired flow reused its socket %s", got)
	}
}

func TestUDPMaxFlows(t *testing.T) {
	be := udpEcho(t, same)
	s := &UDPServer{Pool: pool(t, be), MaxFlows: 1}
	addr := startUDP(t, s)
	roundTrip(t, udpClient(t, addr), []byte("first"))
	c := udpClient(t, addr)
	c.Write([]byte("second"))
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 10)); err == nil {
		t.Fatal("a flow beyond max_flows was answered")
	}
	if s.Dropped() != 1 {
		t.Fatalf("Dropped = %d, want 1", s.Dropped())
	}
}

func TestUDPBackendDownMovesOn(t *testing.T) {
	pc, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	dead := pc.LocalAddr().String()
	pc.Close()
	live := udpEcho(t, same)
	p := pool(t, dead, live)
	s := &UDPServer{Pool: p}
	c := udpClient(t, startUDP(t, s))
	// Round robin sends the first flow to the dead backend: its datagram is
	// refused (ICMP), the flow is dropped and the backend marked down, and
	// a retry by the client lands on the live one.
	var got []byte
	for range 5 {
		c.Write([]byte("q"))
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 10)
		if n, err := c.Read(buf); err == nil {
			got = buf[:n]
			break
		}
	}
	if string(got) != "q" {
		t.Fatal("no answer from the live backend")
	}
	if !p.Backends()[0].Down(time.Now()) {
		t.Fatal("refusing backend not marked down")
	}
}

func TestUDPProxyProtocolV2(t *testing.T) {
	be := udpEcho(t, func(b []byte, _ netip.AddrPort) []byte {
		h, payload, err := proxyproto.ParseUDPDatagram(b)
		if err != nil {
			return []byte("error: " + err.Error())
		}
		return fmt.Appendf(nil, "%s %s", h.SourceAddr, payload)
	})
	addr := startUDP(t, &UDPServer{Pool: pool(t, be), ProxyProtocol: true})
	c := udpClient(t, addr)
	for _, msg := range []string{"one", "two"} {
		want := c.LocalAddr().String() + " " + msg
		if got := string(roundTrip(t, c, []byte(msg))); got != want {
			t.Fatalf("backend saw %q, want %q", got, want)
		}
	}
}

func TestUDPShutdownDrainsQuietFlows(t *testing.T) {
	be := udpEcho(t, same)
	s := &UDPServer{Pool: pool(t, be), IdleTimeout: time.Hour}
	pc, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	served := make(chan error, 1)
	go func() { served <- s.Serve(pc) }()
	roundTrip(t, udpClient(t, pc.LocalAddr().String()), []byte("x"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if d := time.Since(start); d > 3*drainIdle {
		t.Fatalf("Shutdown took %v for a quiet flow", d)
	}
	if err := <-served; err != ErrServerClosed {
		t.Fatalf("Serve = %v", err)
	}
}
