package l4

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestTCPUpdate: connections accepted after Update get the new handler,
// PROXY protocol settings and cap; the connection accepted before keeps
// its handler.
func TestTCPUpdate(t *testing.T) {
	first := make(chan struct{})
	block := make(chan struct{})
	s := &TCPServer{Handler: HandlerFunc(func(_ context.Context, c *Conn) {
		close(first)
		<-block
		c.Write([]byte("old"))
		c.Close()
	})}
	addr := startTCP(t, s)
	c1 := dial(t, addr)
	<-first
	h, got := recorder()
	s.Update(TCPLive{Handler: h, ProxyProtocol: &ProxyProtocolIn{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	c2 := dial(t, addr)
	c2.Write(header(t, 2, "192.0.2.7:1234", "198.51.100.1:443"))
	select {
	case c := <-got:
		if c.Client.String() != "192.0.2.7:1234" {
			t.Fatalf("client %s: the PROXY settings of the update were not applied", c.Client)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the new handler did not get the connection")
	}
	close(block)
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c1); err != nil || string(b) != "old" {
		t.Fatalf("connection accepted before the update: %q %v", b, err)
	}
	waitActive := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for s.Active() != n {
			if time.Now().After(deadline) {
				t.Fatalf("Active = %d, want %d", s.Active(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitActive(0)
	rejected := s.Rejected()
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release) // before Close waits for the handler
	s.Update(TCPLive{Handler: HandlerFunc(func(_ context.Context, c *Conn) { <-hold; c.Close() }), MaxConnections: 1})
	c3 := dial(t, addr)
	c3.Write([]byte("x"))
	waitActive(1)
	// Refused at once: closed with a reset, which may even fail the dial.
	if c4, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		expectClosed(t, c4, 5*time.Second)
		c4.Close()
	}
	release()
	if s.Rejected()-rejected != 1 {
		t.Fatalf("Rejected = %d more, want 1 (the updated cap)", s.Rejected()-rejected)
	}
}

// TestUDPUpdateAndCloseFlowsOf: after Update new flows go to the new pool;
// the open flow stays on the old one until CloseFlowsOf ends it, and its
// client's next datagram opens a flow on the new pool.
func TestUDPUpdateAndCloseFlowsOf(t *testing.T) {
	oldP := pool(t, udpEcho(t, func(b []byte, _ netip.AddrPort) []byte { return append([]byte("old:"), b...) }))
	newP := pool(t, udpEcho(t, func(b []byte, _ netip.AddrPort) []byte { return append([]byte("new:"), b...) }))
	s := &UDPServer{Pool: oldP}
	addr := startUDP(t, s)
	c1 := udpClient(t, addr)
	if got := string(roundTrip(t, c1, []byte("a"))); got != "old:a" {
		t.Fatalf("got %q", got)
	}
	s.Update(UDPLive{Pool: newP})
	if got := string(roundTrip(t, c1, []byte("b"))); got != "old:b" {
		t.Fatalf("open flow after Update: %q, want it kept on the old pool", got)
	}
	c2 := udpClient(t, addr)
	if got := string(roundTrip(t, c2, []byte("c"))); got != "new:c" {
		t.Fatalf("new flow after Update: %q", got)
	}
	if s.FlowsOf(oldP) != 1 || s.FlowsOf(newP) != 1 {
		t.Fatalf("flows: old %d new %d", s.FlowsOf(oldP), s.FlowsOf(newP))
	}
	if n := s.CloseFlowsOf(oldP); n != 1 {
		t.Fatalf("CloseFlowsOf = %d", n)
	}
	if got := string(roundTrip(t, c1, []byte("d"))); got != "new:d" {
		t.Fatalf("after CloseFlowsOf: %q, want a new flow on the new pool", got)
	}
	s.Update(UDPLive{})
	c3 := udpClient(t, addr)
	c3.Write([]byte("e"))
	c3.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c3.Read(make([]byte, 16)); err == nil {
		t.Fatal("a datagram without a route was answered")
	}
}
