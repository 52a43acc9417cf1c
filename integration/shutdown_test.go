//go:build linux

package integration

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestGracefulShutdown(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) { testGracefulShutdown(t, sig) })
	}
}

// testGracefulShutdown streams 8 MiB at about 4 MiB/s from the backend,
// signals proxynow after the first MiB, and checks that the transfer
// completes intact, that new connections are refused meanwhile, and that
// the process then exits 0 within the grace period.
func testGracefulShutdown(t *testing.T, sig syscall.Signal) {
	const size, chunk = 8 << 20, 32 << 10
	var first atomic.Bool
	sum := make(chan []byte, 1)
	be := startTCPBackend(t, func(b *tcpBackend, c *net.TCPConn) {
		if !first.CompareAndSwap(false, true) {
			return // a connection that slipped in after the signal: close it
		}
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		w := sha256.New()
		r := randReader()
		buf := make([]byte, chunk)
		for sent := 0; sent < size; sent += chunk {
			_, _ = io.ReadFull(r, buf)
			if _, err := c.Write(buf); err != nil {
				return
			}
			w.Write(buf)
			if !b.sleep(8 * time.Millisecond) {
				return
			}
		}
		sum <- w.Sum(nil)
		_ = c.CloseWrite()
		_, _ = io.Copy(io.Discard, c)
	})
	p := startProxy(t, hcl(`
global {
  grace_period = "10s"
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
	addr := p.addr("in")

	c := dialTCP(t, addr)
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	got := sha256.New()
	if _, err := io.CopyN(got, c, 1<<20); err != nil {
		t.Fatalf("first MiB: %v", err)
	}
	p.signal(sig)
	signalled := time.Now()

	// New connections are refused once the listener is closed; allow a
	// short window for the signal to be handled.
	for {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			// A dial that raced the close of the listener may have been in
			// the accept queue: the kernel resets those.
			if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("dial after %v: %v, want connection refused", sig, err)
			}
			break
		}
		nc.Close()
		if time.Since(signalled) > time.Second {
			t.Errorf("new connections still accepted %v after %v", time.Since(signalled), sig)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p.exited() {
		t.Fatalf("proxynow exited before the in-flight transfer finished: %v", p.exitErr)
	}

	n, err := io.Copy(got, c)
	if err != nil {
		t.Fatalf("transfer after %v broke after %d more bytes: %v", sig, n, err)
	}
	var want []byte
	select {
	case want = <-sum:
	case <-time.After(ioTimeout):
		t.Fatal("backend did not finish sending")
	}
	if n+1<<20 != size || !bytes.Equal(got.Sum(nil), want) {
		t.Fatalf("client got %d bytes sha256 %x, backend sent %d bytes sha256 %x", n+1<<20, got.Sum(nil), size, want)
	}
	c.Close()

	code, exited := p.wait(12 * time.Second)
	if !exited {
		t.Fatalf("proxynow still running %v after %v with no connection left", time.Since(signalled), sig)
	}
	t.Logf("exited %v after %v", time.Since(signalled), sig)
	if code != 0 {
		t.Errorf("exit code %d after %v, want 0", code, sig)
	}
}
