//go:build linux

package l7

import (
	"bufio"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// dialH1 returns a fresh fast-path connection to addr with req's head in
// its write buffer.
func dialH1(t *testing.T, tr *h1Transport) *h1Conn {
	t.Helper()
	c, err := tr.getConn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.nc.Close() })
	if !rawConn(c) {
		t.Fatal("no raw connection")
	}
	io.WriteString(c.bw, "GET / HTTP/1.1\r\nHost: site.test\r\n\r\n")
	return c
}

// readable reports whether the socket holds unread bytes or the peer's
// close, without blocking.
func readable(t *testing.T, c *h1Conn) bool {
	t.Helper()
	var n int
	var errno error
	err := c.raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, errno = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	if err != nil {
		t.Fatal(err)
	}
	return errno == nil && n >= 0
}

// flushAndWait writes the request and returns only once the answer (or the
// backend's close) can be read without waiting.
func TestH1FlushAndWait(t *testing.T) {
	var mode atomic.Int32 // 0: answer late, 1: close, 2: never answer
	release := make(chan struct{})
	defer close(release)
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, ok := readHead(br); !ok {
			return
		}
		switch mode.Load() {
		case 0:
			// Late enough that a wait which returned at once would
			// find nothing to read.
			time.Sleep(50 * time.Millisecond)
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			<-release
		case 1:
			time.Sleep(50 * time.Millisecond)
		case 2:
			<-release
		}
	})
	tr := newH1(addr)
	defer tr.CloseIdleConnections()

	c := dialH1(t, tr)
	if err := flushAndWait(c); err != nil {
		t.Fatal(err)
	}
	if !readable(t, c) {
		t.Fatal("flushAndWait returned before the answer arrived")
	}
	if line, err := c.br.ReadString('\n'); err != nil || line != "HTTP/1.1 204 No Content\r\n" {
		t.Fatalf("read %q, %v", line, err)
	}

	mode.Store(1)
	c = dialH1(t, tr)
	if err := flushAndWait(c); err != nil {
		t.Fatal(err)
	}
	if !readable(t, c) {
		t.Fatal("flushAndWait returned before the backend closed")
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("read after the backend closed: %v, want io.EOF", err)
	}

	// A deadline ends the wait; the read that follows reports it.
	mode.Store(2)
	c = dialH1(t, tr)
	c.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if err := flushAndWait(c); err != nil {
		t.Fatal(err)
	}
	if _, err := c.br.ReadByte(); !isTimeout(err) {
		t.Fatalf("read after the deadline: %v, want a timeout", err)
	}
	// A deadline already past: the request is still written, the read
	// times out.
	c = dialH1(t, tr)
	c.nc.SetReadDeadline(aLongTimeAgo)
	if err := flushAndWait(c); err != nil || c.bw.Buffered() != 0 {
		t.Fatalf("flushAndWait: %v, %d bytes unwritten", err, c.bw.Buffered())
	}
	if _, err := c.br.ReadByte(); !isTimeout(err) {
		t.Fatalf("read after the deadline: %v, want a timeout", err)
	}
}
