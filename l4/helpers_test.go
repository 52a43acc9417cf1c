package l4

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/upstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func pool(t testing.TB, addrs ...string) *upstream.Pool {
	t.Helper()
	svc := &config.Service{Name: "svc", ConnectTimeout: 5 * time.Second, FailTimeout: time.Minute}
	for _, a := range addrs {
		svc.Backends = append(svc.Backends, config.Backend{Address: a, Weight: 1})
	}
	p, err := upstream.NewPool(svc, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// backend runs serve for every connection accepted on a loopback listener
// until the test ends.
func backend(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func echo(c net.Conn) {
	if _, err := io.Copy(c, c); err == nil {
		c.(*net.TCPConn).CloseWrite()
	}
}

// startTCP serves h on a loopback listener and returns its address; the
// server is closed when the test ends.
func startTCP(t testing.TB, s *TCPServer) string {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// expectClosed asserts the peer closes c (EOF or reset) within d, without
// sending anything.
func expectClosed(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(make([]byte, 64))
	if n > 0 {
		t.Fatalf("read %d bytes, want the connection closed", n)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", d)
	}
}

// recorder is a Handler that reports the Conn it was given.
func recorder() (Handler, <-chan *Conn) {
	ch := make(chan *Conn, 1)
	return HandlerFunc(func(_ context.Context, c *Conn) {
		ch <- &Conn{Client: c.Client, Dest: c.Dest, Prefix: append([]byte(nil), c.Prefix...)}
		c.Close()
	}), ch
}
