//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestTCPIdleTimeout(t *testing.T) {
	be := startTCPBackend(t, echo)
	p := tcpProxy(t, "  timeouts {\n    idle = \"500ms\"\n  }", "", be.addr)

	t.Run("active connection stays open", func(t *testing.T) {
		c := dialTCP(t, p.addr("in"))
		// 10 x 150ms = 1.5s in all, three idle timeouts, never idle that long.
		for i := range 10 {
			msg := fmt.Sprintf("tick %d", i)
			if got, err := roundTrip(c, msg); err != nil || got != msg {
				t.Fatalf("round trip %d on an active connection: %q, %v", i, got, err)
			}
			time.Sleep(150 * time.Millisecond)
		}
	})
	t.Run("idle connection is closed", func(t *testing.T) {
		c := dialTCP(t, p.addr("in"))
		if got, err := roundTrip(c, "once"); err != nil || got != "once" {
			t.Fatalf("round trip: %q, %v", got, err)
		}
		el, got := expectClosed(t, c, 5*time.Second)
		if len(got) != 0 || el < 400*time.Millisecond || el > 3*time.Second {
			t.Errorf("idle connection closed after %v with data %q, want about 500ms and none", el, got)
		}
	})
}

func TestTCPHalfCloseBackendFirst(t *testing.T) {
	const reqSize = 256 << 10
	gotReq := make(chan int64, 1)
	be := startTCPBackend(t, func(_ *tcpBackend, c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		_, _ = io.WriteString(c, "banner, then nothing more from me")
		_ = c.CloseWrite()
		n, _ := io.Copy(io.Discard, c)
		gotReq <- n
	})
	p := tcpProxy(t, "", "", be.addr)
	c := dialTCP(t, p.addr("in"))
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	banner, err := io.ReadAll(c)
	if err != nil || string(banner) != "banner, then nothing more from me" {
		t.Fatalf("banner: %q, %v", banner, err)
	}
	// The backend has half-closed; the client's direction must still flow.
	time.Sleep(200 * time.Millisecond)
	if _, err := c.Write(bytes.Repeat([]byte{'u'}, reqSize)); err != nil {
		t.Fatalf("writing after the backend's FIN: %v", err)
	}
	_ = c.CloseWrite()
	select {
	case n := <-gotReq:
		if n != reqSize {
			t.Errorf("backend got %d bytes after its own FIN, want %d", n, reqSize)
		}
	case <-time.After(ioTimeout):
		t.Fatal("backend never saw the client's EOF")
	}
}

func TestFailTimeoutRecovery(t *testing.T) {
	down := closedAddr(t)
	live := startTCPBackend(t, nameBackend("B"))
	p := startProxy(t, hcl(`
entrypoint "in" {
  address = "127.0.0.1:0"
}
tcp_route "r" {
  entrypoints = ["in"]
  service     = "s"
}
service "s" {
  balancer     = "round_robin"
  fail_timeout = "2s"
  backend %q {}
  backend %q {}
}
`, down, live.addr))
	addr := p.addr("in")

	names := countNames(fanOut(t, addr, 4, 1, func(string) bool { return false }))
	if names["B"] != 4 {
		t.Fatalf("with A down: %v, want all 4 on B", names)
	}
	failedAt := time.Now()
	startTCPBackendAt(t, down, nameBackend("A"))
	names = countNames(fanOut(t, addr, 4, 1, func(string) bool { return false }))
	if time.Since(failedAt) < 1500*time.Millisecond && names["A"] != 0 {
		t.Errorf("A got %d connections within its fail_timeout, want 0", names["A"])
	}
	time.Sleep(time.Until(failedAt.Add(2500 * time.Millisecond)))
	names = countNames(fanOut(t, addr, 10, 1, func(string) bool { return false }))
	if names["A"] < 3 {
		t.Errorf("after fail_timeout A got %d of 10 connections (%v), want it back in rotation", names["A"], names)
	}
}

// udpFlowsProxy is a proxy whose UDP entrypoint "udpin" has max_flows
// set, in front of an echo backend. sources says how many client flows
// (backend-side source addresses) the backend has seen.
func udpFlowsProxy(t *testing.T, maxFlows int) (p *proc, paddr *net.UDPAddr, sources func() int) {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]bool{}
	be := startUDPEcho(t, func(_ []byte, from *net.UDPAddr) {
		mu.Lock()
		seen[from.String()] = true
		mu.Unlock()
	})
	p = startProxy(t, hcl(`
entrypoint "udpin" {
  address   = "127.0.0.1:0"
  network   = "udp"
  max_flows = %d
}
udp_route "u" {
  entrypoints  = ["udpin"]
  service      = "us"
  idle_timeout = "30s"
}
service "us" {
  backend %q {}
}
`, maxFlows, be.addr))
	paddr, err := net.ResolveUDPAddr("udp", p.addr("udpin"))
	if err != nil {
		t.Fatal(err)
	}
	return p, paddr, func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
}

func TestUDPMaxFlows(t *testing.T) {
	_, paddr, sources := udpFlowsProxy(t, 2)
	ask := func(c *net.UDPConn, msg string, tries int) bool {
		buf := make([]byte, 256)
		for range tries {
			_, _ = c.Write([]byte(msg))
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, err := c.Read(buf); err == nil && string(buf[:n]) == msg {
				return true
			}
		}
		return false
	}
	var clients []*net.UDPConn
	for i := range 3 {
		c, err := net.DialUDP("udp", nil, paddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		ok := ask(c, fmt.Sprintf("client %d", i), 5)
		if i < 2 && !ok {
			t.Fatalf("client %d within max_flows got no echo", i)
		}
		if i == 2 && ok {
			t.Fatalf("third flow got an echo with max_flows = 2")
		}
	}
	if !ask(clients[0], "client 0 again", 5) {
		t.Error("first flow stopped working after the limit was hit")
	}
	if n := sources(); n != 2 {
		t.Errorf("backend saw %d flows, want 2", n)
	}
}

func TestGracePeriodExpires(t *testing.T) {
	be := startTCPBackend(t, echo)
	p := startProxy(t, hcl(`
global {
  grace_period = "1s"
}
entrypoint "in" {
  address = "127.0.0.1:0"
}
tcp_route "r" {
  entrypoints = ["in"]
  service     = "s"
}
service "s" {
  backend %q {}
}
`, be.addr))
	c := dialTCP(t, p.addr("in"))
	if got, err := roundTrip(c, "held"); err != nil || got != "held" {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	p.signal(syscall.SIGTERM)
	start := time.Now()
	code, exited := p.wait(exitTimeout)
	el := time.Since(start)
	if !exited {
		t.Fatalf("proxynow still running %v after SIGTERM with a 1s grace period", exitTimeout)
	}
	if el < 800*time.Millisecond || el > 4*time.Second {
		t.Errorf("exited %v after SIGTERM with a connection held open, want about the 1s grace period", el)
	}
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if _, got := expectClosed(t, c, 5*time.Second); len(got) != 0 {
		t.Errorf("held connection got %q", got)
	}
}
