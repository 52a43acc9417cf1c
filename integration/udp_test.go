//go:build linux

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// udpProxy starts proxynow with one UDP entrypoint "udpin" routed to backend.
func udpProxy(t *testing.T, routeExtra, backend string) *proc {
	t.Helper()
	return startProxy(t, hcl(`
entrypoint "udpin" {
  address   = "127.0.0.1:0"
  network   = "udp"
  max_flows = 1000
}
udp_route "u" {
  entrypoints = ["udpin"]
  service     = "us"
%s
}
service "us" {
  backend %q {}
}
`, routeExtra, backend))
}

func TestUDPDNSThroughDnsmasq(t *testing.T) {
	dnsmasq := requireTool(t, "dnsmasq")
	dig := requireTool(t, "dig")
	port := freePort(t)
	dm := startHelper(t, dnsmasq, "-C", "/dev/null", "--keep-in-foreground", "--no-resolv", "--no-hosts",
		"--port="+strconv.Itoa(port), "--listen-address=127.0.0.1", "--bind-interfaces",
		"--address=/proxynow.test/127.0.0.42", "--pid-file=", "--user=root", "--log-facility=-")

	query := func(port string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, dig, "@127.0.0.1", "-p", port, "proxynow.test", "A",
			"+short", "+time=2", "+tries=3").CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	// dnsmasq is ready when it answers directly.
	deadline := time.Now().Add(readyTimeout)
	for {
		if out, err := query(strconv.Itoa(port)); err == nil && out == "127.0.0.42" {
			break
		}
		if dm.exited() || time.Now().After(deadline) {
			t.Fatalf("dnsmasq on port %d not answering (exited: %v)", port, dm.exited())
		}
		time.Sleep(100 * time.Millisecond)
	}

	p := udpProxy(t, `  idle_timeout = "30s"`, fmt.Sprintf("127.0.0.1:%d", port))
	_, pport, _ := net.SplitHostPort(p.addr("udpin"))
	out, err := query(pport)
	if err != nil || out != "127.0.0.42" {
		t.Fatalf("dig through proxynow: %q, %v; want 127.0.0.42", out, err)
	}
}

// TestUDPManyFlows sends 200 datagrams on each of 50 client sockets. Each
// flow keeps at most 4 datagrams in flight. A datagram not echoed within
// 300ms is retransmitted (at most 5 times); retransmits are logged, and more
// than 10% of them fails the test as gross loss.
func TestUDPManyFlows(t *testing.T) {
	const flows, perFlow, window = 50, 200, 4

	var mu sync.Mutex
	sources := map[int]map[string]bool{} // flow id -> backend-side source addresses
	be := startUDPEcho(t, func(p []byte, from *net.UDPAddr) {
		var f, s int
		if _, err := fmt.Sscanf(string(p), "flow %d seq %d ", &f, &s); err != nil {
			return
		}
		mu.Lock()
		if sources[f] == nil {
			sources[f] = map[string]bool{}
		}
		sources[f][from.String()] = true
		mu.Unlock()
	})
	p := udpProxy(t, `  idle_timeout = "30s"`, be.addr)
	paddr, err := net.ResolveUDPAddr("udp", p.addr("udpin"))
	if err != nil {
		t.Fatal(err)
	}

	var (
		wg       sync.WaitGroup
		rmu      sync.Mutex
		retrans  int
		failures []error
	)
	for f := range flows {
		wg.Go(func() {
			n, err := runFlow(paddr, f, perFlow, window)
			rmu.Lock()
			defer rmu.Unlock()
			retrans += n
			if err != nil {
				failures = append(failures, fmt.Errorf("flow %d: %w", f, err))
			}
		})
	}
	wg.Wait()
	t.Logf("%d datagrams over %d flows via %s to %s, %d retransmits", flows*perFlow, flows, paddr, be.addr, retrans)
	for _, err := range failures[:min(len(failures), 5)] {
		t.Error(err)
	}
	if retrans > flows*perFlow/10 {
		t.Errorf("%d retransmits for %d datagrams: gross loss", retrans, flows*perFlow)
	}

	mu.Lock()
	defer mu.Unlock()
	seen := map[string]int{}
	for f := range flows {
		if len(sources[f]) != 1 {
			t.Errorf("flow %d reached the backend from %d source addresses %v, want 1", f, len(sources[f]), sources[f])
		}
		for s := range sources[f] {
			if g, dup := seen[s]; dup {
				t.Errorf("flows %d and %d share backend-side source %s", g, f, s)
			}
			seen[s] = f
		}
	}
}

