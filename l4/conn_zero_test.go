package l4

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// rawIOExpected: Linux has RawIO (rawio_linux.go).
const rawIOExpected = runtime.GOOS == "linux"

// tcpPair is a loopback TCP connection: the accepted end and the dialled
// peer, closed when the test ends.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ln.AcceptTCP()
	if err != nil {
		peer.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c, peer
}

// outcome is what a test compares of a Read's or Write's result: the
// count, and the error by its operation and its cause (addresses differ
// from one pair to the next).
func outcome(n int, err error) string {
	if err == nil {
		return fmt.Sprintf("%d, <nil>", n)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		return fmt.Sprintf("%d, %T %v", n, err, err)
	}
	cause := oe.Err
	switch {
	case errors.Is(cause, net.ErrClosed):
		cause = net.ErrClosed
	case errors.Is(cause, os.ErrDeadlineExceeded):
		cause = os.ErrDeadlineExceeded
	}
	return fmt.Sprintf("%d, %s: %v (closed %t)", n, oe.Op, cause, errors.Is(err, net.ErrClosed))
}

// A zero-length Read or Write on an l4.Conn (with its raw system calls,
// where there are) answers as a net.TCPConn's does, in each state of the
// connection: open; with a passed deadline; half-closed by CloseWrite
// (a zero-length write still reaches the kernel, which refuses it);
// closed.
func TestConnZeroLengthAsTCPConn(t *testing.T) {
	states := []struct {
		name string
		set  func(*net.TCPConn)
	}{
		{"open", func(*net.TCPConn) {}},
		{"deadline passed", func(c *net.TCPConn) { c.SetDeadline(time.Unix(1, 0)) }},
		{"write side closed", func(c *net.TCPConn) { c.CloseWrite() }},
		{"closed", func(c *net.TCPConn) { c.Close() }},
	}
	ops := []struct {
		name string
		do   func(io.ReadWriter) (int, error)
	}{
		{"Read(nil)", func(c io.ReadWriter) (int, error) { return c.Read(nil) }},
		{"Read(empty)", func(c io.ReadWriter) (int, error) { return c.Read(make([]byte, 0, 8)) }},
		{"Write(nil)", func(c io.ReadWriter) (int, error) { return c.Write(nil) }},
	}
	for _, st := range states {
		for _, op := range ops {
			t.Run(st.name+"/"+op.name, func(t *testing.T) {
				ref, _ := tcpPair(t)
				st.set(ref)
				want := outcome(op.do(ref))

				tc, _ := tcpPair(t)
				// With bytes read ahead, which a zero-length Read leaves.
				c := &Conn{TCPConn: tc, raw: NewRawIO(tc), Prefix: []byte("GET")}
				if c.raw == nil && rawIOExpected {
					t.Fatal("NewRawIO: nil for a TCP socket")
				}
				st.set(tc)
				if got := outcome(op.do(c)); got != want {
					t.Errorf("l4.Conn: %s; net.TCPConn: %s", got, want)
				}
				if string(c.Prefix) != "GET" {
					t.Errorf("Prefix after the call: %q, not \"GET\"", c.Prefix)
				}
				if c.raw != nil {
					if got := outcome(op.do(c.raw)); got != want {
						t.Errorf("RawIO: %s; net.TCPConn: %s", got, want)
					}
				}
			})
		}
	}
	// The states do differ for net.TCPConn (else the table proves little).
	c, _ := tcpPair(t)
	c.Close()
	if _, err := c.Read(nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("net.TCPConn's zero-length Read when closed: %v; want net.ErrClosed", err)
	}
	c, _ = tcpPair(t)
	c.CloseWrite()
	if _, err := c.Write(nil); !errors.Is(err, syscall.EPIPE) && rawIOExpected {
		t.Fatalf("net.TCPConn's zero-length Write after CloseWrite: %v; want EPIPE", err)
	}
}
