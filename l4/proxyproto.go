package l4

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
)

// ProxyProtocolIn configures the PROXY protocol on an entrypoint: peers in
// Trusted must send a v1 or v2 header, within Timeout; a header from any
// other peer ends the connection.
type ProxyProtocolIn struct {
	Trusted []netip.Prefix
	// Timeout bounds reading the header; 0 means 5s.
	Timeout time.Duration
}

// Sentinel errors of the PROXY protocol path, for callers and tests.
var (
	ErrProxyHeaderMissing   = errors.New("PROXY header required from trusted peer")
	ErrProxyHeaderUntrusted = errors.New("PROXY header from untrusted peer")
)

func (p *ProxyProtocolIn) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, pfx := range p.Trusted {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// maxProxyHeader bounds a received PROXY header with its TLVs. HAProxy
// sends well under 1 KiB; a larger header is refused.
const maxProxyHeader = 4096

var headerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxProxyHeader) }}

// readProxyHeader reads a PROXY header from the start of c and fills in
// c.Client, c.Dest and c.Prefix (the bytes read past the header).
func (p *ProxyProtocolIn) readProxyHeader(c *Conn) error {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	br := headerReaders.Get().(*bufio.Reader)
	br.Reset(c.TCPConn)
	defer func() {
		br.Reset(nil)
		headerReaders.Put(br)
	}()
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if err := bufferV1Line(br); err != nil {
		return fmt.Errorf("PROXY header: %w", err)
	}
	h, err := proxyproto.Read(br)
	if err != nil {
		if errors.Is(err, proxyproto.ErrNoProxyProtocol) {
			return ErrProxyHeaderMissing
		}
		return fmt.Errorf("PROXY header: %w", err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return err
	}
	// A LOCAL header (health checks) or an UNKNOWN family keeps the socket's
	// own addresses.
	if h.Command.IsProxy() {
		if src := addrPort(h.SourceAddr); src.IsValid() {
			c.Client = src
		}
		if dst := addrPort(h.DestinationAddr); dst.IsValid() {
			c.Dest = dst
		}
	}
	if n := br.Buffered(); n > 0 {
		rest, _ := br.Peek(n)
		c.Prefix = append([]byte(nil), rest...)
	}
	return nil
}

// bufferV1Line makes sure a v1 header's whole line is buffered before
// go-proxyproto parses it: the library refuses a line that did not arrive in
// one read, but the spec recommends tolerating a header split across
// segments, and the read deadline already bounds a client that trickles.
func bufferV1Line(br *bufio.Reader) error {
	first, err := br.Peek(1)
	if err != nil || first[0] != 'P' {
		return nil // not v1; let the library decide
	}
	const maxV1 = 107 // the spec's worst case, CRLF included
	for n := br.Buffered(); n <= maxV1; n = br.Buffered() + 1 {
		b, err := br.Peek(n)
		if bytes.IndexByte(b, '\n') >= 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil // over-long: the library reports it
}

var (
	sigV1 = []byte("PROXY ")
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// startsWithProxySig reports whether b is, or may still become, the start of
// a PROXY header: more is true while b is a strict prefix of a signature.
func startsWithProxySig(b []byte) (sig, more bool) {
	for _, s := range [][]byte{sigV1, sigV2} {
		if len(b) >= len(s) {
			if bytes.HasPrefix(b, s) {
				return true, false
			}
			continue
		}
		if bytes.HasPrefix(s, b) {
			more = true
		}
	}
	return false, more
}

// checkNoProxyHeader reads the first bytes of an untrusted client's stream
// and refuses the connection if they are a PROXY header: the client would
// otherwise choose the address the backend sees. Whatever is read is kept in
// c.Prefix. It blocks until the client sends, so it runs on the
// client-to-backend path only, never before a server-first protocol starts:
// the tunnel calls it before its first copy, and Conn.Read before the first
// read of any other handler (the HTTP server, a TLS handshake), under the
// read deadline that reader set.
//
// A read error (a deadline) before the bytes decide leaves them in
// c.Prefix and the check pending: tlsmux's peek, whose deadline that is,
// replays what it read as Prefix, and the tunnel's check then goes on
// from there.
func (c *Conn) checkNoProxyHeader() error {
	if !c.refuseProxyHeader {
		return nil
	}
	buf := c.Prefix // often decides alone: tlsmux peeked the first bytes
	copied := false
	for {
		sig, more := startsWithProxySig(buf)
		if sig || !more {
			c.refuseProxyHeader = false
		}
		if sig {
			c.metrics.proxyHeader(false)
			if c.srv != nil {
				c.srv.Logger.Warn("connection refused: PROXY header from a peer not in proxy_protocol.trusted",
					"entrypoint", c.Entrypoint, "peer", c.TCPConn.RemoteAddr())
			}
			return ErrProxyHeaderUntrusted
		}
		if !more {
			c.Prefix = buf
			return nil
		}
		if !copied {
			// Prefix may be a buffer someone else reuses: read into ours.
			buf = append(make([]byte, 0, len(sigV2)), buf...)
			copied = true
		}
		n, err := c.TCPConn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			c.Prefix = buf
			return err
		}
	}
}

// proxyHeader formats the PROXY header ("v1" or "v2") that tells a backend
// about a TCP connection from client to dest.
func proxyHeader(version string, client, dest netip.AddrPort) ([]byte, error) {
	h := proxyproto.HeaderProxyFromAddrs(proxyVersion(version),
		net.TCPAddrFromAddrPort(client), net.TCPAddrFromAddrPort(dest))
	return h.Format()
}

// proxyHeaderUDP formats the v2 header prefixed to each datagram of a flow.
func proxyHeaderUDP(client, dest netip.AddrPort) ([]byte, error) {
	h := proxyproto.HeaderProxyFromAddrs(2,
		net.UDPAddrFromAddrPort(client), net.UDPAddrFromAddrPort(dest))
	return h.Format()
}

func proxyVersion(v string) byte {
	if v == "v1" {
		return 1
	}
	return 2
}
