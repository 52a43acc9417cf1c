//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// TestUDPProxyProtocolV2 checks that with proxy_protocol = "v2" every
// datagram toward the backend starts with its own v2 header naming the
// client, and that the backend's plain replies reach the client.
func TestUDPProxyProtocolV2(t *testing.T) {
	type seen struct {
		src, dst string
		payload  string
		err      error
	}
	got := make(chan seen, 16)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { c.Close(); wg.Wait() }()
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			h, payload, err := proxyproto.ParseUDPDatagram(buf[:n])
			s := seen{err: err, payload: string(payload)}
			if err == nil {
				src, dst, _ := h.UDPAddrs()
				s.src, s.dst = src.String(), dst.String()
				_, _ = c.WriteToUDP(payload, from)
			}
			select {
			case got <- s:
			default:
			}
		}
	})
	p := startProxy(t, hcl(`
entrypoint "udpin" {
  address = "127.0.0.1:0"
  network = "udp"
}
udp_route "u" {
  entrypoints = ["udpin"]
  service     = "us"
}
service "us" {
  proxy_protocol = "v2"
  backend %q {}
}
`, c.LocalAddr().String()))
	paddr, err := net.ResolveUDPAddr("udp", p.addr("udpin"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.DialUDP("udp", nil, paddr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	buf := make([]byte, 1024)
	for i := range 5 {
		msg := fmt.Sprintf("datagram %d", i)
		if _, err := cl.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		var s seen
		select {
		case s = <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("backend got no datagram %d", i)
		}
		if s.err != nil {
			t.Fatalf("datagram %d: backend could not parse a v2 header: %v", i, s.err)
		}
		if s.src != cl.LocalAddr().String() || s.dst != paddr.String() || s.payload != msg {
			t.Errorf("datagram %d: header %s -> %s payload %q; want %s -> %s payload %q", i, s.src, s.dst, s.payload, cl.LocalAddr(), paddr, msg)
		}
		_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := cl.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("reply to datagram %d: %q, %v", i, buf[:n], err)
		}
	}
}

func TestUDPDatagramSizes(t *testing.T) {
	be := startUDPEcho(t, nil)
	p := udpProxy(t, "", be.addr)
	paddr, err := net.ResolveUDPAddr("udp", p.addr("udpin"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, paddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 70000)
	for _, size := range []int{0, 1, 1472, 9000, 65507} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			msg := bytes.Repeat([]byte{byte(size)}, size)
			for try := range 3 {
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				n, err := c.Read(buf)
				if err == nil && bytes.Equal(buf[:n], msg) {
					return
				}
				t.Logf("try %d: %d bytes, %v", try, n, err)
			}
			t.Errorf("a %d-byte datagram was not echoed intact", size)
		})
	}
}

// TestUDPBackendComesBack sends to a backend port with nothing bound (the
// kernel answers ICMP port unreachable), then binds the backend: the same
// client flow must reach it without waiting for the idle timeout.
func TestUDPBackendComesBack(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	p := udpProxy(t, `  idle_timeout = "30s"`, addr)
	paddr, err := net.ResolveUDPAddr("udp", p.addr("udpin"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, paddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		_, _ = c.Write(fmt.Appendf(nil, "into the void %d", i))
		time.Sleep(50 * time.Millisecond)
	}

	ua, _ := net.ResolveUDPAddr("udp", addr)
	bc, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatalf("rebinding the backend port: %v", err)
	}
	var wg sync.WaitGroup
	defer func() { bc.Close(); wg.Wait() }()
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := bc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = bc.WriteToUDP(buf[:n], from)
		}
	})
	buf := make([]byte, 2048)
	for range 10 {
		_, _ = c.Write([]byte("hello again"))
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == "hello again" {
			if p.exited() {
				t.Fatal("proxynow exited")
			}
			return
		}
	}
	t.Fatal("the flow never reached the backend once it was up (3s); a refused send must not kill the flow")
}
