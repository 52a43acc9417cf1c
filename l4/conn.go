package l4

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Handler serves one accepted TCP connection. ServeTCP owns c: it must close
// it before returning, or Detach it. ctx is cancelled when the server is
// closed.
type Handler interface {
	ServeTCP(ctx context.Context, c *Conn)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, c *Conn)

// ServeTCP calls f(ctx, c).
func (f HandlerFunc) ServeTCP(ctx context.Context, c *Conn) { f(ctx, c) }

// Conn is an accepted TCP connection as a Handler sees it.
type Conn struct {
	// TCPConn is the raw socket. Reads from it skip Prefix: use Conn's own
	// Read, or write Prefix first (Proxy does).
	*net.TCPConn
	// Entrypoint is the name of the entrypoint that accepted the connection.
	Entrypoint string
	// Client is the client's address: the source in the PROXY header when
	// one was received, else the peer's address.
	Client netip.AddrPort
	// Dest is the address the client connected to: the destination in the
	// PROXY header when one was received, else the local address.
	Dest netip.AddrPort
	// Prefix holds bytes already read from the socket that the handler must
	// treat as the start of the client's stream.
	Prefix []byte
	// Stream, when set, is what the handler reads and writes instead of the
	// socket: a terminated TLS connection layered over this Conn.
	Stream net.Conn
	// refuseProxyHeader is set on a PROXY-protocol entrypoint for peers that
	// are not trusted: a PROXY header from them ends the connection.
	refuseProxyHeader bool
	raw               *RawIO             // Read and Write, without the scheduler's syscall bookkeeping; nil: TCPConn's
	metrics           *EntrypointMetrics // counts a refused PROXY header

	closeOnce sync.Once
	done      chan struct{} // closed by Close; nil unless from a TCPServer
	srv       *TCPServer    // the server that accepted c, nil if none
	state     atomic.Uint32 // connClosed | connDetached
	released  sync.Once     // srv's books are closed for c
}

// Close closes the socket and marks the connection done.
func (c *Conn) Close() error {
	err := c.TCPConn.Close()
	c.closeOnce.Do(func() {
		if c.done != nil {
			close(c.done)
		}
	})
	if c.state.Or(connClosed)&connDetached != 0 {
		c.release()
	}
	return err
}

const (
	connClosed uint32 = 1 << iota
	connDetached
)

// Detach lets ServeTCP return without closing c because another owner (an
// HTTP server) has it: the TCPServer goes on counting c as open — for
// MaxConnections, and for Shutdown, which waits for it and closes it when
// its context ends — until Close. It saves the goroutine that would
// otherwise wait for that owner.
func (c *Conn) Detach() {
	if c.state.Or(connDetached)&connClosed != 0 { // closed before
		c.release()
	}
}

// release takes c off its server's books, once.
func (c *Conn) release() {
	if c.srv != nil {
		c.released.Do(func() { c.srv.done(c) })
	}
}

// Done is closed once Close has been called: a handler that hands the
// connection to another owner (an HTTP server) waits on it. It is nil for
// a Conn that a TCPServer did not accept.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Read reads Prefix first, then from the socket. A zero-length Read
// answers as the socket's (an error once it is closed). On a
// PROXY-protocol entrypoint, the first Read from a peer that is not
// trusted fails with ErrProxyHeaderUntrusted if the stream starts with a
// PROXY header, counted as on a tunnel: so a handler that is not a tunnel
// (the HTTP server, a TLS handshake) refuses it too.
func (c *Conn) Read(b []byte) (int, error) {
	if c.refuseProxyHeader {
		if err := c.checkNoProxyHeader(); err != nil {
			if !c.refuseProxyHeader || len(c.Prefix) == 0 {
				return 0, err // refused, or nothing read
			}
			// Undecided when the read failed (tlsmux's peek deadline): the
			// bytes, a strict prefix of a signature, go with the error; a
			// reader that replays them as Prefix has them checked again
			// with what follows.
			n := copy(b, c.Prefix)
			c.Prefix = c.Prefix[n:]
			return n, err
		}
	}
	if len(c.Prefix) > 0 && len(b) > 0 {
		n := copy(b, c.Prefix)
		c.Prefix = c.Prefix[n:]
		return n, nil
	}
	if c.raw != nil {
		return c.raw.Read(b)
	}
	return c.TCPConn.Read(b)
}

// WriteTo writes Prefix to w, then the socket's bytes until EOF: it is what
// io.Copy(w, c) takes, so the copy loses no byte read ahead. The socket's
// part is net.TCPConn's WriteTo (which splices into a *net.TCPConn's
// ReadFrom on Linux). The tunnel (pipe.go) copies the raw sockets itself
// and does not come here.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if err := c.checkNoProxyHeader(); err != nil { // as Read
		return 0, err
	}
	var n int64
	if len(c.Prefix) > 0 {
		m, err := w.Write(c.Prefix)
		n, c.Prefix = int64(m), c.Prefix[m:]
		if err == nil && len(c.Prefix) > 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			// As net.TCPConn's WriteTo reports a writer's error.
			return n, &net.OpError{Op: "writeto", Net: "tcp", Source: c.TCPConn.LocalAddr(), Addr: c.TCPConn.RemoteAddr(), Err: err}
		}
	}
	m, err := c.TCPConn.WriteTo(w)
	return n + m, err
}

// Write writes to the socket (with raw system calls where there are).
func (c *Conn) Write(b []byte) (int, error) {
	if c.raw != nil {
		return c.raw.Write(b)
	}
	return c.TCPConn.Write(b)
}

// stream is what a handler talks to: Stream if set, else the Conn itself.
func (c *Conn) stream() net.Conn {
	if c.Stream != nil {
		return c.Stream
	}
	return c
}

// RemoteAddr is the client's address (after the PROXY protocol).
func (c *Conn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.Client) }

// LocalAddr is the address the client connected to (after the PROXY protocol).
func (c *Conn) LocalAddr() net.Addr { return net.TCPAddrFromAddrPort(c.Dest) }

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
