package l4

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// io.Copy from an l4.Conn (which takes the Conn's WriteTo) copies the
// bytes read ahead (Prefix) first, then the socket's, into any writer:
// a bytes.Buffer, and a *net.TCPConn (whose ReadFrom splices the socket's
// part on Linux).
func TestConnWriteToCopiesPrefix(t *testing.T) {
	const prefix, rest = "GET / HTTP/1.1\r\n", "Host: x\r\n\r\n"
	newConn := func(t *testing.T) *Conn {
		tc, peer := tcpPair(t)
		if _, err := peer.Write([]byte(rest)); err != nil {
			t.Fatal(err)
		}
		peer.CloseWrite()
		return &Conn{TCPConn: tc, raw: NewRawIO(tc), Prefix: []byte(prefix)}
	}

	t.Run("bytes.Buffer", func(t *testing.T) {
		c := newConn(t)
		var b bytes.Buffer
		n, err := io.Copy(&b, c)
		if err != nil || b.String() != prefix+rest || n != int64(b.Len()) {
			t.Fatalf("io.Copy = %d, %v: %q; want %q", n, err, b.String(), prefix+rest)
		}
		if len(c.Prefix) != 0 {
			t.Fatalf("Prefix left after the copy: %q", c.Prefix)
		}
	})

	t.Run("net.TCPConn", func(t *testing.T) {
		c := newConn(t)
		dst, far := tcpPair(t)
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(far)
			got <- b
		}()
		n, err := io.Copy(dst, c)
		dst.CloseWrite()
		b := <-got
		if err != nil || string(b) != prefix+rest || n != int64(len(b)) {
			t.Fatalf("io.Copy = %d, %v: the far end read %q; want %q", n, err, b, prefix+rest)
		}
	})

	// A writer that fails takes nothing more from the socket, and the
	// Prefix bytes it did not take stay.
	t.Run("failing writer", func(t *testing.T) {
		c := newConn(t)
		w := &shortWriter{max: 4}
		n, err := io.Copy(w, c)
		if n != 4 || !errors.Is(err, io.ErrShortWrite) || string(c.Prefix) != prefix[4:] {
			t.Fatalf("io.Copy = %d, %v, Prefix left %q; want 4, io.ErrShortWrite, %q", n, err, c.Prefix, prefix[4:])
		}
	})
}

// shortWriter takes at most max bytes of a Write, without an error.
type shortWriter struct{ max int }

func (w *shortWriter) Write(p []byte) (int, error) { return min(len(p), w.max), nil }

var _ io.WriterTo = (*Conn)(nil)
var _ net.Conn = (*Conn)(nil)
