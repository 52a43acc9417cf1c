//go:build linux

package integration

// Connection floods past an HTTP entrypoint's max_connections and a UDP
// entrypoint's max_flows.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestHostileConnFlood: 100 connections past max_connections = 20 on an
// HTTP entrypoint are each closed at once without a byte, and the 20
// admitted keep-alive connections go on being served meanwhile and after.
func TestHostileConnFlood(t *testing.T) {
	be := startHTTPBackend(t, "be")
	p := startProxy(t, hcl(`
entrypoint "web" {
  address         = "127.0.0.1:0"
  max_connections = 20
}
http_route "all" {
  entrypoints = ["web"]
  path_prefix = "/"
  service     = "svc"
}
service "svc" {
  backend "http://%s" {}
}
`, be.addr))
	addr := p.addr("web")
	type kept struct {
		c  net.Conn
		br *bufio.Reader
	}
	get := func(k kept, i int) error {
		_ = k.c.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := fmt.Fprintf(k.c, "GET /k%d HTTP/1.1\r\nHost: h\r\n\r\n", i); err != nil {
			return err
		}
		resp, err := http.ReadResponse(k.br, nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	var admitted []kept
	for i := range 20 {
		c := dialTCP(t, addr)
		k := kept{c, bufio.NewReader(c)}
		if err := get(k, i); err != nil {
			t.Fatalf("connection %d within max_connections: %v", i, err)
		}
		admitted = append(admitted, k)
	}
	for i := range 100 {
		el, got := dialExpectClosed(t, addr, []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 5*time.Second)
		if len(got) != 0 {
			t.Fatalf("connection %d past max_connections got %q, want nothing", i, trunc(got))
		}
		if el > 2*time.Second {
			t.Errorf("connection %d past max_connections closed after %v, want at once", i, el)
		}
		if i%25 == 0 {
			if err := get(admitted[i%20], 100+i); err != nil {
				t.Fatalf("admitted connection during the flood: %v", err)
			}
		}
	}
	for i, k := range admitted {
		if err := get(k, 200+i); err != nil {
			t.Errorf("admitted connection %d after the flood: %v", i, err)
		}
	}
}

// TestHostileUDPFlowFlood: datagrams from 300 source ports past
// max_flows = 20 make no flows beyond the 20 (no backend socket, no
// descriptor each), and a flow made before the flood still gets its
// answers during and after it.
func TestHostileUDPFlowFlood(t *testing.T) {
	p, paddr, sources := udpFlowsProxy(t, 20)
	pid := p.cmd.Process.Pid
	fds := procFDCount(t, pid)
	echoes := func(c *net.UDPConn, msg string) bool {
		buf := make([]byte, 256)
		for range 10 {
			_, _ = c.Write([]byte(msg))
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, err := c.Read(buf); err == nil && string(buf[:n]) == msg {
				return true
			}
		}
		return false
	}
	old, err := net.DialUDP("udp", nil, paddr)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if !echoes(old, "old flow") {
		t.Fatal("first flow got no echo")
	}
	for i := range 300 {
		c, err := net.DialUDP("udp", nil, paddr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fmt.Fprintf(c, "flood %d", i)
		c.Close()
		if i%100 == 99 && !echoes(old, fmt.Sprintf("old flow during %d", i)) {
			t.Fatalf("the first flow starved after %d flooding ports", i+1)
		}
	}
	if !echoes(old, "old flow after") {
		t.Fatal("the first flow starved after the flood")
	}
	if n := sources(); n > 20 {
		t.Errorf("backend saw %d flows, want at most max_flows = 20", n)
	}
	if d := procFDCount(t, pid) - fds; d > 20 {
		t.Errorf("proxy holds %d descriptors more after the flood, want at most 20 (one per flow)", d)
	}
}
