//go:build linux

package integration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Go backends

// tcpBackend is a loopback TCP server counting accepted connections. Close
// (run in t.Cleanup) stops it, closes live connections and waits for every
// handler to return.
type tcpBackend struct {
	ln       net.Listener
	addr     string
	accepted atomic.Int64
	closing  chan struct{}
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

func startTCPBackend(t testing.TB, handler func(b *tcpBackend, c *net.TCPConn)) *tcpBackend {
	t.Helper()
	return startTCPBackendAt(t, "127.0.0.1:0", handler)
}

// startTCPBackendAt is startTCPBackend on a given address.
func startTCPBackendAt(t testing.TB, addr string, handler func(b *tcpBackend, c *net.TCPConn)) *tcpBackend {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &tcpBackend{ln: ln, addr: ln.Addr().String(), closing: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			b.mu.Lock()
			b.conns[c] = struct{}{}
			b.mu.Unlock()
			b.wg.Go(func() {
				defer func() {
					c.Close()
					b.mu.Lock()
					delete(b.conns, c)
					b.mu.Unlock()
				}()
				handler(b, c.(*net.TCPConn))
			})
		}
	})
	t.Cleanup(b.Close)
	return b
}

func (b *tcpBackend) Close() {
	b.once.Do(func() {
		close(b.closing)
		b.ln.Close()
		b.mu.Lock()
		for c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
}

// sleep waits d or until the backend closes; it reports whether d elapsed.
func (b *tcpBackend) sleep(d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-b.closing:
		return false
	}
}

// echo copies everything back and half-closes when the client does.
func echo(_ *tcpBackend, c *net.TCPConn) {
	_ = c.SetDeadline(time.Now().Add(2 * ioTimeout))
	_, _ = io.Copy(c, c)
	_ = c.CloseWrite()
}

// udpBackend echoes every datagram to its sender, calling onPacket first.
type udpBackend struct {
	conn *net.UDPConn
	addr string
	wg   sync.WaitGroup
}

func startUDPEcho(t testing.TB, onPacket func(p []byte, from *net.UDPAddr)) *udpBackend {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	b := &udpBackend{conn: c, addr: c.LocalAddr().String()}
	b.wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if onPacket != nil {
				onPacket(buf[:n], from)
			}
			_, _ = c.WriteToUDP(buf[:n], from)
		}
	})
	t.Cleanup(func() {
		c.Close()
		b.wg.Wait()
	})
	return b
}

// ---------------------------------------------------------------------------
// client helpers

func dialTCP(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes msg and reads the same number of bytes back.
func roundTrip(c net.Conn, msg string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

// expectClosed reads from c until within reports EOF or a reset, and returns
// how long that took. Data read before the close is returned too.
func expectClosed(t testing.TB, c net.Conn, within time.Duration) (time.Duration, []byte) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(within))
	got, err := io.ReadAll(c)
	el := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v (read %d bytes: %q)", within, len(got), trunc(got))
	}
	return el, got
}

// dialExpectClosed connects to addr, writes send (if any) and expects the
// proxy to close the connection within the given time. A connect that
// already fails with a reset (the proxy accepted and reset before the
// dialer looked) counts as closed at once.
func dialExpectClosed(t testing.TB, addr string, send []byte, within time.Duration) (time.Duration, []byte) {
	t.Helper()
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if errors.Is(err, syscall.ECONNRESET) {
		return time.Since(start), nil
	}
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	if len(send) > 0 {
		_, _ = c.Write(send) // may fail if already reset; the read below decides
	}
	return expectClosed(t, c, within)
}

func trunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// hcl formats an HCL snippet; it exists so configs read as text in the tests.
func hcl(format string, args ...any) string { return fmt.Sprintf(format, args...) }