func flowPayload(f, s int) []byte {
	b := fmt.Appendf(nil, "flow %02d seq %03d ", f, s)
	return append(b, bytes.Repeat([]byte{byte('a' + f%26)}, 32+(f*7+s*13)%900)...)
}

// runFlow runs one client socket to completion and returns its retransmits.
func runFlow(to *net.UDPAddr, f, total, window int) (int, error) {
	c, err := net.DialUDP("udp", nil, to)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetReadBuffer(1 << 20)
	sentAt := map[int]time.Time{}
	tries := map[int]int{}
	retrans, next, done := 0, 0, 0
	buf := make([]byte, 2048)
	deadline := time.Now().Add(60 * time.Second)
	for done < total {
		if time.Now().After(deadline) {
			return retrans, fmt.Errorf("%d of %d datagrams echoed before the deadline", done, total)
		}
		for len(sentAt) < window && next < total {
			if _, err := c.Write(flowPayload(f, next)); err != nil {
				return retrans, err
			}
			sentAt[next] = time.Now()
			next++
		}
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := c.Read(buf)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			for s, at := range sentAt {
				if time.Since(at) < 300*time.Millisecond {
					continue
				}
				if tries[s]++; tries[s] > 5 {
					return retrans, fmt.Errorf("datagram %d never echoed after 5 retransmits", s)
				}
				retrans++
				if _, err := c.Write(flowPayload(f, s)); err != nil {
					return retrans, err
				}
				sentAt[s] = time.Now()
			}
		case err != nil:
			return retrans, err
		default:
			var gf, gs int
			if _, err := fmt.Sscanf(string(buf[:n]), "flow %d seq %d ", &gf, &gs); err != nil || gf != f {
				return retrans, fmt.Errorf("received a datagram for another client: %q", trunc(buf[:n]))
			}
			if !bytes.Equal(buf[:n], flowPayload(f, gs)) {
				return retrans, fmt.Errorf("datagram %d corrupted: %d bytes", gs, n)
			}
			if _, ok := sentAt[gs]; ok {
				delete(sentAt, gs)
				done++
			}
		}
	}
	return retrans, nil
}

func TestUDPFlowIdleTimeout(t *testing.T) {
	var mu sync.Mutex
	port := map[string]int{} // payload -> backend-side source port
	be := startUDPEcho(t, func(p []byte, from *net.UDPAddr) {
		mu.Lock()
		port[string(p)] = from.Port
		mu.Unlock()
	})
	p := udpProxy(t, `  idle_timeout = "300ms"`, be.addr)
	paddr, err := net.ResolveUDPAddr("udp", p.addr("udpin"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, paddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// send returns the source port the backend saw for msg (retrying a lost datagram).
	send := func(msg string) int {
		t.Helper()
		buf := make([]byte, 256)
		for range 5 {
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			n, err := c.Read(buf)
			if err == nil && string(buf[:n]) == msg {
				mu.Lock()
				defer mu.Unlock()
				return port[msg]
			}
		}
		t.Fatalf("%q never echoed", msg)
		return 0
	}

	first := send("active 0")
	// Active for 8 x 80ms = 640ms (> idle_timeout) but never idle that long.
	for i := 1; i <= 8; i++ {
		time.Sleep(80 * time.Millisecond)
		if got := send(fmt.Sprintf("active %d", i)); got != first {
			t.Fatalf("datagram %d of an active flow came from port %d, want the flow's port %d", i, got, first)
		}
	}
	time.Sleep(time.Second) // idle > 300ms: the flow expires
	if got := send("after idle"); got == first {
		t.Fatalf("after %v idle the backend still sees port %d, want a new flow", time.Second, got)
	}
}
